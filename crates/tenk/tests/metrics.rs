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
    // Every sample belongs to a documented family.
    for sample in &scrape.samples {
        assert!(
            scrape.docs.contains_key(&sample.metric),
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
