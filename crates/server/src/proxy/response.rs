//! The upstream side: response heads parsed by `http::proxy`, rewritten
//! for the client, bodies streamed (re-framed when needed) with flow
//! control; the end of a response returns its connection to the pool.

use http::proxy::{self, BodyDecoder, ChunkedEncoder, Framing};
use reactor::{Io, Token};

use super::exchange::{Failure, Outbox, ResponsePhase};
use super::handler::{Proxy, UpState};

/// What relaying a read of an upstream connection came to, acted on
/// once what it produced for the client has been sent.
enum Step {
    /// The bytes used (all of them but an incomplete head's).
    Used(usize),
    /// The response ended; the connection can carry another request.
    Done { reusable: bool },
    /// The client is slow to take the response: hold the upstream.
    Hold,
    /// A broken response: the connection is closed, the exchange fails.
    Broken(&'static str),
    /// The client is gone.
    Orphan,
    /// A 101 was relayed: the connection is a tunnel from this offset of
    /// the read on.
    Tunnel(usize),
}

impl Proxy {
    /// Bytes from an upstream connection.
    pub(super) fn upstream_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        let Some(up) = self.conns.get(&conn).copied() else {
            return data.len();
        };
        let client = match up.state {
            UpState::Busy(client) | UpState::Connecting(client) => client,
            UpState::Tunnel(client) => return self.tunnel_down(io, conn, client, data),
            UpState::Idle(_) => {
                // Nothing is asked of an idle connection: whatever it
                // sends is out of turn. Drop it before it is reused.
                tracing::debug!("upstream {}: data while idle", up.upstream);
                self.upstream_closed(io, conn);
                return data.len();
            }
        };
        let mut out = std::mem::take(&mut self.outbox);
        let step = self.relay_response(io, up.upstream, client, data, &mut out);
        out.flush(io, client);
        self.outbox = out;
        match step {
            Step::Used(n) => n,
            Step::Done { reusable } => {
                self.exchange_done(io, client, reusable);
                data.len()
            }
            Step::Hold => {
                if let Some(u) = self.conns.get_mut(&conn) {
                    u.held = true;
                }
                io.pause_reading(conn);
                data.len()
            }
            Step::Broken(why) => {
                tracing::debug!("upstream {}: broken response: {why}", up.upstream);
                self.conns.remove(&conn);
                self.upstreams[up.upstream].active =
                    self.upstreams[up.upstream].active.saturating_sub(1);
                io.close(conn);
                self.exchange_failed(io, client, Failure::Malformed);
                data.len()
            }
            Step::Orphan => {
                self.release(io, conn, false);
                data.len()
            }
            Step::Tunnel(at) => {
                self.open_tunnel(io, conn, client, &data[at..]);
                data.len()
            }
        }
    }

    /// Relays what `data` holds of `client`'s response into `out`: heads
    /// rewritten, body pieces re-framed.
    fn relay_response(
        &mut self,
        io: &mut Io,
        upstream: usize,
        client: Token,
        data: &[u8],
        out: &mut Outbox,
    ) -> Step {
        let now = io.now();
        let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.as_mut()) else {
            return Step::Orphan;
        };
        ex.got_byte = true;
        ex.last_upstream = now;
        let mut at = 0;
        loop {
            match &mut ex.response {
                ResponsePhase::Head => {
                    let parsed = if ex.req.upgrade {
                        proxy::parse_upgrade_response(&data[at..])
                    } else {
                        proxy::parse_response(&data[at..], ex.req.is_head)
                    };
                    let head = match parsed {
                        Ok(Some(head)) => head,
                        Ok(None) => return Step::Used(at),
                        Err(e) => return Step::Broken(e.why),
                    };
                    let bytes = &data[at..at + head.head_len];
                    at += head.head_len;
                    if head.interim {
                        // 100 Continue and other 1xx: relayed (a 1.0
                        // client must not get one, RFC 9110 §15.2).
                        if ex.req.version >= 1 {
                            let buf = out.buf();
                            proxy::write_client_response(bytes, &head, Framing::None, 1, true, buf);
                        }
                        continue;
                    }
                    self.stats.upstreams[upstream]
                        .latency
                        .record(now.saturating_duration_since(ex.sent_at));
                    self.stats.requests.record(nanos(now, ex.started));
                    self.upstreams[upstream].health.succeeded();
                    if head.status == 101 {
                        let buf = out.buf();
                        proxy::write_client_response(bytes, &head, Framing::None, 1, true, buf);
                        ex.head_sent = true;
                        return Step::Tunnel(at);
                    }
                    // A body delimited by the upstream's close goes to a
                    // 1.1 client chunked, so the client connection stays.
                    let client_framing = match head.body {
                        Framing::UntilClose if ex.req.version >= 1 => Framing::Chunked,
                        other => other,
                    };
                    ex.client_keep_alive = ex.req.keep_alive
                        && client_framing != Framing::UntilClose
                        && !io.is_draining();
                    proxy::write_client_response(
                        bytes,
                        &head,
                        client_framing,
                        ex.req.version,
                        ex.client_keep_alive,
                        out.buf(),
                    );
                    ex.head_sent = true;
                    if !head.body.has_body() {
                        return Step::Done {
                            reusable: head.keep_alive && at == data.len(),
                        };
                    }
                    ex.response = ResponsePhase::Body {
                        decoder: BodyDecoder::new(head.body),
                        chunked: client_framing == Framing::Chunked,
                        reusable: head.keep_alive,
                    };
                }
                ResponsePhase::Body {
                    decoder,
                    chunked,
                    reusable,
                } => {
                    let (chunked, reusable) = (*chunked, *reusable);
                    let mut forward = |piece: &[u8]| out.piece(io, client, piece, chunked);
                    return match decoder.decode(&data[at..], &mut forward) {
                        Ok((used, true)) => {
                            if chunked {
                                out.push(io, client, ChunkedEncoder::LAST_CHUNK);
                            }
                            // Bytes after the response, unasked: the
                            // connection is not in a state to reuse.
                            Step::Done {
                                reusable: reusable && at + used == data.len(),
                            }
                        }
                        Ok((_, false)) => {
                            let pending = io.pending_output(client) + out.len();
                            if pending > io.config().high_watermark {
                                // The client is slow: hold the upstream until
                                // it has taken what it was sent.
                                Step::Hold
                            } else {
                                Step::Used(data.len())
                            }
                        }
                        Err(e) => Step::Broken(e.why),
                    };
                }
            }
        }
    }

    /// The upstream closed its side: the end of a body delimited by
    /// close, else a failure (or an idle connection to drop).
    pub(super) fn upstream_eof(&mut self, io: &mut Io, conn: Token) {
        let Some(up) = self.conns.get(&conn).copied() else {
            return;
        };
        if let UpState::Tunnel(client) = up.state {
            return self.tunnel_peer_closed(io, client);
        }
        if let UpState::Busy(client) = up.state {
            let ended = self
                .clients
                .get(&client)
                .and_then(|c| c.ex.as_ref())
                .is_some_and(|ex| match &ex.response {
                    ResponsePhase::Body { decoder, .. } => decoder.finish_at_eof().is_ok(),
                    ResponsePhase::Head => false,
                });
            if ended {
                if let Some(ResponsePhase::Body { chunked: true, .. }) = self
                    .clients
                    .get(&client)
                    .and_then(|c| c.ex.as_ref())
                    .map(|ex| &ex.response)
                {
                    io.send(client, ChunkedEncoder::LAST_CHUNK);
                }
                self.exchange_done(io, client, false);
                return;
            }
        }
        self.upstream_closed(io, conn);
    }

    /// The upstream connection ended before its time.
    fn upstream_closed(&mut self, io: &mut Io, conn: Token) {
        // `on_close` follows and finds the connection (and its exchange)
        // as they are: closing here reports it there, once.
        io.close(conn);
    }
}

/// Nanoseconds from `since` to `now` (0 if `now` is earlier).
pub(super) fn nanos(now: std::time::Instant, since: std::time::Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(since).as_nanos()).unwrap_or(u64::MAX)
}
