//! Request framing: where a request ends, what its body is, and which
//! status a bad one gets. I/O free; heads are parsed by `httparse`.
//!
//! [`parse`] looks at the bytes a connection has buffered and returns a
//! complete request (borrowing from the buffer), "need more bytes", or the
//! error status to answer with. Called again with more bytes, it starts
//! over from the first byte: a head is at most 8 KiB and a body at most
//! `max_body`, so re-parsing is bounded, and no per-connection parser state
//! can go stale.
//!
//! # Header values
//!
//! A header value is opaque bytes: visible ASCII, spaces and tabs, and
//! obs-text (bytes 0x80 to 0xFF, RFC 9110 section 5.5), which need not be
//! UTF-8 (Latin-1 from old clients, say); httparse refuses control bytes.
//! Such a request is served, whatever the header's name:
//! [`Request::header`] gives the bytes, [`Request::header_str`] the text
//! when it is UTF-8, [`Request::header_lossy`] text for display.
//!
//! The headers that decide framing, persistence and the target's host are
//! read strictly, since a value two parsers read differently is how
//! requests are smuggled; a value outside their ASCII grammar is a 400:
//! - `Content-Length`: digits only (no sign, no list, no obs-text);
//!   differing values, or one beside `Transfer-Encoding`, are a 400.
//! - `Transfer-Encoding`: a token; only `chunked`, once, is implemented,
//!   any other coding is a 501.
//! - `Connection` and `Expect`: tokens (`close`, `keep-alive`;
//!   `100-continue`, any other expectation being a 417).
//! - `Host`: ASCII only. It is a URI host (RFC 3986 section 3.2.2, RFC
//!   9110 section 7.2), so an internationalized name travels as punycode
//!   (`xn--caf-dma.example`), never as UTF-8 or Latin-1; an HTTP/1.1
//!   request needs exactly one.
//!
//! The server answers every refusal with its status and
//! `Connection: close`, then closes after a lingering read.

use std::borrow::Cow;
use std::mem::MaybeUninit;

/// Limits on what a client may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus headers (431 beyond; nginx's default is 8 KiB).
    pub max_head: usize,
    /// Request target (414 beyond).
    pub max_uri: usize,
    /// Decoded body (413 beyond).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: 8 * 1024,
            max_uri: 4 * 1024,
            max_body: 1024 * 1024,
        }
    }
}

/// Header lines parsed per request; more is a 431.
pub const MAX_HEADERS: usize = 64;

/// Request methods the server understands. Others are answered 501.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
}

impl Method {
    fn from_token(token: &str) -> Option<Method> {
        Some(match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            _ => return None,
        })
    }

    /// The method as it appears on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
        }
    }
}

/// A complete request, borrowing from the connection's buffer.
#[derive(Debug)]
pub struct Request<'b, 'h> {
    pub method: Method,
    /// The request target as sent (path and query).
    pub target: &'b str,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: &'h [httparse::Header<'b>],
    /// The body: borrowed for Content-Length, decoded for chunked.
    pub body: Cow<'b, [u8]>,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

impl Request<'_, '_> {
    /// The value of the first header named `name` (case-insensitive), as
    /// sent: opaque bytes, which may hold obs-text (see the module docs).
    /// Host, Content-Length, Transfer-Encoding, Connection and Expect
    /// values are always ASCII.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// [`Request::header`] as text, exactly: `None` when the header is
    /// absent or its value is not UTF-8 (obs-text in a legacy charset).
    /// For a value that must be understood, such as a media type.
    ///
    /// # Examples
    /// ```
    /// use http::parse::{parse, Limits, Parsed, MAX_HEADERS};
    ///
    /// let buf = b"GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9\r\nX-Legacy: caf\xe9\r\n\r\n";
    /// let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    /// let Ok(Parsed::Complete(request, _)) = parse(buf, &mut headers, &Limits::default()) else {
    ///     panic!("not framed");
    /// };
    /// assert_eq!(request.header_str("x-name"), Some("café"));
    /// assert_eq!(request.header_str("x-legacy"), None);
    /// assert_eq!(request.header_lossy("x-legacy").as_deref(), Some("caf\u{FFFD}"));
    /// assert_eq!(request.header("x-legacy"), Some(&b"caf\xe9"[..]));
    /// ```
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// [`Request::header`] as text for display (logs, error pages): bytes
    /// that are not UTF-8 become U+FFFD; borrowed when nothing needs
    /// replacing.
    pub fn header_lossy(&self, name: &str) -> Option<Cow<'_, str>> {
        self.header(name).map(String::from_utf8_lossy)
    }

    /// The target's path, without the query. An absolute-form target
    /// (`http://host/path`), which a server must accept (RFC 9112
    /// section 3.2.2), has its path after the authority (`/` if none).
    pub fn path(&self) -> &str {
        let target = origin_form(self.target);
        // A byte scan: paths are short, and `split_once` sets up a
        // searcher that costs more than the scan itself.
        match target.bytes().position(|b| b == b'?') {
            Some(at) => &target[..at],
            None => target,
        }
    }
}

/// The path-and-query of an absolute-form target; other targets as they are.
fn origin_form(target: &str) -> &str {
    if target.starts_with('/') {
        // Origin form, the usual one: no scheme to look for.
        return target;
    }
    let after_scheme = ["http://", "https://"].iter().find_map(|scheme| {
        target
            .get(..scheme.len())
            .filter(|t| t.eq_ignore_ascii_case(scheme))
            .map(|_| &target[scheme.len()..])
    });
    match after_scheme {
        Some(rest) => match rest.find(['/', '?']) {
            Some(at) if rest.as_bytes()[at] == b'/' => &rest[at..],
            _ => "/",
        },
        None => target,
    }
}

/// What the buffered bytes hold.
#[derive(Debug)]
pub enum Parsed<'b, 'h> {
    /// A complete request, and the bytes it took.
    Complete(Request<'b, 'h>, usize),
    /// More bytes are needed. `continue_expected` is set when the head is
    /// complete, asks for `100-continue`, and the body has not started.
    Partial {
        head_complete: bool,
        continue_expected: bool,
    },
}

/// A request that must be refused, with the status to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// Why, for logs and error bodies.
    pub why: &'static str,
}

fn refuse(status: u16, why: &'static str) -> Refusal {
    Refusal { status, why }
}

/// Frames the first request in `buf`; see the module docs.
///
/// # Errors
/// The status a malformed or hostile request is answered with: 400
/// (malformed, smuggling attempts: Content-Length with Transfer-Encoding,
/// differing Content-Lengths; no Host in HTTP/1.1; a framing header or
/// Host that is not ASCII, see [header values](self#header-values)), 413
/// (body over `max_body`), 414 (target over `max_uri`), 417 (unknown
/// expectation), 431 (head over `max_head` or too many headers), 501
/// (unknown method or transfer coding), 505 (not HTTP/1.x).
pub fn parse<'b, 'h>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>; MAX_HEADERS],
    limits: &Limits,
) -> Result<Parsed<'b, 'h>, Refusal> {
    let mut request = httparse::Request::new(headers);
    let head = request.parse(buf);
    frame(buf, request, head, limits)
}

/// [`parse`] into header slots that need no initializing. The server's
/// hot path: an initialized array is [`MAX_HEADERS`] headers, 2 KiB of
/// stores per request (a tenth of the user-space instructions of a
/// `GET /`) before a byte is parsed.
///
/// # Errors
/// Those of [`parse`].
pub fn parse_uninit<'b, 'h>(
    buf: &'b [u8],
    headers: &'h mut [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS],
    limits: &Limits,
) -> Result<Parsed<'b, 'h>, Refusal> {
    let mut request = httparse::Request::new(&mut []);
    let head = request.parse_with_uninit_headers(buf, headers);
    frame(buf, request, head, limits)
}

/// The rest of [`parse`], once `httparse` has looked at the head.
fn frame<'b, 'h>(
    buf: &'b [u8],
    request: httparse::Request<'h, 'b>,
    head: httparse::Result<usize>,
    limits: &Limits,
) -> Result<Parsed<'b, 'h>, Refusal> {
    // The 414 comes first, whatever else is wrong. For a complete head
    // that starts with its request line (no empty lines before it), the
    // target `check_request_line` measures is exactly the path httparse
    // found: skip the scan.
    match (&head, request.path) {
        (Ok(httparse::Status::Complete(_)), Some(path))
            if !buf.starts_with(b"\r") && !buf.starts_with(b"\n") =>
        {
            if path.len() > limits.max_uri {
                return Err(refuse(414, "request target too long"));
            }
        }
        _ => check_request_line(buf, limits)?,
    }
    let head_len = match head {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head {
                return Err(refuse(431, "request head too large"));
            }
            return Ok(Parsed::Partial {
                head_complete: false,
                continue_expected: false,
            });
        }
        Err(httparse::Error::TooManyHeaders) => return Err(refuse(431, "too many headers")),
        Err(httparse::Error::Version) => return Err(refuse(505, "not HTTP/1.x")),
        Err(_) => return Err(refuse(400, "malformed request")),
    };
    if head_len > limits.max_head {
        return Err(refuse(431, "request head too large"));
    }
    let method_token = request.method.unwrap_or("");
    let method = Method::from_token(method_token).ok_or(refuse(501, "method not implemented"))?;
    let target = request.path.unwrap_or("/");
    let version = request.version.unwrap_or(1);
    let headers: &'h [httparse::Header<'b>] = request.headers;
    let framing = Framing::of(headers, version)?;

    let rest = &buf[head_len..];
    let (body, body_len) = match framing.body {
        BodyKind::None => (Cow::Borrowed(&rest[..0]), 0),
        BodyKind::Length(n) => {
            if n > limits.max_body as u64 {
                return Err(refuse(413, "body too large"));
            }
            let n = n as usize;
            if rest.len() < n {
                return Ok(Parsed::Partial {
                    head_complete: true,
                    continue_expected: framing.expect_continue && rest.is_empty(),
                });
            }
            (Cow::Borrowed(&rest[..n]), n)
        }
        BodyKind::Chunked => match decode_chunked(rest, limits.max_body)? {
            Some((body, used)) => (Cow::Owned(body), used),
            None => {
                return Ok(Parsed::Partial {
                    head_complete: true,
                    continue_expected: framing.expect_continue && rest.is_empty(),
                })
            }
        },
    };
    let request = Request {
        method,
        target,
        version,
        headers,
        body,
        keep_alive: framing.keep_alive,
    };
    Ok(Parsed::Complete(request, head_len + body_len))
}

/// 414 for a request line whose target is too long, decided before the
/// head is complete: a client streaming an endless URI must not be able
/// to make the server wait for the 8 KiB head limit.
fn check_request_line(buf: &[u8], limits: &Limits) -> Result<(), Refusal> {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = &buf[..line_end];
    // "METHOD SP target SP HTTP/1.1": the target is between the spaces.
    let target_len = match line.iter().position(|&b| b == b' ') {
        Some(first) => {
            let after = &line[first + 1..];
            after.iter().position(|&b| b == b' ').unwrap_or(after.len())
        }
        None => 0,
    };
    if target_len > limits.max_uri {
        return Err(refuse(414, "request target too long"));
    }
    Ok(())
}

enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

struct Framing {
    body: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
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
    fn of(headers: &[httparse::Header<'_>], version: u8) -> Result<Framing, Refusal> {
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
            let value = trim_ows(header.value);
            match name {
                FramingHeader::ContentLength => {
                    // Digits only: "+5", " 5 5" or "0x5" are smuggling material.
                    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                        return Err(refuse(400, "invalid Content-Length"));
                    }
                    let n = value.iter().try_fold(0u64, |n, &digit| {
                        n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
                    });
                    let n = n.ok_or(refuse(400, "invalid Content-Length"))?;
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
                        let token = trim_ows(token);
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
                FramingHeader::Host => hosts += 1,
                FramingHeader::Other => {}
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
                Some(0) | None => BodyKind::None,
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

/// `value` without the optional whitespace (SP, HTAB) around it.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |at| at + 1);
    &value[start..end]
}

/// Decodes a chunked body at the start of `buf`: the body and the bytes it
/// took, or `None` if incomplete.
fn decode_chunked(buf: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>, Refusal> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Method, target, body, keep-alive and bytes used of a request.
    type Framed = (Method, String, Vec<u8>, bool, usize);

    fn outcome(buf: &[u8]) -> Result<Option<Framed>, u16> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        framed(parse(buf, &mut headers, &Limits::default()))
    }

    fn framed(parsed: Result<Parsed<'_, '_>, Refusal>) -> Result<Option<Framed>, u16> {
        match parsed {
            Ok(Parsed::Complete(r, used)) => Ok(Some((
                r.method,
                r.target.to_string(),
                r.body.to_vec(),
                r.keep_alive,
                used,
            ))),
            Ok(Parsed::Partial { .. }) => Ok(None),
            Err(refusal) => Err(refusal.status),
        }
    }

    #[test]
    fn good_requests() {
        let get = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            outcome(get),
            Ok(Some((
                Method::Get,
                "/a?b=1".into(),
                vec![],
                true,
                get.len()
            )))
        );
        let post = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET";
        assert_eq!(
            outcome(post),
            Ok(Some((
                Method::Post,
                "/echo".into(),
                b"hello".to_vec(),
                true,
                post.len() - 3
            )))
        );
        let chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(
            outcome(chunked),
            Ok(Some((
                Method::Post,
                "/".into(),
                b"hello world".to_vec(),
                true,
                chunked.len()
            )))
        );
        let http10 = b"GET / HTTP/1.0\r\n\r\n";
        assert!(!outcome(http10).unwrap().unwrap().3, "1.0 closes");
        let http10_ka = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        assert!(outcome(http10_ka).unwrap().unwrap().3);
        let close = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        assert!(!outcome(close).unwrap().unwrap().3);
    }

    #[test]
    fn bad_requests_get_their_status() {
        let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(5000));
        let big_head = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(9000)
        );
        let many = format!(
            "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
            "X-A: 1\r\n".repeat(MAX_HEADERS + 1)
        );
        let cases: Vec<(&[u8], u16)> = vec![
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", 413),
            (b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
            (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n", 417),
            (long_uri.as_bytes(), 414),
            (&long_uri.as_bytes()[..4500], 414),
            (big_head.as_bytes(), 431),
            (&big_head.as_bytes()[..8500], 431),
            (many.as_bytes(), 431),
            // Host is a URI host: ASCII only, IDNs as punycode.
            (b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9.example\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: caf\xe9.example\r\n\r\n", 400),
            (b"GET / HTTP/1.0\r\nHost: \xff\r\n\r\n", 400),
            // Framing headers stay strict: obs-text is no digit or token.
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\x85\r\n\r\nhello", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \xa05\r\n\r\nhello", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\xa0\r\n\r\n0\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunk\xc3\xa9d\r\n\r\n0\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\x85\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\xff\r\n\r\n", 400),
        ];
        for (buf, status) in cases {
            assert_eq!(
                outcome(buf).map(|_| ()),
                Err(status),
                "{:?}",
                String::from_utf8_lossy(&buf[..buf.len().min(120)])
            );
        }
    }

    #[test]
    fn incomplete_requests_wait() {
        for buf in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        ] {
            assert_eq!(outcome(buf), Ok(None), "{:?}", String::from_utf8_lossy(buf));
        }
    }

    /// Regression (issue 14, part 3): a header value with obs-text (bytes
    /// 0x80-0xFF that are not UTF-8, RFC 9110 section 5.5) made the whole
    /// request a 400, whatever the header's name. Values of headers that
    /// do not frame the request are opaque bytes, kept as sent; names may
    /// hold `-`, `_`, `.` and digits; the body beside them is framed by
    /// Content-Length or chunked coding as ever.
    #[test]
    fn regression_obs_text_in_header_values_is_accepted() {
        const ISSUE: &[u8] =
            b"My-Custom-Header-0987654321: \t\t\tCustom-Value;\x60\x85\x93\xA0\r\n";
        let head = |line: &[u8], rest: &[u8]| [line, b"Host: x\r\n", ISSUE, rest].concat();
        // Request, body, keep-alive, bytes used (all of it).
        let cases: Vec<(Vec<u8>, &[u8], bool)> = vec![
            (head(b"GET / HTTP/1.1\r\n", b"\r\n"), b"", true),
            (
                head(
                    b"GET / HTTP/1.1\r\n",
                    b"x_trace.id-7: \xff\r\n0.9_a-b: \x80 \xfe\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
                ),
                b"",
                true,
            ),
            (
                head(b"POST /e HTTP/1.1\r\n", b"Content-Length: 5\r\n\r\nhello"),
                b"hello",
                true,
            ),
            (
                head(
                    b"POST /e HTTP/1.1\r\n",
                    b"Transfer-Encoding: chunked\r\nX-After: \xe9t\xe9\r\n\r\n5\r\nhello\r\n6;ext=\"v\"\r\n world\r\n0\r\nX-T: \x85\r\n\r\n",
                ),
                b"hello world",
                true,
            ),
            (
                head(b"GET / HTTP/1.0\r\n", b"Connection: keep-alive\r\n\r\n"),
                b"",
                true,
            ),
            (head(b"GET / HTTP/1.1\r\n", b"Connection: close\r\n\r\n"), b"", false),
        ];
        for (buf, body, keep_alive) in &cases {
            let what = String::from_utf8_lossy(buf);
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let Ok(Parsed::Complete(request, used)) = parse(buf, &mut headers, &Limits::default())
            else {
                panic!("not framed: {what:?}");
            };
            assert_eq!(
                (&request.body[..], request.keep_alive),
                (*body, *keep_alive),
                "{what:?}"
            );
            assert_eq!(used, buf.len(), "{what:?}");
            // httparse drops the tabs before a value, nothing else.
            let value = b"Custom-Value;\x60\x85\x93\xA0";
            assert_eq!(
                request.header("my-custom-header-0987654321"),
                Some(&value[..])
            );
            assert_eq!(request.header_str("My-Custom-Header-0987654321"), None);
            assert_eq!(
                request
                    .header_lossy("My-Custom-Header-0987654321")
                    .as_deref(),
                Some("Custom-Value;`\u{FFFD}\u{FFFD}\u{FFFD}")
            );
            assert_eq!(outcome_uninit(buf), outcome(buf), "{what:?}");
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Ok(Parsed::Complete(request, _)) = parse(&cases[1].0, &mut headers, &Limits::default())
        else {
            panic!("not framed");
        };
        assert_eq!(request.header("X_TRACE.ID-7"), Some(&b"\xff"[..]));
        assert_eq!(request.header("0.9_a-b"), Some(&b"\x80 \xfe"[..]));
        assert_eq!(request.header_str("x-utf8"), Some("caf\u{e9}"));
        assert!(matches!(
            request.header_lossy("x-utf8"),
            Some(Cow::Borrowed("caf\u{e9}"))
        ));
        assert_eq!(request.header_str("missing"), None);
    }

    /// Regression: an HTTP/1.0 request with `Expect: 100-continue` was
    /// sent `HTTP/1.1 100 Continue`, which RFC 9110 section 10.1.1 forbids
    /// (the server must ignore the expectation); a 1.0 client can take the
    /// interim response for the final one.
    #[test]
    fn regression_http10_expect_continue_is_ignored() {
        let head = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        assert!(matches!(
            parse(head, &mut headers, &Limits::default()),
            Ok(Parsed::Partial {
                head_complete: true,
                continue_expected: false
            })
        ));
    }

    /// Regression: an absolute-form target (`GET http://host/health`),
    /// which servers must accept (RFC 9112 section 3.2.2), had the whole
    /// URL as its path, so no route matched it.
    #[test]
    fn regression_absolute_form_target_has_its_path() {
        for (target, path) in [
            ("/a/b?c=d", "/a/b"),
            ("*", "*"),
            ("http://example.test/health?x=1", "/health"),
            ("HTTPS://example.test:8443/a", "/a"),
            ("http://example.test", "/"),
            ("http://example.test?q", "/"),
        ] {
            let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let Ok(Parsed::Complete(r, _)) =
                parse(request.as_bytes(), &mut headers, &Limits::default())
            else {
                panic!("{target} not framed");
            };
            assert_eq!(r.target, target);
            assert_eq!(r.path(), path, "{target}");
        }
    }

    fn outcome_uninit(buf: &[u8]) -> Result<Option<Framed>, u16> {
        let mut headers = [MaybeUninit::uninit(); MAX_HEADERS];
        framed(parse_uninit(buf, &mut headers, &Limits::default()))
    }

    /// The server's `parse_uninit` and `parse` frame alike, including the
    /// corners of their shortcuts: the 414 check on a complete head (empty
    /// lines before the request line), header values (opaque bytes, ASCII
    /// only in Host and the framing headers).
    #[test]
    fn parse_uninit_frames_as_parse_does() {
        let long = "a".repeat(5000);
        let corpus: Vec<Vec<u8>> = vec![
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nhOsT: x\r\nX-A: caf\xc3\xa9\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \xff\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: \xff\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, CLOSE\r\n\r\n".to_vec(),
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n".to_vec(),
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET".to_vec(),
            b"POST / HTTP/1.1\r\nHost: x\r\nCONTENT-LENGTH: 1\r\ncontent-length: 2\r\n\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            b"GARBAGE\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec(),
            format!("GET /{long} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
            format!("GET /{long} HTTP/1.1\r\nHost").into_bytes(),
            format!("GET /{long} HTTP/1.1\r\nBad Header\r\n\r\n").into_bytes(),
            format!("\r\nGET /{long} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
            format!("\nGET /{long} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
        ];
        for buf in &corpus {
            assert_eq!(
                outcome_uninit(buf),
                outcome(buf),
                "{:?}",
                String::from_utf8_lossy(&buf[..buf.len().min(80)])
            );
        }
        let status = |buf: &[u8]| outcome_uninit(buf).map(|_| ());
        assert_eq!(status(&corpus[1]), Ok(()), "UTF-8 text is accepted");
        assert_eq!(status(&corpus[2]), Err(400), "UTF-8 in Host: 400");
        assert_eq!(status(&corpus[3]), Ok(()), "obs-text is accepted");
        assert_eq!(status(&corpus[4]), Err(400), "obs-text in Host: 400");
        assert_eq!(status(&corpus[5]), Err(400), "obs-text in Connection: 400");
        assert_eq!(status(&corpus[17]), Err(414));
    }

    #[test]
    fn continue_is_expected_only_before_the_body() {
        let head =
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        assert!(matches!(
            parse(head, &mut headers, &Limits::default()),
            Ok(Parsed::Partial {
                head_complete: true,
                continue_expected: true
            })
        ));
        let mut with_body = head.to_vec();
        with_body.push(b'a');
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        assert!(matches!(
            parse(&with_body, &mut headers, &Limits::default()),
            Ok(Parsed::Partial {
                head_complete: true,
                continue_expected: false
            })
        ));
    }
}
