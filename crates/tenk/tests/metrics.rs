//! `/metrics` read by a real Prometheus text-format parser: every family
//! typed, counters counting what was served.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;

use prometheus_parse::{Scrape, Value};
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

    let answer = get(&server, "/metrics");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = Scrape::parse(lines).expect("valid Prometheus text format");

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
        3.0
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
