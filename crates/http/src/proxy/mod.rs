//! The HTTP of a reverse proxy, I/O free: a client's request head checked
//! with the server's smuggling refusals ([`parse_request`]) and rewritten
//! for an upstream ([`write_upstream_request`]), an upstream's response
//! head framed by RFC 9112 section 6.3 ([`parse_response`]) and rewritten
//! for the client ([`write_client_response`]), and bodies of any size
//! streamed: decoded as they arrive ([`BodyDecoder`]), re-framed
//! ([`ChunkedEncoder`]).
//!
//! Heads are parsed whole (they are bounded), bodies never: a body is
//! handed on in the pieces it arrives in, borrowed from the caller's
//! buffer, so a 10 GB upload passes in the memory of one read.
//!
//! Every message is re-framed: the hop-by-hop headers ([`hop_by_hop`])
//! are dropped, Transfer-Encoding and Content-Length among them, and the
//! proxy states the framing of what it sends itself. A chunked body is
//! decoded and encoded again, so an upstream only ever sees framing the
//! proxy wrote: no byte of a client's framing can be read one way here
//! and another way there.
//!
//! # Examples
//! ```
//! use http::proxy::{parse_request, write_upstream_request, BodyDecoder, Forwarded, Framing};
//! use http::Limits;
//!
//! let wire = b"POST /up HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
//! let head = parse_request(wire, &Limits::default()).unwrap().unwrap();
//! assert_eq!(head.body, Framing::Chunked);
//! let mut out = Vec::new();
//! let fwd = Forwarded { client: "192.0.2.7".parse().unwrap(), proto: "http" };
//! write_upstream_request(wire, &head, &fwd, &mut out);
//! assert_eq!(
//!     out,
//!     b"POST /up HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 192.0.2.7\r\n\
//!       X-Forwarded-Proto: http\r\nVia: 1.1 tenk\r\nTransfer-Encoding: chunked\r\n\r\n"
//! );
//! let mut body = Vec::new();
//! let mut decoder = BodyDecoder::new(head.body);
//! let (used, done) = decoder
//!     .decode(&wire[head.head_len..], &mut |piece| body.extend_from_slice(piece))
//!     .unwrap();
//! assert_eq!((&body[..], used, done), (&b"hello"[..], wire.len() - head.head_len, true));
//! ```

mod body;
pub mod hop_by_hop;
mod request;
mod response;

pub use body::{BodyDecoder, ChunkHead, ChunkedEncoder};
pub use request::{parse_request, request_header, write_upstream_request, Forwarded, RequestHead};
pub use response::{
    parse_response, parse_upgrade_response, write_client_response, ResponseHead, MAX_RESPONSE_HEAD,
    MAX_RESPONSE_HEADERS,
};

use std::fmt;

/// How a message body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (a GET, a response to HEAD, a 204 or 304, a 1xx).
    None,
    /// `Content-Length: N` (`Length(0)` when a zero length was stated).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Responses only: the body runs until the upstream closes.
    UntilClose,
}

impl Framing {
    /// Whether a body may follow: not for `None` or `Length(0)`.
    pub fn has_body(self) -> bool {
        !matches!(self, Framing::None | Framing::Length(0))
    }
}

/// A malformed upstream response or body framing: the message cannot be
/// delimited, so the connection it came on cannot be used any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// Why, for logs.
    pub why: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.why)
    }
}

impl std::error::Error for Malformed {}

/// Shorthand for the error of a check.
fn malformed(why: &'static str) -> Malformed {
    Malformed { why }
}

/// Appends `Via: 1.x tenk`: the protocol of the message as received (RFC
/// 9110 section 7.6.3), then who received it.
fn write_via(version: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(if version == 0 {
        b"Via: 1.0 tenk\r\n"
    } else {
        b"Via: 1.1 tenk\r\n"
    });
}

/// Appends the framing header of a body sent as `framing`.
fn write_framing(framing: Framing, out: &mut Vec<u8>) {
    match framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::None | Framing::UntilClose => {}
    }
}

/// Appends a header line with its name and value as received.
fn write_header(header: &httparse::Header<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(header.name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(header.value);
    out.extend_from_slice(b"\r\n");
}
