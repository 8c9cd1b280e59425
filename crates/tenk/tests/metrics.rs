//! `/metrics` read by a real Prometheus text-format parser: every family
//! typed, counters counting what was served.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};
use util::http_client::Client;
use util::{Server, PROMPTLY};

/// Sends one request on a fresh connection and reads the whole answer.
fn request(server: &Server, raw: &str) -> String {
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(PROMPTLY)).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read to EOF");
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(server: &Server, path: &str) -> String {
    request(
        server,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

/// Scrapes `/metrics` on a keep-alive connection: the response checked
/// and its body parsed.
fn scrape(client: &mut Client) -> Scrape {
    let response = client.get("/metrics");
    assert_eq!(response.status, 200, "{}", response.head);
    assert!(
        response
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{}",
        response.head
    );
    let lines = response
        .text()
        .lines()
        .map(|l| Ok(l.to_string()))
        .collect::<Vec<_>>();
    Scrape::parse(lines.into_iter()).expect("valid Prometheus text format")
}

fn value(scrape: &Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{name}: unexpected {other:?}"),
    }
}

#[test]
fn metrics_parse_and_count_what_was_served() {
    let server = Server::start(&["serve", "http", "--port", "0"], |_| {});
    for _ in 0..3 {
        assert!(get(&server, "/").starts_with("HTTP/1.1 200"));
    }
    assert!(get(&server, "/missing").starts_with("HTTP/1.1 404"));
    assert!(request(&server, "GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400"));

    // One keep-alive connection scrapes until the reactor totals include
    // every connection: at once on one thread; with `--threads` (the suite
    // matrix) another worker's figures may be up to a second old, so a
    // few scrapes may be needed. Each earlier scrape is itself a 2xx.
    let mut client = Client::connect(server.addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut earlier_scrapes = 0.0;
    let scrape = loop {
        let scrape = scrape(&mut client);
        if value(&scrape, "tenk_connections_accepted_total", None) == 6.0
            || Instant::now() > deadline
        {
            break scrape;
        }
        earlier_scrapes += 1.0;
        // A polling interval, not a synchronisation: the other worker's
        // publish is due within a second.
        std::thread::sleep(Duration::from_millis(50));
    };
    // Every sample belongs to a documented family (a histogram's `_sum`
    // and `_count` to the histogram's).
    for sample in &scrape.samples {
        let family = ["_sum", "_count"]
            .iter()
            .find_map(|s| sample.metric.strip_suffix(s))
            .filter(|base| scrape.docs.contains_key(*base))
            .unwrap_or(&sample.metric);
        assert!(
            scrape.docs.contains_key(family),
            "{} has no HELP",
            sample.metric
        );
        if sample.metric.ends_with("_total") {
            assert!(
                matches!(sample.value, Value::Counter(_)),
                "{} is not a counter",
                sample.metric
            );
        }
    }
    assert_eq!(
        value(&scrape, "tenk_http_responses_total", Some(("class", "2xx"))),
        3.0 + earlier_scrapes
    );
    assert_eq!(
        value(&scrape, "tenk_http_responses_total", Some(("class", "4xx"))),
        2.0
    );
    assert_eq!(
        value(&scrape, "tenk_http_requests_refused_total", None),
        1.0
    );
    // Six connections accepted, the metrics one still open.
    assert_eq!(value(&scrape, "tenk_connections_accepted_total", None), 6.0);
    assert_eq!(value(&scrape, "tenk_connections_active", None), 1.0);
    assert!(value(&scrape, "tenk_syscalls_total", Some(("call", "epoll_wait"))) > 0.0);
    assert!(value(&scrape, "tenk_received_bytes_total", None) > 0.0);
}

/// The sample of `name` for route `method route` (and `extra` label).
fn route_sample<'s>(
    scrape: &'s Scrape,
    name: &str,
    method: &str,
    route: &str,
    extra: Option<(&str, &str)>,
) -> Option<&'s Value> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && s.labels.get("method") == Some(method)
                && s.labels.get("route") == Some(route)
                && extra.is_none_or(|(k, v)| s.labels.get(k) == Some(v))
        })
        .map(|s| &s.value)
}

/// Requests of one route and status class (0 when there is no sample).
fn route_requests(scrape: &Scrape, method: &str, route: &str, class: &str) -> f64 {
    match route_sample(
        scrape,
        "tenk_http_route_requests_total",
        method,
        route,
        Some(("class", class)),
    ) {
        None => 0.0,
        Some(Value::Counter(v)) => *v,
        Some(other) => panic!("{method} {route}: not a counter: {other:?}"),
    }
}

/// Every route of the app counted by route and status class, cached ones
/// included, in one series per route however many workers served it (run
/// with `TENK_TEST_SERVE_ARGS="--threads 2 --accept reuseport"` too: each
/// request on its own connection, so both workers serve some).
#[test]
fn every_route_is_counted_by_route_and_class() {
    let server = Server::start(&["serve", "http", "--port", "0"], |_| {});
    const N: usize = 4;
    let post = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
    for _ in 0..N {
        assert!(get(&server, "/").starts_with("HTTP/1.1 200"));
        let head = "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        assert!(request(&server, head).starts_with("HTTP/1.1 200"));
        assert!(get(&server, "/health").starts_with("HTTP/1.1 200"));
        assert!(request(&server, post).starts_with("HTTP/1.1 200"));
        assert!(get(&server, "/missing").starts_with("HTTP/1.1 404"));
        let put = "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert!(request(&server, put).starts_with("HTTP/1.1 405"));
    }
    let mut client = Client::connect(server.addr);
    let first = scrape(&mut client);
    let scrape = scrape(&mut client);
    let n = N as f64;
    for (method, route, class, want) in [
        ("GET", "/", "2xx", 2.0 * n), // HEAD counts under its GET route
        ("GET", "/health", "2xx", n),
        ("POST", "/echo", "2xx", n),
        ("GET", "/metrics", "2xx", 1.0), // the first scrape
        ("any", "(not found)", "4xx", n),
        ("any", "(method not allowed)", "4xx", n),
        ("GET", "/", "4xx", 0.0),
    ] {
        assert_eq!(
            route_requests(&scrape, method, route, class),
            want,
            "{method} {route} {class}"
        );
    }
    // The first scrape did not count itself: it is counted once answered.
    assert_eq!(route_requests(&first, "GET", "/metrics", "2xx"), 0.0);
    // Durations: a cached route's are 0 (timed by the loop's pass clock),
    // so all in the first bucket; every route's histogram counts them all.
    let histogram = "tenk_http_route_request_duration_seconds";
    for (method, route, count, cached) in [
        ("GET", "/", 2.0 * n, true),
        ("GET", "/health", n, true),
        ("POST", "/echo", n, false),
        ("any", "(not found)", n, false),
    ] {
        let Some(Value::Histogram(buckets)) = route_sample(&scrape, histogram, method, route, None)
        else {
            panic!("no histogram for {method} {route}");
        };
        let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
        assert_eq!(inf.count, count, "{method} {route}");
        let first = buckets
            .iter()
            .min_by(|a, b| a.less_than.total_cmp(&b.less_than))
            .unwrap();
        assert_eq!(first.less_than, 0.0001);
        if cached {
            assert_eq!(first.count, count, "{method} {route}: timed as 0");
        }
        let total = route_sample(&scrape, &format!("{histogram}_count"), method, route, None);
        assert_eq!(total, Some(&Value::Untyped(count)), "{method} {route}");
    }
    // With workers, the figures above are sums over workers only if every
    // worker served some of it. Round-robin dispatch alternates the fresh
    // connections, so there it must hold; the kernel's choice (reuseport's
    // hash, exclusive's first waiter) may give one worker all of them.
    let round_robin =
        std::env::var("TENK_TEST_SERVE_ARGS").is_ok_and(|a| a.contains("round-robin"));
    for sample in &scrape.samples {
        if sample.metric == "tenk_worker_http_responses_total" {
            let served = matches!(sample.value, Value::Counter(v) if v > 0.0);
            if round_robin {
                assert!(
                    served,
                    "{:?} served nothing: the test would not check the sum",
                    sample.labels
                );
            } else if !served {
                eprintln!(
                    "note: {:?} served nothing; the sums were not exercised",
                    sample.labels
                );
            }
        }
    }
}
