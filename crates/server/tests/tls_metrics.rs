//! The http app's `/metrics` over TLS, through the library (the binary's
//! `--tls-cert` is wired elsewhere): the app on a reactor whose
//! `Config::transport` is a `TlsAcceptor`, reached by a blocking rustls
//! client, in every trigger mode. A full handshake, a resumed one, a
//! refused one and one cut at the handshake timeout each land in their
//! own series, read by a real Prometheus text-format parser.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use http::route_stats::RouteStats;
use http::{HttpConfig, HttpServer};
use prometheus_parse::{Scrape, Value};
use reactor::{Config, Exit, Reactor, Trigger, Waker};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConfig};
use tls::TlsAcceptor;

const TRIGGERS: [Trigger; 3] = [Trigger::Edge, Trigger::Level, Trigger::OneShot];

/// Bound on socket reads and on the reactor's run.
const LIMIT: Duration = Duration::from_secs(10);

/// Short, so the stalled client is cut quickly; far above a loopback
/// handshake's milliseconds even on a busy machine.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(300);

/// A self-signed certificate for 127.0.0.1 (`tls::test_pki`), as the
/// server's config and a client config trusting it; one client config per
/// test, so its session cache serves resumption.
fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let pki = tls::test_pki::loopback();
    (pki.server, pki.client)
}

/// The http app on its own reactor thread, serving TLS.
struct Running {
    addr: SocketAddr,
    waker: Waker,
    thread: JoinHandle<()>,
}

impl Running {
    fn start(trigger: Trigger, tls: Arc<ServerConfig>) -> Running {
        let config = Config {
            trigger,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            transport: Some(Arc::new(TlsAcceptor::new(tls).unwrap())),
            ..Config::default()
        };
        // A reactor is not Send: it is built on its own thread.
        let (ready, started) = mpsc::channel();
        let thread = thread::spawn(move || {
            let app = server::hello::app(None, None, Arc::new(RouteStats::new()), None);
            let handler = HttpServer::new(app, HttpConfig::default());
            let mut reactor = Reactor::new(config, handler).unwrap();
            let io = reactor.io();
            let listener = io.listen("127.0.0.1:0".parse().unwrap(), 128).unwrap();
            ready
                .send((io.local_addr(listener).unwrap(), io.waker()))
                .unwrap();
            let exit = reactor.run_until(Instant::now() + LIMIT * 3).unwrap();
            assert_eq!(exit, Exit::Stopped, "the watchdog ended the run");
        });
        let (addr, waker) = started.recv().unwrap();
        Running {
            addr,
            waker,
            thread,
        }
    }

    fn stop(self) {
        self.waker.stop().unwrap();
        self.thread.join().unwrap();
    }
}

/// `GET path` over a new TLS connection with `Connection: close`: the
/// whole answer (ended by the server's close_notify) and how the
/// handshake went.
fn get(addr: SocketAddr, client: &Arc<ClientConfig>, path: &str) -> (String, HandshakeKind) {
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = ClientConnection::new(client.clone(), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, sock);
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("the answer, ended by close_notify");
    let kind = stream.conn.handshake_kind().expect("handshake done");
    (String::from_utf8(answer).unwrap(), kind)
}

/// Connects without TLS, sends `bytes` (perhaps none) and waits for the
/// server to close: returns how long that took.
fn closed_after(addr: SocketAddr, bytes: &[u8]) -> Duration {
    let started = Instant::now();
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(LIMIT)).unwrap();
    raw.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    // An alert then EOF, or a reset: either way closed, never a hang
    // (a read timeout would be `WouldBlock`).
    if let Err(e) = raw.read_to_end(&mut answer) {
        assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "not closed");
    }
    started.elapsed()
}

fn value(scrape: &Scrape, name: &str, label: (&str, &str)) -> f64 {
    let (key, want) = label;
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get(key) == Some(want))
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{name}: unexpected {other:?}"),
    }
}

#[test]
fn metrics_over_tls_count_full_resumed_failed_and_timed_out_handshakes() {
    for trigger in TRIGGERS {
        let (server_config, client_config) = configs();
        let server = Running::start(trigger, server_config);

        let (hello, kind) = get(server.addr, &client_config, "/");
        assert!(hello.starts_with("HTTP/1.1 200"), "{trigger:?}: {hello}");
        assert_eq!(kind, HandshakeKind::Full, "{trigger:?}");
        assert!(
            closed_after(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") < LIMIT / 5,
            "{trigger:?}: plaintext HTTP not refused promptly"
        );
        let stalled = closed_after(server.addr, b"");
        assert!(
            stalled >= HANDSHAKE_TIMEOUT && stalled < LIMIT,
            "{trigger:?}: silent client closed after {stalled:?}"
        );

        // The second TLS connection resumes the first's session, and its
        // scrape already counts its own handshake.
        let (answer, kind) = get(server.addr, &client_config, "/metrics");
        assert_eq!(kind, HandshakeKind::Resumed, "{trigger:?}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{trigger:?}: {head}");
        let lines = body.lines().map(|l| Ok(l.to_string()));
        let scrape = Scrape::parse(lines).expect("valid Prometheus text format");
        let expect = [
            ("tenk_tls_handshakes_total", ("kind", "full"), 1.0),
            ("tenk_tls_handshakes_total", ("kind", "resumed"), 1.0),
            (
                "tenk_tls_handshake_failures_total",
                ("reason", "error"),
                1.0,
            ),
            (
                "tenk_tls_handshake_failures_total",
                ("reason", "timeout"),
                1.0,
            ),
            // rustls' default client and server agree on TLS 1.3.
            (
                "tenk_tls_handshakes_by_version_total",
                ("version", "1.3"),
                2.0,
            ),
            (
                "tenk_tls_handshakes_by_version_total",
                ("version", "1.2"),
                0.0,
            ),
            (
                "tenk_connections_closed_total",
                ("cause", "handshake_failed"),
                1.0,
            ),
            (
                "tenk_connections_closed_total",
                ("cause", "handshake_timeout"),
                1.0,
            ),
        ];
        for (name, label, want) in expect {
            assert_eq!(
                value(&scrape, name, label),
                want,
                "{trigger:?}: {name} {label:?} in\n{body}"
            );
        }
        server.stop();
    }
}
