//! A transport that is only a preamble (as the PROXY protocol is): it
//! reads one line naming the client, hands the bytes after it on as
//! plaintext, and is then spent, so the connection goes on plain. Checks
//! the client address the reactor keeps, that bytes in the same read as
//! the preamble are delivered, and that what follows flows without the
//! transport, in every trigger mode.

mod util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;

use reactor::TransportFactory;
use reactor::{Config, Exit, Handler, Io, Received, Token, Transport, TransportError};
use util::{any_port, reactor_with, run, TRIGGERS};

/// `FROM <addr>\n`, then plain bytes.
#[derive(Default)]
struct Preamble {
    line: Vec<u8>,
    from: Option<SocketAddr>,
}

impl Transport for Preamble {
    fn receive(&mut self, wire: &[u8], plain: &mut Vec<u8>) -> Result<Received, TransportError> {
        if self.from.is_some() {
            // Never reached: a spent layer is dropped by the reactor.
            return Err(TransportError("used after it was spent".into()));
        }
        let Some(end) = wire.iter().position(|&b| b == b'\n') else {
            self.line.extend_from_slice(wire);
            return Ok(Received::default());
        };
        self.line.extend_from_slice(&wire[..end]);
        let text = String::from_utf8_lossy(&self.line);
        let addr = text
            .strip_prefix("FROM ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| TransportError(format!("bad preamble {text:?}")))?;
        self.from = Some(addr);
        plain.extend_from_slice(&wire[end + 1..]);
        Ok(Received {
            established: true,
            peer_closed: false,
        })
    }
    fn is_established(&self) -> bool {
        self.from.is_some()
    }
    fn seal(&mut self, _data: &[u8]) -> usize {
        0
    }
    fn wants_write(&self) -> bool {
        false
    }
    fn write_wire(&mut self, _socket: &mut dyn io::Write) -> io::Result<usize> {
        Ok(0)
    }
    fn close(&mut self) {}
    fn client_addr(&self) -> Option<SocketAddr> {
        self.from
    }
    fn is_spent(&self) -> bool {
        self.from.is_some()
    }
}

#[derive(Debug)]
struct Preambles;

impl TransportFactory for Preambles {
    fn new_transport(&self) -> Box<dyn Transport> {
        Box::<Preamble>::default()
    }
}

/// Echoes; `quit` stops the reactor. Records the client address.
#[derive(Default)]
struct Echo {
    clients: Vec<SocketAddr>,
}

impl Handler for Echo {
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        self.clients.push(io.client_addr(conn).unwrap());
        if data.ends_with(b"quit\n") {
            io.stop();
        }
        io.send(conn, data);
        data.len()
    }
}

#[test]
fn a_spent_preamble_leaves_a_plain_connection_with_the_client_address() {
    for trigger in TRIGGERS {
        let config = Config {
            trigger,
            transport: Some(Arc::new(Preambles)),
            ..Config::default()
        };
        let mut r = reactor_with(config, Echo::default());
        let listener = r.io().listen(any_port(), 16).unwrap();
        let addr = r.io().local_addr(listener).unwrap();
        let client = thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            // The preamble and the first bytes in one segment.
            s.write_all(b"FROM 192.0.2.7:4242\nhello\n").unwrap();
            let mut back = [0u8; 6];
            s.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"hello\n");
            s.write_all(b"quit\n").unwrap();
            let mut back = [0u8; 5];
            s.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"quit\n");
        });
        assert_eq!(run(&mut r), Exit::Stopped, "{trigger:?}");
        client.join().unwrap();
        let want: SocketAddr = "192.0.2.7:4242".parse().unwrap();
        assert_eq!(r.handler().clients, vec![want, want], "{trigger:?}");
        assert_eq!(r.io().stats().handshakes, 1, "{trigger:?}");
    }
}

/// A listener from `Io::listen_plain` serves plain TCP beside one whose
/// connections start with the preamble: the same bytes that the preamble
/// listener refuses (no `FROM` line) are echoed on the plain one, whose
/// connection keeps its socket's address and counts no handshake.
#[test]
fn a_plain_listener_skips_the_configured_transport() {
    for trigger in TRIGGERS {
        let config = Config {
            trigger,
            transport: Some(Arc::new(Preambles)),
            ..Config::default()
        };
        let mut r = reactor_with(config, Echo::default());
        let guarded = r.io().listen(any_port(), 16).unwrap();
        let plain = r.io().listen_plain(any_port(), 16).unwrap();
        let guarded = r.io().local_addr(guarded).unwrap();
        let plain = r.io().local_addr(plain).unwrap();
        let client = thread::spawn(move || {
            // No preamble: refused, closed without an echo.
            let mut s = TcpStream::connect(guarded).unwrap();
            s.write_all(b"hello\n").unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            assert!(rest.is_empty(), "the guarded listener echoed {rest:?}");
            let mut s = TcpStream::connect(plain).unwrap();
            s.write_all(b"hello\nquit\n").unwrap();
            let mut back = [0u8; 11];
            s.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"hello\nquit\n");
            s.local_addr().unwrap()
        });
        assert_eq!(run(&mut r), Exit::Stopped, "{trigger:?}");
        let local = client.join().unwrap();
        assert_eq!(r.handler().clients[0], local, "{trigger:?}");
        assert_eq!(r.io().stats().handshakes, 0, "{trigger:?}");
    }
}
