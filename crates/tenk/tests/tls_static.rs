//! Static files over TLS through the real binary (issue 16): `sendfile`
//! cannot reach a TLS socket, so the server reads the file a chunk at a time
//! and encrypts it; these tests hold it to what `sendfile` gave.
//!
//! What is proven: 100 MiB to a slow reader (Python's `ssl`, 64 KiB every
//! 2 ms) arrive byte-exact while the server's RSS stays flat (one chunk and
//! rustls' buffers, not the file); a range request is answered over TLS; a
//! client that stops reading mid-response is cut at `--write-timeout`, and
//! the summary counts it; 1,000 idle TLS connections cost a bounded amount
//! of memory each (the figure is printed). The slow reader runs in every
//! trigger mode.
//!
//! curl and python3 are optional locally (a note is printed and the test
//! skipped), CI installs both; the expected digest comes from `sha256sum`.
//! Socket-heavy: run with `--test-threads=1`.

#[macro_use]
mod util;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use util::certs::{KeyFormat, TestPki};
use util::clients::{available, curl};
use util::tls::{serve, shut_down, PythonClient};
use util::{closes, pattern, Server, PROMPTLY};

every_trigger!([edge, level, oneshot] => [
    large_file_to_a_slow_reader_keeps_memory_flat,
]);

const MIB: u64 = 1024 * 1024;

/// A directory `root` in the PKI's temporary directory (removed with it).
fn root(pki: &TestPki) -> PathBuf {
    let root = pki.path("root");
    fs::create_dir_all(&root).expect("create root");
    root
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temporary path")
}

/// A file of `mib` MiB, each MiB a different pattern (a misplaced piece
/// changes the digest).
fn patterned_file(path: &Path, mib: u64) {
    let mut file = File::create(path).expect("create file");
    for seed in 0..mib {
        file.write_all(&pattern(seed, MIB as usize))
            .expect("write file");
    }
}

/// The SHA-256 of a file, by `sha256sum`.
fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    let text = String::from_utf8(out.stdout).expect("UTF-8 digest");
    text.split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// 100 MiB to a client that reads 64 KiB and sleeps 2 ms (at most 32 MB/s,
/// so the server waits for room most of the time): the digest matches,
/// and the server's RSS, sampled every 20 ms, never grows 8 MiB above its
/// level before (it holds a chunk and rustls' buffers, not the file);
/// the transfer took many wake-ups; the file's descriptor is closed
/// after. Measured: +132 KiB in a debug build.
fn large_file_to_a_slow_reader_keeps_memory_flat(trigger: &str) {
    if !available("python3", "the Python ssl checks") || !available("curl", "the /metrics scrape") {
        return;
    }
    const SIZE_MIB: u64 = 100;
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let root = root(&pki);
    let big = root.join("big.bin");
    patterned_file(&big, SIZE_MIB);
    let want = sha256(&big);
    fs::write(root.join("small.txt"), b"small").expect("write small file");
    let server = serve(&pki, "http", trigger, &["--root", s(&root)]);
    // Warm up (the first TLS connection's and request's allocations).
    PythonClient::start(&pki, server.addr, "slow", &["/small.txt", "0"]).line(Duration::ZERO);
    let waits_before = metric(&pki, &server, EPOLL_WAITS);
    let rss_before = server.rss_bytes();
    let fds_before = server.fd_count();

    let started = Instant::now();
    let client = PythonClient::start(&pki, server.addr, "slow", &["/big.bin", "2"]);
    let mut peak = rss_before;
    let mut samples = 0;
    let result = loop {
        if let Some(line) = client.try_line(Duration::from_millis(20)) {
            break line;
        }
        peak = peak.max(server.rss_bytes());
        samples += 1;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{trigger}: the transfer did not end within a minute"
        );
    };
    let took = started.elapsed();
    assert_eq!(
        result,
        format!("{} {want}", SIZE_MIB * MIB),
        "{trigger}: length and SHA-256 of what arrived"
    );
    let growth = peak.saturating_sub(rss_before);
    eprintln!(
        "{trigger}: 100 MiB over TLS to a slow reader in {took:?}: RSS {rss_before} -> peak {peak} (+{} KiB, {samples} samples)",
        growth / 1024
    );
    assert!(
        growth < 8 * MIB,
        "{trigger}: server RSS grew {growth} bytes (from {rss_before}) for a 100 MiB file"
    );
    // The socket buffers hold a few MiB at most: the transfer went on over
    // many wake-ups (EPOLLOUT each time the reader made room), not in one.
    let waits = metric(&pki, &server, EPOLL_WAITS) - waits_before;
    assert!(waits >= 10, "{trigger}: 100 MiB in {waits} wake-ups");
    assert!(
        util::wait_until(PROMPTLY, || server.fd_count() <= fds_before),
        "{trigger}: descriptors {} after, {fds_before} before",
        server.fd_count()
    );
}

const EPOLL_WAITS: &str = "tenk_syscalls_total{call=\"epoll_wait\"}";

/// The value of the sample `name` (with its labels, as printed) in the
/// server's `/metrics`, fetched over TLS by curl.
fn metric(pki: &TestPki, server: &Server, name: &str) -> u64 {
    let url = format!("https://{}/metrics", server.addr);
    let out = curl(&["--cacert", s(&pki.ca), &url], b"");
    let text = String::from_utf8(out.stdout).expect("UTF-8 metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .expect("numeric sample")
}

/// `Range: bytes=` over TLS: 206 with exactly those bytes, a suffix range
/// too; a range past the end is 416.
#[test]
fn range_request_over_tls() {
    if !available("curl", "the curl checks") {
        return;
    }
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let root = root(&pki);
    let contents = pattern(7, 300_000);
    fs::write(root.join("file.bin"), &contents).expect("write file");
    let server = serve(&pki, "http", "edge", &["--root", s(&root)]);
    let url = format!("https://{}/file.bin", server.addr);
    let ca = s(&pki.ca);
    for (range, want) in [
        ("1000-1999", &contents[1000..2000]),
        ("100000-299999", &contents[100_000..]),
        ("-5", &contents[contents.len() - 5..]),
    ] {
        let out = curl(&["--cacert", ca, "--range", range, "-D", "-", &url], b"");
        let (head, body) = split_response(&out.stdout);
        assert!(head.starts_with("HTTP/1.1 206 "), "{range}: {head}");
        assert!(
            body == want,
            "{range}: {} bytes, not those asked",
            body.len()
        );
    }
    let out = curl(
        &[
            "--cacert",
            ca,
            "--range",
            "400000-400010",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ],
        b"",
    );
    assert_eq!(out.stdout, b"416");
}

/// `(head, body)` of a response curl wrote with `-D -`.
fn split_response(all: &[u8]) -> (String, &[u8]) {
    let at = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of the head");
    (
        String::from_utf8_lossy(&all[..at]).into_owned(),
        &all[at + 4..],
    )
}

/// A client that takes 64 KiB of a 100 MiB file and then stops reading,
/// its connection left open: the server closes it at `--write-timeout`
/// (1 s; bounded at 10 times that), the file and the socket released,
/// and the summary counts one write timeout. Without the timeout the
/// connection would be held for as long as the client likes.
#[test]
fn reader_that_stops_is_cut_at_the_write_timeout() {
    if !available("python3", "the Python ssl checks") {
        return;
    }
    const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let root = root(&pki);
    let big = root.join("big.bin");
    File::create(&big)
        .and_then(|f| f.set_len(100 * MIB))
        .expect("sparse file");
    let mut server = serve(
        &pki,
        "http",
        "edge",
        &["--root", s(&root), "--write-timeout", "1s"],
    );
    let fds_before = server.fd_count();
    let client = PythonClient::start(&pki, server.addr, "stall", &["/big.bin"]);
    assert_eq!(client.line(Duration::ZERO), "stalled");
    let stalled = Instant::now();
    // The connection and the file are held while the server still waits.
    assert!(server.fd_count() >= fds_before + 2, "nothing held open");
    assert!(
        util::wait_until(10 * WRITE_TIMEOUT, || server.fd_count() <= fds_before),
        "the stalled connection was not closed within {:?}",
        10 * WRITE_TIMEOUT
    );
    let elapsed = stalled.elapsed();
    // The timer runs from the server's last progress, which the client's
    // last read allowed: no sooner than about the timeout after it.
    assert!(
        elapsed >= WRITE_TIMEOUT / 2,
        "closed {elapsed:?} after the client stopped reading"
    );
    let rest = client.finish();
    let got: u64 = rest
        .first()
        .and_then(|l| l.strip_prefix("after "))
        .and_then(|l| l.split_once(" bytes"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("the client's last line: {rest:?}"));
    assert!(got < 100 * MIB, "the whole file arrived: {rest:?}");
    let summary = shut_down(&mut server, "http");
    let closes = closes(&summary.main);
    assert_eq!(
        (closes.write_timeout, closes.error),
        (1, 0),
        "{}",
        summary.main
    );
    eprintln!("closed {elapsed:?} after the client stopped; it then read: {rest:?}");
}

/// 1,000 TLS connections, each after its handshake and one GET /health,
/// left idle: the server's RSS grows less than 64 KiB per connection
/// (rustls' buffers are released when idle; the figure is printed), and
/// every one is held (a descriptor each).
#[test]
fn thousand_idle_tls_connections_have_bounded_memory() {
    if !available("python3", "the Python ssl checks") {
        return;
    }
    const CONNECTIONS: u64 = 1000;
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let server = serve(&pki, "http", "edge", &[]);
    let fds_before = server.fd_count();
    // Warm up: the allocator's and the first connections' one-time costs.
    let warm = PythonClient::start(&pki, server.addr, "idle", &["20", "/health"]);
    assert_eq!(warm.line(Duration::ZERO), "open 20");
    warm.finish();
    assert!(
        util::wait_until(PROMPTLY, || server.fd_count() <= fds_before),
        "warm-up connections not closed"
    );
    let rss_before = server.rss_bytes();

    let count = CONNECTIONS.to_string();
    let idle = PythonClient::start(&pki, server.addr, "idle", &[&count, "/health"]);
    // A thousand handshakes in Python and a debug build: seconds.
    assert_eq!(idle.line(Duration::from_secs(30)), format!("open {count}"));
    let held = server.fd_count() - fds_before;
    let rss_after = server.rss_bytes();
    let per_connection = rss_after.saturating_sub(rss_before) / CONNECTIONS;
    eprintln!(
        "{CONNECTIONS} idle TLS connections: RSS {rss_before} -> {rss_after}, {per_connection} bytes each"
    );
    assert_eq!(held as u64, CONNECTIONS, "connections held by the server");
    assert!(
        per_connection < 64 * 1024,
        "{per_connection} bytes of RSS per idle TLS connection"
    );
    idle.finish();
}
