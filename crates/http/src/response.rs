//! Responses and their encoding.

use std::borrow::Cow;

use crate::date::DateCache;
use crate::status::reason;

/// What a handler answers.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: Cow<'static, str>,
    pub headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    pub body: Cow<'static, [u8]>,
    /// Close the connection after this response.
    pub close: bool,
    /// The Content-Length to announce when the body goes separately (a
    /// file sent with `sendfile`); `None` announces `body`'s length.
    pub body_len: Option<u64>,
}

impl Response {
    /// A response with a body of the given type.
    pub fn new(
        status: u16,
        content_type: impl Into<Cow<'static, str>>,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Response {
        Response {
            status,
            content_type: content_type.into(),
            headers: Vec::new(),
            body: body.into(),
            close: false,
            body_len: None,
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<Cow<'static, [u8]>>) -> Response {
        Response::new(status, "text/plain", body)
    }

    /// Adds a header.
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Appends the encoded response to `out`. `head` omits the body (its
    /// Content-Length is still that of the body a GET would get).
    /// `keep_alive` and `version` decide the Connection header: `close`
    /// when the connection ends, `keep-alive` for an HTTP/1.0 client that
    /// asked for it.
    pub fn encode(
        &self,
        out: &mut Vec<u8>,
        date: &DateCache,
        head: bool,
        keep_alive: bool,
        version: u8,
    ) {
        let keep_alive = keep_alive && !self.close;
        out.extend_from_slice(b"HTTP/1.1 ");
        push_number(out, u64::from(self.status));
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\nServer: tenk\r\nDate: ");
        out.extend_from_slice(date.as_bytes());
        // 1xx, 204 and 304 have no body, and 1xx and 204 no Content-Length
        // (RFC 9110 §8.6, §15.3.5, §15.4.5).
        let bodiless = self.status < 200 || self.status == 204 || self.status == 304;
        if !bodiless {
            out.extend_from_slice(b"\r\nContent-Type: ");
            out.extend_from_slice(self.content_type.as_bytes());
            out.extend_from_slice(b"\r\nContent-Length: ");
            push_number(out, self.body_len.unwrap_or(self.body.len() as u64));
        }
        out.extend_from_slice(b"\r\n");
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if version == 0 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head && !bodiless {
            out.extend_from_slice(&self.body);
        }
    }
}

fn push_number(out: &mut Vec<u8>, n: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
}

/// A fixed response encoded once per second (when the Date changes) for
/// the common case: HTTP/1.1, keep-alive, not HEAD. Serving it is one
/// `memcpy`.
#[derive(Debug)]
pub struct CachedResponse {
    response: Response,
    bytes: Vec<u8>,
    second: u64,
}

impl CachedResponse {
    pub fn new(response: Response) -> CachedResponse {
        CachedResponse {
            response,
            bytes: Vec::new(),
            second: u64::MAX,
        }
    }

    /// Appends the response to `out`, re-encoding the cache only when the
    /// date moved on or the request is not the common case.
    pub fn encode(
        &mut self,
        out: &mut Vec<u8>,
        date: &DateCache,
        head: bool,
        keep_alive: bool,
        version: u8,
    ) {
        if head || !keep_alive || version == 0 || self.response.close {
            self.response.encode(out, date, head, keep_alive, version);
            return;
        }
        if self.second != date.second() {
            self.bytes.clear();
            self.response.encode(&mut self.bytes, date, false, true, 1);
            self.second = date.second();
        }
        out.extend_from_slice(&self.bytes);
    }

    /// The response it encodes.
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// The status it answers with.
    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// Whether it ends the connection (its response's `close`).
    pub fn closes(&self) -> bool {
        self.response.close
    }

    /// Its body length.
    pub fn body_len(&self) -> usize {
        self.response.body.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn date() -> DateCache {
        let mut d = DateCache::default();
        d.refresh(UNIX_EPOCH + Duration::from_secs(784_111_777));
        d
    }

    #[test]
    fn encodes_what_nginx_sends() {
        let mut out = Vec::new();
        Response::text(200, &b"Hello, World!"[..]).encode(&mut out, &date(), false, true, 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: tenk\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
        );
    }

    #[test]
    fn head_close_and_http10_keep_alive() {
        let r = Response::text(404, &b"nope"[..]).header("X-A", "1");
        let mut out = Vec::new();
        r.encode(&mut out, &date(), true, false, 1);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(
            text.contains("Content-Length: 4\r\nConnection: close\r\nX-A: 1\r\n\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"), "HEAD has no body: {text}");
        let mut out = Vec::new();
        r.encode(&mut out, &date(), false, true, 0);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("Connection: keep-alive\r\n"));
    }

    #[test]
    fn no_content_has_no_length_and_no_body() {
        let mut out = Vec::new();
        Response::text(204, &b"ignored"[..]).encode(&mut out, &date(), false, true, 1);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("Content-Length"), "{text}");
        assert!(text.ends_with("GMT\r\n\r\n"), "{text}");
    }

    #[test]
    fn cache_reencodes_when_the_second_changes() {
        let mut cached = CachedResponse::new(Response::text(200, &b"hi"[..]));
        let mut d = date();
        let mut a = Vec::new();
        cached.encode(&mut a, &d, false, true, 1);
        d.refresh(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_778));
        let mut b = Vec::new();
        cached.encode(&mut b, &d, false, true, 1);
        assert_ne!(a, b);
        assert!(String::from_utf8(b).unwrap().contains("08:49:38"));
        let mut head = Vec::new();
        cached.encode(&mut head, &d, true, true, 1);
        assert!(head.ends_with(b"\r\n\r\n"));
    }
}
