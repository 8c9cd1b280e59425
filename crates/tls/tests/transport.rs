//! The TLS transport on a real reactor, in every trigger mode, against a
//! blocking rustls client: byte-exact echo through backpressure, a clean
//! close_notify, resumption, and hostile peers (garbage, a stalled
//! handshake).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use reactor::{Config, Exit, Handler, Io, Reactor, Stats, Token, Trigger, Waker};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConfig, StreamOwned};
use tls::{TlsAcceptor, TlsStats};

// The crate's own helper, compiled in here (its `test-pki` feature is
// for other crates' tests).
#[path = "../src/test_pki.rs"]
#[allow(dead_code)]
mod test_pki;

const TRIGGERS: [Trigger; 3] = [Trigger::Edge, Trigger::Level, Trigger::OneShot];

/// Echoes every byte; `bye\n` closes gracefully once flushed.
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        if data.ends_with(b"bye\n") {
            io.send(conn, data);
            io.close_when_flushed(conn);
        } else {
            io.send(conn, data);
        }
        data.len()
    }
}

/// A self-signed certificate for 127.0.0.1 (`tls::test_pki`), as the
/// server's config and a client config trusting it; one client config per
/// test, so its session cache serves resumption.
fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let pki = test_pki::loopback();
    (pki.server, pki.client)
}

struct Server {
    addr: SocketAddr,
    waker: Waker,
    thread: JoinHandle<Stats>,
    tls: Arc<TlsStats>,
}

impl Server {
    fn start(trigger: Trigger, server: Arc<ServerConfig>, handshake_timeout: Duration) -> Server {
        let acceptor = TlsAcceptor::new(server).unwrap();
        let tls = acceptor.stats().clone();
        let config = Config {
            trigger,
            handshake_timeout,
            transport: Some(Arc::new(acceptor)),
            ..Config::default()
        };
        // A reactor is not Send: it is built on its own thread.
        let (ready, started) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut reactor = Reactor::new(config, Echo).unwrap();
            let io = reactor.io();
            let listener = io.listen("127.0.0.1:0".parse().unwrap(), 128).unwrap();
            ready
                .send((io.local_addr(listener).unwrap(), io.waker()))
                .unwrap();
            let exit = reactor
                .run_until(Instant::now() + Duration::from_secs(30))
                .unwrap();
            assert_eq!(exit, Exit::Stopped, "the watchdog ended the run");
            reactor.io().stats()
        });
        let (addr, waker) = started.recv().unwrap();
        Server {
            addr,
            waker,
            thread,
            tls,
        }
    }

    fn stop(self) -> Stats {
        self.waker.stop().unwrap();
        self.thread.join().unwrap()
    }
}

fn client(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> StreamOwned<ClientConnection, TcpStream> {
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = ClientConnection::new(config.clone(), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    StreamOwned::new(conn, sock)
}

/// 8 MiB in 64 KiB rounds, each read back whole before the next, through
/// the server's backpressure; then `bye`, and the server's close_notify
/// ends the stream cleanly (rustls reports a truncation as an error).
#[test]
fn echo_8_mib_byte_exact_and_close_notify() {
    for trigger in TRIGGERS {
        let (server_config, client_config) = configs();
        let server = Server::start(trigger, server_config, Duration::from_secs(10));
        let mut stream = client(server.addr, &client_config);
        let mut sent = Vec::new();
        let mut back = vec![0u8; 64 * 1024];
        for round in 0..128u32 {
            let chunk: Vec<u8> = (0..64 * 1024u32)
                .map(|i| (i.wrapping_mul(31) ^ round) as u8)
                .collect();
            stream.write_all(&chunk).unwrap();
            stream.read_exact(&mut back).unwrap();
            assert!(back == chunk, "{trigger:?}: round {round} differs");
            sent.extend_from_slice(&chunk[..1]);
        }
        stream.write_all(b"bye\n").unwrap();
        let mut tail = Vec::new();
        stream
            .read_to_end(&mut tail)
            .unwrap_or_else(|e| panic!("{trigger:?}: no clean close_notify: {e}"));
        assert_eq!(tail, b"bye\n");
        let stats = server.stop();
        assert_eq!(stats.handshakes, 1, "{trigger:?}");
        assert!(stats.bytes_in > 8 << 20, "{trigger:?}: wire bytes counted");
    }
}

/// A second connection with the first one's session resumes it.
#[test]
fn a_second_connection_resumes() {
    for trigger in TRIGGERS {
        let (server_config, client_config) = configs();
        let server = Server::start(trigger, server_config, Duration::from_secs(10));
        for expected in [HandshakeKind::Full, HandshakeKind::Resumed] {
            let mut stream = client(server.addr, &client_config);
            // A round trip, so the TLS 1.3 tickets (sent after the
            // handshake) reach the client before it leaves.
            stream.write_all(b"ping\n").unwrap();
            let mut back = [0u8; 5];
            stream.read_exact(&mut back).unwrap();
            assert_eq!(stream.conn.handshake_kind(), Some(expected), "{trigger:?}");
        }
        let counts = server.tls.counts();
        assert_eq!((counts.full, counts.resumed), (1, 1), "{trigger:?}");
        server.stop();
    }
}

/// Bytes that are not TLS are refused at once; the server goes on serving.
#[test]
fn garbage_is_closed_promptly_and_others_are_served() {
    for trigger in TRIGGERS {
        let (server_config, client_config) = configs();
        let server = Server::start(trigger, server_config, Duration::from_secs(10));
        let mut raw = TcpStream::connect(server.addr).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let started = Instant::now();
        raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        // An alert, then EOF (or a reset): never a hang.
        let _ = raw.read_to_end(&mut answer);
        assert!(started.elapsed() < Duration::from_secs(2), "{trigger:?}");
        let mut stream = client(server.addr, &client_config);
        stream.write_all(b"still here\n").unwrap();
        let mut back = [0u8; 11];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"still here\n");
        let stats = server.stop();
        assert_eq!(stats.closes.handshake_failed, 1, "{trigger:?}");
    }
}

/// Half a ClientHello, then silence: closed at the handshake timeout.
#[test]
fn a_stalled_handshake_is_closed_at_the_timeout() {
    for trigger in TRIGGERS {
        let (server_config, _) = configs();
        let timeout = Duration::from_millis(300);
        let server = Server::start(trigger, server_config, timeout);
        let mut raw = TcpStream::connect(server.addr).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // A handshake record header announcing 512 bytes, and 20 of them.
        let mut half = vec![0x16, 0x03, 0x01, 0x02, 0x00];
        half.extend_from_slice(&[0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
        half.extend_from_slice(&[0u8; 14]);
        let started = Instant::now();
        raw.write_all(&half).unwrap();
        let mut rest = Vec::new();
        let _ = raw.read_to_end(&mut rest);
        let waited = started.elapsed();
        assert!(waited >= timeout, "{trigger:?}: closed after {waited:?}");
        assert!(
            waited < timeout * 10,
            "{trigger:?}: closed after {waited:?}"
        );
        let stats = server.stop();
        assert_eq!(stats.closes.handshake_timeout, 1, "{trigger:?}");
    }
}
