//! A client's request head: checked as `tenk serve http` checks one
//! ([`crate::parse::frame_head`], one implementation of its refusals),
//! then rewritten for an upstream.

use std::io::Write;
use std::mem::MaybeUninit;
use std::net::IpAddr;

use super::hop_by_hop::{connection_tokens, HopByHop, MAX_MARKED};
use super::{write_framing, write_header, write_via, Framing};
use crate::ows;
use crate::parse::framing::BodyKind;
use crate::parse::{frame_head, Limits, Refusal, MAX_HEADERS};

const _: () = assert!(MAX_HEADERS <= MAX_MARKED);

/// A client's request head, checked with the smuggling refusals of
/// `tenk serve http`: an ambiguous request is refused, never forwarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// Bytes of the head in the buffer (request line, headers, empty line).
    pub head_len: usize,
    /// The method token as sent; any but CONNECT is forwarded.
    pub method: String,
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// `None`, `Length` (`Length(0)` for a stated zero) or `Chunked`.
    pub body: Framing,
    /// The client wants the connection kept: HTTP/1.1 without
    /// `Connection: close`, HTTP/1.0 with `Connection: keep-alive`; never
    /// after an HTTP/1.0 chunked body (RFC 9112 section 6.1: its framing
    /// is faulty, the connection closes after it).
    pub keep_alive: bool,
    /// `Expect: 100-continue` from an HTTP/1.1 client (a 1.0 client's is
    /// ignored, RFC 9110 section 10.1.1, and not forwarded).
    pub expect_continue: bool,
    /// GET, HEAD, OPTIONS, TRACE, PUT or DELETE (RFC 9110 section 9.2.2).
    pub idempotent: bool,
    /// HEAD: the response has no body, whatever its headers say.
    pub is_head: bool,
    /// The client asks to switch protocols and the proxy passes the ask
    /// on (an HTTP/1.1 GET without a body, with `Connection: upgrade` and
    /// an `Upgrade` that does not name `h2c`): `Upgrade` and `Connection: upgrade` are then
    /// forwarded, and a `101` answer turns the connection into a tunnel.
    /// Otherwise an `Upgrade` header is hop-by-hop and dropped.
    pub upgrade: bool,
}

/// Frames the request head at the start of `buf`: `Ok(None)` while it is
/// incomplete. Only the head is read: the body, of any size, is the
/// [`BodyDecoder`](super::BodyDecoder)'s, so `limits.max_body` does not
/// apply (a proxy's body limit is its own configuration).
///
/// # Errors
/// The status to answer with and why, then close: those of
/// [`crate::parse::parse`] (400 for the smuggling refusals: Content-Length
/// with Transfer-Encoding, differing Content-Lengths, a framing header
/// or Host that is not ASCII, no Host in HTTP/1.1; 501 for a transfer
/// coding but `chunked`, once; 414, 417, 431, 505), except that any
/// method is forwarded but CONNECT, a 501: a reverse proxy is no tunnel,
/// and the 2xx answer to a CONNECT would frame no body.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<RequestHead>, Refusal> {
    let mut slots = [MaybeUninit::uninit(); MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let parsed = request.parse_with_uninit_headers(buf, &mut slots);
    let method = |token| {
        if token == "CONNECT" {
            return Err(Refusal {
                status: 501,
                why: "CONNECT is not proxied",
            });
        }
        Ok(token)
    };
    let Some(head) = frame_head(buf, request, parsed, limits, method)? else {
        return Ok(None);
    };
    let body = match head.framing.body {
        BodyKind::None => Framing::None,
        BodyKind::Length(n) => Framing::Length(n),
        BodyKind::Chunked => Framing::Chunked,
    };
    let method = head.method;
    Ok(Some(RequestHead {
        head_len: head.len,
        method: method.to_string(),
        target: head.target.to_string(),
        version: head.version,
        body,
        keep_alive: head.framing.keep_alive && !(head.version == 0 && body == Framing::Chunked),
        expect_continue: head.framing.expect_continue,
        idempotent: matches!(
            method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        ),
        is_head: method == "HEAD",
        upgrade: method == "GET"
            && head.version == 1
            && !body.has_body()
            && asks_upgrade(head.headers),
    }))
}

/// Whether `headers` ask to switch protocols in a way the proxy tunnels:
/// a `Connection` header with the `upgrade` token (without it, `Upgrade`
/// was not meant for this hop, RFC 9110 section 7.8) and an `Upgrade`
/// header, none of whose protocols is `h2c`. [`RequestHead::upgrade`]
/// also wants an HTTP/1.1 GET without a body: a 1.0 server must ignore
/// `Upgrade`, and a WebSocket handshake (RFC 6455 section 4.1) is a GET.
///
/// `h2c` is never tunnelled: the upgrade is optional (the client goes on
/// in HTTP/1.1 if it is not taken, RFC 7540 section 3.2), and taking it
/// would hand the client an HTTP/2 connection straight to the upstream,
/// whose requests the proxy would no longer frame, check or forward one
/// by one ("h2c smuggling"). Its `Upgrade` is dropped instead, with the
/// `HTTP2-Settings` header that `Connection` names.
fn asks_upgrade(headers: &[httparse::Header<'_>]) -> bool {
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    };
    let connection_upgrade = named("connection")
        .flat_map(|h| connection_tokens(h.value))
        .any(|token| token.eq_ignore_ascii_case(b"upgrade"));
    let mut protocols = named("upgrade")
        .flat_map(|h| connection_tokens(h.value))
        .peekable();
    let any = protocols.peek().is_some();
    let h2c = protocols.any(|p| {
        // `h2c` or `h2c/VERSION` (a protocol may name a version).
        let name = p.split(|&b| b == b'/').next().unwrap_or(p);
        ows::trim(name).eq_ignore_ascii_case(b"h2c")
    });
    connection_upgrade && any && !h2c
}

/// The value of the first header named `name` (case-insensitive) in the
/// request `head` that [`parse_request`] framed from `buf`, as sent but
/// for the whitespace around it; `None` if there is none (or `buf` is not
/// that head's). For balancing by a header.
///
/// # Examples
/// ```
/// use http::proxy::{parse_request, request_header};
/// use http::Limits;
///
/// let wire = b"GET / HTTP/1.1\r\nHost: app\r\nX-User:  alice \r\n\r\n";
/// let head = parse_request(wire, &Limits::default()).unwrap().unwrap();
/// assert_eq!(request_header(wire, &head, "x-user"), Some(&b"alice"[..]));
/// assert_eq!(request_header(wire, &head, "x-team"), None);
/// ```
pub fn request_header<'b>(buf: &'b [u8], head: &RequestHead, name: &str) -> Option<&'b [u8]> {
    let bytes = buf.get(..head.head_len)?;
    let mut slots = [MaybeUninit::uninit(); MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(bytes, &mut slots) {
        Ok(httparse::Status::Complete(n)) if n == head.head_len => {}
        _ => return None,
    }
    request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| ows::trim(h.value))
}

/// What the proxy adds to a request it forwards.
#[derive(Clone, Copy, Debug)]
pub struct Forwarded<'a> {
    /// The client's address (the PROXY protocol's when a balancer sent one).
    pub client: IpAddr,
    /// The scheme the client used: `"http"` or `"https"`.
    pub proto: &'a str,
}

/// Appends to `out` the head to send upstream for the request `head`
/// that [`parse_request`] framed from `buf`:
/// - the request line with method and target as sent, as HTTP/1.1;
/// - every header as sent (names and opaque values: obs-text passes), in
///   order, Host unchanged (an empty one for an HTTP/1.0 request without
///   it, as RFC 9112 section 3.2 has a client send when it knows no
///   authority), except:
/// - hop-by-hop headers dropped ([`super::hop_by_hop`]);
/// - Content-Length and Transfer-Encoding dropped, the framing re-stated
///   after the other headers (`Content-Length: N` or
///   `Transfer-Encoding: chunked`, which the proxy encodes anew);
/// - `X-Forwarded-For` headers combined into one, after them: their
///   values, then the client's address (IPv4-mapped IPv6 as IPv4);
/// - `X-Forwarded-Proto` replaced by `fwd.proto` (a client's own cannot
///   claim https);
/// - `Via: 1.1 tenk` (`1.0` for an HTTP/1.0 client) after any Via;
/// - `Expect` kept only when it is a 100-continue the proxy honours
///   ([`RequestHead::expect_continue`]);
/// - no `Connection` header: upstream connections are kept alive (the
///   HTTP/1.1 default) to be pooled; except for a request that asks to
///   upgrade ([`RequestHead::upgrade`]): its `Upgrade` headers are kept
///   as sent and `Connection: upgrade` is added after them (as nginx's
///   `proxy_set_header Upgrade $http_upgrade; Connection "upgrade"`).
///
/// `buf` must start with the bytes the head was framed from; if it does
/// not (a caller's bug), nothing is written.
///
/// # Examples
/// ```
/// use http::proxy::{parse_request, write_upstream_request, Forwarded};
/// use http::Limits;
///
/// let wire = b"GET / HTTP/1.1\r\nHost: app\r\nConnection: x-hop\r\nX-Hop: 1\r\n\
///              X-Forwarded-For: 203.0.113.9\r\n\r\n";
/// let head = parse_request(wire, &Limits::default()).unwrap().unwrap();
/// let mut out = Vec::new();
/// let fwd = Forwarded { client: "::ffff:192.0.2.7".parse().unwrap(), proto: "https" };
/// write_upstream_request(wire, &head, &fwd, &mut out);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "GET / HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 203.0.113.9, 192.0.2.7\r\n\
///      X-Forwarded-Proto: https\r\nVia: 1.1 tenk\r\n\r\n"
/// );
/// ```
pub fn write_upstream_request(
    buf: &[u8],
    head: &RequestHead,
    fwd: &Forwarded<'_>,
    out: &mut Vec<u8>,
) {
    let Some(bytes) = buf.get(..head.head_len) else {
        debug_assert!(false, "a request head longer than its buffer");
        return;
    };
    // The head parses again exactly as it did in `parse_request`: the
    // same bytes, the same parser. Keeping the headers' places instead
    // would make every `RequestHead` carry them.
    let mut slots = [MaybeUninit::uninit(); MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    if !matches!(
        request.parse_with_uninit_headers(bytes, &mut slots),
        Ok(httparse::Status::Complete(n)) if n == head.head_len
    ) {
        debug_assert!(
            false,
            "write_upstream_request: not the head parse_request framed"
        );
        return;
    }
    let headers = &*request.headers;
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let hop_by_hop = HopByHop::of(headers);
    let mut has_host = false;
    let mut forwarded_for = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        let name = header.name;
        let kept_upgrade = head.upgrade && name.eq_ignore_ascii_case("upgrade");
        if (hop_by_hop.contains(i) && !kept_upgrade)
            || name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("x-forwarded-proto")
            || (name.eq_ignore_ascii_case("expect") && !head.expect_continue)
        {
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            if !header.value.is_empty() {
                forwarded_for.extend_from_slice(header.value);
                forwarded_for.extend_from_slice(b", ");
            }
            continue;
        }
        has_host |= name.eq_ignore_ascii_case("host");
        write_header(header, out);
    }
    if !has_host {
        out.extend_from_slice(b"Host: \r\n");
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    out.extend_from_slice(&forwarded_for);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}", fwd.client.to_canonical());
    out.extend_from_slice(b"\r\nX-Forwarded-Proto: ");
    out.extend_from_slice(fwd.proto.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_via(head.version, out);
    if head.upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    }
    write_framing(head.body, out);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
