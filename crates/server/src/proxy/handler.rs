//! The proxy's [`Handler`]: client connections and upstream connections
//! on one reactor. Every token is one of three roles: a client
//! connection ([`Client`], `request.rs` reads its requests), an upstream
//! connection ([`UpConn`], `response.rs` reads its responses), or an
//! active health check (`checks.rs`).
//!
//! One request per client connection is in flight at a time (its
//! [`Exchange`]): pipelined requests wait, in order, until the response
//! before them has been relayed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::date::DateCache;
use reactor::{CloseReason, Handler, Io, TimerId, Token};

use super::balance::Balancer;
use super::checks::Check;
use super::config::ProxyConfig;
use super::exchange::{Exchange, Failure, Outbox};
use super::health::Health;
use super::ids::IdMap;
use super::pool::Pool;
use super::stats::{ProxyBoard, ProxyStats};
use super::tunnel::Tunnel;
use crate::serve::{Notice, Notify};

/// How often a worker publishes its figures to the board (and prints the
/// stats line with `--stats`).
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Bytes a client may send ahead (pipelined requests) while its request
/// is in flight before it is no longer read.
pub(super) const MAX_AHEAD: usize = 64 * 1024;

/// A client connection.
pub(super) struct Client {
    /// The client's address (a PROXY protocol header's, if any), for
    /// `X-Forwarded-For`.
    pub addr: IpAddr,
    /// Bytes received but not yet used: the start of a request head, or
    /// pipelined requests waiting for the one in flight.
    pub ahead: Vec<u8>,
    /// The request in flight.
    pub ex: Option<Exchange>,
    /// The client closed its sending side: close after the response.
    pub eof: bool,
    /// Reading it is held by the proxy (its upstream is slow to take the
    /// body or the tunnel's bytes, or too much was sent ahead).
    pub held: bool,
    /// Upgraded (a 101 was relayed): its bytes are tunnelled.
    pub tunnel: Option<Tunnel>,
}

/// What an upstream connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UpState {
    /// Connecting for the client's request.
    Connecting(Token),
    /// Carrying the client's request.
    Busy(Token),
    /// In the pool.
    Idle(Armed),
    /// Tunnelling the client's upgraded connection (never pooled).
    Tunnel(Token),
}

/// An upstream connection.
#[derive(Clone, Copy, Debug)]
pub(super) struct UpConn {
    pub upstream: usize,
    pub state: UpState,
    /// Reading it is held: its client is slow to take the response.
    pub held: bool,
}

/// A timer the proxy armed: the reactor's id and the key of its purpose
/// in [`Proxy::timers`] (removed when it fires or is cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Armed {
    pub id: TimerId,
    key: u64,
}

/// What a proxy timer is for (timer data is a key into
/// [`Proxy::timers`]).
#[derive(Clone, Copy, Debug)]
pub(super) enum Timer {
    /// The client's exchange: connect timeout, then upstream timeout.
    Exchange(Token),
    /// A pooled connection's idle timeout.
    PoolIdle(Token),
    /// The client's tunnel: its idle timeout.
    Tunnel(Token),
    /// Time for the next active check of an upstream.
    Check(usize),
    /// The end of the current pass (`dispatch.rs`).
    EndOfPass,
    /// The once-a-second publish (and stats line).
    Publish,
}

/// One upstream as a worker sees it.
pub(super) struct UpstreamState {
    /// The hash of its name: its identity for hash balancing.
    pub id: u64,
    pub health: Health,
    /// Requests in flight (least connections).
    pub active: u32,
    /// The connection of the active check in flight, if any.
    pub check: Option<Token>,
    /// The last active-check verdict applied (a
    /// [`CheckBoard`](super::checks::CheckBoard) slot).
    pub verdict: u64,
}

/// A worker's proxy: its clients, upstream connections, pool, balancer,
/// health and figures.
pub struct Proxy {
    pub(super) config: Arc<ProxyConfig>,
    worker: usize,
    pub(super) upstreams: Vec<UpstreamState>,
    pub(super) balancer: Balancer,
    pub(super) pool: Pool,
    /// Requests (client, upstream picked) waiting for the end of the pass
    /// for a connection.
    pub(super) waiting: Vec<(Token, usize)>,
    /// A [`Timer::EndOfPass`] is armed.
    pub(super) end_of_pass_armed: bool,
    pub(super) clients: IdMap<Token, Client>,
    pub(super) conns: IdMap<Token, UpConn>,
    pub(super) checks: IdMap<Token, Check>,
    pub(super) timers: IdMap<u64, Timer>,
    next_timer: u64,
    pub(super) stats: ProxyStats,
    board: Arc<ProxyBoard>,
    notify: Option<Notify>,
    /// Figures at the last stats line, for its per-second rates.
    last_line: ProxyStats,
    started: bool,
    pub(super) date: DateCache,
    /// Reused for every response's gathered bytes.
    pub(super) outbox: Outbox,
}

impl Proxy {
    /// Worker `worker`'s proxy; it publishes its figures on `board` once
    /// a second, and with `config.stats` prints its line through `notify`.
    pub fn new(
        config: Arc<ProxyConfig>,
        worker: usize,
        board: Arc<ProxyBoard>,
        notify: Option<Notify>,
    ) -> Proxy {
        let n = config.upstreams.len();
        let names: Vec<String> = config.upstreams.iter().map(|u| u.name.clone()).collect();
        Proxy {
            balancer: Balancer::new(config.balance.clone(), n),
            pool: Pool::new(n, config.keepalive),
            waiting: Vec::new(),
            end_of_pass_armed: false,
            upstreams: names
                .iter()
                .map(|name| UpstreamState {
                    id: super::balance::key_of(name.as_bytes()),
                    health: Health::default(),
                    active: 0,
                    check: None,
                    verdict: 0,
                })
                .collect(),
            config,
            worker,
            clients: IdMap::default(),
            conns: IdMap::default(),
            checks: IdMap::default(),
            timers: IdMap::default(),
            next_timer: 0,
            stats: ProxyStats::new(&names),
            last_line: ProxyStats::new(&names),
            board,
            notify,
            started: false,
            date: DateCache::default(),
            outbox: Outbox::default(),
        }
    }

    /// This worker's figures now, gauges brought up to date.
    pub fn stats(&mut self) -> ProxyStats {
        self.apply_verdicts(std::time::Instant::now());
        for (i, u) in self.stats.upstreams.iter_mut().enumerate() {
            u.idle = self.pool.idle(i) as u64;
            u.active = u64::from(self.upstreams[i].active);
            u.downs = self.upstreams[i].health.downs;
            u.up = u64::from(self.upstreams[i].health.is_up());
        }
        self.stats.clone()
    }

    /// Timers and checks start with the first callback on the reactor
    /// thread (the handler is built before its reactor runs): the wake-up
    /// `serve` gives every worker once it listens, or a first connection.
    fn start(&mut self, io: &mut Io) {
        if self.started {
            return;
        }
        self.started = true;
        self.add_timer(io, PUBLISH_EVERY, Timer::Publish);
        // Worker 0 checks for the process (`checks.rs`).
        if self.config.health_check.is_some() && self.worker == 0 {
            for i in 0..self.upstreams.len() {
                self.add_timer(io, Duration::ZERO, Timer::Check(i));
            }
        }
    }

    pub(super) fn add_timer(&mut self, io: &mut Io, after: Duration, what: Timer) -> Armed {
        self.next_timer += 1;
        self.timers.insert(self.next_timer, what);
        Armed {
            id: io.add_timer(after, self.next_timer),
            key: self.next_timer,
        }
    }

    pub(super) fn cancel_timer(&mut self, io: &mut Io, timer: Armed) {
        self.timers.remove(&timer.key);
        io.cancel_timer(timer.id);
    }

    fn publish(&mut self, io: &mut Io) {
        let now = self.stats();
        self.board.publish(self.worker, &now);
        if self.config.stats {
            if let Some(notify) = &self.notify {
                let responses = now.responses - self.last_line.responses;
                let line = format!(
                    "tenk proxy worker {}: {responses} responses/s | {}",
                    self.worker,
                    now.compact()
                );
                notify(Notice::Stats(&line));
            }
        }
        self.last_line = now;
        if !io.is_draining() {
            self.add_timer(io, PUBLISH_EVERY, Timer::Publish);
        }
    }

    fn on_exchange_timer(&mut self, io: &mut Io, client: Token) {
        let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.as_mut()) else {
            return;
        };
        let Some(conn) = ex.conn else {
            return;
        };
        let held = self.conns.get(&conn).is_some_and(|u| u.held);
        let connecting = matches!(
            self.conns.get(&conn).map(|u| u.state),
            Some(UpState::Connecting(_))
        );
        if connecting {
            return self.upstream_gone(io, conn, Failure::ConnectTimeout);
        }
        // Lazy: the deadline moves with every byte from the upstream; a
        // held upstream (the client is slow) is not timed.
        let due = ex.last_upstream + self.config.upstream_timeout;
        if held || io.now() < due {
            let after = if held {
                self.config.upstream_timeout
            } else {
                due - io.now()
            };
            let timer = self.add_timer(io, after, Timer::Exchange(client));
            if let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.as_mut()) {
                ex.timer = Some(timer);
            }
            return;
        }
        self.upstream_gone(io, conn, Failure::Timeout);
    }

    /// Sends `status` with a short text body to `client`; it stays open
    /// for its next request if `keep_alive`.
    pub(super) fn answer(&mut self, io: &mut Io, client: Token, status: u16, keep_alive: bool) {
        let now = io.now();
        let started = self
            .clients
            .get(&client)
            .and_then(|c| c.ex.as_ref())
            .map_or(now, |ex| ex.started);
        self.stats
            .requests
            .record(super::response::nanos(now, started));
        let body = format!("{}\n", http::status::reason(status));
        let response = http::Response::text(status, body.into_bytes());
        let mut out = Vec::with_capacity(160);
        self.date.refresh(std::time::SystemTime::now());
        response.encode(&mut out, &self.date, false, keep_alive, 1);
        io.send(client, &out);
        if !keep_alive {
            io.close_when_flushed(client);
        }
    }
}

impl Handler for Proxy {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        self.start(io);
        let addr = io
            .client_addr(conn)
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        self.clients.insert(
            conn,
            Client {
                addr,
                ahead: Vec::new(),
                ex: None,
                eof: false,
                held: false,
                tunnel: None,
            },
        );
    }

    fn on_established(&mut self, io: &mut Io, conn: Token) {
        // A transport read its preamble: a PROXY protocol header names
        // the client now, which `on_accept` could not know yet.
        if let Some(client) = self.clients.get_mut(&conn) {
            if let Ok(addr) = io.client_addr(conn) {
                client.addr = addr.ip();
            }
        }
    }

    fn on_shutdown(&mut self, io: &mut Io) {
        // Exchanges in flight finish within the drain timeout, their
        // responses with `Connection: close`: the client and its upstream
        // connection are left open. Idle clients and health checks are
        // closed by the shutdown at once; pooled connections here, with
        // their idle timers.
        self.close_pool(io);
        for (&client, c) in self.clients.iter() {
            if let Some(ex) = &c.ex {
                io.spare_at_shutdown(client);
                if let Some(conn) = ex.conn {
                    io.spare_at_shutdown(conn);
                }
            }
        }
    }

    fn on_wake(&mut self, io: &mut Io) {
        self.start(io);
        if io.is_leaving() {
            // A restart handed the listeners over (the wake that moves a
            // worker on): no request will take an idle connection again,
            // and waiting for their idle timers would hold the old
            // process up to 4 s after its last client left.
            self.close_pool(io);
        }
    }

    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        if let Some(up) = self.conns.get_mut(&conn) {
            if let UpState::Connecting(client) = up.state {
                up.state = UpState::Busy(client);
                // From now on the upstream timeout runs (lazily, from the
                // last byte either way).
                if let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.as_mut()) {
                    ex.last_upstream = io.now();
                    if let Some(timer) = ex.timer.take() {
                        self.timers.remove(&timer.key);
                        io.cancel_timer(timer.id);
                    }
                }
                let timer =
                    self.add_timer(io, self.config.upstream_timeout, Timer::Exchange(client));
                if let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.as_mut()) {
                    ex.timer = Some(timer);
                }
            }
        }
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        if let Some(client) = self.clients.get(&conn) {
            if client.tunnel.is_some() {
                return self.tunnel_up(io, conn, data);
            }
            self.client_data(io, conn, data)
        } else if self.conns.contains_key(&conn) {
            self.upstream_data(io, conn, data)
        } else if self.checks.contains_key(&conn) {
            self.check_data(io, conn, data)
        } else {
            data.len()
        }
    }

    fn on_eof(&mut self, io: &mut Io, conn: Token) {
        if let Some(client) = self.clients.get_mut(&conn) {
            client.eof = true;
            if client.tunnel.is_some() {
                self.tunnel_peer_closed(io, conn);
            } else if client.ex.is_none() {
                io.close_when_flushed(conn);
            }
        } else if self.conns.contains_key(&conn) {
            self.upstream_eof(io, conn);
        } else {
            self.check_gone(io, conn);
            io.close(conn);
        }
    }

    fn on_flushed(&mut self, io: &mut Io, conn: Token) {
        if let Some(client) = self.clients.get(&conn) {
            if client.tunnel.is_some() {
                return self.tunnel_client_flushed(io, conn);
            }
            // The client took the response: read the upstream again.
            if let Some(up) = client.ex.as_ref().and_then(|ex| ex.conn) {
                if let Some(u) = self.conns.get_mut(&up) {
                    if u.held {
                        u.held = false;
                        io.resume_reading(up);
                    }
                }
            }
        } else if let Some(up) = self.conns.get(&conn) {
            // The upstream took the request body: read the client again.
            if let UpState::Tunnel(client) = up.state {
                return self.tunnel_upstream_flushed(io, client);
            }
            if let UpState::Busy(client) = up.state {
                if let Some(c) = self.clients.get_mut(&client) {
                    if c.held && c.ahead.len() < MAX_AHEAD {
                        c.held = false;
                        io.resume_reading(client);
                    }
                }
            }
        }
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        if let Some(client) = self.clients.remove(&conn) {
            if let Some(tunnel) = client.tunnel {
                self.tunnel_client_closed(io, tunnel);
            }
            if let Some(ex) = client.ex {
                // The client went away mid-exchange: the upstream
                // connection has a response half read, so it cannot be
                // reused.
                if let Some(timer) = ex.timer {
                    self.cancel_timer(io, timer);
                }
                if let Some(up) = ex.conn {
                    if let Some(upstream) = ex.upstream {
                        self.upstreams[upstream].health.abandoned(io.now());
                    }
                    self.release(io, up, false);
                }
            }
        } else if self.conns.contains_key(&conn) {
            let failure = match reason {
                CloseReason::ConnectFailed(_) => Failure::ConnectFailed,
                CloseReason::IdleTimeout => Failure::Timeout,
                _ => Failure::Closed,
            };
            self.upstream_gone(io, conn, failure);
        } else {
            self.check_gone(io, conn);
        }
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, data: u64) {
        let Some(what) = self.timers.remove(&data) else {
            return;
        };
        match what {
            Timer::Exchange(client) => self.on_exchange_timer(io, client),
            Timer::PoolIdle(conn) => self.on_pool_timer(io, conn),
            Timer::Tunnel(client) => self.on_tunnel_timer(io, client),
            Timer::Check(upstream) => self.check_due(io, upstream),
            Timer::EndOfPass => self.end_of_pass(io),
            Timer::Publish => self.publish(io),
        }
    }
}
