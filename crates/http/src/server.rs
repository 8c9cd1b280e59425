//! The HTTP/1.1 connection handler: a [`reactor::Handler`] that frames
//! requests, hands each to an [`App`], and writes every response of a
//! batch in one `send`. What an app writes through is in `reply.rs`
//! ([`App`], [`Reply`]); settings and counters in `config.rs`.

mod config;
mod reply;

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::SystemTime;

use reactor::{CloseReason, Handler, Io, TimerId, Token};

use crate::date::DateCache;
use crate::metrics::HttpBoard;
use crate::parse::{self, Parsed, Refusal, Request, MAX_HEADERS};
use crate::response::Response;

pub use config::{HttpConfig, HttpStats, ACCESS_LOG};
pub use reply::{App, Reply};

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
    stats: HttpStats,
    /// Where, as one worker of several, it records its counters after
    /// every callback that can change them ([`HttpServer::share_stats`]).
    shared: Option<(Arc<HttpBoard>, usize)>,
    /// With the access log on: where in `out` the answer being logged
    /// begins (the log reads its `X-Request-Id` there).
    log_from: usize,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The value of header `name` (lowercase) in the encoded response head at
/// the start of `out`, for the access log.
fn header_value<'a>(out: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    out[..end].split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        if !line[..colon].eq_ignore_ascii_case(name) {
            return None;
        }
        std::str::from_utf8(&line[colon + 1..]).ok().map(str::trim)
    })
}

impl<A: App> HttpServer<A> {
    pub fn new(app: A, config: HttpConfig) -> HttpServer<A> {
        HttpServer {
            app,
            config,
            conns: Vec::new(),
            out: Vec::new(),
            date: DateCache::default(),
            stats: HttpStats::default(),
            shared: None,
            log_from: 0,
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

    // Out of line: inlined into serve_data, it cost HTTP hello 15-20
    // instructions a request with the log off (bench/instructions.sh).
    #[inline(never)]
    fn log(&self, io: &Io, conn: Token, request: &Request<'_, '_>, (status, len): (u16, usize)) {
        let request_id = header_value(&self.out[self.log_from..], b"x-request-id");
        // The client's address: the one a PROXY protocol header named,
        // when a balancer in front sent one.
        let peer = io
            .client_addr(conn)
            .map_or_else(|_| "-".to_string(), |a| a.ip().to_string());
        // From the start of the pass that read the request, as the route
        // histogram counts, to the answer queued: a clock read per request,
        // paid only with the access log on.
        let duration_us = u64::try_from(io.now().elapsed().as_micros()).unwrap_or(u64::MAX);
        // The fields are for a structured subscriber (the binary's JSON
        // access log); the message is the classic line.
        tracing::info!(
            target: "http::access",
            client = %peer,
            method = request.method.as_str(),
            target = request.target,
            version = request.version,
            status,
            bytes = len,
            duration_us,
            request_id,
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
        // By the pass's clock: a pass lasts micro- to milliseconds, and a
        // Date that much late is still the second the answer left in.
        self.date.refresh_for(io.now());
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
                    if self.config.access_log {
                        self.log_from = self.out.len();
                    }
                    let mut reply = Reply {
                        out: &mut self.out,
                        date: &self.date,
                        io: &*io,
                        stats: &self.stats,
                        head: request.method == parse::Method::Head,
                        // Leaving (a graceful restart handed the
                        // listeners on): this answer is the last, with
                        // `Connection: close`, and the client reconnects
                        // to the new process.
                        keep_alive: request.keep_alive && !io.is_leaving(),
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
                    // Before a file's send takes the buffer: the log reads
                    // the X-Request-Id from the head just encoded.
                    if self.config.access_log {
                        self.log(io, conn, &request, (status, len));
                    }
                    if let Some((file, offset, len)) = file {
                        // The head (and responses before it) first, then
                        // the file, in order, in the connection's queue;
                        // queued, not written now, so that the head goes
                        // out with MSG_MORE right before the file.
                        io.send_file(conn, &self.out, file, offset, len);
                        self.out.clear();
                    }
                    self.count(status);
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
            // whatever is waiting now. Likewise when a graceful restart
            // ends keep-alive (leaving): the client may have sent its next
            // requests already, and would meet a reset.
            if refused || io.is_leaving() {
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

#[cfg(test)]
mod tests {
    use super::header_value;

    #[test]
    fn header_value_reads_the_head_only_in_any_case() {
        let out = b"HTTP/1.1 200 OK\r\nServer: tenk\r\nx-REQUEST-id:  abc-1 \r\nContent-Length: 2\r\n\r\nX-Request-Id: body";
        assert_eq!(header_value(out, b"x-request-id"), Some("abc-1"));
        assert_eq!(header_value(out, b"server"), Some("tenk"));
        let no_id = b"HTTP/1.1 200 OK\r\nServer: tenk\r\n\r\nX-Request-Id: body";
        assert_eq!(header_value(no_id, b"x-request-id"), None);
        assert_eq!(
            header_value(b"HTTP/1.1 200 OK\r\nX-Request-Id: cut", b"x-request-id"),
            None
        );
    }
}
