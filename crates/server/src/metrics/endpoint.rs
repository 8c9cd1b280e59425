//! The metrics listener's connections, as worker 0's [`Serving`] keeps
//! them apart from the server's own: one request each, `GET /metrics`
//! answered 200 with the text, anything else 404, then closed.
//!
//! [`Serving`]: crate::serving::Serving

use reactor::{Io, Token};

use super::{Render, Scrape};
use crate::group::Group;

/// The longest request head taken; a longer one is answered 431.
const MAX_HEAD: usize = 8 * 1024;

/// The listener's token, its connections open now and the server's
/// renderer.
pub(crate) struct Endpoint {
    pub(crate) listener: Option<Token>,
    conns: Vec<Token>,
    render: Render,
}

impl Endpoint {
    pub(crate) fn new(render: Render) -> Endpoint {
        Endpoint {
            listener: None,
            conns: Vec::new(),
            render,
        }
    }

    /// Connections open now (the hot path's test: none, nothing to look up).
    #[inline]
    pub(crate) fn open(&self) -> bool {
        !self.conns.is_empty()
    }

    /// Whether `conn` is one of the listener's.
    pub(crate) fn owns(&self, conn: Token) -> bool {
        self.conns.contains(&conn)
    }

    /// Takes `conn` if `listener` is the metrics listener.
    pub(crate) fn accepted(&mut self, listener: Token, conn: Token) -> bool {
        if self.listener != Some(listener) {
            return false;
        }
        self.conns.push(conn);
        true
    }

    pub(crate) fn closed(&mut self, conn: Token) {
        self.conns.retain(|&c| c != conn);
    }

    /// Answers the request in `data` once its head is complete, then
    /// closes; gives the bytes used. A `GET /metrics` (or `HEAD`) is
    /// answered with the figures of `group`, this reactor's (`id`)
    /// published live first.
    pub(crate) fn on_data(
        &self,
        io: &mut Io,
        conn: Token,
        data: &[u8],
        group: &Group,
        id: usize,
    ) -> usize {
        let Some(end) = head_end(data) else {
            if data.len() > MAX_HEAD {
                answer(io, conn, "431 Request Header Fields Too Large", "", b"");
                return data.len();
            }
            return 0;
        };
        let (method, path) = request_line(&data[..end]);
        if path == Some("/metrics") && matches!(method, Some("GET" | "HEAD")) {
            // Live figures first, so the board holds nothing older
            // than what an earlier scrape showed.
            group.publish(id, io.stats());
            let board = group.board();
            let scrape = Scrape {
                board: &board,
                transport: io.transport_counts(),
                preamble: io.preamble_counts(),
            };
            let mut text = (self.render)(&scrape);
            super::process::render(&mut text);
            let body = if method == Some("HEAD") { "" } else { &text };
            // Content-Length is the text's either way (RFC 9110 9.3.2).
            answer_sized(
                io,
                conn,
                "200 OK",
                http::metrics::CONTENT_TYPE,
                body,
                text.len(),
            );
        } else {
            answer(io, conn, "404 Not Found", "text/plain", b"GET /metrics\n");
        }
        data.len()
    }
}

/// Where the head ends (after its blank line), if it has.
fn head_end(data: &[u8]) -> Option<usize> {
    data.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
        .or_else(|| data.windows(2).position(|w| w == b"\n\n").map(|at| at + 2))
}

/// The method and the path (the target before any `?`) of a head.
fn request_line(head: &[u8]) -> (Option<&str>, Option<&str>) {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or_default().trim_end();
    let mut words = line.split(' ');
    let method = words.next();
    let path = words.next().map(|t| t.split('?').next().unwrap_or(t));
    (method, path)
}

fn answer(io: &mut Io, conn: Token, status: &str, content_type: &str, body: &[u8]) {
    let body = std::str::from_utf8(body).unwrap_or_default();
    answer_sized(io, conn, status, content_type, body, body.len());
}

/// One response with `Connection: close`, then the connection closes
/// once it is written.
fn answer_sized(
    io: &mut Io,
    conn: Token,
    status: &str,
    content_type: &str,
    body: &str,
    length: usize,
) {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n");
    if !content_type.is_empty() {
        out.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    io.send(conn, out.as_bytes());
    io.close_when_flushed(conn);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_and_head_ends() {
        for (head, method, path) in [
            (
                &b"GET /metrics HTTP/1.1\r\n"[..],
                Some("GET"),
                Some("/metrics"),
            ),
            (
                b"GET /metrics?x=1 HTTP/1.0\n",
                Some("GET"),
                Some("/metrics"),
            ),
            (b"POST / HTTP/1.1\r\n", Some("POST"), Some("/")),
            (b"\xff\xfe", Some(""), None),
        ] {
            assert_eq!(request_line(head), (method, path), "{head:?}");
        }
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
    }
}
