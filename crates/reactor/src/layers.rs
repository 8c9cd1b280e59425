//! The crate's modules import each other in one direction only (the
//! layers are drawn in `docs/architecture.md`). Checked here, from the
//! sources, because the compiler accepts import cycles between modules.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Module → the crate modules its non-test code names through `crate::`.
/// `sys/` counts as one module; a name re-exported at the crate root
/// (`crate::CloseReason`) counts as its defining module.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut root_names = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("pub use ") else {
            continue;
        };
        let (module, names) = rest.trim_end_matches(';').split_once("::").unwrap();
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            root_names.insert(name.trim().to_string(), module.to_string());
        }
    }
    let mut graph = BTreeMap::new();
    let mut files: Vec<_> = fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.extend(
        fs::read_dir(src.join("sys"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    for path in files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        let module = if path.parent().unwrap().ends_with("sys") {
            "sys".to_string()
        } else {
            path.file_stem().unwrap().to_string_lossy().into_owned()
        };
        if module == "lib" || module == "layers" {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let deps: &mut BTreeSet<String> = graph.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (_, after) in line
                .match_indices("crate::")
                .map(|(i, _)| line.split_at(i + 7))
            {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let dep = root_names.get(&name).cloned().unwrap_or(name);
                if dep != module && !dep.is_empty() {
                    deps.insert(dep);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one, as the path that closes it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(graph, dep, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(graph, node, &mut Vec::new(), &mut done))
}

/// Regression (import circle): `conn` imported `handler` (for
/// `CloseReason`), `handler` imported `io`, and `io` imported `conn`, so
/// no module of the three could be read, or changed, without the others.
#[test]
fn regression_modules_import_each_other_in_one_direction_only() {
    let graph = imports(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        graph["io"].contains("conn") && graph["conn_io"].contains("handler"),
        "the scan found no imports: {graph:?}"
    );
    if let Some(found) = cycle(&graph) {
        panic!("import cycle: {}", found.join(" → "));
    }
}

#[test]
fn a_cycle_is_found() {
    let graph = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
