//! `tenk load` over TLS, through the library, against the real echo, chat
//! and HTTP servers of `crates/server` on a reactor with the TLS
//! transport (each in every trigger mode): verified replies, the
//! handshakes timed apart from the requests, a new connection per request
//! that resumes, and failed handshakes reported with what to do.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use http::route_stats::RouteStats;
use http::{HttpConfig, HttpServer};
use load::{LoadSpec, Report, Stop, TlsClient, Workload};
use reactor::{Config, Exit, Handler, Reactor, Trigger, Waker};
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use server::chat::{Chat, ChatConfig};
use server::echo::Echo;
use tls::{TlsAcceptor, TlsCounts, TlsStats};

const TRIGGERS: [Trigger; 3] = [Trigger::Edge, Trigger::Level, Trigger::OneShot];

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A self-signed certificate for 127.0.0.1 (`tls::test_pki`): the
/// server's config, and the certificate for a client to trust.
fn server_config() -> (Arc<ServerConfig>, CertificateDer<'static>) {
    let pki = tls::test_pki::loopback();
    (pki.server, pki.cert)
}

/// TLS to 127.0.0.1, trusting `cert` only.
fn client(cert: CertificateDer<'static>) -> TlsClient {
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsClient::new(Arc::new(config), "127.0.0.1").unwrap()
}

/// A server on its own reactor thread, stopped by its waker.
struct Server {
    addr: SocketAddr,
    waker: Waker,
    thread: JoinHandle<()>,
    tls: Arc<TlsStats>,
}

impl Server {
    /// `make` builds the handler on the reactor's thread; with `tls`, the
    /// server speaks TLS.
    fn start<H: Handler + 'static>(
        trigger: Trigger,
        tls: Option<Arc<ServerConfig>>,
        max_input: Option<usize>,
        make: impl FnOnce() -> H + Send + 'static,
    ) -> Server {
        let acceptor = tls.map(|config| TlsAcceptor::new(config).unwrap());
        let stats = acceptor
            .as_ref()
            .map_or_else(Arc::default, |a| a.stats().clone());
        let mut config = Config {
            trigger,
            ..Config::default()
        };
        if let Some(acceptor) = acceptor {
            config.transport = Some(Arc::new(acceptor));
        }
        if let Some(max_input) = max_input {
            config.max_input = max_input;
        }
        let (ready, started) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut reactor = Reactor::new(config, make()).unwrap();
            let io = reactor.io();
            let listener = io.listen("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
            ready
                .send((io.local_addr(listener).unwrap(), io.waker()))
                .unwrap();
            let exit = reactor
                .run_until(Instant::now() + Duration::from_secs(60))
                .unwrap();
            assert_eq!(exit, Exit::Stopped, "the watchdog ended the run");
        });
        let (addr, waker) = started.recv().unwrap();
        Server {
            addr,
            waker,
            thread,
            tls: stats,
        }
    }

    fn echo(trigger: Trigger, tls: Option<Arc<ServerConfig>>) -> Server {
        Server::start(trigger, tls, None, || Echo)
    }

    /// The app `tenk serve http` runs.
    fn http(trigger: Trigger, tls: Arc<ServerConfig>) -> Server {
        Server::start(trigger, Some(tls), None, || {
            let app = server::hello::app(None, None, Arc::new(RouteStats::new()), None);
            HttpServer::new(app, HttpConfig::default())
        })
    }

    fn chat(trigger: Trigger, tls: Arc<ServerConfig>) -> Server {
        let config = ChatConfig::default();
        let max_input = config.reactor_max_input();
        Server::start(trigger, Some(tls), Some(max_input), || Chat::new(config))
    }

    fn stop(self) -> TlsCounts {
        self.waker.stop().unwrap();
        self.thread.join().unwrap();
        self.tls.counts()
    }
}

fn spec(target: SocketAddr, workload: Workload, tls: Option<TlsClient>) -> LoadSpec {
    LoadSpec {
        target,
        spread: Vec::new(),
        label: format!("test {target}"),
        workload,
        connections: 4,
        stop: Stop::Requests(400),
        threads: 2,
        pipeline: 2,
        warmup: Duration::ZERO,
        connect_rate: None,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        rate: None,
        sources: Vec::new(),
        progress: false,
        tls,
        new_conn_per_request: false,
    }
}

fn run(spec: LoadSpec) -> Report {
    spec.validate().unwrap();
    load::run(spec, None, |_| {}).unwrap()
}

fn http_get(target: SocketAddr) -> Workload {
    Workload::Http {
        request: http::client::build_request("GET", &target.to_string(), "/", &[], b""),
        method: "GET".into(),
    }
}

/// Every handshake of a run that had no failure: one per connect, timed.
fn assert_handshakes(report: &Report, what: &str) {
    let tls = report
        .tls
        .as_ref()
        .expect("a TLS run reports its handshakes");
    assert_eq!(tls.handshakes, report.connects, "{what}: one per connect");
    assert_eq!(tls.full + tls.resumed, tls.handshakes, "{what}: {tls:?}");
    assert_eq!(tls.tls13, tls.handshakes, "{what}: {tls:?}");
    assert_eq!((tls.failed, tls.timeouts), (0, 0), "{what}: {tls:?}");
    assert!(tls.error.is_none(), "{what}: {tls:?}");
    assert!(
        tls.handshake_p50_us > 0.0 && tls.handshake_max_us >= tls.handshake_p99_us,
        "{what}: {tls:?}"
    );
    let human = report.to_human();
    assert!(
        human.contains(&format!("tls          {} handshakes", tls.handshakes)),
        "{human}"
    );
    assert!(human.contains("handshake    (connect + TLS"), "{human}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["tls"]["handshakes"], tls.handshakes, "{what}");
    assert!(json["tls"]["handshake_p99_us"].as_f64().unwrap() > 0.0);
}

/// Echo over TLS, small and large messages (a reply of many records):
/// the load's own byte-for-byte check passes, with no error.
#[test]
fn echo_over_tls_is_verified() {
    for trigger in TRIGGERS {
        for size in [64, 100_000] {
            let (server_config, cert) = server_config();
            let server = Server::echo(trigger, Some(server_config));
            let report = run(spec(
                server.addr,
                Workload::Echo { size },
                Some(client(cert)),
            ));
            let what = format!("{trigger:?}, {size} B");
            assert_eq!(report.errors_total, 0, "{what}: {}", report.to_human());
            assert_eq!(report.requests, 400, "{what}");
            assert_eq!(report.connects, 4, "{what}");
            assert!(report.bytes_in >= 400 * size as u64, "{what}");
            assert_handshakes(&report, &what);
            let server_counts = server.stop();
            assert_eq!(server_counts.completed(), 4, "{what}");
        }
    }
}

/// The HTTP app over TLS: every response framed and 200.
#[test]
fn http_over_tls() {
    for trigger in TRIGGERS {
        let (server_config, cert) = server_config();
        let server = Server::http(trigger, server_config);
        let report = run(spec(server.addr, http_get(server.addr), Some(client(cert))));
        assert_eq!(report.errors_total, 0, "{trigger:?}: {}", report.to_human());
        let status = report.status.expect("an HTTP run counts statuses");
        assert_eq!((report.requests, status.success), (400, 400), "{trigger:?}");
        assert_handshakes(&report, &format!("{trigger:?}"));
        server.stop();
    }
}

/// Chat over TLS: members join once their handshake is done, and get
/// every message.
#[test]
fn chat_over_tls() {
    for trigger in TRIGGERS {
        let (server_config, cert) = server_config();
        let server = Server::chat(trigger, server_config);
        let mut spec = spec(
            server.addr,
            Workload::Chat {
                rooms: 1,
                senders: 2,
            },
            Some(client(cert)),
        );
        spec.rate = Some(1000.0);
        spec.stop = Stop::Requests(100);
        let report = run(spec);
        let chat = report.chat.expect("a chat run has chat figures");
        assert_eq!(report.errors_total, 0, "{trigger:?}: {}", report.to_human());
        assert_eq!(chat.lost, 0, "{trigger:?}");
        assert_eq!(chat.deliveries, chat.deliveries_expected, "{trigger:?}");
        assert!(chat.deliveries >= 300, "{trigger:?}: {chat:?}");
        assert_handshakes(&report, &format!("{trigger:?}"));
        server.stop();
    }
}

/// A new connection per request: one handshake per request, all timed,
/// and after the first ones (made before any session was cached) they
/// resume; connections per second are reported.
#[test]
fn a_new_connection_per_request_resumes() {
    for trigger in TRIGGERS {
        for http in [false, true] {
            let (server_config, cert) = server_config();
            let server = if http {
                Server::http(trigger, server_config)
            } else {
                Server::echo(trigger, Some(server_config))
            };
            let workload = if http {
                http_get(server.addr)
            } else {
                Workload::Echo { size: 64 }
            };
            let mut spec = spec(server.addr, workload, Some(client(cert)));
            spec.new_conn_per_request = true;
            spec.pipeline = 1;
            spec.connections = 2;
            spec.stop = Stop::Requests(60);
            let report = run(spec);
            let what = format!("{trigger:?}, http {http}");
            assert_eq!(report.errors_total, 0, "{what}: {}", report.to_human());
            assert_eq!(report.requests, 60, "{what}");
            // A connection opened as the count ran out carries none.
            assert!(
                (60..=64).contains(&report.connects),
                "{what}: {} connects",
                report.connects
            );
            assert!(report.connects_per_s > 0.0, "{what}");
            assert_handshakes(&report, &what);
            let tls = report.tls.as_ref().unwrap();
            // Only the first connection of each thread has no session to
            // resume.
            assert!(
                tls.full <= 2 && tls.resumed >= report.connects - 2,
                "{what}: {tls:?}"
            );
            let human = report.to_human();
            assert!(human.contains("/s in the window"), "{human}");
            let server_counts = server.stop();
            assert_eq!(server_counts.resumed, tls.resumed, "{what}");
        }
    }
}

/// Requests wait for the handshake, and their latency does not include
/// it: against a server that lets each handshake wait `DELAY` before it
/// answers, the handshake takes at least that, the requests far less.
#[test]
fn request_latency_excludes_the_handshake() {
    const DELAY: Duration = Duration::from_millis(400);
    let (server_config, cert) = server_config();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A blocking rustls echo server, one connection.
    let server = thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        thread::sleep(DELAY);
        let mut stream = StreamOwned::new(ServerConnection::new(server_config).unwrap(), sock);
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            stream.write_all(&buf[..n]).unwrap();
        }
    });
    let mut spec = spec(addr, Workload::Echo { size: 64 }, Some(client(cert)));
    (spec.connections, spec.threads, spec.pipeline) = (1, 1, 1);
    spec.stop = Stop::Requests(20);
    let report = run(spec);
    server.join().unwrap();
    assert_eq!(report.errors_total, 0, "{}", report.to_human());
    let tls = report.tls.as_ref().unwrap();
    assert!(tls.handshake_p50_us >= DELAY.as_micros() as f64, "{tls:?}");
    assert!(
        report.latency_us.max < DELAY.as_micros() as f64 / 4.0,
        "{:?}",
        report.latency_us
    );
}

/// A certificate the client does not trust: every connect fails, fast,
/// and the report says rustls' reason and which flag to pass.
#[test]
fn an_untrusted_certificate_fails_with_the_flag_to_use() {
    let (_, other) = server_config();
    let (config, _) = server_config();
    let server = Server::echo(Trigger::Edge, Some(config));
    let spec = spec(
        server.addr,
        Workload::Echo { size: 64 },
        Some(client(other)),
    );
    let started = Instant::now();
    let report = run(spec);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.requests, 0);
    assert_eq!(report.errors.connect_failures, 4, "{}", report.to_human());
    let tls = report.tls.as_ref().unwrap();
    assert_eq!((tls.handshakes, tls.failed), (0, 4), "{tls:?}");
    let error = tls.error.as_deref().unwrap_or_default();
    assert!(error.starts_with("invalid peer certificate"), "{error}");
    let hint = "the server's certificate is not trusted: pass --ca CA.pem (the CA that signed it), or --insecure to skip verification";
    assert_eq!(tls.hint, Some(hint));
    let human = report.to_human();
    assert!(human.contains(hint) && human.contains(error), "{human}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["tls"]["hint"], hint);
    server.stop();
}

/// A plain TCP echo server: it echoes the ClientHello, which rustls
/// refuses at once; the run ends well within the connect timeout.
#[test]
fn a_server_without_tls_fails_the_handshake_promptly() {
    let (_, cert) = server_config();
    let server = Server::echo(Trigger::Edge, None);
    let spec = spec(server.addr, Workload::Echo { size: 64 }, Some(client(cert)));
    let started = Instant::now();
    let report = run(spec);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.errors.connect_failures, 4, "{}", report.to_human());
    let tls = report.tls.as_ref().unwrap();
    assert_eq!(tls.failed, 4, "{tls:?}");
    assert!(tls.hint.is_some_and(|h| h.contains("speak TLS")), "{tls:?}");
    server.stop();
}

/// A server that accepts and never answers: each handshake is closed at
/// the connect timeout, counted as a timeout.
#[test]
fn a_silent_server_times_the_handshake_out() {
    let (_, cert) = server_config();
    // The kernel completes the connects (the backlog); nothing answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut spec = spec(
        silent.local_addr().unwrap(),
        Workload::Echo { size: 64 },
        Some(client(cert)),
    );
    let timeout = Duration::from_millis(300);
    spec.connect_timeout = timeout;
    let started = Instant::now();
    let report = run(spec);
    let took = started.elapsed();
    assert!(took >= timeout && took < timeout * 10, "{took:?}");
    assert_eq!(report.errors.timeouts, 4, "{}", report.to_human());
    assert_eq!(report.errors_total, 4);
    let tls = report.tls.as_ref().unwrap();
    assert_eq!((tls.timeouts, tls.handshakes), (4, 0), "{tls:?}");
}

/// A new connection per request over plain TCP: connections per second,
/// and no TLS figures.
#[test]
fn a_new_connection_per_request_over_plain_tcp() {
    for trigger in TRIGGERS {
        let server = Server::echo(trigger, None);
        let mut spec = spec(server.addr, Workload::Echo { size: 64 }, None);
        (spec.new_conn_per_request, spec.pipeline) = (true, 1);
        spec.stop = Stop::Requests(100);
        let report = run(spec);
        assert_eq!(report.errors_total, 0, "{trigger:?}: {}", report.to_human());
        assert_eq!(report.requests, 100, "{trigger:?}");
        assert!(report.connects >= 100, "{trigger:?}: {}", report.connects);
        assert!(report.tls.is_none());
        server.stop();
    }
}

/// A plain run has no TLS figures at all.
#[test]
fn a_plain_run_reports_no_tls() {
    let server = Server::echo(Trigger::Edge, None);
    let report = run(spec(server.addr, Workload::Echo { size: 64 }, None));
    assert_eq!(report.errors_total, 0);
    assert!(report.tls.is_none());
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(json.get("tls").is_none(), "{json}");
    assert!(!report.to_human().contains("tls"));
    server.stop();
}
