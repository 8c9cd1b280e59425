use std::sync::Mutex;

use super::*;

const V1: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
const LOCAL_V2: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";

fn client() -> Option<SocketAddr> {
    Some("192.0.2.1:56324".parse().unwrap())
}

/// An inner layer standing in for TLS: takes every byte it is given,
/// answers each receive with a reply byte to write, and is established
/// once it has seen `hello`.
#[derive(Debug, Default)]
struct Inner {
    got: Arc<Mutex<Vec<u8>>>,
    reply: usize,
    closed: bool,
}

impl Transport for Inner {
    fn receive(&mut self, wire: &[u8], plain: &mut Vec<u8>) -> Result<Received, TransportError> {
        let mut got = self.got.lock().unwrap();
        let was = got.ends_with(b"hello");
        got.extend_from_slice(wire);
        if wire.starts_with(b"bad") {
            self.reply += 1; // the alert
            return Err(TransportError("bad record".into()));
        }
        self.reply += 1;
        if was {
            plain.extend_from_slice(wire);
        }
        Ok(Received {
            established: !was && got.ends_with(b"hello"),
            peer_closed: false,
        })
    }
    fn is_established(&self) -> bool {
        self.got.lock().unwrap().starts_with(b"hello")
    }
    fn seal(&mut self, data: &[u8]) -> usize {
        data.len()
    }
    fn wants_write(&self) -> bool {
        self.reply > 0
    }
    fn write_wire(&mut self, socket: &mut dyn io::Write) -> io::Result<usize> {
        let n = socket.write(&vec![b'R'; self.reply])?;
        self.reply = 0;
        Ok(n)
    }
    fn close(&mut self) {
        self.closed = true;
    }
}

#[derive(Debug, Default)]
struct Inners {
    got: Arc<Mutex<Vec<u8>>>,
}

impl TransportFactory for Inners {
    fn new_transport(&self) -> Box<dyn Transport> {
        Box::new(Inner {
            got: self.got.clone(),
            ..Inner::default()
        })
    }
    fn counts(&self) -> Option<TransportCounts> {
        Some(TransportCounts {
            protocol: "tls",
            full: 7,
            ..TransportCounts::default()
        })
    }
}

fn plain_factory() -> ProxyProtocolFactory {
    ProxyProtocolFactory::new(None)
}

#[test]
fn a_header_and_data_in_one_read_hand_the_data_on_as_plaintext() {
    let factory = plain_factory();
    let mut layer = factory.new_transport();
    let mut plain = Vec::new();
    let received = layer
        .receive(&[V1, b"GET / HTTP/1.1\r\n"].concat(), &mut plain)
        .unwrap();
    assert!(received.established && !received.peer_closed);
    assert_eq!(plain, b"GET / HTTP/1.1\r\n");
    assert!(layer.is_spent() && layer.is_established());
    assert_eq!(layer.client_addr(), client());
    // Nothing inside: the connection goes on plain.
    assert!(layer.into_inner().is_none());
}

/// The header split at every byte boundary (and a byte at a time): the
/// layer waits, then gives exactly the bytes after the header.
#[test]
fn a_header_in_pieces_is_waited_for() {
    let stream = [V1, b"after"].concat();
    for split in 1..stream.len() {
        let mut layer = plain_factory().new_transport();
        let mut plain = Vec::new();
        let first = layer.receive(&stream[..split], &mut plain).unwrap();
        assert_eq!(first.established, split >= V1.len(), "split {split}");
        if split < V1.len() {
            assert!(!layer.is_spent() && plain.is_empty(), "split {split}");
        }
        // (A spent layer the reactor would have swapped out: it passes
        // bytes through unchanged.)
        let second = layer.receive(&stream[split..], &mut plain).unwrap();
        assert_eq!(second.established, split < V1.len(), "split {split}");
        assert!(layer.is_spent(), "split {split}");
        assert_eq!(layer.client_addr(), client(), "split {split}");
        assert_eq!(plain, b"after", "split {split}");
    }
    let mut layer = plain_factory().new_transport();
    let mut plain = Vec::new();
    for byte in stream.chunks(1) {
        assert!(!layer.is_spent());
        layer.receive(byte, &mut plain).unwrap();
        if layer.is_spent() {
            break;
        }
    }
    assert_eq!(layer.client_addr(), client());
}

#[test]
fn nothing_is_written_before_the_header() {
    let mut layer = plain_factory().new_transport();
    let mut plain = Vec::new();
    layer.receive(&V1[..10], &mut plain).unwrap();
    assert!(!layer.is_established());
    assert!(!layer.wants_write());
    assert_eq!(layer.seal(b"greeting"), 0);
    let mut out = Vec::new();
    assert_eq!(layer.write_wire(&mut out).unwrap(), 0);
    layer.close();
    assert!(out.is_empty());
}

/// An invalid header is refused with nothing queued to send (the reactor
/// writes what a failing transport queued: here, nothing), and counted.
#[test]
fn an_invalid_header_is_refused_without_a_byte_and_counted() {
    let factory = ProxyProtocolFactory::new(Some(Arc::new(Inners::default())));
    for bytes in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x16\x03\x01",
        b"PROXY TCP4 x\r\n",
    ] {
        let mut layer = factory.new_transport();
        let error = layer.receive(bytes, &mut Vec::new()).unwrap_err();
        assert!(error.0.starts_with("PROXY protocol: "), "{error}");
        assert!(!layer.wants_write());
        let mut out = Vec::new();
        assert_eq!(layer.write_wire(&mut out).unwrap(), 0);
        assert!(out.is_empty());
    }
    let counts = factory.preamble_counts().unwrap();
    assert_eq!((counts.refused, counts.read()), (3, 0));
}

/// TLS behind: the bytes after the header go to the inner layer, which
/// alone decides when the connection is established; its replies are
/// written through this layer until the reactor swaps it out.
#[test]
fn bytes_after_the_header_go_to_the_inner_layer() {
    let inners = Arc::new(Inners::default());
    let got = inners.got.clone();
    let factory = ProxyProtocolFactory::new(Some(inners));
    for split in [V1.len() - 1, V1.len(), V1.len() + 2] {
        got.lock().unwrap().clear();
        let stream = [V1, b"hello", b"data"].concat();
        let mut layer = factory.new_transport();
        let mut plain = Vec::new();
        let first = layer.receive(&stream[..split], &mut plain).unwrap();
        assert!(!first.established, "split {split}");
        assert!(!layer.is_established(), "split {split}");
        // A header and nothing after it: the inner layer is not called.
        assert_eq!(got.lock().unwrap().is_empty(), split <= V1.len());
        if split > V1.len() {
            assert!(layer.wants_write(), "split {split}: the inner reply");
            let mut out = Vec::new();
            assert_eq!(layer.write_wire(&mut out).unwrap(), 1);
        }
        let second = layer
            .receive(&stream[split..V1.len() + 5], &mut plain)
            .unwrap();
        assert!(second.established, "split {split}");
        assert!(layer.is_spent() && layer.is_established(), "split {split}");
        assert_eq!(layer.client_addr(), client());
        assert_eq!(*got.lock().unwrap(), b"hello", "split {split}");
        assert!(plain.is_empty());
        let mut inner = layer.into_inner().expect("the inner layer");
        inner.receive(b"data", &mut plain).unwrap();
        assert_eq!(plain, b"data");
    }
}

/// The inner layer's error after the header is the connection's, and the
/// alert it queued goes out through this layer.
#[test]
fn an_inner_error_after_the_header_keeps_its_alert() {
    let factory = ProxyProtocolFactory::new(Some(Arc::new(Inners::default())));
    let mut layer = factory.new_transport();
    let error = layer
        .receive(&[V1, b"bad"].concat(), &mut Vec::new())
        .unwrap_err();
    assert_eq!(error.0, "bad record");
    assert!(layer.wants_write());
    let mut out = Vec::new();
    layer.write_wire(&mut out).unwrap();
    assert_eq!(out, b"R");
    let counts = factory.preamble_counts().unwrap();
    assert_eq!((counts.with_client, counts.refused), (1, 0));
}

#[test]
fn the_factory_counts_headers_and_delegates_handshakes() {
    let plain = plain_factory();
    assert_eq!(plain.counts(), None, "no handshakes without TLS");
    for bytes in [V1, LOCAL_V2, b"PROXY UNKNOWN\r\n", b"nope"] {
        let _ = plain.new_transport().receive(bytes, &mut Vec::new());
    }
    assert_eq!(
        plain.preamble_counts(),
        Some(PreambleCounts {
            protocol: "proxy_protocol",
            with_client: 1,
            without_client: 2,
            refused: 1,
        })
    );
    let tls = ProxyProtocolFactory::new(Some(Arc::new(Inners::default())));
    assert_eq!(tls.counts().map(|c| (c.protocol, c.full)), Some(("tls", 7)));
}

#[test]
fn local_keeps_the_socket_address() {
    let mut layer = plain_factory().new_transport();
    let received = layer.receive(LOCAL_V2, &mut Vec::new()).unwrap();
    assert!(received.established && layer.is_spent());
    assert_eq!(layer.client_addr(), None);
}
