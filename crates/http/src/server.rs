//! The HTTP/1.1 connection handler: a [`reactor::Handler`] that frames
//! requests, hands each to an [`App`], and writes every response of a
//! batch in one `send`.

use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reactor::{CloseReason, Handler, Io, TimerId, Token};

use crate::date::DateCache;
use crate::metrics::HttpBoard;
use crate::parse::{self, Limits, Parsed, Refusal, Request, MAX_HEADERS};
use crate::response::{CachedResponse, Response};

/// What an application does with a request.
pub trait App {
    /// Answers `request` through `reply`. Every request must be answered
    /// exactly once; an unanswered one gets a 500.
    fn handle(&mut self, request: &Request<'_, '_>, reply: &mut Reply<'_>);
}

/// Where a handler writes its response.
pub struct Reply<'a> {
    out: &'a mut Vec<u8>,
    date: &'a DateCache,
    io: &'a Io,
    stats: &'a HttpStats,
    head: bool,
    keep_alive: bool,
    version: u8,
    /// Status and body length of what was written, for stats and logs.
    written: Option<(u16, usize)>,
    /// A file range to send after the head (`send_file`).
    file: Option<(OwnedFd, u64, u64)>,
    /// While a router's middleware runs ([`Reply::capture`]): answers are
    /// kept as a `Response` for the chain, not encoded.
    capturing: bool,
    captured: Option<Response>,
}

impl Reply<'_> {
    /// The reactor's counters (for a metrics endpoint).
    pub fn reactor_stats(&self) -> reactor::Stats {
        self.io.stats()
    }

    /// The HTTP layer's counters so far.
    pub fn http_stats(&self) -> HttpStats {
        *self.stats
    }

    /// Answers with `response`.
    pub fn send(&mut self, response: &Response) {
        if self.written.is_some() {
            return;
        }
        if self.capturing {
            self.captured.get_or_insert_with(|| response.clone());
            return;
        }
        if response.close {
            self.keep_alive = false;
        }
        response.encode(
            self.out,
            self.date,
            self.head,
            self.keep_alive,
            self.version,
        );
        self.written = Some((response.status, response.body.len()));
    }

    /// Answers with `head` (its `body` is ignored) followed by `len` bytes
    /// of `file` from `offset`, sent with `sendfile`: the bytes never pass
    /// through user space, and a large file goes out as the peer reads it,
    /// without growing memory. For HEAD only the head is sent.
    pub fn send_file(&mut self, head: &Response, file: OwnedFd, offset: u64, len: u64) {
        if self.written.is_some() {
            return;
        }
        let mut head = head.clone();
        head.body = Cow::Borrowed(&[]);
        head.body_len = Some(len);
        if self.capturing {
            if self.captured.is_none() {
                if !self.head {
                    self.file = Some((file, offset, len));
                }
                self.captured = Some(head);
            }
            return;
        }
        if head.close {
            self.keep_alive = false;
        }
        head.encode(
            self.out,
            self.date,
            self.head,
            self.keep_alive,
            self.version,
        );
        if !self.head {
            self.file = Some((file, offset, len));
        }
        self.written = Some((head.status, len as usize));
    }

    /// Answers with a response encoded once per second.
    pub fn send_cached(&mut self, response: &mut CachedResponse) {
        if self.written.is_some() {
            return;
        }
        if self.capturing {
            self.captured
                .get_or_insert_with(|| response.response().clone());
            return;
        }
        if response.closes() {
            self.keep_alive = false;
        }
        response.encode(
            self.out,
            self.date,
            self.head,
            self.keep_alive,
            self.version,
        );
        self.written = Some((response.status(), response.body_len()));
    }
}

/// The `tracing` target of the access log ([`HttpConfig::access_log`]).
pub const ACCESS_LOG: &str = "http::access";

impl<'a> Reply<'a> {
    /// The status answered so far; an unanswered request's is the 500 the
    /// server will send.
    #[inline(always)]
    pub(crate) fn status(&self) -> u16 {
        self.written.map_or(500, |(status, _)| status)
    }

    /// When the loop pass answering began ([`Io::now`]).
    pub(crate) fn pass(&self) -> Instant {
        self.io.now()
    }

    /// Runs `answer` with this reply capturing what it sends, and gives
    /// that as a `Response` (500 if nothing): for a router's middleware,
    /// which works on `Response`s. A file sent stays aside for
    /// [`Reply::send_captured`].
    pub(crate) fn capture(&mut self, answer: impl FnOnce(&mut Reply<'a>)) -> Response {
        self.capturing = true;
        answer(self);
        self.capturing = false;
        self.captured
            .take()
            .unwrap_or_else(|| Response::text(500, &b"no response\n"[..]))
    }

    /// Sends what the middleware made of a captured answer: with the file
    /// captured, if it still announces the file's length.
    pub(crate) fn send_captured(&mut self, response: &Response) {
        match self.file.take() {
            Some((file, offset, len)) if response.body_len == Some(len) => {
                self.send_file(response, file, offset, len);
            }
            _ => self.send(response),
        }
    }
}

/// Settings of the HTTP layer.
///
/// A request waits whole (head and body) in the connection's input buffer,
/// so the reactor's [`Config::max_input`](reactor::Config::max_input) must
/// exceed `limits.max_head + limits.max_body` (twice the body for chunked
/// uploads); [`HttpConfig::reactor_max_input`] gives that figure. With
/// less, a large upload is cut by the reactor instead of answered.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub limits: Limits,
    /// A request head not complete this long after its first byte is
    /// answered 408 (slowloris).
    pub header_timeout: Duration,
    /// Log every request: an `INFO` event of target [`ACCESS_LOG`] whose
    /// message is the line (`127.0.0.1 "GET / HTTP/1.1" 200 13`).
    pub access_log: bool,
}

impl HttpConfig {
    /// The reactor input limit these limits need (see the type's docs).
    pub fn reactor_max_input(&self) -> usize {
        self.limits.max_head + 2 * self.limits.max_body + 64 * 1024
    }
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            limits: Limits::default(),
            header_timeout: Duration::from_secs(10),
            access_log: false,
        }
    }
}

/// Counters of the HTTP layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Requests answered, by status class: index 1 for 1xx … 5 for 5xx.
    pub responses: [u64; 6],
    /// Requests refused as malformed or hostile (4xx/5xx from the framing).
    pub refused: u64,
    /// Heads cut by the header timeout (408).
    pub header_timeouts: u64,
}

impl HttpStats {
    /// Adds another server's counters (for a total over threads).
    pub fn add(&mut self, other: &HttpStats) {
        for (mine, theirs) in self.responses.iter_mut().zip(other.responses) {
            *mine += theirs;
        }
        self.refused += other.refused;
        self.header_timeouts += other.header_timeouts;
    }

    /// Responses of every class.
    pub fn total(&self) -> u64 {
        self.responses.iter().sum()
    }
}

#[derive(Default)]
struct ConnState {
    token: Option<Token>,
    /// The header timeout of the request head now arriving.
    head_timer: Option<TimerId>,
    /// `100 Continue` was sent for the request now arriving.
    continue_sent: bool,
    /// An answer ended the connection; later input is ignored.
    done: bool,
}

/// An HTTP/1.1 server for one reactor.
pub struct HttpServer<A> {
    app: A,
    config: HttpConfig,
    conns: Vec<ConnState>,
    /// Responses of one batch, written with one `send`.
    out: Vec<u8>,
    date: DateCache,
    /// The reactor pass ([`Io::now`]) in which the date was last checked:
    /// it is checked once per pass, not per request (a clock read each).
    date_checked: Option<Instant>,
    stats: HttpStats,
    /// Where, as one worker of several, it records its counters after
    /// every callback that can change them ([`HttpServer::share_stats`]).
    shared: Option<(Arc<HttpBoard>, usize)>,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl<A: App> HttpServer<A> {
    pub fn new(app: A, config: HttpConfig) -> HttpServer<A> {
        HttpServer {
            app,
            config,
            conns: Vec::new(),
            out: Vec::new(),
            date: DateCache::default(),
            date_checked: None,
            stats: HttpStats::default(),
            shared: None,
        }
    }

    /// Records the counters on `board` as worker `worker`'s after every
    /// callback that can change them (plain stores to its own slot), so
    /// every worker's `/metrics` shows all workers' exactly.
    pub fn share_stats(&mut self, board: Arc<HttpBoard>, worker: usize) {
        self.shared = Some((board, worker));
    }

    fn record_shared(&self) {
        if let Some((board, worker)) = &self.shared {
            board.record(*worker, &self.stats);
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> HttpStats {
        self.stats
    }

    /// The application.
    pub fn app(&mut self) -> &mut A {
        &mut self.app
    }

    fn state(&mut self, conn: Token) -> Option<&mut ConnState> {
        self.conns
            .get_mut(conn.index())
            .filter(|s| s.token == Some(conn))
    }

    fn count(&mut self, status: u16) {
        self.stats.responses[crate::route_stats::class(status)] += 1;
    }

    fn log(&self, io: &Io, conn: Token, request: &Request<'_, '_>, status: u16, len: usize) {
        let peer = io
            .peer_addr(conn)
            .map_or_else(|_| "-".to_string(), |a| a.ip().to_string());
        tracing::info!(
            target: "http::access",
            "{peer} \"{} {} HTTP/1.{}\" {status} {len}",
            request.method.as_str(),
            request.target,
            request.version
        );
    }

    /// Answers a refused request and ends the connection.
    fn refuse(&mut self, conn: Token, refusal: Refusal) {
        self.stats.refused += 1;
        self.count(refusal.status);
        let body = format!(
            "{} {}: {}\n",
            refusal.status,
            crate::status::reason(refusal.status),
            refusal.why
        );
        let mut response = Response::text(refusal.status, body.into_bytes());
        response.close = true;
        response.encode(&mut self.out, &self.date, false, false, 1);
        if let Some(state) = self.state(conn) {
            state.done = true;
        }
        tracing::debug!(?conn, status = refusal.status, why = refusal.why, "refused");
    }

    /// Frames and answers the requests in `data`; gives the bytes used.
    fn serve_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        match self.state(conn) {
            Some(state) if !state.done => {}
            // Input after the last answer (a lingering close) is dropped.
            _ => return data.len(),
        }
        // Once per pass of the loop: a pass lasts micro- to milliseconds,
        // and a Date that much late is still the second the answer left in.
        let pass = io.now();
        if self.date_checked != Some(pass) {
            self.date_checked = Some(pass);
            self.date.refresh(SystemTime::now());
        }
        self.out.clear();
        let mut consumed = 0;
        let mut close = false;
        let mut refused = false;
        while consumed < data.len() {
            let mut headers = [MaybeUninit::uninit(); MAX_HEADERS];
            match parse::parse_uninit(&data[consumed..], &mut headers, &self.config.limits) {
                Ok(Parsed::Complete(request, used)) => {
                    consumed += used;
                    if let Some(state) = self.state(conn) {
                        let timer = state.head_timer.take();
                        state.continue_sent = false;
                        if let Some(timer) = timer {
                            io.cancel_timer(timer);
                        }
                    }
                    let mut reply = Reply {
                        out: &mut self.out,
                        date: &self.date,
                        io: &*io,
                        stats: &self.stats,
                        head: request.method == parse::Method::Head,
                        keep_alive: request.keep_alive,
                        version: request.version,
                        written: None,
                        file: None,
                        capturing: false,
                        captured: None,
                    };
                    self.app.handle(&request, &mut reply);
                    if reply.written.is_none() {
                        reply.send(&Response::text(500, &b"no response\n"[..]));
                    }
                    let keep_alive = reply.keep_alive;
                    let (status, len) = reply.written.unwrap_or((500, 0));
                    let file = reply.file.take();
                    if let Some((file, offset, len)) = file {
                        // The head (and responses before it) first, then
                        // the file, in order, in the connection's queue;
                        // queued, not written now, so that the head goes
                        // out with MSG_MORE right before the file.
                        io.send_file(conn, &self.out, file, offset, len);
                        self.out.clear();
                    }
                    self.count(status);
                    if self.config.access_log {
                        self.log(io, conn, &request, status, len);
                    }
                    if !keep_alive {
                        close = true;
                        break;
                    }
                }
                Ok(Parsed::Partial {
                    head_complete,
                    continue_expected,
                }) => {
                    let header_timeout = self.config.header_timeout;
                    let mut send_continue = false;
                    if let Some(state) = self.state(conn) {
                        if continue_expected && !state.continue_sent {
                            state.continue_sent = true;
                            send_continue = true;
                        }
                        if head_complete {
                            // The head made it in time; the body is
                            // governed by the reactor's idle timeout.
                            if let Some(timer) = state.head_timer.take() {
                                io.cancel_timer(timer);
                            }
                        } else if state.head_timer.is_none() && !header_timeout.is_zero() {
                            let timer = io.add_timer(header_timeout, conn.index() as u64);
                            if let Some(state) = self.state(conn) {
                                state.head_timer = Some(timer);
                            }
                        }
                    }
                    if send_continue {
                        self.out.extend_from_slice(CONTINUE);
                    }
                    break;
                }
                Err(refusal) => {
                    self.refuse(conn, refusal);
                    consumed = data.len();
                    close = true;
                    refused = true;
                    break;
                }
            }
        }
        if !self.out.is_empty() {
            io.send(conn, &self.out);
        }
        if close {
            if let Some(state) = self.state(conn) {
                state.done = true;
            }
            // A lingering close (in the reactor) when input is left unread,
            // so the client reads this answer instead of a reset. After a
            // refusal the client may still be sending (the body of a 413,
            // the rest of a head) even if nothing is unread yet: linger
            // whatever is waiting now.
            if refused {
                io.close_lingering(conn);
            } else {
                io.close_when_flushed(conn);
            }
            return data.len();
        }
        consumed
    }

    /// A header timeout fired: 408 and a lingering close.
    fn head_timeout(&mut self, io: &mut Io, timer: TimerId, data: u64) {
        let Some(state) = self.conns.get_mut(data as usize) else {
            return;
        };
        if state.head_timer != Some(timer) {
            return;
        }
        state.head_timer = None;
        let Some(conn) = state.token else { return };
        self.stats.header_timeouts += 1;
        self.out.clear();
        self.date.refresh(SystemTime::now());
        self.refuse(
            conn,
            Refusal {
                status: 408,
                why: "request head not received in time",
            },
        );
        io.send(conn, &self.out);
        io.close_lingering(conn);
    }
}

impl<A: App> Handler for HttpServer<A> {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        if self.conns.is_empty() && io.config().max_input < self.config.reactor_max_input() {
            tracing::warn!(
                "reactor max_input {} is below the {} bytes the HTTP limits need: large uploads will be cut, not answered 413",
                io.config().max_input,
                self.config.reactor_max_input()
            );
        }
        let index = conn.index();
        if self.conns.len() <= index {
            self.conns.resize_with(index + 1, ConnState::default);
        }
        self.conns[index] = ConnState {
            token: Some(conn),
            ..ConnState::default()
        };
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        let used = self.serve_data(io, conn, data);
        self.record_shared();
        used
    }

    fn on_timer(&mut self, io: &mut Io, timer: TimerId, data: u64) {
        // Header timeouts (408) are counted here.
        self.head_timeout(io, timer, data);
        self.record_shared();
    }
    fn on_close(&mut self, io: &mut Io, conn: Token, _reason: CloseReason) {
        if let Some(state) = self.state(conn) {
            let timer = state.head_timer.take();
            *state = ConnState::default();
            if let Some(timer) = timer {
                io.cancel_timer(timer);
            }
        }
    }
}
