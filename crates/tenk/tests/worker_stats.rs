//! Per-worker figures with `--threads`: `/metrics` series labelled by
//! worker that add up to the process totals, busy time that grows with
//! work and not with waiting, the `--stats` line's per-worker part, and an
//! idle threaded server that stops waking once its figures are published.
//!
//! `--accept dispatch --balance round-robin` spreads connections
//! deterministically: the n-th connection (from 0) goes to worker n % 2.
//! A worker's reactor figures reach the others up to a second late, so
//! checks on them poll `/metrics` with `util::wait_until`; sleeps appear
//! only as measurement windows.

mod util;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};
use util::{wait_until, Server, PROMPTLY};

const DISPATCH_2: [&str; 6] = [
    "--threads",
    "2",
    "--accept",
    "dispatch",
    "--balance",
    "round-robin",
];

fn start(kind: &str, extra: &[&str]) -> Server {
    let mut args = vec!["serve", kind, "--port", "0"];
    args.extend_from_slice(extra);
    Server::start(&args, |_| {})
}

/// A keep-alive HTTP client: requests go one at a time on one connection.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(server: &Server) -> Client {
        let stream = util::connect(server.addr);
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends `GET path` and returns the status line and the body.
    fn get(&mut self, path: &str) -> (String, String) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        self.stream.write_all(request.as_bytes()).expect("send");
        let head_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill();
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
        while self.buf.len() < head_end + length {
            self.fill();
        }
        let body = String::from_utf8_lossy(&self.buf[head_end..head_end + length]).into_owned();
        self.buf.drain(..head_end + length);
        let status = head.lines().next().unwrap_or_default().to_string();
        (status, body)
    }

    fn fill(&mut self) {
        let mut chunk = [0; 16 * 1024];
        let n = self.stream.read(&mut chunk).expect("read a response");
        assert!(n > 0, "connection closed mid-response");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn hello(&mut self) {
        let (status, body) = self.get("/");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(body, "Hello, World!");
    }
}

/// One `/metrics` scrape, parsed by a real Prometheus text parser, with
/// its raw text.
struct Metrics {
    scrape: Scrape,
    text: String,
}

impl Metrics {
    fn scrape(client: &mut Client) -> Metrics {
        let (status, text) = client.get("/metrics");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = Scrape::parse(lines).expect("valid Prometheus text format");
        Metrics { scrape, text }
    }

    /// The value of `name` for label `key="value"` (or without labels).
    fn get(&self, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
        let sample = self.scrape.samples.iter().find(|s| {
            s.metric == name
                && match label {
                    Some((k, v)) => s.labels.get(k) == Some(v),
                    None => s.labels.is_empty(),
                }
        })?;
        match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            ref other => panic!("{name}: unexpected {other:?}"),
        }
    }

    fn total(&self, name: &str) -> f64 {
        self.get(name, None)
            .unwrap_or_else(|| panic!("no {name} in\n{}", self.text))
    }

    fn worker(&self, name: &str, worker: &str) -> f64 {
        self.get(name, Some(("worker", worker)))
            .unwrap_or_else(|| panic!("no {name}{{worker={worker:?}}} in\n{}", self.text))
    }

    /// Every `worker` label value of `name`, with its value.
    fn by_worker(&self, name: &str) -> HashMap<String, f64> {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .map(|s| {
                let worker = s.labels.get("worker").expect("a worker label").to_string();
                match s.value {
                    Value::Counter(v) | Value::Gauge(v) => (worker, v),
                    ref other => panic!("{name}: unexpected {other:?}"),
                }
            })
            .collect()
    }

    fn sum(&self, name: &str) -> f64 {
        self.by_worker(name).values().sum()
    }
}

/// Scrapes until `done` holds, failing after [`PROMPTLY`]: other workers'
/// reactor figures are published up to a second after their activity.
fn scrape_until(client: &mut Client, what: &str, done: impl Fn(&Metrics) -> bool) -> Metrics {
    let mut last = None;
    let held = wait_until(PROMPTLY, || {
        let metrics = Metrics::scrape(client);
        let ok = done(&metrics);
        last = Some(metrics);
        ok
    });
    let last = last.expect("at least one scrape");
    assert!(held, "{what}: never seen in\n{}", last.text);
    last
}

#[test]
fn metrics_label_each_worker_and_sum_to_the_totals() {
    let server = start("http", &DISPATCH_2);
    // Connections 0..4 go to workers 0, 1, 0, 1; the scraper (4) to 0.
    let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(&server)).collect();
    for client in &mut clients {
        client.hello();
    }
    let mut scraper = Client::connect(&server);
    let m = scrape_until(&mut scraper, "worker 1 and the acceptor published", |m| {
        m.get("tenk_worker_connections_active", Some(("worker", "1"))) == Some(2.0)
            && m.get(
                "tenk_worker_epoll_waits_total",
                Some(("worker", "acceptor")),
            )
            .is_some_and(|n| n > 0.0)
    });

    // HELP and TYPE once per family.
    for prefix in ["# HELP ", "# TYPE "] {
        let mut seen = std::collections::HashSet::new();
        for line in m.text.lines().filter_map(|l| l.strip_prefix(prefix)) {
            let name = line.split(' ').next().unwrap();
            assert!(seen.insert(name), "{prefix}{name} twice");
        }
    }
    for sample in &m.scrape.samples {
        // A histogram's `_sum` and `_count` come as samples of their own,
        // documented under the family's name.
        let family = ["_sum", "_count"]
            .iter()
            .find_map(|suffix| sample.metric.strip_suffix(suffix))
            .filter(|family| m.scrape.docs.contains_key(*family))
            .unwrap_or(&sample.metric);
        // The whole scrape goes with a failure: this assertion failed once
        // in CI (2026-12-08, the route histogram's `_sum` without its
        // family's HELP) and never in 70 runs here since.
        assert!(
            m.scrape.docs.contains_key(family),
            "{} undocumented in\n{}",
            sample.metric,
            m.text
        );
    }

    let active = m.by_worker("tenk_worker_connections_active");
    assert_eq!(active.get("0"), Some(&3.0), "{active:?}");
    assert_eq!(active.get("1"), Some(&2.0), "{active:?}");
    assert_eq!(active.get("acceptor"), Some(&0.0), "{active:?}");
    assert_eq!(m.sum("tenk_worker_connections_active"), 5.0);
    assert_eq!(m.total("tenk_connections_active"), 5.0);

    assert_eq!(m.worker("tenk_worker_connections_accepted_total", "0"), 3.0);
    assert_eq!(m.worker("tenk_worker_connections_accepted_total", "1"), 2.0);
    assert_eq!(m.total("tenk_connections_accepted_total"), 5.0);

    // Totals are the sum of every reactor's figures, acceptor included.
    assert_eq!(
        m.sum("tenk_worker_events_total"),
        m.total("tenk_events_total")
    );
    assert_eq!(
        m.sum("tenk_worker_epoll_waits_total"),
        m.get("tenk_syscalls_total", Some(("call", "epoll_wait")))
            .unwrap()
    );
    let busy = m.by_worker("tenk_worker_busy_seconds_total");
    assert_eq!(busy.len(), 3, "{busy:?}");
    assert!(busy.values().all(|&b| b > 0.0), "{busy:?}");
    let busy_sum: f64 = busy.values().sum();
    assert!((busy_sum - m.total("tenk_busy_seconds_total")).abs() < 1e-6);

    // HTTP responses are recorded as they are sent: exact for every
    // worker. Worker 0 sent two hellos and the earlier scrapes.
    let responses = m.by_worker("tenk_worker_http_responses_total");
    assert_eq!(responses.get("1"), Some(&2.0), "{responses:?}");
    assert!(
        responses.get("0").is_some_and(|&n| n >= 2.0),
        "{responses:?}"
    );
    assert!(!responses.contains_key("acceptor"), "{responses:?}");
    let by_class: f64 = m
        .scrape
        .samples
        .iter()
        .filter(|s| s.metric == "tenk_http_responses_total")
        .map(|s| match s.value {
            Value::Counter(v) => v,
            ref other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(by_class, responses.values().sum::<f64>());
}

#[test]
fn busy_seconds_grow_under_load_and_not_while_waiting() {
    let started = Instant::now();
    let server = start("http", &DISPATCH_2);
    // The scraper is connection 0 (worker 0); then one client per worker.
    let mut scraper = Client::connect(&server);
    let mut on_1 = Client::connect(&server);
    let mut on_0 = Client::connect(&server);
    on_1.hello();
    on_0.hello();
    let before = scrape_until(&mut scraper, "worker 1 published", |m| {
        m.get("tenk_worker_connections_active", Some(("worker", "1"))) == Some(1.0)
    });
    let busy_before: Vec<f64> = ["0", "1"]
        .map(|w| before.worker("tenk_worker_busy_seconds_total", w))
        .to_vec();
    let waits_1 = before.worker("tenk_worker_epoll_waits_total", "1");

    for _ in 0..500 {
        on_1.hello();
        on_0.hello();
    }
    let after = scrape_until(&mut scraper, "worker 1's load published", |m| {
        m.get("tenk_worker_epoll_waits_total", Some(("worker", "1")))
            .is_some_and(|n| n >= waits_1 + 500.0)
    });
    let uptime = started.elapsed().as_secs_f64();
    for (i, worker) in ["0", "1"].iter().enumerate() {
        let busy = after.worker("tenk_worker_busy_seconds_total", worker);
        assert!(
            busy > busy_before[i],
            "worker {worker}: busy {busy} s after 500 requests, {} s before",
            busy_before[i]
        );
        // The server spent most of its life waiting (for the test, for
        // figures to publish): counting waits would put busy near uptime.
        assert!(
            busy < uptime / 2.0,
            "worker {worker}: busy {busy} s of {uptime} s"
        );
        eprintln!(
            "worker {worker}: busy {:.6} s -> {busy:.6} s over 500 requests",
            busy_before[i]
        );
    }
}

#[test]
fn stats_line_shows_each_workers_busy_share_and_accepts() {
    let mut args = DISPATCH_2.to_vec();
    args.push("--stats");
    let server = start("echo", &args);
    let mut clients: Vec<TcpStream> = (0..10).map(|_| util::connect(server.addr)).collect();
    for c in &mut clients {
        c.write_all(b"x").unwrap();
        assert_eq!(util::read_exact_vec(c, 1), b"x");
    }
    // Each line's per-worker accept rates; the accepts show in the line
    // that first has a worker's figures after them, at the latest the one
    // where the total reaches 10.
    let mut accepted = [0.0f64; 2];
    let line = loop {
        let line = server.next_line(PROMPTLY).expect("a stats line");
        let (_, workers) = line
            .split_once(" | workers ")
            .unwrap_or_else(|| panic!("no per-worker part in {line:?}"));
        let rates = field(&line, "accepts ", "/s");
        for (sum, rate) in accepted.iter_mut().zip(pair(&rates)) {
            *sum += rate.parse::<f64>().unwrap();
        }
        if line.contains("conns 10 active") && workers.starts_with("5/5 ") {
            break line;
        }
    };
    assert!(
        line.contains(" | workers 5/5 (skew 1.00) | busy "),
        "{line}"
    );
    let busy = field(&line, "busy ", " |");
    for share in pair(&busy) {
        let share: f64 = share
            .strip_suffix('%')
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("busy share {share:?} in {line:?}"));
        assert!((0.0..=100.0).contains(&share), "{line}");
    }
    assert!(accepted.iter().all(|&a| a > 0.0), "accepts {accepted:?}");
    field(&line, "events ", "/s");
}

/// The text between `start` and the next `end` in `line`.
fn field(line: &str, start: &str, end: &str) -> String {
    line.split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(value, _)| value.to_string())
        .unwrap_or_else(|| panic!("no {start:?}…{end:?} in {line:?}"))
}

/// `a/b` as its two parts.
fn pair(text: &str) -> [&str; 2] {
    let (a, b) = text
        .split_once('/')
        .unwrap_or_else(|| panic!("not a/b: {text:?}"));
    [a, b]
}

/// Voluntary context switches of each thread of `pid`, by thread name: a
/// thread blocked in `epoll_wait` switches once each time it wakes.
fn wakeups(pid: u32) -> HashMap<String, u64> {
    let mut by_thread = HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let task = task.unwrap().path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        *by_thread.entry(name.trim().to_string()).or_insert(0) += switches;
    }
    by_thread
}

fn since(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> HashMap<String, u64> {
    after
        .iter()
        .map(|(name, n)| (name.clone(), n - before.get(name).copied().unwrap_or(0)))
        .collect()
}

/// Without `--stats`, workers publish their figures a second after
/// activity (once more if anything happened meanwhile), then sleep: an
/// idle threaded server, connections open, makes no wake-ups at all.
#[test]
fn idle_threaded_server_makes_no_wakeups() {
    let server = start("http", &DISPATCH_2);
    let mut clients: Vec<Client> = (0..10).map(|_| Client::connect(&server)).collect();
    for client in &mut clients {
        client.hello();
    }
    // Measurement windows, not synchronisation: the publish timers may
    // fire twice each in the first (one second after the activity, then
    // once more as the activity continued into that second)...
    let at_rest = wakeups(server.pid());
    thread::sleep(Duration::from_secs(3));
    let settled = wakeups(server.pid());
    let settling = since(&at_rest, &settled);
    eprintln!("wake-ups while settling: {settling:?}");
    // Up to 3 wake-ups are the design (the last reply's return to
    // `epoll_wait`, two publishes); CI once saw 4 on a busy machine (a
    // blocking lock or a late reply counts too). 10 still fails any
    // periodic timer (a 100 ms one makes 30 here); the idle window below
    // is the strict check.
    for (thread, n) in &settling {
        assert!(*n <= 10, "{thread} woke {n} times after the activity");
    }
    // ...and nothing wakes in the second.
    let ticks = server.cpu_ticks();
    thread::sleep(Duration::from_secs(2));
    let idle = since(&settled, &wakeups(server.pid()));
    eprintln!("wake-ups while idle: {idle:?}");
    assert!(idle.values().all(|&n| n == 0), "idle server woke: {idle:?}");
    assert!(server.cpu_ticks() - ticks <= 1);
    // Still serving, and the figures published before the quiet are
    // complete: worker 1 holds connections 1, 3, 5, 7, 9.
    let mut scraper = Client::connect(&server);
    let m = Metrics::scrape(&mut scraper);
    assert_eq!(m.worker("tenk_worker_connections_active", "1"), 5.0);
    assert_eq!(m.worker("tenk_worker_connections_accepted_total", "1"), 5.0);
}

/// One reactor: the series carry `worker="0"` too, so dashboards read the
/// same with or without `--threads`.
#[test]
fn single_thread_metrics_label_worker_0() {
    let server = start("http", &[]);
    let mut client = Client::connect(&server);
    client.hello();
    client.hello();
    let m = Metrics::scrape(&mut client);
    assert_eq!(m.worker("tenk_worker_connections_active", "0"), 1.0);
    assert_eq!(m.total("tenk_connections_active"), 1.0);
    assert_eq!(m.worker("tenk_worker_http_responses_total", "0"), 2.0);
    assert_eq!(
        m.worker("tenk_worker_events_total", "0"),
        m.total("tenk_events_total")
    );
    assert!(m.worker("tenk_worker_busy_seconds_total", "0") > 0.0);
    assert_eq!(m.by_worker("tenk_worker_connections_active").len(), 1);
}
