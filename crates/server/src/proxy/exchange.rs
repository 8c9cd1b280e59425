//! One request in flight and its response: what is known of both, and
//! how it ends (relayed, retried, answered 502/504, or cut).

use std::time::Instant;

use http::proxy::{BodyDecoder, ChunkedEncoder, Framing};
use reactor::{Io, Token};

use super::handler::{Armed, Proxy};

/// Bytes gathered for one connection during one callback: a response
/// head and the body bytes read with it leave in one write, not two. A
/// large piece is sent as it is rather than copied.
#[derive(Default)]
pub(super) struct Outbox {
    buf: Vec<u8>,
}

/// Gathered bytes beyond which a piece is sent on its own.
const GATHER_MAX: usize = 16 * 1024;

impl Outbox {
    /// The buffer, to append a head to.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, io: &mut Io, to: Token, bytes: &[u8]) {
        if self.buf.len() + bytes.len() <= GATHER_MAX {
            self.buf.extend_from_slice(bytes);
        } else {
            self.flush(io, to);
            io.send(to, bytes);
        }
    }

    /// A piece of a body, as a chunk if `chunked` (an empty piece is no
    /// chunk: a zero-size one would end the body).
    pub fn piece(&mut self, io: &mut Io, to: Token, piece: &[u8], chunked: bool) {
        if !chunked {
            self.push(io, to, piece);
        } else if !piece.is_empty() {
            self.push(io, to, &ChunkedEncoder::chunk_head(piece.len() as u64));
            self.push(io, to, piece);
            self.push(io, to, ChunkedEncoder::CHUNK_END);
        }
    }

    pub fn flush(&mut self, io: &mut Io, to: Token) {
        if !self.buf.is_empty() {
            io.send(to, &self.buf);
            self.buf.clear();
        }
    }
}

/// How an upstream connection failed an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// The connect was refused or failed.
    ConnectFailed,
    /// The connect took longer than `--upstream-connect-timeout`.
    ConnectTimeout,
    /// Closed or reset before the response ended.
    Closed,
    /// Silent past `--upstream-timeout`.
    Timeout,
    /// A response that is not HTTP, or broken framing.
    Malformed,
}

/// What the proxy knows of a client's request.
#[derive(Clone, Copy, Debug)]
pub(super) struct RequestInfo {
    pub version: u8,
    pub keep_alive: bool,
    pub is_head: bool,
    /// GET or HEAD without a body: may be sent again (see `retry`).
    pub retryable: bool,
    /// It asks to upgrade: a 101 answer opens a tunnel (`tunnel.rs`).
    pub upgrade: bool,
}

/// Where the response is.
pub(super) enum ResponsePhase {
    /// Waiting for its head (interim 1xx heads are relayed meanwhile).
    Head,
    /// Relaying its body to the client.
    Body {
        decoder: BodyDecoder,
        /// Re-framed as chunked for the client.
        chunked: bool,
        /// The upstream connection can carry another request after it.
        reusable: bool,
    },
}

/// A client's request in flight.
pub(super) struct Exchange {
    pub req: RequestInfo,
    /// The rewritten head, kept while the request may be sent again.
    pub head: Vec<u8>,
    /// The request body still to forward, if any.
    pub body: Option<BodyDecoder>,
    /// Re-frame the request body as chunked (the client sent it chunked).
    pub body_chunked: bool,
    pub upstream: Option<usize>,
    pub conn: Option<Token>,
    /// Its balancing key under `--upstream-balance hash-*` (`None`:
    /// another mode, or the header is missing).
    pub key: Option<u64>,
    /// The connection came from the pool.
    pub reused: bool,
    /// Upstreams tried so far.
    pub attempts: u8,
    pub response: ResponsePhase,
    /// A byte of the response arrived (then nothing is retried).
    pub got_byte: bool,
    /// The response head went to the client (then no status can be sent).
    pub head_sent: bool,
    /// The client connection stays open after this response.
    pub client_keep_alive: bool,
    /// The pass that read the request's head began then (request
    /// duration).
    pub started: Instant,
    /// The head was sent upstream then (latency).
    pub sent_at: Instant,
    /// The last byte from the upstream, or the request's start (timeout).
    pub last_upstream: Instant,
    /// The connect or upstream timeout.
    pub timer: Option<Armed>,
}

impl Exchange {
    pub fn new(req: RequestInfo, head: Vec<u8>, body: Framing, now: Instant) -> Exchange {
        Exchange {
            req,
            head,
            body: body.has_body().then(|| BodyDecoder::new(body)),
            body_chunked: body == Framing::Chunked,
            upstream: None,
            conn: None,
            key: None,
            reused: false,
            attempts: 0,
            response: ResponsePhase::Head,
            got_byte: false,
            head_sent: false,
            client_keep_alive: req.keep_alive,
            started: now,
            sent_at: now,
            last_upstream: now,
            timer: None,
        }
    }

    /// The request goes to `upstream` on `conn`.
    pub fn attach(
        &mut self,
        upstream: usize,
        conn: Token,
        reused: bool,
        timer: Armed,
        now: Instant,
    ) {
        self.upstream = Some(upstream);
        self.conn = Some(conn);
        self.reused = reused;
        self.attempts += 1;
        self.timer = Some(timer);
        self.sent_at = now;
        self.last_upstream = now;
        if !self.req.retryable {
            // Never sent again: no need to keep it.
            self.head = Vec::new();
        }
    }

    /// Whether a failure may be retried: a GET or HEAD without a body,
    /// not retried yet, no response byte seen, and either the connect
    /// failed or a pooled connection turned out dead (the backend closed
    /// it as it was reused: the request most likely never reached it).
    fn may_retry(&self, failure: Failure) -> bool {
        let dead_pooled = self.reused && failure == Failure::Closed;
        let no_connect = matches!(failure, Failure::ConnectFailed | Failure::ConnectTimeout);
        self.req.retryable && self.attempts < 2 && !self.got_byte && (dead_pooled || no_connect)
    }
}

impl Proxy {
    /// The upstream connection of `client`'s exchange failed (it is
    /// closed already): retry, answer 502/504, or cut the client.
    pub(super) fn exchange_failed(&mut self, io: &mut Io, client: Token, failure: Failure) {
        let now = io.now();
        let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.as_mut()) else {
            return;
        };
        let timer = ex.timer.take();
        let upstream = ex.upstream;
        let retry = ex.may_retry(failure);
        let stale = ex.reused && failure == Failure::Closed && !ex.got_byte;
        let head_sent = ex.head_sent;
        let body_done = ex.body.is_none();
        // A shutdown drains the exchanges in flight, then closes.
        let keep_alive = ex.req.keep_alive && !io.is_draining();
        ex.conn = None;
        if let Some(timer) = timer {
            self.cancel_timer(io, timer);
        }
        if let Some(u) = upstream {
            self.stats.upstreams[u].failures += 1;
            // A pooled connection the backend closed is not the
            // backend's failure: it is how keep-alive ends.
            if !stale {
                let policy = self.config.health;
                self.upstreams[u].health.failed(&policy, now);
            } else {
                self.upstreams[u].health.abandoned(now);
            }
        }
        if retry {
            self.stats.retries += 1;
            if self.dispatch(io, client, upstream) {
                return;
            }
        }
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        if head_sent {
            // A status can no longer be sent: cut the connection, so the
            // client sees the response is incomplete.
            c.ex = None;
            self.stats.aborted += 1;
            io.close(client);
            return;
        }
        c.ex = None;
        let status = if failure == Failure::Timeout {
            self.stats.gateway_timeout += 1;
            504
        } else {
            self.stats.bad_gateway += 1;
            502
        };
        // The client's connection stays if its request was read whole.
        self.answer(io, client, status, keep_alive && body_done);
        if keep_alive && body_done {
            self.next_request(io, client);
        }
    }

    /// The response ended: the upstream connection goes back to the pool
    /// (if `reusable`), and the client's next request is read.
    pub(super) fn exchange_done(&mut self, io: &mut Io, client: Token, reusable: bool) {
        let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.take()) else {
            return;
        };
        self.stats.responses += 1;
        if let Some(timer) = ex.timer {
            self.cancel_timer(io, timer);
        }
        if let Some(conn) = ex.conn {
            // A request body not forwarded whole leaves the connection in
            // the middle of a message.
            self.release(io, conn, reusable && ex.body.is_none());
        }
        if ex.client_keep_alive && ex.body.is_none() && !io.is_draining() {
            self.next_request(io, client);
        } else if io.is_leaving() {
            // A graceful restart ended keep-alive: requests the client
            // sent ahead are dropped by a lingering close, not met by RST.
            io.close_lingering(client);
        } else {
            io.close_when_flushed(client);
        }
    }

    /// The client's connection goes on: requests it sent ahead are taken
    /// now, and it is read again.
    pub(super) fn next_request(&mut self, io: &mut Io, client: Token) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        if c.held {
            c.held = false;
            io.resume_reading(client);
        }
        if !c.ahead.is_empty() {
            let ahead = std::mem::take(&mut c.ahead);
            let used = self.feed(io, client, &ahead);
            self.keep_ahead(io, client, &ahead[used..]);
        }
        if let Some(c) = self.clients.get(&client) {
            if c.eof && c.ex.is_none() {
                io.close_when_flushed(client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(retryable: bool, reused: bool, attempts: u8, got_byte: bool) -> Exchange {
        let req = RequestInfo {
            version: 1,
            keep_alive: true,
            is_head: false,
            retryable,
            upgrade: false,
        };
        let mut ex = Exchange::new(req, Vec::new(), Framing::None, Instant::now());
        ex.reused = reused;
        ex.attempts = attempts;
        ex.got_byte = got_byte;
        ex
    }

    #[test]
    fn retries_only_what_cannot_have_been_processed() {
        use Failure::*;
        // (retryable, reused, attempts, got a byte, failure) -> retry
        let table = [
            (true, false, 1, false, ConnectFailed, true),
            (true, false, 1, false, ConnectTimeout, true),
            (true, true, 1, false, Closed, true),
            // A fresh connection closed after the request went: it may
            // have been processed.
            (true, false, 1, false, Closed, false),
            (true, true, 1, false, Timeout, false),
            (true, true, 1, true, Closed, false),
            (true, false, 2, false, ConnectFailed, false),
            (false, false, 1, false, ConnectFailed, false),
            (true, true, 1, false, Malformed, false),
        ];
        for (retryable, reused, attempts, got_byte, failure, want) in table {
            let ex = exchange(retryable, reused, attempts, got_byte);
            assert_eq!(
                ex.may_retry(failure),
                want,
                "{retryable} {reused} {attempts} {got_byte} {failure:?}"
            );
        }
    }
}
