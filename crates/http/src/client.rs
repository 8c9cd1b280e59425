//! HTTP/1.1 client framing, the other side of [`parse`](crate::parse):
//! the request bytes, and a response reader that checks the status line and
//! the framing (Content-Length, chunked, or until close) without keeping
//! bodies. I/O free; heads are parsed by `httparse`. The load generator
//! (`tenk load http`) is its user.

/// Headers a response head may carry before it is rejected.
const MAX_HEADERS: usize = 64;
/// A response head larger than this is malformed for our purposes.
const MAX_HEAD: usize = 64 * 1024;

/// Builds one request: `METHOD path HTTP/1.1`, `Host`, the user's headers,
/// and `Content-Length` with the body when there is one.
pub fn build_request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("host") {
        out.extend_from_slice(format!("Host: {host}\r\n").as_bytes());
    }
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if (!body.is_empty() || method == "POST" || method == "PUT") && !has("content-length") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A response that was read completely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The server will close the connection after it.
    pub close: bool,
}

/// Why a response could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// The head did not parse, or its framing headers are contradictory.
    Malformed(String),
    /// The connection closed in the middle of a response.
    Truncated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// `remaining` body bytes of a Content-Length response.
    Sized {
        remaining: u64,
    },
    /// Waiting for a chunk-size line.
    ChunkSize,
    /// Inside a chunk's data.
    ChunkData {
        remaining: u64,
    },
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer lines after the last chunk, up to an empty line.
    Trailers,
    /// No length given: the body runs until the server closes.
    UntilClose,
}

/// Reads the responses of one connection, in order.
#[derive(Debug)]
pub struct ResponseReader {
    state: State,
    /// The response being read (its head is done).
    current: Response,
    /// The request being answered was a HEAD (no body follows).
    head_request: bool,
}

impl ResponseReader {
    /// A reader for responses to requests of `method`.
    pub fn new(method: &str) -> ResponseReader {
        ResponseReader {
            state: State::Head,
            current: Response {
                status: 0,
                close: false,
            },
            head_request: method.eq_ignore_ascii_case("HEAD"),
        }
    }

    /// Whether a response is partly read.
    pub fn in_response(&self) -> bool {
        self.state != State::Head
    }

    /// Consumes what it can of `data`: returns the bytes consumed and the
    /// response completed by them, if any. Call again with the rest while
    /// it consumes something; body bytes are consumed as they come and
    /// never kept.
    ///
    /// # Errors
    /// A malformed head or chunk framing.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Response>), FramingError> {
        match self.state {
            State::Head => self.read_head(data),
            State::Sized { remaining } => {
                let take = remaining.min(data.len() as u64);
                let remaining = remaining - take;
                if remaining == 0 {
                    self.state = State::Head;
                    Ok((take as usize, Some(self.current)))
                } else {
                    self.state = State::Sized { remaining };
                    Ok((take as usize, None))
                }
            }
            State::ChunkSize => match httparse::parse_chunk_size(data) {
                Ok(httparse::Status::Complete((used, 0))) => {
                    self.state = State::Trailers;
                    Ok((used, None))
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    self.state = State::ChunkData { remaining: size };
                    Ok((used, None))
                }
                Ok(httparse::Status::Partial) => Ok((0, None)),
                Err(_) => Err(FramingError::Malformed("bad chunk size".into())),
            },
            State::ChunkData { remaining } => {
                let take = remaining.min(data.len() as u64);
                self.state = if remaining == take {
                    State::ChunkEnd
                } else {
                    State::ChunkData {
                        remaining: remaining - take,
                    }
                };
                Ok((take as usize, None))
            }
            State::ChunkEnd => {
                if data.len() < 2 {
                    return Ok((0, None));
                }
                if &data[..2] != b"\r\n" {
                    return Err(FramingError::Malformed("chunk not followed by CRLF".into()));
                }
                self.state = State::ChunkSize;
                Ok((2, None))
            }
            State::Trailers => {
                let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
                    return Ok((0, None));
                };
                if end == 0 {
                    self.state = State::Head;
                    return Ok((2, Some(self.current)));
                }
                Ok((end + 2, None))
            }
            State::UntilClose => Ok((data.len(), None)),
        }
    }

    /// The server closed the connection: completes a response whose body
    /// runs until close.
    ///
    /// # Errors
    /// `Truncated` if a response was cut short.
    pub fn eof(&mut self) -> Result<Option<Response>, FramingError> {
        match self.state {
            State::Head => Ok(None),
            State::UntilClose => {
                self.state = State::Head;
                Ok(Some(self.current))
            }
            _ => Err(FramingError::Truncated),
        }
    }

    fn read_head(&mut self, data: &[u8]) -> Result<(usize, Option<Response>), FramingError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let used = match response.parse(data) {
            Ok(httparse::Status::Complete(used)) => used,
            Ok(httparse::Status::Partial) => {
                if data.len() > MAX_HEAD {
                    return Err(FramingError::Malformed("response head too large".into()));
                }
                return Ok((0, None));
            }
            Err(e) => return Err(FramingError::Malformed(format!("bad response head: {e}"))),
        };
        let status = response.code.unwrap_or(0);
        let mut close = response.version == Some(0);
        let mut length: Option<u64> = None;
        let mut chunked = false;
        for header in response.headers.iter() {
            let value = std::str::from_utf8(header.value).unwrap_or("").trim();
            if header.name.eq_ignore_ascii_case("content-length") {
                let n: u64 = value.parse().map_err(|_| {
                    FramingError::Malformed(format!("bad Content-Length {value:?}"))
                })?;
                if length.is_some_and(|m| m != n) {
                    return Err(FramingError::Malformed("differing Content-Lengths".into()));
                }
                length = Some(n);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if header.name.eq_ignore_ascii_case("connection") {
                for token in value.split(',') {
                    let token = token.trim();
                    if token.eq_ignore_ascii_case("close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        close = false;
                    }
                }
            }
        }
        if chunked && length.is_some() {
            return Err(FramingError::Malformed(
                "both Content-Length and chunked".into(),
            ));
        }
        // 1xx responses are interim: the final response follows.
        if (100..200).contains(&status) {
            return Ok((used, None));
        }
        self.current = Response { status, close };
        let bodiless = self.head_request || status == 204 || status == 304;
        self.state = if bodiless {
            State::Head
        } else if chunked {
            State::ChunkSize
        } else {
            match length {
                Some(0) => State::Head,
                Some(n) => State::Sized { remaining: n },
                None => {
                    self.current.close = true;
                    State::UntilClose
                }
            }
        };
        if self.state == State::Head {
            return Ok((used, Some(self.current)));
        }
        Ok((used, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `step` bytes, keeping unconsumed bytes as
    /// a connection's input buffer would; returns the responses read.
    fn read_all(method: &str, wire: &[u8], step: usize) -> Result<Vec<Response>, FramingError> {
        let mut reader = ResponseReader::new(method);
        let mut pending = Vec::new();
        let mut out = Vec::new();
        for piece in wire.chunks(step) {
            pending.extend_from_slice(piece);
            loop {
                let (used, response) = reader.feed(&pending)?;
                pending.drain(..used);
                out.extend(response);
                if used == 0 || pending.is_empty() {
                    break;
                }
            }
        }
        out.extend(reader.eof()?);
        Ok(out)
    }

    const OK: Response = Response {
        status: 200,
        close: false,
    };

    #[test]
    fn framings_split_at_every_byte() {
        let cases: &[(&str, &[u8], Vec<Response>)] = &[
            (
                "GET",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                vec![OK],
            ),
            (
                "GET",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
                vec![OK],
            ),
            (
                "GET",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                vec![Response { status: 404, close: false }],
            ),
            (
                "HEAD",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                vec![OK],
            ),
            (
                "GET",
                b"HTTP/1.1 200 OK\r\n\r\nbody until close",
                vec![Response { status: 200, close: true }],
            ),
            (
                "GET",
                b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
                vec![Response { status: 200, close: true }],
            ),
            (
                "GET",
                b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
                vec![Response { status: 204, close: true }],
            ),
        ];
        for (method, wire, expected) in cases {
            for step in 1..=wire.len() {
                let got = read_all(method, wire, step).unwrap();
                assert_eq!(
                    &got,
                    expected,
                    "{:?} in steps of {step}",
                    String::from_utf8_lossy(wire)
                );
            }
        }
    }

    #[test]
    fn pipelined_responses_come_out_in_order() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let statuses: Vec<u16> = read_all("GET", wire, wire.len())
            .unwrap()
            .iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, [200, 500, 201]);
    }

    #[test]
    fn bad_framing_is_rejected() {
        for wire in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX",
            b"NOT HTTP\r\n\r\n",
        ] {
            assert!(
                matches!(
                    read_all("GET", wire, wire.len()),
                    Err(FramingError::Malformed(_))
                ),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn a_cut_body_is_truncated() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
        assert_eq!(read_all("GET", wire, 4), Err(FramingError::Truncated));
    }

    #[test]
    fn requests_carry_host_headers_and_body_length() {
        let req = build_request(
            "POST",
            "example:80",
            "/echo",
            &[("X-A".into(), "1".into())],
            b"abc",
        );
        assert_eq!(
            req,
            b"POST /echo HTTP/1.1\r\nHost: example:80\r\nX-A: 1\r\nContent-Length: 3\r\n\r\nabc"
        );
        let get = build_request("GET", "h", "/", &[], b"");
        assert_eq!(get, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    }
}
