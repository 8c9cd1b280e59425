//! The crate's modules import each other in one direction only (the
//! layers are drawn in `docs/architecture.md`). Checked here, from the
//! sources, because the compiler accepts import cycles between modules.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Module → the crate modules its non-test code names. `sys/` counts as
/// one module; the files of another directory are modules of their own
/// (`conn_io/read.rs` is `conn_io::read`, its `mod.rs` is `conn_io`); a
/// name re-exported at the crate root (`crate::CloseReason`) counts as its
/// defining module.
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
    let mut files = Vec::new();
    let mut children = BTreeMap::new();
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            files.push(path);
            continue;
        }
        let dir = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut stems = BTreeSet::new();
        for inner in fs::read_dir(&path).unwrap() {
            let inner = inner.unwrap().path();
            stems.insert(inner.file_stem().unwrap().to_string_lossy().into_owned());
            files.push(inner);
        }
        if dir != "sys" {
            children.insert(dir, stems);
        }
    }
    let mut graph = BTreeMap::new();
    for path in files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        let Some(module) = module_of(path.strip_prefix(src).unwrap()) else {
            continue;
        };
        let text = fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let deps: &mut BTreeSet<String> = graph.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            deps.extend(named(&module, line, &children, &root_names));
        }
    }
    graph
}

/// The module a file under `src` is, if it counts (not `lib.rs`, not this
/// test).
fn module_of(rel: &Path) -> Option<String> {
    let stem = rel.file_stem()?.to_string_lossy().into_owned();
    let dir = rel.parent().and_then(|p| p.to_str()).unwrap_or("");
    match (dir, stem.as_str()) {
        ("", "lib" | "layers") => None,
        ("", _) => Some(stem),
        ("sys", _) => Some("sys".to_string()),
        (_, "mod") => Some(dir.to_string()),
        _ => Some(format!("{dir}::{stem}")),
    }
}

/// The modules other than `module` that one line of its code names:
/// through `crate::`, through `super::` (from a file of a directory), or,
/// in a directory's `mod.rs`, by a `use` of one of its files.
fn named(
    module: &str,
    line: &str,
    children: &BTreeMap<String, BTreeSet<String>>,
    root_names: &BTreeMap<String, String>,
) -> Vec<String> {
    fn ident(text: &str) -> String {
        text.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    }
    // `dir` and the name after it: the file of `dir` it names, or `dir`.
    let within = |dir: &str, after: &str| match children.get(dir) {
        Some(files) if files.contains(&ident(after)) => format!("{dir}::{}", ident(after)),
        _ => dir.to_string(),
    };
    let mut found = Vec::new();
    for (i, _) in line.match_indices("crate::") {
        let name = ident(&line[i + 7..]);
        let rest = &line[i + 7 + name.len()..];
        found.push(match root_names.get(&name) {
            Some(defining) => defining.clone(),
            None => match rest.strip_prefix("::") {
                Some(after) if children.contains_key(&name) => within(&name, after),
                _ => name,
            },
        });
    }
    if let Some((parent, _)) = module.rsplit_once("::") {
        for (i, _) in line.match_indices("super::") {
            found.push(within(parent, &line[i + 7..]));
        }
    }
    if children.contains_key(module) {
        let trimmed = line.trim_start().trim_start_matches("pub(crate) ");
        if let Some(after) = trimmed.strip_prefix("use ") {
            let after = after.strip_prefix("self::").unwrap_or(after);
            if children[module].contains(&ident(after)) {
                found.push(within(module, after));
            }
        }
    }
    found.retain(|dep| dep != module && !dep.is_empty());
    found
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
        graph["io"].contains("conn")
            && graph["conn_io::read"].contains("handler")
            && graph["conn_io"].contains("conn_io::read"),
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

/// The echo byte's walk enters `conn_io/read.rs`, then `conn_io/write.rs`,
/// and never goes back: the read side uses the write side (an EPOLLOUT is
/// a flush), so the write side must not use the read side.
#[test]
fn the_write_side_does_not_use_the_read_side() {
    let mut graph = imports(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        graph["conn_io::read"].contains("conn_io::write"),
        "the scan did not see read.rs use write.rs: {graph:?}"
    );
    graph
        .get_mut("conn_io::write")
        .unwrap()
        .insert("conn_io::read".to_string());
    assert!(cycle(&graph).is_some(), "a write → read import went unseen");
}

#[test]
fn files_of_a_directory_are_modules_of_their_own() {
    let children = BTreeMap::from([(
        "conn_io".to_string(),
        BTreeSet::from(["read".to_string(), "write".to_string()]),
    )]);
    let roots = BTreeMap::from([("CloseReason".to_string(), "close_reason".to_string())]);
    let named = |module: &str, line: &str| named(module, line, &children, &roots);
    assert_eq!(
        module_of(Path::new("conn_io/read.rs")).unwrap(),
        "conn_io::read"
    );
    assert_eq!(module_of(Path::new("conn_io/mod.rs")).unwrap(), "conn_io");
    assert_eq!(module_of(Path::new("sys/epoll.rs")).unwrap(), "sys");
    assert_eq!(module_of(Path::new("lib.rs")), None);
    assert_eq!(
        named("conn_io::read", "use super::write::flush;"),
        ["conn_io::write"]
    );
    assert_eq!(
        named("conn_io::write", "use super::report_closes;"),
        ["conn_io"]
    );
    assert_eq!(
        named("deferred", "use crate::conn_io::{flush, read};"),
        ["conn_io"]
    );
    assert_eq!(
        named("io", "crate::conn_io::write::flush(io)"),
        ["conn_io::write"]
    );
    assert_eq!(
        named("conn_io", "pub(crate) use read::{finish, read};"),
        ["conn_io::read"]
    );
    assert_eq!(named("conn", "use crate::CloseReason;"), ["close_reason"]);
}
