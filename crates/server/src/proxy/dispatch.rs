//! Where a request goes: an upstream picked by the balancer, a pooled
//! connection to it or a new one; and where a connection goes after: back
//! to the pool, or closed.

use std::time::{Duration, Instant};

use reactor::{Io, Token};

use super::balance::Candidate;
use super::exchange::Failure;
use super::handler::{Proxy, Timer, UpConn, UpState};
use super::pool::{Idle, POOL_IDLE_TIMEOUT};

impl Proxy {
    /// Picks an upstream for `client`'s exchange (another than `avoid`
    /// when there is one) and sends its request: on a pooled connection,
    /// or a new one. `false`: no upstream is available.
    ///
    /// A request without a body that finds no idle connection waits for
    /// the end of the pass ([`Proxy::end_of_pass`]): a response later in
    /// the same pass may free one (see `pool.rs`).
    pub(super) fn dispatch(&mut self, io: &mut Io, client: Token, avoid: Option<usize>) -> bool {
        let now = io.now();
        let ex = self.clients.get(&client).and_then(|c| c.ex.as_ref());
        let may_wait = ex.is_some_and(|ex| ex.body.is_none());
        let key = ex.and_then(|ex| ex.key);
        // Bounded: an upstream whose connect fails at once is tried once.
        for _ in 0..=self.upstreams.len() {
            let Some(upstream) = self.pick(now, avoid, key) else {
                return false;
            };
            if let Some(idle) = self.pool.take(upstream) {
                self.cancel_timer(io, idle.timer);
                self.send_request(io, client, upstream, idle.conn, true);
                return true;
            }
            if may_wait {
                // Counted busy now, so that least-connections spreads the
                // requests of this pass.
                self.upstreams[upstream].active += 1;
                self.waiting.push((client, upstream));
                self.arm_end_of_pass(io);
                return true;
            }
            if self.open(io, client, upstream) {
                return true;
            }
        }
        false
    }

    /// The balancer's pick for now, marked as picked.
    fn pick(&mut self, now: Instant, avoid: Option<usize>, key: Option<u64>) -> Option<usize> {
        self.apply_verdicts(now);
        let candidates: Vec<Candidate<'_>> = self
            .config
            .upstreams
            .iter()
            .zip(&self.upstreams)
            .map(|(spec, u)| Candidate {
                id: u.id,
                weight: spec.weight,
                active: u.active,
                health: &u.health,
            })
            .collect();
        let upstream = self.balancer.pick(&candidates, now, avoid, key)?;
        self.upstreams[upstream].health.picked(now);
        Some(upstream)
    }

    /// Opens a connection to `upstream` for `client`'s request. `false`:
    /// refused at once (no route, no ports), counted as a failed connect.
    fn open(&mut self, io: &mut Io, client: Token, upstream: usize) -> bool {
        match io.connect(self.config.upstreams[upstream].addr, None) {
            Ok(conn) => {
                self.stats.upstreams[upstream].connects += 1;
                self.send_request(io, client, upstream, conn, false);
                true
            }
            Err(e) => {
                tracing::debug!("connect to upstream {upstream}: {e}");
                self.stats.upstreams[upstream].failures += 1;
                let policy = self.config.health;
                self.upstreams[upstream].health.failed(&policy, io.now());
                false
            }
        }
    }

    /// Sends `client`'s request head on `conn` (pooled if `reused`, else
    /// connecting), and counts it busy.
    fn send_request(
        &mut self,
        io: &mut Io,
        client: Token,
        upstream: usize,
        conn: Token,
        reused: bool,
    ) {
        self.conns.insert(
            conn,
            UpConn {
                upstream,
                state: if reused {
                    UpState::Busy(client)
                } else {
                    UpState::Connecting(client)
                },
                held: false,
            },
        );
        self.upstreams[upstream].active += 1;
        let u = &mut self.stats.upstreams[upstream];
        u.requests += 1;
        u.reused += u64::from(reused);
        let timeout = if reused {
            self.config.upstream_timeout
        } else {
            self.config.connect_timeout
        };
        let timer = self.add_timer(io, timeout, Timer::Exchange(client));
        let now = io.now();
        let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.as_mut()) else {
            return;
        };
        io.send(conn, &ex.head);
        ex.attach(upstream, conn, reused, timer, now);
    }

    /// Every upstream is out: `client`'s request is answered 502 at once.
    /// Returns whether its connection stays (its request was read whole).
    pub(super) fn no_upstream(&mut self, io: &mut Io, client: Token) -> bool {
        self.stats.bad_gateway += 1;
        let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.take()) else {
            return false;
        };
        let keep = ex.req.keep_alive && ex.body.is_none() && !io.is_draining();
        self.answer(io, client, 502, keep);
        keep
    }

    fn arm_end_of_pass(&mut self, io: &mut Io) {
        if !self.end_of_pass_armed {
            self.end_of_pass_armed = true;
            // Due at once: the reactor fires due timers after the pass's
            // events, in the same pass.
            self.add_timer(io, Duration::ZERO, Timer::EndOfPass);
        }
    }

    /// After the pass's events: the requests that waited get a connection
    /// (pooled during the pass, or new), then each pool is trimmed to its
    /// capacity, oldest first.
    pub(super) fn end_of_pass(&mut self, io: &mut Io) {
        self.end_of_pass_armed = false;
        let mut waiting = std::mem::take(&mut self.waiting);
        for &(client, upstream) in &waiting {
            self.upstreams[upstream].active = self.upstreams[upstream].active.saturating_sub(1);
            let wants = self
                .clients
                .get(&client)
                .and_then(|c| c.ex.as_ref())
                .is_some_and(|ex| ex.conn.is_none());
            if !wants {
                // The client went away meanwhile: a probe it was to be
                // goes to the next request.
                self.upstreams[upstream].health.abandoned(io.now());
                continue;
            }
            if let Some(idle) = self.pool.take(upstream) {
                self.cancel_timer(io, idle.timer);
                self.send_request(io, client, upstream, idle.conn, true);
            } else if !self.open(io, client, upstream)
                && !self.dispatch(io, client, Some(upstream))
                && self.no_upstream(io, client)
            {
                self.next_request(io, client);
            }
        }
        waiting.clear();
        if self.waiting.is_empty() {
            // Keeps the allocation.
            self.waiting = waiting;
        }
        for upstream in 0..self.upstreams.len() {
            while let Some(idle) = self.pool.excess(upstream) {
                self.drop_idle(io, idle);
            }
        }
    }

    /// Puts a finished upstream connection in the pool, or closes it.
    pub(super) fn release(&mut self, io: &mut Io, conn: Token, reusable: bool) {
        let Some(up) = self.conns.get(&conn).copied() else {
            return;
        };
        self.upstreams[up.upstream].active = self.upstreams[up.upstream].active.saturating_sub(1);
        if !reusable || io.is_draining() || io.is_leaving() || up.held {
            self.conns.remove(&conn);
            io.close(conn);
            return;
        }
        let timer = self.add_timer(io, POOL_IDLE_TIMEOUT, Timer::PoolIdle(conn));
        self.conns.insert(
            conn,
            UpConn {
                state: UpState::Idle(timer),
                ..up
            },
        );
        if let Some(unpooled) = self.pool.put(up.upstream, Idle { conn, timer }) {
            self.drop_idle(io, unpooled);
        } else if self.pool.over(up.upstream) {
            self.arm_end_of_pass(io);
        }
    }

    /// Closes every idle pooled connection (the worker is leaving).
    pub(super) fn close_pool(&mut self, io: &mut Io) {
        for upstream in 0..self.upstreams.len() {
            while let Some(idle) = self.pool.take(upstream) {
                self.drop_idle(io, idle);
            }
        }
    }

    /// Closes a pooled connection (evicted, timed out, closed by its
    /// backend, or sent something while idle).
    pub(super) fn drop_idle(&mut self, io: &mut Io, idle: Idle) {
        self.cancel_timer(io, idle.timer);
        self.conns.remove(&idle.conn);
        io.close(idle.conn);
    }

    /// The upstream connection `conn` failed or closed: idle, it leaves
    /// the pool; busy, its exchange fails.
    pub(super) fn upstream_gone(&mut self, io: &mut Io, conn: Token, failure: Failure) {
        let Some(up) = self.conns.remove(&conn) else {
            return;
        };
        match up.state {
            UpState::Idle(timer) => {
                self.cancel_timer(io, timer);
                self.pool.remove(up.upstream, |i| i.conn == conn);
            }
            UpState::Connecting(client) | UpState::Busy(client) => {
                self.upstreams[up.upstream].active =
                    self.upstreams[up.upstream].active.saturating_sub(1);
                io.close(conn);
                self.exchange_failed(io, client, failure);
            }
            UpState::Tunnel(client) => self.tunnel_peer_closed(io, client),
        }
    }

    pub(super) fn on_pool_timer(&mut self, io: &mut Io, conn: Token) {
        if let Some(UpConn {
            upstream,
            state: UpState::Idle(timer),
            ..
        }) = self.conns.get(&conn).copied()
        {
            if let Some(idle) = self
                .pool
                .remove(upstream, |i| i.conn == conn && i.timer == timer)
            {
                self.drop_idle(io, idle);
            }
        }
    }
}
