//! An upstream's response head: framed by RFC 9112 section 6.3, then
//! rewritten for the client.
//!
//! The upstream is trusted no more than a client: the headers that frame
//! a response are read as strictly as a request's (ASCII, digits-only
//! Content-Length, no differing lengths), since a response the proxy
//! delimits one way and the client another splits the client's stream.

use std::mem::MaybeUninit;

use super::hop_by_hop::{connection_tokens, HopByHop, MAX_MARKED};
use super::{malformed, write_framing, write_header, write_via, Framing, Malformed};
use crate::ows;
use crate::parse::framing::content_length;

/// Bytes of a response head (status line, headers, empty line); more is
/// malformed. HAProxy's default buffer; nginx's is smaller (4 or 8 KiB).
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Header lines of a response head; more is malformed. HAProxy's
/// default (`tune.http.maxhdr` 101), about: long lists of Set-Cookie.
pub const MAX_RESPONSE_HEADERS: usize = 100;

const _: () = assert!(MAX_RESPONSE_HEADERS <= MAX_MARKED);

/// An upstream's response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// Bytes of the head in the buffer.
    pub head_len: usize,
    pub status: u16,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// By RFC 9112 section 6.3: `None` for a response to HEAD, a 1xx, 204
    /// or 304; `Chunked` for `Transfer-Encoding: chunked` (over any
    /// Content-Length); `Length` for a Content-Length; else `UntilClose`.
    pub body: Framing,
    /// The upstream connection can carry another request after this
    /// response: HTTP/1.1 without `Connection: close` (1.0 with
    /// `Connection: keep-alive`), the body not until close, and not both
    /// Content-Length and Transfer-Encoding (a sender that confused might
    /// have meant either; RFC 9112 section 6.3 has the connection closed),
    /// nor Transfer-Encoding in HTTP/1.0 (faulty framing, section 6.1).
    pub keep_alive: bool,
    /// 1xx: an interim response; forward it (not to an HTTP/1.0 client,
    /// RFC 9110 section 15.2) and read the next head.
    pub interim: bool,
}

/// The response headers framing reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Named {
    ContentLength,
    TransferEncoding,
    Connection,
    Other,
}

impl Named {
    fn of(name: &str) -> Named {
        [
            ("content-length", Named::ContentLength),
            ("transfer-encoding", Named::TransferEncoding),
            ("connection", Named::Connection),
        ]
        .into_iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known))
        .map_or(Named::Other, |(_, named)| named)
    }
}

/// Frames the response head at the start of `buf`: `Ok(None)` while it is
/// incomplete. `request_is_head`: the request was HEAD, so the response
/// has no body whatever its headers say.
///
/// Transfer codings: only `chunked`, alone, as nginx accepts from an
/// upstream. The proxy re-frames what it passes on and drops the
/// Transfer-Encoding header, so a coding such as gzip under chunked
/// would reach the client undeclared.
///
/// # Errors
/// A malformed response (the proxy answers 502 if nothing was sent yet,
/// and closes the upstream connection): not HTTP/1.x, a head over
/// [`MAX_RESPONSE_HEAD`] or [`MAX_RESPONSE_HEADERS`], a status below
/// 100, a 101 (the request did not ask to upgrade, and the bytes after
/// a 101 are no HTTP: see [`parse_upgrade_response`]), a framing header that is not ASCII, an invalid or
/// differing Content-Length, a transfer coding other than `chunked`.
pub fn parse_response(
    buf: &[u8],
    request_is_head: bool,
) -> Result<Option<ResponseHead>, Malformed> {
    parse(buf, request_is_head, false)
}

/// [`parse_response`] for the answer to a request that asked to upgrade
/// ([`RequestHead::upgrade`](super::RequestHead::upgrade)): a
/// `101 Switching Protocols` with an `Upgrade` header is accepted too
/// (not interim, no body, not reusable: what follows it is the new
/// protocol's); any other response is framed as [`parse_response`] frames
/// it.
///
/// # Errors
/// Those of [`parse_response`], and a 101 without an `Upgrade` header
/// (RFC 9110 section 15.2.2: it must name the protocol switched to).
pub fn parse_upgrade_response(buf: &[u8]) -> Result<Option<ResponseHead>, Malformed> {
    parse(buf, false, true)
}

fn parse(
    buf: &[u8],
    request_is_head: bool,
    upgrade_asked: bool,
) -> Result<Option<ResponseHead>, Malformed> {
    let mut slots = [MaybeUninit::uninit(); MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut slots,
    );
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            return Err(malformed("response head too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(malformed("too many response headers")),
        Err(_) => return Err(malformed("malformed response head")),
    };
    if head_len > MAX_RESPONSE_HEAD {
        return Err(malformed("response head too large"));
    }
    let status = response.code.unwrap_or(0);
    let version = response.version.unwrap_or(1);
    if status < 100 {
        return Err(malformed("status below 100"));
    }
    let switching = status == 101;
    if switching && !upgrade_asked {
        return Err(malformed("101 Switching Protocols without an Upgrade"));
    }
    if switching
        && !response
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("upgrade"))
    {
        return Err(malformed("101 Switching Protocols names no Upgrade"));
    }
    let mut length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive_token = false;
    for header in response.headers.iter() {
        let named = Named::of(header.name);
        if named == Named::Other {
            continue;
        }
        if !header.value.is_ascii() {
            return Err(malformed("framing header value is not ASCII"));
        }
        let value = ows::trim(header.value);
        match named {
            Named::ContentLength => {
                let n = content_length(value).ok_or(malformed("invalid Content-Length"))?;
                if length.is_some_and(|m| m != n) {
                    return Err(malformed("differing Content-Lengths"));
                }
                length = Some(n);
            }
            Named::TransferEncoding => {
                transfer_encoding = true;
                for coding in value.split(|&b| b == b',').map(ows::trim) {
                    if !coding.eq_ignore_ascii_case(b"chunked") || chunked {
                        return Err(malformed("unsupported Transfer-Encoding"));
                    }
                    chunked = true;
                }
            }
            Named::Connection => {
                for token in connection_tokens(value) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            Named::Other => {}
        }
    }
    if transfer_encoding && !chunked {
        return Err(malformed("unsupported Transfer-Encoding"));
    }
    let interim = (100..200).contains(&status) && !switching;
    let body = if interim || switching || request_is_head || status == 204 || status == 304 {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    let persistent = if version == 1 {
        !close
    } else {
        keep_alive_token && !close
    };
    Ok(Some(ResponseHead {
        head_len,
        status,
        version,
        body,
        keep_alive: persistent
            && !switching
            && body != Framing::UntilClose
            && !(transfer_encoding && length.is_some())
            && !(transfer_encoding && version == 0),
        interim,
    }))
}

/// Appends to `out` the head to send the client for the response `head`
/// that [`parse_response`] framed from `buf`:
/// - the status line as `HTTP/1.1` (`HTTP/1.0` when `client_version` is
///   0), status and reason phrase as sent;
/// - every header as sent (names, opaque values), in order, except the
///   hop-by-hop ones ([`super::hop_by_hop`]) and Content-Length;
/// - `Via: 1.1 tenk` (`1.0` for an HTTP/1.0 upstream) after any Via;
/// - the framing of what the proxy sends (`client_framing`):
///   `Content-Length: N` for `Length`, `Transfer-Encoding: chunked` for
///   `Chunked` (never to an HTTP/1.0 client, who cannot read it: send it
///   `UntilClose`), nothing for `UntilClose`; for `None`, the upstream's
///   Content-Length as sent, which tells a HEAD or 304 the size of the
///   body it does not get (not on a 1xx or 204, which must not have one);
/// - `Connection: close` when the proxy will close the client's
///   connection after the response (`client_keep_alive` false, or the
///   body runs until close), `Connection: keep-alive` to an HTTP/1.0
///   client whose connection stays open (without it, 1.0 means close).
///
/// A 1xx gets its status line, headers and Via only; a 101 (from
/// [`parse_upgrade_response`]) also keeps its `Upgrade` header and gets
/// `Connection: upgrade`, whatever `client_keep_alive` says.
///
/// `buf` must start with the bytes the head was framed from; if it does
/// not (a caller's bug), nothing is written.
///
/// # Examples
/// ```
/// use http::proxy::{parse_response, write_client_response, Framing};
///
/// let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nhello";
/// let head = parse_response(wire, false).unwrap().unwrap();
/// assert_eq!(head.body, Framing::Length(5));
/// let mut out = Vec::new();
/// write_client_response(wire, &head, Framing::Length(5), 1, true, &mut out);
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\nVia: 1.1 tenk\r\nContent-Length: 5\r\n\r\n");
/// ```
pub fn write_client_response(
    buf: &[u8],
    head: &ResponseHead,
    client_framing: Framing,
    client_version: u8,
    client_keep_alive: bool,
    out: &mut Vec<u8>,
) {
    debug_assert!(
        !(client_version == 0 && client_framing == Framing::Chunked),
        "chunked to an HTTP/1.0 client"
    );
    let Some(bytes) = buf.get(..head.head_len) else {
        debug_assert!(false, "a response head longer than its buffer");
        return;
    };
    // The head parses again exactly as it did in `parse_response`.
    let mut slots = [MaybeUninit::uninit(); MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        bytes,
        &mut slots,
    );
    if !matches!(parsed, Ok(httparse::Status::Complete(n)) if n == head.head_len) {
        debug_assert!(
            false,
            "write_client_response: not the head parse_response framed"
        );
        return;
    }
    out.extend_from_slice(if client_version == 0 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(itoa::Buffer::new().format(head.status).as_bytes());
    let reason = reason_phrase(bytes);
    if !reason.is_empty() {
        out.push(b' ');
        out.extend_from_slice(reason);
    }
    out.extend_from_slice(b"\r\n");
    let switching = head.status == 101;
    let keep_length =
        client_framing == Framing::None && !head.interim && !switching && head.status != 204;
    let hop_by_hop = HopByHop::of(response.headers);
    for (i, header) in response.headers.iter().enumerate() {
        let is_length = header.name.eq_ignore_ascii_case("content-length");
        let kept_upgrade = switching && header.name.eq_ignore_ascii_case("upgrade");
        if (hop_by_hop.contains(i) && !kept_upgrade) || (is_length && !keep_length) {
            continue;
        }
        write_header(header, out);
    }
    write_via(head.version, out);
    if switching {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if !head.interim {
        write_framing(client_framing, out);
        if !client_keep_alive || client_framing == Framing::UntilClose {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if client_version == 0 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase of the status line `head` starts with (after any
/// empty lines, which httparse skips), as sent: httparse gives none for
/// one with obs-text, which is still a valid phrase to pass on.
fn reason_phrase(head: &[u8]) -> &[u8] {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let line = &head[start..];
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let line = line[..end].strip_suffix(b"\r").unwrap_or(&line[..end]);
    // "HTTP/1.1 200 Reason": the phrase starts after the code's space.
    line.get(13..).unwrap_or(b"")
}

#[cfg(test)]
mod tests;
