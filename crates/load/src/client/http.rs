//! The HTTP client: the same request (built once, in the spec) again and
//! again, every response's status line and framing checked by
//! [`http::client::ResponseReader`]; bodies are counted, never kept.

use std::time::Instant;

use http::client::ResponseReader;

use super::{Client, Fault, Inbox};
use crate::spec::Workload;
use crate::worker::Shared;

pub(crate) struct HttpClient {
    reader: ResponseReader,
    /// The server announced it will close after the last response.
    closing: bool,
}

impl Client for HttpClient {
    const REPLIES: bool = true;

    fn new(shared: &Shared, _thread: usize, _n: u64) -> Self {
        let Workload::Http { method, .. } = &shared.spec.workload else {
            unreachable!("an HTTP client runs the HTTP workload");
        };
        HttpClient {
            reader: ResponseReader::new(method),
            closing: false,
        }
    }

    fn takes_requests(&self) -> bool {
        !self.closing
    }

    fn append_requests(&mut self, out: &mut Vec<u8>, count: usize, _: Instant, shared: &Shared) {
        let Workload::Http { request, .. } = &shared.spec.workload else {
            unreachable!("an HTTP client runs the HTTP workload");
        };
        for _ in 0..count {
            out.extend_from_slice(request);
        }
    }

    /// Every response complete in `data`, in order: the reader consumes a
    /// piece at a time (a head, a body's bytes, a chunk line).
    fn on_bytes(&mut self, data: &[u8], inbox: &mut Inbox, _: &Shared) -> Result<usize, Fault> {
        let mut consumed = 0;
        loop {
            let (used, response) = self
                .reader
                .feed(&data[consumed..])
                .map_err(|e| Fault::Malformed(format!("{e:?}")))?;
            consumed += used;
            if let Some(response) = response {
                if response.close {
                    self.closing = true;
                }
                inbox.reply(Some(response.status));
            } else if used == 0 {
                break;
            }
            if consumed == data.len() {
                break;
            }
        }
        Ok(consumed)
    }

    /// A server may close after a response that announced it, or between
    /// requests; a body that runs until the close ends there.
    fn on_eof(&mut self, inbox: &mut Inbox) -> bool {
        match self.reader.eof() {
            Ok(Some(response)) => {
                inbox.reply(Some(response.status));
                false
            }
            Ok(None) => inbox.awaits() && !self.closing,
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inflight::InFlight;
    use crate::recorder::Recorder;
    use crate::spec::LoadSpec;

    fn shared() -> Shared {
        Shared::new(LoadSpec {
            workload: Workload::Http {
                request: b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
                method: "GET".into(),
            },
            ..LoadSpec::example()
        })
    }

    /// A client with `n` requests in flight.
    fn awaiting(shared: &Shared, n: usize) -> (HttpClient, InFlight) {
        let mut client = HttpClient::new(shared, 0, 0);
        let mut out = Vec::new();
        let now = Instant::now();
        client.append_requests(&mut out, n, now, shared);
        assert_eq!(out.len(), n * 27, "{}", String::from_utf8_lossy(&out));
        let mut in_flight = InFlight::new(now);
        for _ in 0..n {
            in_flight.push(now, now);
        }
        (client, in_flight)
    }

    #[test]
    fn pipelined_responses_answer_requests_in_order_with_their_status() {
        let shared = shared();
        let (mut client, mut in_flight) = awaiting(&shared, 3);
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le";
        let mut recorder = Recorder::new();
        let mut inbox = Inbox::new(&mut in_flight, Some(&mut recorder));
        let consumed = client.on_bytes(wire, &mut inbox, &shared).unwrap();
        assert_eq!(inbox.answered(), 2);
        assert_eq!(consumed, wire.len() - 27, "the partial head is left");
        assert_eq!(in_flight.len(), 1);
        assert_eq!(
            (
                recorder.requests,
                recorder.status_classes[2],
                recorder.status_classes[5]
            ),
            (2, 1, 1)
        );
        assert!(client.takes_requests());
    }

    #[test]
    fn replies_outside_the_window_are_counted_not_recorded() {
        let shared = shared();
        let (mut client, mut in_flight) = awaiting(&shared, 1);
        let mut inbox = Inbox::new(&mut in_flight, None);
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            client.on_bytes(wire, &mut inbox, &shared).unwrap(),
            wire.len()
        );
        assert_eq!(inbox.received(), 1);
    }

    #[test]
    fn an_announced_close_stops_requests_and_is_not_early() {
        let shared = shared();
        let (mut client, mut in_flight) = awaiting(&shared, 2);
        let mut inbox = Inbox::new(&mut in_flight, None);
        let wire = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        client.on_bytes(wire, &mut inbox, &shared).unwrap();
        assert!(!client.takes_requests());
        assert!(
            !client.on_eof(&mut inbox),
            "one still in flight, but announced"
        );
    }

    #[test]
    fn eof_is_early_with_requests_unanswered_or_a_response_cut() {
        let shared = shared();
        let (mut client, mut in_flight) = awaiting(&shared, 1);
        assert!(client.on_eof(&mut Inbox::new(&mut in_flight, None)));
        let (mut idle, mut none) = awaiting(&shared, 0);
        assert!(!idle.on_eof(&mut Inbox::new(&mut none, None)));

        let (mut client, mut in_flight) = awaiting(&shared, 1);
        let mut inbox = Inbox::new(&mut in_flight, None);
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        client.on_bytes(cut, &mut inbox, &shared).unwrap();
        assert!(client.on_eof(&mut inbox));
        assert_eq!(inbox.answered(), 0);
    }

    #[test]
    fn a_body_until_close_is_answered_at_eof() {
        let shared = shared();
        let (mut client, mut in_flight) = awaiting(&shared, 1);
        let mut inbox = Inbox::new(&mut in_flight, None);
        client
            .on_bytes(b"HTTP/1.1 200 OK\r\n\r\nbody", &mut inbox, &shared)
            .unwrap();
        assert_eq!(inbox.answered(), 0);
        assert!(!client.on_eof(&mut inbox));
        assert_eq!(inbox.answered(), 1);
    }

    #[test]
    fn bad_framing_is_malformed() {
        let shared = shared();
        let (mut client, mut in_flight) = awaiting(&shared, 1);
        let mut inbox = Inbox::new(&mut in_flight, None);
        let wire = b"NOT HTTP\r\n\r\n";
        assert!(matches!(
            client.on_bytes(wire, &mut inbox, &shared),
            Err(Fault::Malformed(_))
        ));
    }
}
