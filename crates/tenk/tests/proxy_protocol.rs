//! `--proxy-protocol` end to end: the real binary behind a client that
//! sends PROXY protocol headers itself (v1 and v2, every kind), and behind
//! a real HAProxy (`send-proxy-v2`).
//!
//! What is proven: echo, chat and HTTP serve the bytes after a header
//! (sent with them, or split from them), and a 1 MiB echo after it, in
//! every trigger mode; the access log shows the address the header named
//! (the socket's for LOCAL and UNKNOWN); TLS follows the header on the same
//! connection; a connection that does not start with a header is closed
//! without a byte sent (not chat's greeting, not a TLS alert) and counted;
//! one that sends nothing, or half a header, is closed at the deadline
//! (`--proxy-protocol-timeout`, or with TLS the handshake timeout);
//! HAProxy's client address, not HAProxy's own, reaches the log, and its
//! LOCAL health checks are accepted. Socket-heavy: `--test-threads=1`.

#[macro_use]
mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use util::certs::{KeyFormat, TestPki};
use util::flood::Flooder;
use util::haproxy::{free_port, start_haproxy};
use util::http_client::{get, Client};
use util::{connect, read_to_eof, wait_until, Server, PROMPTLY};

every_trigger!([edge, level, oneshot] => [
    echo_serves_the_bytes_after_every_kind_of_header,
    chat_greets_only_after_the_header,
    http_access_log_shows_the_address_the_header_names,
    no_header_is_closed_without_a_byte_and_counted,
    a_silent_client_is_closed_at_the_deadline,
    tls_follows_the_header,
    with_tls_one_deadline_covers_header_and_handshake,
]);

const MIB: usize = 1024 * 1024;
const HELLO: &[u8] = b"Hello, World!";

fn start(server: &str, trigger: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "serve",
        server,
        "--port",
        "0",
        "--trigger",
        trigger,
        "--proxy-protocol",
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&args, |_| {});
    assert!(
        server.banner.contains("proxy protocol"),
        "{}",
        server.banner
    );
    server
}

/// `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n`.
fn v1(src: SocketAddr) -> Vec<u8> {
    let (family, dst) = match src {
        SocketAddr::V4(_) => ("TCP4", "192.0.2.200"),
        SocketAddr::V6(_) => ("TCP6", "2001:db8::200"),
    };
    format!("PROXY {family} {} {dst} {} 443\r\n", src.ip(), src.port()).into_bytes()
}

/// A v2 header: PROXY from `src` over TCP, or LOCAL for `None`; with a
/// TLV after the addresses, as HAProxy may send.
fn v2(src: Option<SocketAddr>) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    let mut block = Vec::new();
    match src {
        None => h.extend_from_slice(&[0x20, 0x00]),
        Some(SocketAddr::V4(a)) => {
            h.extend_from_slice(&[0x21, 0x11]);
            block.extend_from_slice(&a.ip().octets());
            block.extend_from_slice(&[192, 0, 2, 200]);
            block.extend_from_slice(&a.port().to_be_bytes());
            block.extend_from_slice(&443u16.to_be_bytes());
        }
        Some(SocketAddr::V6(a)) => {
            h.extend_from_slice(&[0x21, 0x21]);
            block.extend_from_slice(&a.ip().octets());
            block.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
            block.extend_from_slice(&a.port().to_be_bytes());
            block.extend_from_slice(&443u16.to_be_bytes());
        }
    }
    if src.is_some() {
        block.extend_from_slice(&[0x05, 0x00, 0x04]); // UNIQUE_ID
        block.extend_from_slice(b"id-1");
    }
    h.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    h.extend_from_slice(&block);
    h
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Every kind of header, and the address the access log should show.
fn headers() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        ("v1 TCP4", v1(addr("192.0.2.7:5000")), "192.0.2.7"),
        ("v1 TCP6", v1(addr("[2001:db8::7]:5000")), "2001:db8::7"),
        ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n".to_vec(), "127.0.0.1"),
        (
            "v2 TCP4",
            v2(Some(addr("198.51.100.9:6000"))),
            "198.51.100.9",
        ),
        (
            "v2 TCP6",
            v2(Some(addr("[2001:db8::9]:6000"))),
            "2001:db8::9",
        ),
        ("v2 LOCAL", v2(None), "127.0.0.1"),
    ]
}

/// Shuts the server down (SIGINT) and returns every line it printed after
/// the banner that was not read yet.
fn shut_down(server: &mut Server) -> Vec<String> {
    server.signal(libc::SIGINT);
    assert!(server.wait_exit(PROMPTLY).success(), "exit status");
    std::iter::from_fn(|| server.next_line(PROMPTLY)).collect()
}

/// The `tenk NAME proxy protocol: ...` line of the summary.
fn proxy_line(lines: &[String]) -> &str {
    lines
        .iter()
        .find(|l| l.contains(" proxy protocol: "))
        .unwrap_or_else(|| panic!("no proxy protocol line in {lines:#?}"))
}

fn echo_serves_the_bytes_after_every_kind_of_header(trigger: &str) {
    let mut server = start("echo", trigger, &[]);
    for (name, header, _) in headers() {
        // The header and the first bytes in one segment.
        let mut s = connect(server.addr);
        s.write_all(&[&header[..], b"hello"].concat()).unwrap();
        let mut back = [0; 5];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello", "{trigger} {name}");
        // The header in two writes, then a stream that fills every buffer.
        let mut s = connect(server.addr);
        let half = header.len() / 2;
        s.write_all(&header[..half]).unwrap();
        s.flush().unwrap();
        s.write_all(&header[half..]).unwrap();
        let mut flood = Flooder::on(s, MIB);
        flood.read_all_echo(&format!("{trigger} {name}"));
    }
    let lines = shut_down(&mut server);
    assert_eq!(
        proxy_line(&lines),
        "tenk echo proxy protocol: 12 headers (client 8, socket 4), 0 refused, 0 timed out"
    );
}

fn chat_greets_only_after_the_header(trigger: &str) {
    let mut server = start("chat", trigger, &[]);
    // Chat queues its greeting at accept: it waits for the header, and a
    // connection that sends none never gets it.
    let mut refused = connect(server.addr);
    refused.write_all(b"/nick mallory\n").unwrap();
    assert_eq!(read_to_eof("no header", &mut refused), b"", "{trigger}");
    for (name, header, _) in headers() {
        let s = connect(server.addr);
        (&s).write_all(&header).unwrap();
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("* welcome to tenk chat, guest"),
            "{trigger} {name}: {line:?}"
        );
    }
    let lines = shut_down(&mut server);
    assert_eq!(
        proxy_line(&lines),
        "tenk chat proxy protocol: 6 headers (client 4, socket 2), 1 refused, 0 timed out"
    );
}

fn http_access_log_shows_the_address_the_header_names(trigger: &str) {
    let server = start("http", trigger, &["--access-log"]);
    for (name, header, shown) in headers() {
        let mut client = Client::connect(server.addr);
        client.send(&header);
        client.get("/").expect(200, HELLO);
        assert_eq!(
            server.next_line(PROMPTLY).as_deref(),
            Some(format!("{shown} \"GET / HTTP/1.1\" 200 13").as_str()),
            "{trigger} {name}"
        );
    }
    // The figures in /metrics.
    let mut client = Client::connect(server.addr);
    client.send(&v1(addr("192.0.2.1:1")));
    let metrics = client.get("/metrics").text();
    for series in [
        "tenk_proxy_protocol_headers_total{source=\"client\"} 5\n",
        "tenk_proxy_protocol_headers_total{source=\"socket\"} 2\n",
        "tenk_proxy_protocol_refused_total 0\n",
    ] {
        assert!(
            metrics.contains(series),
            "{trigger}: no {series:?} in {metrics}"
        );
    }
}

fn no_header_is_closed_without_a_byte_and_counted(trigger: &str) {
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let tls = tls_args(&pki);
    let garbage: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: tenk\r\n\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 99999\r\nhello",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\nhello",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x04abcd",
    ];
    for (server, extra) in [
        ("echo", &[][..]),
        ("http", &[]),
        ("chat", &[]),
        ("echo", &tls),
    ] {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let mut running = start(server, trigger, &extra);
        for bytes in garbage {
            let mut s = connect(running.addr);
            s.write_all(bytes).unwrap();
            let got = read_to_eof(server, &mut s);
            assert_eq!(got, b"", "{trigger} {server}: {bytes:?}");
        }
        if !extra.is_empty() {
            // A TLS client that skips the header gets no alert either.
            let mut s = connect(running.addr);
            let mut conn = ClientConnection::new(client_config(&pki), server_name()).unwrap();
            let mut hello = Vec::new();
            conn.write_tls(&mut hello).unwrap();
            s.write_all(&hello).unwrap();
            assert_eq!(
                read_to_eof("tls", &mut s),
                b"",
                "{trigger}: an alert was sent"
            );
        }
        let lines = shut_down(&mut running);
        let refused = 4 + usize::from(!extra.is_empty());
        assert!(
            proxy_line(&lines).ends_with(&format!("(client 0, socket 0), {refused} refused"))
                || proxy_line(&lines).ends_with(&format!(
                    "(client 0, socket 0), {refused} refused, 0 timed out"
                )),
            "{trigger} {server}: {lines:#?}"
        );
    }
}

/// Waits for EOF on `s` and checks it came at `deadline` after `started`
/// (when it connected), with nothing before it.
fn closed_at_deadline(what: &str, s: &mut TcpStream, started: Instant, deadline: Duration) {
    let got = read_to_eof(what, s);
    let took = started.elapsed();
    assert_eq!(got, b"", "{what}: bytes before EOF");
    // The upper bound is ten times the deadline, and below the defaults
    // (5 s, 10 s with TLS): a deadline not applied fails it.
    assert!(
        took >= deadline && took < deadline * 10,
        "{what}: closed after {took:?}, the deadline is {deadline:?}"
    );
}

fn a_silent_client_is_closed_at_the_deadline(trigger: &str) {
    let deadline = Duration::from_millis(400);
    let mut server = start("echo", trigger, &["--proxy-protocol-timeout", "400ms"]);
    let started = Instant::now();
    let mut silent = connect(server.addr);
    let mut half = connect(server.addr);
    half.write_all(&v1(addr("192.0.2.7:5000"))[..20]).unwrap();
    // One that sends its header in time is served past the deadline.
    let mut served = connect(server.addr);
    served.write_all(&v2(None)).unwrap();
    for (what, s) in [("silent", &mut silent), ("half a header", &mut half)] {
        closed_at_deadline(&format!("{trigger} {what}"), s, started, deadline);
    }
    served.write_all(b"still here").unwrap();
    let mut back = [0; 10];
    served.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still here");
    drop(served);
    let lines = shut_down(&mut server);
    assert_eq!(
        proxy_line(&lines),
        "tenk echo proxy protocol: 1 headers (client 0, socket 1), 0 refused, 2 timed out"
    );
}

fn tls_args(pki: &TestPki) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        pki.cert.display().to_string(),
        "--tls-key".into(),
        pki.key.display().to_string(),
    ]
}

fn client_config(pki: &TestPki) -> Arc<ClientConfig> {
    tls::client_config(Some(&pki.ca), false, &[]).unwrap()
}

fn server_name() -> rustls::pki_types::ServerName<'static> {
    tls::server_name("127.0.0.1").unwrap()
}

/// Sends `header` then a TLS handshake on one connection; with `together`,
/// the ClientHello goes in the same write as the header.
fn tls_after(
    pki: &TestPki,
    addr: SocketAddr,
    header: &[u8],
    together: bool,
) -> StreamOwned<ClientConnection, TcpStream> {
    let mut s = connect(addr);
    let mut conn = ClientConnection::new(client_config(pki), server_name()).unwrap();
    let mut first = header.to_vec();
    if together {
        conn.write_tls(&mut first).unwrap();
    }
    s.write_all(&first).unwrap();
    StreamOwned::new(conn, s)
}

fn tls_follows_the_header(trigger: &str) {
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let tls = tls_args(&pki);
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let mut echo = start("echo", trigger, &tls);
    assert!(
        echo.banner.contains("proxy protocol, tls"),
        "{}",
        echo.banner
    );
    for (name, header, _) in headers() {
        for together in [false, true] {
            let mut stream = tls_after(&pki, echo.addr, &header, together);
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            stream.write_all(&data).unwrap();
            let mut back = vec![0; data.len()];
            stream.read_exact(&mut back).unwrap();
            assert!(back == data, "{trigger} {name} together {together}");
        }
    }
    let lines = shut_down(&mut echo);
    // Timeouts are on the TLS line, which counts both.
    assert_eq!(
        proxy_line(&lines),
        "tenk echo proxy protocol: 12 headers (client 8, socket 4), 0 refused"
    );
    let tls_line = lines.iter().find(|l| l.contains(" tls: ")).unwrap();
    assert!(tls_line.contains(": 12 handshakes"), "{tls_line}");

    // The access log over TLS.
    let mut args = tls.clone();
    args.push("--access-log");
    let http = start("http", trigger, &args);
    let mut stream = tls_after(&pki, http.addr, &v2(Some(addr("[2001:db8::5]:1"))), true);
    stream.write_all(&get("/")).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK\r\n", "{trigger}");
    assert_eq!(
        http.next_line(PROMPTLY).as_deref(),
        Some("2001:db8::5 \"GET / HTTP/1.1\" 200 13"),
        "{trigger}"
    );
}

fn with_tls_one_deadline_covers_header_and_handshake(trigger: &str) {
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let mut args = tls_args(&pki);
    args.extend(["--tls-handshake-timeout".to_string(), "400ms".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let deadline = Duration::from_millis(400);
    let mut server = start("echo", trigger, &args);
    let started = Instant::now();
    let mut silent = connect(server.addr);
    // A header, then no handshake.
    let mut header_only = connect(server.addr);
    header_only.write_all(&v1(addr("192.0.2.7:5000"))).unwrap();
    for (what, s) in [("silent", &mut silent), ("header only", &mut header_only)] {
        closed_at_deadline(&format!("{trigger} {what}"), s, started, deadline);
    }
    let lines = shut_down(&mut server);
    let tls_line = lines.iter().find(|l| l.contains(" tls: ")).unwrap();
    assert!(tls_line.contains("2 timed out"), "{trigger}: {tls_line}");
}

// ---- HAProxy in front ---------------------------------------------------------

/// HAProxy (mode http, `send-proxy-v2`, LOCAL health checks) in front of
/// `tenk serve http --proxy-protocol`: a client connecting to HAProxy from
/// 127.0.0.2 shows in tenk's access log as 127.0.0.2, not as HAProxy's
/// 127.0.0.1, and HAProxy's health checks (a v2 LOCAL header, then GET
/// /health) keep HAProxy's address.
#[test]
fn haproxy_send_proxy_v2_in_front() {
    let tenk = start("http", "edge", &["--access-log"]);
    let port = free_port();
    let _haproxy = start_haproxy(&format!(
        "global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    option httpchk GET /health
    server tenk {} send-proxy-v2 check inter 100ms check-send-proxy
",
        tenk.addr
    ));
    let front = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    assert!(
        wait_until(PROMPTLY, || TcpStream::connect(front).is_ok()),
        "haproxy did not listen on {front}"
    );
    // A health check reached tenk: HAProxy's LOCAL header was accepted.
    let mut log = Vec::new();
    let checked = wait_until(PROMPTLY, || {
        if let Some(line) = tenk.next_line(Duration::from_millis(100)) {
            log.push(line);
        }
        log.iter().any(|l| l.contains("GET /health"))
    });
    assert!(checked, "no health check in {log:#?}");
    assert!(
        log.iter()
            .all(|l| l.starts_with("127.0.0.1 \"GET /health HTTP/1.")),
        "{log:#?}"
    );

    // A client on 127.0.0.2: bind before connecting.
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 0);
    rustix::net::bind(&socket, &source).unwrap();
    rustix::net::connect(&socket, &front).unwrap();
    let stream = TcpStream::from(socket);
    util::set_timeouts(&stream, PROMPTLY);
    let mut client = Client {
        reader: BufReader::new(stream.try_clone().unwrap()),
        writer: stream,
    };
    client.get("/").expect(200, HELLO);
    let line = wait_for_line(&tenk, |l| l.contains("\"GET / HTTP"));
    assert_eq!(line, "127.0.0.2 \"GET / HTTP/1.1\" 200 13");
    // HAProxy's checks came with LOCAL headers (they keep the socket's
    // address), its forwarded request with the client's.
    let mut direct = Client::connect(tenk.addr);
    direct.send(&v1(addr("192.0.2.1:1")));
    let metrics = direct.get("/metrics").text();
    let count = |source: &str| -> u64 {
        let series = format!("tenk_proxy_protocol_headers_total{{source=\"{source}\"}} ");
        let line = metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()));
        line.unwrap_or_else(|| panic!("no {series} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(count("socket") >= 1, "{metrics}");
    // The client through HAProxy and this scrape.
    assert_eq!(count("client"), 2, "{metrics}");
}

/// The next line of `server`'s output that `wanted` accepts (skipping
/// health checks).
fn wait_for_line(server: &Server, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PROMPTLY;
    while Instant::now() < deadline {
        match server.next_line(PROMPTLY) {
            Some(line) if wanted(&line) => return line,
            Some(_) => continue,
            None => break,
        }
    }
    panic!("no such line within {PROMPTLY:?}");
}
