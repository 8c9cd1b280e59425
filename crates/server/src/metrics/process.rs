//! Prometheus's standard process families, with the names its client
//! libraries give them (`process_cpu_seconds_total`,
//! `process_open_fds`, `process_max_fds`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_start_time_seconds`), read
//! from `/proc/self` at each scrape; and `tenk_process_info`, whose `pid`
//! label says which process answered (across a graceful restart, the
//! old one's until it hands over, then the new one's).

use std::fmt::Write as _;

/// What `/proc/self/stat` gives, in clock ticks and bytes.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    cpu_ticks: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

/// Fields 14/15 (utime, stime), 22 (starttime), 23 (vsize) and 24 (rss)
/// of proc_pid_stat(5), counted after the command name, which may itself
/// hold spaces and parentheses (hence the last `)`).
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state).
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// The boot time, in seconds since the epoch (`btime` in proc_stat(5)).
fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Appends the process families to `out`; a figure `/proc` cannot give
/// is left out rather than made up.
pub(crate) fn render(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP tenk_process_info The process answering: its pid and tenk's version.\n\
         # TYPE tenk_process_info gauge\n\
         tenk_process_info{{pid=\"{}\",version=\"{}\"}} 1",
        std::process::id(),
        env!("CARGO_PKG_VERSION")
    );
    let hz = rustix::param::clock_ticks_per_second().max(1) as f64;
    let stat = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| parse_stat(&text));
    if let Some(stat) = &stat {
        family(
            out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            stat.cpu_ticks as f64 / hz,
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The directory's own descriptor is among the entries.
        let open = dir.count().saturating_sub(1);
        family(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            open,
        );
    }
    if let Some(max) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
        family(
            out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max,
        );
    }
    let Some(stat) = stat else {
        return;
    };
    let page = rustix::param::page_size() as u64;
    family(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        stat.rss_pages * page,
    );
    family(
        out,
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        stat.vsize,
    );
    let btime = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| parse_btime(&text));
    if let Some(btime) = btime {
        family(
            out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            btime as f64 + stat.start_ticks as f64 / hz,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        // A command name with a space and a parenthesis in it.
        let line = "4242 (tenk (x) y) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    150 50 0 0 20 0 3 0 123456 987654321 2048 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                cpu_ticks: 200,
                start_ticks: 123456,
                vsize: 987654321,
                rss_pages: 2048,
            })
        );
        assert_eq!(parse_stat("4242 (tenk) S 1"), None, "cut short");
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1700000000\nprocesses 9\n"),
            Some(1700000000)
        );
        assert_eq!(parse_btime("cpu 1 2\n"), None);
    }

    #[test]
    fn this_process_has_every_family() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "tenk_process_info{pid=",
            "process_cpu_seconds_total ",
            "process_open_fds ",
            "process_max_fds ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_start_time_seconds ",
        ] {
            assert!(out.contains(name), "{name} missing from {out}");
        }
    }
}
