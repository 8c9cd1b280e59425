//! A raw HTTP/1.1 client for the integration tests: requests are bytes the
//! test writes, responses are read and framed strictly (CRLF lines, a
//! Content-Length on every response with a body), so a framing bug in the
//! server fails the test instead of being papered over by a lenient client.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use super::{connect, read_to_eof};

/// One parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The status line and headers as received, for failure messages.
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_length(&self) -> u64 {
        self.header("content-length")
            .unwrap_or_else(|| panic!("no Content-Length in {}", self.head))
            .parse()
            .expect("numeric Content-Length")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status and body; returns `self` for further checks.
    pub fn expect(&self, status: u16, body: &[u8]) -> &Response {
        assert_eq!(self.status, status, "status of {}", self.head);
        assert!(
            self.body == body,
            "body of {}: got {:?}, want {:?}",
            self.head,
            String::from_utf8_lossy(&self.body[..self.body.len().min(200)]),
            String::from_utf8_lossy(&body[..body.len().min(200)]),
        );
        self
    }
}

/// Reads a response head (status line and headers); every line must end
/// in CRLF.
pub fn read_head(reader: &mut impl BufRead) -> Response {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => panic!("EOF inside a response head; got {head:?}"),
            Ok(_) => {}
            Err(e) => panic!("reading a response head failed ({e}); got {head:?}"),
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
        assert!(line.ends_with("\r\n"), "line without CRLF: {line:?}");
    }
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once(':').expect("header has a colon");
            (name.to_string(), value.trim().to_string())
        })
        .collect();
    Response {
        status,
        head,
        headers,
        body: Vec::new(),
    }
}

/// Reads one whole response. `head_request`: it answers a HEAD, so no body
/// follows whatever Content-Length says. A 304 must carry no length; every
/// other response must carry one (1xx included), and only a final answer
/// (2xx and up) to a non-HEAD request has a body.
pub fn read_response(reader: &mut impl BufRead, head_request: bool) -> Response {
    let mut response = read_head(reader);
    if response.status == 304 {
        assert_eq!(
            response.header("content-length"),
            None,
            "304 carries no length: {}",
            response.head
        );
        return response;
    }
    let length = response.content_length() as usize;
    if !head_request && response.status >= 200 {
        response.body = vec![0; length];
        if let Err(e) = reader.read_exact(&mut response.body) {
            panic!("body of {}: {e}", response.head);
        }
    }
    response
}

/// `GET path` on a keep-alive connection.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: tenk\r\n\r\n").into_bytes()
}

/// A keep-alive client connection with its own read buffer.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let writer = connect(addr);
        Client {
            reader: BufReader::new(writer.try_clone().expect("clone socket")),
            writer,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send request");
    }

    pub fn response(&mut self, head_request: bool) -> Response {
        read_response(&mut self.reader, head_request)
    }

    /// Sends `request` and reads its response.
    pub fn exchange(&mut self, request: &[u8]) -> Response {
        self.send(request);
        self.response(request.starts_with(b"HEAD "))
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.exchange(&get(path))
    }

    /// GET with extra header lines (each ending in CRLF).
    pub fn get_with(&mut self, path: &str, headers: &str) -> Response {
        self.exchange(format!("GET {path} HTTP/1.1\r\nHost: tenk\r\n{headers}\r\n").as_bytes())
    }

    /// Asserts the server sends nothing more and closes cleanly.
    pub fn expect_eof(&mut self, what: &str) {
        let rest = read_to_eof(what, &mut self.reader);
        assert!(
            rest.is_empty(),
            "{what}: {} unexpected bytes before EOF: {:?}",
            rest.len(),
            String::from_utf8_lossy(&rest[..rest.len().min(300)])
        );
    }
}
