//! `--metrics ADDR:PORT` (issue 18): every server answers `GET /metrics`
//! on a listener of its own with Prometheus text, read here by a real
//! parser; its latency histograms count the traffic served; it stays
//! plain HTTP beside a main port behind TLS and the PROXY protocol; with
//! `--redis`, chat's Redis figures are there (a real `redis-server`).

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;

use prometheus_parse::{Scrape, Value};
use util::backend::{Recorder, Reply};
use util::certs::{KeyFormat, TestPki};
use util::chat_client::Client;
use util::pids::{kill, read_pid, wait_exited, wait_pid_change, PidFileGuard};
use util::redis::Redis;
use util::{connect, run_tenk, wait_until, Server, PROMPTLY};

/// Starts `tenk serve <server> --port 0 --metrics 127.0.0.1:0 <extra>`;
/// gives it and its metrics address, from the banner.
fn start(server: &str, extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["serve", server, "--port", "0", "--metrics", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Server::start(&args, |_| {});
    let metrics = server
        .banner
        .split(", metrics ")
        .nth(1)
        .and_then(|rest| rest.split([',', ')']).next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {:?}", server.banner));
    (server, metrics)
}

/// One plain HTTP request on a fresh connection: status line and body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = connect(addr);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read to EOF");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {answer:?}"));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// `/metrics` parsed.
fn scrape(metrics: SocketAddr) -> Scrape {
    let (status, body) = get(metrics, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string())).collect::<Vec<_>>();
    Scrape::parse(lines.into_iter()).expect("valid Prometheus text format")
}

/// The `_count` of histogram `name`, summed over its series (workers).
fn count(scrape: &Scrape, name: &str) -> u64 {
    let series: Vec<u64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match &s.value {
            Value::Histogram(buckets) => {
                let inf = buckets.last().expect("a +Inf bucket");
                assert!(inf.less_than.is_infinite(), "{name}: {buckets:?}");
                inf.count as u64
            }
            other => panic!("{name}: not a histogram: {other:?}"),
        })
        .collect();
    assert!(!series.is_empty(), "no {name} in the scrape");
    series.iter().sum()
}

/// Counter `name` summed over its series.
fn total(scrape: &Scrape, name: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match s.value {
            Value::Counter(v) => v,
            ref other => panic!("{name}: not a counter: {other:?}"),
        })
        .sum()
}

fn has(scrape: &Scrape, name: &str) -> bool {
    scrape.samples.iter().any(|s| s.metric == name)
}

/// Every server's pass histogram counts the passes its traffic makes,
/// and the server's own histogram counts its requests or messages.
#[test]
fn each_server_serves_metrics_and_its_histograms_grow_with_traffic() {
    let passes = "tenk_reactor_pass_duration_seconds";

    let (echo, metrics) = start("echo", &[]);
    let before = scrape(metrics);
    let mut client = connect(echo.addr);
    client.write_all(b"ping\n").unwrap();
    let mut back = [0u8; 5];
    client.read_exact(&mut back).unwrap();
    let after = scrape(metrics);
    assert!(
        count(&after, passes) > count(&before, passes),
        "echo passes"
    );
    assert!(
        !has(&after, "tenk_http_responses_total"),
        "echo has no HTTP"
    );

    let (http, metrics) = start("http", &[]);
    let requests = "tenk_http_request_duration_seconds";
    let before = scrape(metrics);
    for _ in 0..3 {
        let (status, _) = get(http.addr, "/health");
        assert_eq!(status, "HTTP/1.1 200 OK");
    }
    let after = scrape(metrics);
    assert_eq!(count(&after, requests) - count(&before, requests), 3);
    assert!(
        count(&after, passes) > count(&before, passes),
        "http passes"
    );
    assert!(has(&after, "tenk_http_route_requests_total"));

    let backend = Recorder::start(Reply::ok("hi"));
    let upstream = backend.upstream();
    let (proxy, metrics) = start("proxy", &["--upstream", &upstream]);
    let before = scrape(metrics);
    let (status, body) = get(proxy.addr, "/");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "hi"));
    // The proxy's workers publish their figures once a second.
    let grown = wait_until(PROMPTLY, || {
        count(&scrape(metrics), requests) == count(&before, requests) + 1
    });
    assert!(grown, "the proxied request is not in {requests}");
    assert!(has(&scrape(metrics), "tenk_proxy_upstream_requests_total"));

    let (chat, metrics) = start("chat", &[]);
    let fanout = "tenk_chat_fanout_duration_seconds";
    let mut speaker = connect(chat.addr);
    let listener = connect(chat.addr);
    let mut heard = BufReader::new(listener.try_clone().unwrap());
    // The listener's join notice, fanned out too, comes first.
    let mut line = String::new();
    while !line.contains("joined") {
        line.clear();
        heard.read_line(&mut line).expect("a line");
    }
    let before = scrape(metrics);
    speaker.write_all(b"hello room\n").unwrap();
    while !line.contains("hello room") {
        line.clear();
        heard.read_line(&mut line).expect("a line");
    }
    let after = scrape(metrics);
    assert!(
        count(&after, fanout) > count(&before, fanout),
        "chat fan-out"
    );
}

/// With a PROXY protocol header and TLS required on the main port, the
/// metrics port answers plain HTTP without a header, and a path other
/// than /metrics gets a 404. Under `--accept dispatch` the listener is
/// worker 0's, not the acceptor's: its connections never meet the
/// transport a handed-over connection gets.
#[test]
fn the_metrics_port_is_plain_beside_tls_and_the_proxy_protocol() {
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let tls = util::tls::flags(&pki);
    for layout in [
        &[][..],
        &["--threads", "2", "--accept", "dispatch"],
        &["--threads", "2", "--accept", "reuseport"],
    ] {
        let mut extra = vec!["--proxy-protocol"];
        extra.extend_from_slice(&tls);
        extra.extend_from_slice(layout);
        let (server, metrics) = start("http", &extra);
        assert!(
            server.banner.contains("proxy protocol, tls"),
            "{}",
            server.banner
        );
        let scraped = scrape(metrics);
        assert!(has(&scraped, "tenk_tls_handshakes_total"), "{layout:?}");
        assert!(
            has(&scraped, "tenk_proxy_protocol_headers_total"),
            "{layout:?}"
        );
        // The same plain request on the main port: closed unanswered.
        let mut main = connect(server.addr);
        main.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut rest = Vec::new();
        let _ = main.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{layout:?}: the main port answered plain");
        let (status, _) = get(metrics, "/other");
        assert_eq!(status, "HTTP/1.1 404 Not Found", "{layout:?}");
        if layout.is_empty() {
            continue;
        }
        let workers: Vec<&str> = scraped
            .samples
            .iter()
            .filter(|s| s.metric == "tenk_reactor_pass_duration_seconds")
            .filter_map(|s| s.labels.get("worker"))
            .collect();
        assert!(
            workers.contains(&"0") && workers.contains(&"1"),
            "{layout:?}: {workers:?}"
        );
    }
}

/// The pid in `tenk_process_info` (and the standard process families
/// beside it).
fn answering_pid(scrape: &Scrape) -> u32 {
    for name in [
        "process_start_time_seconds",
        "process_open_fds",
        "process_resident_memory_bytes",
    ] {
        assert!(has(scrape, name), "no {name}");
    }
    scrape
        .samples
        .iter()
        .find(|s| s.metric == "tenk_process_info")
        .and_then(|s| s.labels.get("pid"))
        .and_then(|pid| pid.parse().ok())
        .expect("tenk_process_info{pid}")
}

/// Regression (the metrics listener bound with SO_REUSEPORT beside the
/// old one at a restart instead of handed over: with `--metrics
/// 127.0.0.1:0` the new process listened on another port, and the old
/// one's socket, out of its epoll set but open, took its share of the
/// connections and reset them at its exit): scraped without a pause
/// across a SIGHUP, the metrics port refuses no connect and fails no
/// scrape, and once the new process serves, every answer is its own.
#[test]
fn the_metrics_listener_is_handed_over_at_a_restart() {
    let dir = std::env::temp_dir().join(format!("tenk-metrics-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("tenk.pid");
    let (mut server, metrics) = start("http", &["--pid-file", pid_file.to_str().unwrap()]);
    let _guard = PidFileGuard(&pid_file);
    let old = server.pid();
    assert!(wait_until(PROMPTLY, || read_pid(&pid_file) == Some(old)));
    assert_eq!(answering_pid(&scrape(metrics)), old);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let scraper = {
        let (stop, seen) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A refused connect, a reset or a bad answer panics here.
                let pid = answering_pid(&scrape(metrics));
                seen.lock().unwrap().push(pid);
            }
        })
    };
    kill(old, libc::SIGHUP);
    let new = wait_pid_change(&pid_file, old, PROMPTLY);
    assert!(server.wait_exit(PROMPTLY).success(), "the old process");
    // Scrapes after the old process is gone: all the new one's.
    let after = seen.lock().unwrap().len();
    assert!(wait_until(PROMPTLY, || seen.lock().unwrap().len() > after + 20));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    scraper.join().expect("a scrape failed across the restart");
    let seen = seen.lock().unwrap().clone();
    let first_new = seen
        .iter()
        .position(|&pid| pid == new)
        .expect("the new pid");
    assert!(
        seen[..first_new].iter().all(|&pid| pid == old)
            && seen[first_new..].iter().all(|&pid| pid == new),
        "old {old}, new {new}: {seen:?}"
    );
    eprintln!(
        "{} scrapes, {first_new} answered by the old process",
        seen.len()
    );
    kill(new, libc::SIGTERM);
    wait_exited(new, PROMPTLY, "the new process");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_metrics_address_exits_2() {
    for bad in ["nonsense", "127.0.0.1", "192.0.2.1:9"] {
        let out = run_tenk(&["serve", "echo", "--port", "0", "--metrics", bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--metrics {bad}: {stderr}");
        assert!(stderr.contains("--metrics"), "--metrics {bad}: {stderr}");
    }
    // In use: taken by another listener.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_tenk(&["serve", "http", "--port", "0", "--metrics", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("--metrics {addr}")), "{stderr}");
}

/// Issue 19: the Redis figures of `tenk serve chat --redis` were only on
/// `--stats` and in the summary, not on `/metrics`. A message from node A
/// reaches node B: A's scrape counts it published, B's received with its
/// latency (the workers publish their figures once a second).
#[test]
fn chat_with_redis_has_its_cluster_figures() {
    let redis = Redis::start();
    let url = redis.url();
    let (a, a_metrics) = start("chat", &["--redis", &url, "--node", "A"]);
    let (b, b_metrics) = start("chat", &["--redis", &url, "--node", "B"]);
    let mut alice = Client::connect(a.addr, "alice");
    let alice_guest = alice.greeted();
    let mut bob = Client::connect(b.addr, "bob");
    bob.greeted();
    alice.send("over redis");
    bob.skip_until(|l| l == format!("<{alice_guest}> over redis"));

    let latency = "tenk_chat_redis_delivery_latency_seconds";
    let received = wait_until(PROMPTLY, || {
        let b = scrape(b_metrics);
        total(&b, "tenk_chat_redis_received_total") >= 1.0 && count(&b, latency) >= 1
    });
    let b_scrape = scrape(b_metrics);
    assert!(
        received,
        "B's scrape has no receipt: {:?}",
        b_scrape.samples
    );
    assert!(has(&b_scrape, "tenk_chat_redis_links_up"));
    assert!(has(&b_scrape, "tenk_chat_redis_reconnects_total"));
    assert!(has(&b_scrape, "tenk_chat_redis_lost_total"));
    let published = wait_until(PROMPTLY, || {
        total(&scrape(a_metrics), "tenk_chat_redis_published_total") >= 1.0
    });
    assert!(published, "A's scrape has nothing published");

    // Without --redis, no Redis families.
    let (_plain, metrics) = start("chat", &[]);
    assert!(!has(&scrape(metrics), "tenk_chat_redis_received_total"));
}
