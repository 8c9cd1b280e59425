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

use framing::{decode_chunked, BodyKind, Framing};

pub(crate) mod framing;
#[cfg(test)]
mod tests;

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
    ///
    /// Inline, with the origin form's check: the router asks for every
    /// request, and as a call it cost about 12 instructions a request.
    #[inline]
    pub fn path(&self) -> &str {
        let target = if self.target.starts_with('/') {
            self.target
        } else {
            origin_form(self.target)
        };
        // A byte scan: paths are short, and `split_once` sets up a
        // searcher that costs more than the scan itself.
        match target.bytes().position(|b| b == b'?') {
            Some(at) => &target[..at],
            None => target,
        }
    }
}

/// The path-and-query of an absolute-form target; other targets as they are.
#[inline(never)]
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
    let method = |token| Method::from_token(token).ok_or(refuse(501, "method not implemented"));
    let Some(head) = frame_head(buf, request, head, limits, method)? else {
        return Ok(Parsed::Partial {
            head_complete: false,
            continue_expected: false,
        });
    };
    let framing = head.framing;
    let rest = &buf[head.len..];
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
        method: head.method,
        target: head.target,
        version: head.version,
        headers: head.headers,
        body,
        keep_alive: framing.keep_alive,
    };
    Ok(Parsed::Complete(request, head.len + body_len))
}

/// A request head that passed every check of a request but its body's.
pub(crate) struct Head<'b, 'h, M> {
    /// Bytes of the head, its empty line included.
    pub(crate) len: usize,
    pub(crate) method: M,
    pub(crate) target: &'b str,
    pub(crate) version: u8,
    pub(crate) headers: &'h [httparse::Header<'b>],
    pub(crate) framing: Framing,
}

/// The head-only part of framing, shared by the server ([`parse`]) and
/// the reverse proxy ([`crate::proxy::parse_request`]), so that both
/// refuse the same requests: `None` while the head is incomplete, the
/// refusal of a bad one (414, 431, 505, 400, the smuggling refusals of
/// [`Framing::of`]). `method` judges the method token, between the
/// head's refusals and the framing's, where the server's 501 has always
/// been.
// Inlined into `frame`, like `Framing::of`: this is the hot path of
// every request the server answers. Always: with a plain `#[inline]`,
// bench/instructions.sh counted 10 more instructions per request.
#[inline(always)]
pub(crate) fn frame_head<'b, 'h, M>(
    buf: &'b [u8],
    request: httparse::Request<'h, 'b>,
    head: httparse::Result<usize>,
    limits: &Limits,
    method: impl FnOnce(&'b str) -> Result<M, Refusal>,
) -> Result<Option<Head<'b, 'h, M>>, Refusal> {
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
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(refuse(431, "too many headers")),
        Err(httparse::Error::Version) => return Err(refuse(505, "not HTTP/1.x")),
        Err(_) => return Err(refuse(400, "malformed request")),
    };
    if head_len > limits.max_head {
        return Err(refuse(431, "request head too large"));
    }
    let method = method(request.method.unwrap_or(""))?;
    let target = request.path.unwrap_or("/");
    let version = request.version.unwrap_or(1);
    let headers: &'h [httparse::Header<'b>] = request.headers;
    let framing = Framing::of(headers, version)?;
    Ok(Some(Head {
        len: head_len,
        method,
        target,
        version,
        headers,
        framing,
    }))
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
