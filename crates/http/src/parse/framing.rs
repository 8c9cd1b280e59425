//! The headers that decide framing (Content-Length, Transfer-Encoding,
//! Connection, Expect, Host), read strictly, and the chunked body decoder.
//! Every other header is opaque bytes to framing (see the module docs of
//! [`super`]).

use super::{refuse, Refusal};
use crate::ows;

pub(crate) enum BodyKind {
    None,
    /// `Content-Length: 0` included: a proxy re-states it, since some
    /// servers want a length on every POST.
    Length(u64),
    Chunked,
}

pub(crate) struct Framing {
    pub(crate) body: BodyKind,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
}

/// The request headers framing looks at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FramingHeader {
    ContentLength,
    TransferEncoding,
    Connection,
    Expect,
    Host,
    Other,
}

impl FramingHeader {
    #[inline] // once per header, from `Framing::of` (see there)
    fn of(name: &str) -> FramingHeader {
        // Host first: every HTTP/1.1 request has one.
        [
            ("host", FramingHeader::Host),
            ("content-length", FramingHeader::ContentLength),
            ("transfer-encoding", FramingHeader::TransferEncoding),
            ("connection", FramingHeader::Connection),
            ("expect", FramingHeader::Expect),
        ]
        .into_iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known))
        .map_or(FramingHeader::Other, |(_, header)| header)
    }
}

impl Framing {
    // Inlined into `frame`, its one caller, as it was before the module
    // split: out of line it cost 3 % more instructions per request.
    #[inline]
    pub(crate) fn of(headers: &[httparse::Header<'_>], version: u8) -> Result<Framing, Refusal> {
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut transfer_encoding = false;
        let mut close = false;
        let mut keep_alive_token = false;
        let mut expect_continue = false;
        let mut hosts = 0;
        for header in headers {
            let name = FramingHeader::of(header.name);
            if name == FramingHeader::Other {
                // Opaque bytes (obs-text included): framing never reads
                // them, and httparse has already refused control bytes.
                continue;
            }
            // Every header read here is ASCII by its grammar (digits,
            // tokens, a URI host); anything else is malformed, refused
            // before a byte of it is interpreted.
            if !header.value.is_ascii() {
                return Err(match name {
                    FramingHeader::Host => refuse(400, "Host is not ASCII"),
                    _ => refuse(400, "framing header value is not ASCII"),
                });
            }
            if name == FramingHeader::Host {
                // Counted, never read: every request has one, so it
                // skips the trimming the other values need.
                hosts += 1;
                continue;
            }
            let value = ows::trim(header.value);
            match name {
                FramingHeader::ContentLength => {
                    let n = content_length(value).ok_or(refuse(400, "invalid Content-Length"))?;
                    if length.is_some_and(|m| m != n) {
                        return Err(refuse(400, "differing Content-Lengths"));
                    }
                    length = Some(n);
                }
                FramingHeader::TransferEncoding => {
                    transfer_encoding = true;
                    if value.eq_ignore_ascii_case(b"chunked") && !chunked {
                        chunked = true;
                    } else {
                        return Err(refuse(501, "unsupported Transfer-Encoding"));
                    }
                }
                FramingHeader::Connection => {
                    for token in value.split(|&b| b == b',') {
                        let token = ows::trim(token);
                        if token.eq_ignore_ascii_case(b"close") {
                            close = true;
                        } else if token.eq_ignore_ascii_case(b"keep-alive") {
                            keep_alive_token = true;
                        }
                    }
                }
                FramingHeader::Expect => {
                    if value.eq_ignore_ascii_case(b"100-continue") {
                        expect_continue = true;
                    } else {
                        return Err(refuse(417, "unsupported expectation"));
                    }
                }
                FramingHeader::Host | FramingHeader::Other => {}
            }
        }
        if transfer_encoding && length.is_some() {
            return Err(refuse(400, "Content-Length with Transfer-Encoding"));
        }
        if version == 1 && hosts != 1 {
            return Err(refuse(400, "HTTP/1.1 needs exactly one Host"));
        }
        if hosts > 1 {
            return Err(refuse(400, "more than one Host"));
        }
        let body = if chunked {
            BodyKind::Chunked
        } else {
            match length {
                None => BodyKind::None,
                Some(n) => BodyKind::Length(n),
            }
        };
        let keep_alive = if version == 1 {
            !close
        } else {
            keep_alive_token && !close
        };
        Ok(Framing {
            body,
            keep_alive,
            // An HTTP/1.0 client may not know 100 Continue: RFC 9110
            // section 10.1.1 has the server ignore its expectation.
            expect_continue: expect_continue && version == 1,
        })
    }
}

/// A Content-Length value (without its OWS): digits only, since "+5",
/// "5 5", "5, 5" or "0x5" are smuggling material; `None` when it is not
/// one or overflows.
#[inline] // once per Content-Length, from `Framing::of`
pub(crate) fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, &digit| {
        n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// Decodes a chunked body at the start of `buf`: the body and the bytes it
/// took, or `None` if incomplete.
pub(super) fn decode_chunked(
    buf: &[u8],
    max_body: usize,
) -> Result<Option<(Vec<u8>, usize)>, Refusal> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let (used, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(refuse(400, "bad chunk size")),
        };
        at += used;
        if size == 0 {
            break;
        }
        if body.len() as u64 + size > max_body as u64 {
            return Err(refuse(413, "body too large"));
        }
        let size = size as usize;
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size;
        if &buf[at..at + 2] != b"\r\n" {
            return Err(refuse(400, "chunk not followed by CRLF"));
        }
        at += 2;
    }
    // Trailer fields, then an empty line.
    loop {
        let Some(end) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        at += end + 2;
        if end == 0 {
            return Ok(Some((body, at)));
        }
        if at > max_body + 8 * 1024 {
            return Err(refuse(431, "trailers too large"));
        }
    }
}
