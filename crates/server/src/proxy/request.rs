//! The client side: request heads parsed (and refused when ambiguous)
//! by `http::proxy`, rewritten and sent upstream; request bodies streamed
//! with flow control; requests sent ahead kept in order.

use http::proxy::{self, ChunkedEncoder, Forwarded};
use reactor::{Io, Token};

use super::balance::{self, BalanceMode};
use super::exchange::{Exchange, Outbox, RequestInfo};
use super::handler::{Proxy, MAX_AHEAD};

impl Proxy {
    /// Bytes from a client. Returns what the reactor may drop: all of it,
    /// except the start of a head not complete yet (the reactor keeps it
    /// and offers it again with what follows).
    pub(super) fn client_data(&mut self, io: &mut Io, client: Token, data: &[u8]) -> usize {
        let Some(c) = self.clients.get_mut(&client) else {
            return data.len();
        };
        if !c.ahead.is_empty() {
            // Earlier bytes wait in `ahead`: these go after them.
            c.ahead.extend_from_slice(data);
            if c.ex.is_none() {
                let ahead = std::mem::take(&mut c.ahead);
                let used = self.feed(io, client, &ahead);
                self.keep_ahead(io, client, &ahead[used..]);
            } else {
                self.hold_if_far_ahead(io, client);
            }
            return data.len();
        }
        let used = self.feed(io, client, data);
        let busy = self.clients.get(&client).is_some_and(|c| c.ex.is_some());
        if used < data.len() && busy {
            // Pipelined: the next request waits for this response.
            self.keep_ahead(io, client, &data[used..]);
            return data.len();
        }
        used
    }

    /// Keeps `rest` (unused bytes) for later, holding the client if it is
    /// too far ahead.
    pub(super) fn keep_ahead(&mut self, io: &mut Io, client: Token, rest: &[u8]) {
        if let Some(c) = self.clients.get_mut(&client) {
            c.ahead.extend_from_slice(rest);
        }
        self.hold_if_far_ahead(io, client);
    }

    fn hold_if_far_ahead(&mut self, io: &mut Io, client: Token) {
        if let Some(c) = self.clients.get_mut(&client) {
            if c.ex.is_some() && c.ahead.len() >= MAX_AHEAD && !c.held {
                c.held = true;
                io.pause_reading(client);
            }
        }
    }

    /// Takes requests from `data` while it can: starts one if none is in
    /// flight, forwards its body. Returns the bytes used.
    pub(super) fn feed(&mut self, io: &mut Io, client: Token, data: &[u8]) -> usize {
        let mut at = 0;
        loop {
            let Some(c) = self.clients.get_mut(&client) else {
                return data.len();
            };
            match &mut c.ex {
                None => {
                    if at == data.len() {
                        return at;
                    }
                    match self.begin(io, client, &data[at..]) {
                        Some(used) => at += used,
                        None => return at,
                    }
                }
                Some(ex) => {
                    let Some(decoder) = &mut ex.body else {
                        return at;
                    };
                    if at == data.len() {
                        return at;
                    }
                    let Some(conn) = ex.conn else {
                        return at;
                    };
                    let chunked = ex.body_chunked;
                    // Straight to the socket: a request body is not
                    // gathered (its head went when the upstream was picked).
                    let mut out = Outbox::default();
                    let mut forward = |piece: &[u8]| {
                        out.piece(io, conn, piece, chunked);
                        out.flush(io, conn);
                    };
                    match decoder.decode(&data[at..], &mut forward) {
                        Ok((used, done)) => {
                            at += used;
                            ex.last_upstream = io.now();
                            if done {
                                ex.body = None;
                                if chunked {
                                    io.send(conn, ChunkedEncoder::LAST_CHUNK);
                                }
                            } else if io.pending_output(conn) > io.config().high_watermark {
                                // The upstream is slow to take the body:
                                // hold the client until it has.
                                c.held = true;
                                io.pause_reading(client);
                            }
                        }
                        Err(e) => {
                            // Broken chunked framing mid-body: the upstream
                            // has part of a message; neither side can go on.
                            tracing::debug!("client {client:?}: bad request body: {}", e.why);
                            self.stats.refused += 1;
                            io.close(client);
                            return data.len();
                        }
                    }
                }
            }
        }
    }

    /// Starts a request from the head at the start of `data`: `None` if
    /// the head is not complete yet, else the bytes of the head (the body
    /// follows in `feed`).
    fn begin(&mut self, io: &mut Io, client: Token, data: &[u8]) -> Option<usize> {
        let head = match proxy::parse_request(data, &self.config.limits) {
            Ok(Some(head)) => head,
            Ok(None) => return None,
            Err(refusal) => {
                // Ambiguous or malformed: refused here, never forwarded.
                tracing::debug!("client {client:?}: refused: {}", refusal.why);
                self.stats.refused += 1;
                if let Some(c) = self.clients.get_mut(&client) {
                    c.ahead.clear();
                }
                self.answer(io, client, refusal.status, false);
                return Some(data.len());
            }
        };
        let addr = self.clients.get(&client)?.addr;
        let mut out = Vec::with_capacity(head.head_len + 128);
        proxy::write_upstream_request(
            data,
            &head,
            &Forwarded {
                client: addr,
                proto: self.config.proto,
            },
            &mut out,
        );
        let req = RequestInfo {
            version: head.version,
            keep_alive: head.keep_alive && !io.is_draining() && !io.is_leaving(),
            is_head: head.is_head,
            retryable: (head.method == "GET" || head.is_head) && !head.body.has_body(),
            upgrade: head.upgrade,
        };
        let mut ex = Exchange::new(req, out, head.body, io.now());
        ex.key = match &self.config.balance {
            BalanceMode::HashClient => Some(balance::key_of_addr(addr)),
            BalanceMode::HashHeader(name) => {
                proxy::request_header(data, &head, name).map(balance::key_of)
            }
            BalanceMode::RoundRobin | BalanceMode::LeastConnections => None,
        };
        self.clients.get_mut(&client)?.ex = Some(ex);
        if !self.dispatch(io, client, None) && !self.no_upstream(io, client) {
            return Some(data.len());
        }
        Some(head.head_len)
    }
}
