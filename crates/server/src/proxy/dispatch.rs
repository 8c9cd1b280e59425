//! Where a request goes: an upstream picked by the balancer, a pooled
//! connection to it or a new one; and where a connection goes after: back
//! to the pool, or closed.

use reactor::{Io, Token};

use super::balance::Candidate;
use super::exchange::Failure;
use super::handler::{Proxy, Timer, UpConn, UpState};
use super::pool::{Idle, POOL_IDLE_TIMEOUT};

impl Proxy {
    /// Picks an upstream for `client`'s exchange (another than `avoid`
    /// when there is one) and sends its request: on a pooled connection,
    /// or a new one. `false`: no upstream is available.
    pub(super) fn dispatch(&mut self, io: &mut Io, client: Token, avoid: Option<usize>) -> bool {
        let now = io.now();
        let key = self
            .clients
            .get(&client)
            .and_then(|c| c.ex.as_ref())
            .and_then(|ex| ex.key);
        // Bounded: an upstream whose connect fails at once is tried once.
        for _ in 0..=self.upstreams.len() {
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
            let Some(upstream) = self.balancer.pick(&candidates, now, avoid, key) else {
                return false;
            };
            self.upstreams[upstream].health.picked(now);
            let (conn, reused) = match self.pool.take(upstream) {
                Some(idle) => {
                    self.cancel_timer(io, idle.timer);
                    (idle.conn, true)
                }
                None => match io.connect(self.config.upstreams[upstream].addr, None) {
                    Ok(conn) => {
                        self.stats.upstreams[upstream].connects += 1;
                        (conn, false)
                    }
                    Err(e) => {
                        // Refused at once (no route, no ports): as a failed
                        // connect; try the next upstream.
                        tracing::debug!("connect to upstream {upstream}: {e}");
                        self.stats.upstreams[upstream].failures += 1;
                        let policy = self.config.health;
                        self.upstreams[upstream].health.failed(&policy, now);
                        continue;
                    }
                },
            };
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
            let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.as_mut()) else {
                return true;
            };
            io.send(conn, &ex.head);
            ex.attach(upstream, conn, reused, timer, now);
            return true;
        }
        false
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
        if let Some(evicted) = self.pool.put(up.upstream, Idle { conn, timer }) {
            self.drop_idle(io, evicted);
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
