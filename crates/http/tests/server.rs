//! `HttpServer` on a real reactor with small scripted apps, for what the
//! binary's fixed routes cannot reach: an app that does not answer (500),
//! answers twice, or asks to close; custom limits and header timeouts;
//! the counters an embedding program reads. Every test runs in each
//! trigger mode, bounded by a watchdog and by socket timeouts.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use http::middleware::{Middleware, Next};
use http::response::CachedResponse;
use http::route_stats::RouteStats;
use http::router::{Matched, Params, Router};
use http::server::{HttpStats, Reply};
use http::{App, HttpConfig, HttpServer, Limits, Method, Request, Response};
use reactor::{Config, Exit, Reactor, Trigger, Waker};

const TRIGGERS: [Trigger; 3] = [Trigger::Edge, Trigger::Level, Trigger::OneShot];

/// Bound on socket reads and on a whole reactor run.
const LIMIT: Duration = Duration::from_secs(10);

/// Answers by path: `/silent` not at all, `/twice` twice, `/close` with a
/// response that ends the connection, `/cached-close` with the same as a
/// cached response, anything else with its target. Records every target.
#[derive(Default)]
struct Scripted {
    seen: Vec<String>,
    cached_close: Option<CachedResponse>,
}

impl App for Scripted {
    fn handle(&mut self, request: &Request<'_, '_>, reply: &mut Reply<'_>) {
        self.seen.push(request.target.to_string());
        match request.path() {
            "/silent" => {}
            "/twice" => {
                reply.send(&Response::text(200, &b"first"[..]));
                reply.send(&Response::text(201, &b"second"[..]));
            }
            "/close" => {
                let mut response = Response::text(200, &b"bye"[..]);
                response.close = true;
                reply.send(&response);
            }
            "/cached-close" => {
                let cached = self.cached_close.get_or_insert_with(|| {
                    let mut response = Response::text(200, &b"bye"[..]);
                    response.close = true;
                    CachedResponse::new(response)
                });
                reply.send_cached(cached);
            }
            _ => reply.send(
                &Response::text(200, request.target.as_bytes().to_vec()).header("X-Scripted", "1"),
            ),
        }
    }
}

/// A server running on its own thread.
struct Running {
    addr: SocketAddr,
    waker: Waker,
    thread: JoinHandle<(HttpStats, Vec<String>, bool)>,
}

impl Running {
    fn start(trigger: Trigger, config: HttpConfig) -> Running {
        Running::start_app(trigger, config, Scripted::default, |app| {
            std::mem::take(&mut app.seen)
        })
    }

    /// Serves the app `make` builds on the server's thread (a router is
    /// not `Send`); `seen` gives what it recorded, at the end.
    fn start_app<A: App + 'static>(
        trigger: Trigger,
        config: HttpConfig,
        make: impl FnOnce() -> A + Send + 'static,
        seen: fn(&mut A) -> Vec<String>,
    ) -> Running {
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let server = HttpServer::new(make(), config);
            let reactor_config = Config {
                trigger,
                ..Config::default()
            };
            let mut reactor = Reactor::new(reactor_config, server).expect("reactor");
            let io = reactor.io();
            let listener = io
                .listen("127.0.0.1:0".parse().unwrap(), 128)
                .expect("listen");
            let addr = io.local_addr(listener).expect("local addr");
            tx.send((addr, io.waker())).expect("report address");
            let exit = reactor
                .run_until(Instant::now() + LIMIT)
                .expect("reactor run");
            let server = reactor.handler();
            let seen = seen(server.app());
            (server.stats(), seen, exit == Exit::Deadline)
        });
        let (addr, waker) = rx.recv_timeout(LIMIT).expect("server started");
        Running {
            addr,
            waker,
            thread,
        }
    }

    /// Stops the server; its counters and the targets its app saw.
    fn stop(self) -> (HttpStats, Vec<String>) {
        self.waker.stop().expect("stop");
        let (stats, seen, timed_out) = self.thread.join().expect("server thread");
        assert!(!timed_out, "watchdog: the test did not finish in {LIMIT:?}");
        (stats, seen)
    }
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Answer {
    fn has(&self, header: &str) -> bool {
        self.headers.contains(&format!("\r\n{header}\r\n"))
    }
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let writer = TcpStream::connect_timeout(&addr, LIMIT).expect("connect");
        writer.set_read_timeout(Some(LIMIT)).unwrap();
        writer.set_write_timeout(Some(LIMIT)).unwrap();
        Client {
            reader: BufReader::new(writer.try_clone().unwrap()),
            writer,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }

    /// Reads one response (the server always sends Content-Length).
    fn answer(&mut self) -> Answer {
        let mut headers = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read head");
            assert!(n > 0, "EOF inside a head: {headers:?}");
            headers.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let status = headers[9..12].parse().expect("status");
        let length: usize = headers
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("Content-Length")
            .parse()
            .unwrap();
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("read body");
        Answer {
            status,
            headers,
            body,
        }
    }

    fn get(&mut self, target: &str) -> Answer {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.answer()
    }

    /// A HEAD: the head only, whatever its Content-Length says.
    fn head(&mut self, target: &str) -> Answer {
        self.send(format!("HEAD {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let mut headers = String::new();
        while !headers.ends_with("\r\n\r\n") {
            let n = self.reader.read_line(&mut headers).expect("read head");
            assert!(n > 0, "EOF inside a head: {headers:?}");
        }
        Answer {
            status: headers[9..12].parse().expect("status"),
            headers,
            body: Vec::new(),
        }
    }

    /// Reads to EOF, which must come cleanly with nothing before it.
    fn expect_eof(&mut self, what: &str) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(
                rest.is_empty(),
                "{what}: {:?} before EOF",
                String::from_utf8_lossy(&rest)
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => panic!("{what}: reset"),
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// An unanswered request gets a 500 (counted), and the connection goes on.
#[test]
fn unanswered_request_gets_500_and_the_connection_goes_on() {
    for trigger in TRIGGERS {
        let server = Running::start(trigger, HttpConfig::default());
        let mut client = Client::connect(server.addr);
        let a = client.get("/silent");
        assert_eq!((a.status, &a.body[..]), (500, &b"no response\n"[..]));
        let a = client.get("/after");
        assert_eq!((a.status, &a.body[..]), (200, &b"/after"[..]));
        assert!(a.has("X-Scripted: 1"), "{}", a.headers);
        drop(client);
        let (stats, seen) = server.stop();
        assert_eq!(stats.responses, [0, 0, 1, 0, 0, 1], "{trigger:?}");
        assert_eq!(stats.refused, 0);
        assert_eq!(seen, ["/silent", "/after"]);
    }
}

/// A second answer to the same request is dropped: the stream stays in
/// step (the next response is the next request's).
#[test]
fn only_the_first_answer_is_sent() {
    for trigger in TRIGGERS {
        let server = Running::start(trigger, HttpConfig::default());
        let mut client = Client::connect(server.addr);
        let a = client.get("/twice");
        assert_eq!((a.status, &a.body[..]), (200, &b"first"[..]), "{trigger:?}");
        assert_eq!(client.get("/next").body, b"/next");
        drop(client);
        let (stats, _) = server.stop();
        assert_eq!(stats.total(), 2);
    }
}

/// A response with `close` says so and ends the connection; a request
/// pipelined behind it is not handled.
#[test]
fn close_response_ends_the_connection() {
    for trigger in TRIGGERS {
        let server = Running::start(trigger, HttpConfig::default());
        let mut client = Client::connect(server.addr);
        client
            .send(b"GET /close HTTP/1.1\r\nHost: t\r\n\r\nGET /behind HTTP/1.1\r\nHost: t\r\n\r\n");
        let a = client.answer();
        assert!(a.has("Connection: close"), "{}", a.headers);
        client.expect_eof(&format!("{trigger:?}: /close"));
        let (_, seen) = server.stop();
        assert_eq!(seen, ["/close"], "{trigger:?}");
    }
}

/// Regression: a `CachedResponse` built from a response with `close` was
/// encoded with `Connection: close`, but `Reply::send_cached` did not mark
/// the connection to close, so the server kept it open (and went on to
/// answer requests pipelined behind) after telling the client it would
/// close.
#[test]
fn regression_cached_close_response_ends_the_connection() {
    for trigger in TRIGGERS {
        let server = Running::start(trigger, HttpConfig::default());
        let mut client = Client::connect(server.addr);
        client.send(
            b"GET /cached-close HTTP/1.1\r\nHost: t\r\n\r\nGET /behind HTTP/1.1\r\nHost: t\r\n\r\n",
        );
        let a = client.answer();
        assert_eq!(a.body, b"bye");
        assert!(a.has("Connection: close"), "{}", a.headers);
        client.expect_eof(&format!("{trigger:?}: /cached-close"));
        let (_, seen) = server.stop();
        assert_eq!(seen, ["/cached-close"], "{trigger:?}");
    }
}

/// Limits come from `HttpConfig`: a small head limit gives 431, a small
/// URI limit 414, a small body limit 413; each is counted as refused.
#[test]
fn configured_limits_refuse_with_their_status() {
    for trigger in TRIGGERS {
        let config = HttpConfig {
            limits: Limits {
                max_head: 256,
                max_uri: 16,
                max_body: 8,
            },
            ..HttpConfig::default()
        };
        let server = Running::start(trigger, config);
        for (request, status) in [
            (
                format!(
                    "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
                    "x".repeat(300)
                ),
                431,
            ),
            (
                format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "u".repeat(20)),
                414,
            ),
            (
                "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n123456789".to_string(),
                413,
            ),
        ] {
            let mut client = Client::connect(server.addr);
            client.send(request.as_bytes());
            let a = client.answer();
            assert_eq!(a.status, status, "{trigger:?}: {}", a.headers);
            client.expect_eof(&format!("{trigger:?}: {status}"));
        }
        // Within the limits, all is well.
        let mut client = Client::connect(server.addr);
        assert_eq!(client.get("/ok").status, 200);
        drop(client);
        let (stats, seen) = server.stop();
        assert_eq!(stats.refused, 3);
        assert_eq!(stats.responses, [0, 0, 1, 0, 3, 0]);
        assert_eq!(seen, ["/ok"], "refused requests never reach the app");
    }
}

/// A head not completed within `header_timeout` gets 408 and a clean
/// close, counted as a header timeout; a completed request cancels it.
#[test]
fn header_timeout_answers_408() {
    for trigger in TRIGGERS {
        let config = HttpConfig {
            header_timeout: Duration::from_millis(100),
            ..HttpConfig::default()
        };
        let server = Running::start(trigger, config);
        let mut client = Client::connect(server.addr);
        // A head split in two, completed in time: no 408 for it later.
        client.send(b"GET /split HTTP/1.1\r\n");
        client.send(b"Host: t\r\n\r\n");
        assert_eq!(client.answer().body, b"/split");
        client.send(b"GET /never HTTP/1.1\r\nHost: t\r\n");
        let a = client.answer();
        assert_eq!(a.status, 408, "{trigger:?}: {}", a.headers);
        client.expect_eof(&format!("{trigger:?}: 408"));
        let (stats, seen) = server.stop();
        assert_eq!(stats.header_timeouts, 1);
        assert_eq!(stats.refused, 1);
        assert_eq!(seen, ["/split"]);
    }
}

/// Marks every response it sees (`X-Layer: <status>`), and replaces the
/// answer to `/replaced` with its own: what a router's middleware can do
/// to answers written through the `Reply` (captured for it as responses).
struct Mark;

impl Middleware for Mark {
    fn call(&mut self, request: &Request<'_, '_>, next: Next<'_>) -> (Response, Matched) {
        let (response, matched) = next(request);
        if request.path() == "/replaced" {
            return (Response::text(203, &b"layer's own"[..]), matched);
        }
        let status = response.status.to_string();
        (response.header("X-Layer", status), matched)
    }
}

/// Under middleware, what reply routes, cached routes and the fallback
/// write to the `Reply` is captured as a `Response` for the chain, and
/// the chain's answer is what is sent: a file still goes out with
/// `sendfile` after the marked head (none for HEAD); a file the layer
/// replaced is not sent. The router counts each route with the status
/// the chain sent.
#[test]
fn middleware_sees_what_reply_routes_write() {
    let contents = b"file bytes, sent with sendfile\n".repeat(100);
    let path = std::env::temp_dir().join(format!("tenk-http-capture-{}", std::process::id()));
    std::fs::write(&path, &contents).unwrap();
    for trigger in TRIGGERS {
        let stats = Arc::new(RouteStats::new());
        let (file, counted) = (path.clone(), stats.clone());
        let server = Running::start_app(
            trigger,
            HttpConfig::default(),
            move || {
                let mut router = Router::new();
                let sendfile = move |_: &Request<'_, '_>, _: &Params, reply: &mut Reply<'_>| {
                    let fd = OwnedFd::from(std::fs::File::open(&file).unwrap());
                    let len = std::fs::metadata(&file).unwrap().len();
                    let head = Response::new(200, "text/plain", &b""[..]);
                    reply.send_file(&head, fd, 0, len);
                };
                let mut hello = CachedResponse::new(Response::text(200, &b"hello"[..]));
                router
                    .reply(Method::Get, "/file", sendfile.clone())
                    .reply(Method::Get, "/replaced", sendfile)
                    .reply(Method::Get, "/reply-cached", move |_, _, reply| {
                        reply.send_cached(&mut hello)
                    })
                    .cached(Method::Get, "/cached", Response::text(200, &b"fixed"[..]))
                    .fallback(|request, reply| {
                        reply.send(&Response::text(404, request.path().as_bytes().to_vec()))
                    })
                    .wrap(Mark)
                    .count_into(&counted);
                router
            },
            |_| Vec::new(),
        );
        let mut client = Client::connect(server.addr);
        let a = client.get("/file");
        assert_eq!(
            (a.status, a.body.len()),
            (200, contents.len()),
            "{trigger:?}"
        );
        assert!(a.body == contents, "{trigger:?}: the file's bytes");
        assert!(a.has("X-Layer: 200"), "{}", a.headers);
        let a = client.head("/file");
        assert!(a.has("X-Layer: 200"), "{}", a.headers);
        assert!(
            a.has(&format!("Content-Length: {}", contents.len())),
            "{}",
            a.headers
        );
        let a = client.get("/replaced");
        assert_eq!((a.status, &a.body[..]), (203, &b"layer's own"[..]));
        for (target, body) in [("/reply-cached", "hello"), ("/cached", "fixed")] {
            let a = client.get(target);
            assert_eq!((a.status, &a.body[..]), (200, body.as_bytes()), "{target}");
            assert!(a.has("X-Layer: 200"), "{target}: {}", a.headers);
        }
        let a = client.get("/elsewhere");
        assert_eq!((a.status, &a.body[..]), (404, &b"/elsewhere"[..]));
        assert!(a.has("X-Layer: 404"), "{}", a.headers);
        // The stream is still in step after the file and the HEAD.
        assert_eq!(client.get("/cached").body, b"fixed");
        drop(client);
        let (http, _) = server.stop();
        assert_eq!(http.responses, [0, 0, 6, 0, 1, 0], "{trigger:?}");
        let counts: Vec<(String, [u64; 6])> = stats
            .snapshot()
            .iter()
            .map(|f| (format!("{} {}", f.method, f.route), f.responses))
            .collect();
        assert_eq!(
            counts,
            [
                ("GET /file".to_string(), [0, 0, 2, 0, 0, 0]),
                ("GET /replaced".to_string(), [0, 0, 1, 0, 0, 0]),
                ("GET /reply-cached".to_string(), [0, 0, 1, 0, 0, 0]),
                ("GET /cached".to_string(), [0, 0, 2, 0, 0, 0]),
                ("any (fallback)".to_string(), [0, 0, 0, 0, 1, 0]),
            ],
            "{trigger:?}"
        );
    }
    std::fs::remove_file(&path).unwrap();
}
