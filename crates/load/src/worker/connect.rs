//! Opening a thread's connections: as fast as a bounded number of connects
//! in progress allows, or paced by `--connect-rate`; spread over
//! `--source` addresses; each with its protocol's client, and a TLS
//! session of the run's one client config (whose session cache lets
//! reconnects resume).

use std::time::{Duration, Instant};

use reactor::{Io, Token, Transport};
use tls::TlsSession;

use super::{Conn, Link, Phase, Worker, TIMER_CONNECT, TIMER_CONNECT_DEADLINE};
use crate::client::Client;
use crate::inflight::InFlight;

/// Connects in progress per thread when no `--connect-rate` is given: a
/// SYN flood of 10,000 at once would overflow the server's backlog and
/// cost the stragglers a one-second SYN retransmit.
const MAX_CONNECTING: usize = 256;
/// Period of the `--connect-rate` ramp.
const CONNECT_TICK: Duration = Duration::from_millis(10);

impl<C: Client> Worker<C> {
    pub(super) fn begin_connecting(&mut self, io: &mut Io) {
        if self.spec().connect_rate.is_some() {
            io.add_timer(CONNECT_TICK, TIMER_CONNECT);
        }
        io.add_timer(self.spec().connect_deadline(), TIMER_CONNECT_DEADLINE);
        self.open_more(io);
    }

    /// The connect phase's deadline: the run starts with the connections
    /// that are open. Each connect is bounded by `--connect-timeout`, but
    /// not the phase: connects wait their turn (`MAX_CONNECTING`), so a
    /// server whose accept queue overflows (SYNs dropped) would cost a
    /// `--connect-timeout` per turn, and the run would start minutes late.
    /// What is still opening (chat: joining) is closed, what was not
    /// started is dropped: all never connected, counted as timeouts, and
    /// not replaced (a connect that failed is not retried).
    pub(super) fn connect_deadline(&mut self, io: &mut Io) {
        if self.phase != Phase::Connecting {
            return;
        }
        let late: Vec<(Token, Link)> = self
            .conns
            .iter()
            .flatten()
            .filter(|c| c.link.is_opening() || (c.link == Link::Up && !c.client.is_ready()))
            .map(|c| (c.token, c.link))
            .collect();
        let unstarted = std::mem::take(&mut self.to_open) as u64;
        tracing::debug!(
            opening = late.len(),
            unstarted,
            "the connect phase's deadline passed"
        );
        for &(token, link) in &late {
            // An opening one is counted in `on_close`.
            match link {
                Link::Up => self.result.never_connected += 1,
                // As the handshake timer (due now too) would have.
                Link::Handshaking => self.result.handshakes.timeouts += 1,
                _ => {}
            }
            self.error(|e| e.timeouts += 1);
            io.close(token);
        }
        self.result.never_connected += unstarted;
        for _ in 0..unstarted {
            self.error(|e| e.timeouts += 1);
        }
        self.check_connected(io);
    }

    /// `--connect-rate`: one tick's worth of connects more.
    pub(super) fn connect_tick(&mut self, io: &mut Io) {
        let Some(rate) = self.spec().connect_rate else {
            return;
        };
        let per_thread = rate / self.spec().threads as f64;
        self.connect_allowance += per_thread * CONNECT_TICK.as_secs_f64();
        self.open_more(io);
        if self.to_open > 0 {
            io.add_timer(CONNECT_TICK, TIMER_CONNECT);
        } else {
            self.connect_allowance = 0.0;
        }
    }

    pub(super) fn open_more(&mut self, io: &mut Io) {
        while self.to_open > 0 && self.phase != Phase::Done {
            if self.spec().connect_rate.is_some() {
                if self.connect_allowance < 1.0 {
                    break;
                }
                self.connect_allowance -= 1.0;
            } else if self.connecting >= MAX_CONNECTING {
                break;
            }
            self.to_open -= 1;
            let source = if self.spec().sources.is_empty() {
                None
            } else {
                let sources = &self.spec().sources;
                let s = sources[self.next_source % sources.len()];
                self.next_source += self.spec().threads;
                Some(s)
            };
            if self.spec().new_conn_per_request && self.requests_exhausted {
                // No request left for a new connection to carry.
                self.to_open = 0;
                break;
            }
            let transport: Option<Box<dyn Transport>> = match &self.spec().tls {
                None => None,
                Some(tls) => match tls.session() {
                    Ok(session) => {
                        Some(Box::new(TlsSession::new(session, self.shared.tls.clone())))
                    }
                    Err(e) => {
                        // `LoadSpec::validate` made one: not expected.
                        tracing::warn!("cannot start a TLS session: {e}");
                        self.error(|e| e.connect_failures += 1);
                        if self.phase == Phase::Connecting {
                            self.result.never_connected += 1;
                        }
                        continue;
                    }
                },
            };
            // Numbered as the clients are (chat's `id`): round-robin over
            // the servers.
            let n = self.opened * self.spec().threads as u64 + self.id as u64;
            match io.connect_with(self.spec().target_of(n), source, transport) {
                Ok(token) => {
                    let client = C::new(&self.shared, self.id, self.opened);
                    self.opened += 1;
                    let now = Instant::now();
                    let conn = Conn {
                        token,
                        client,
                        in_flight: InFlight::new(now),
                        link: Link::Connecting,
                        opened_at: now,
                        carried: 0,
                        answered: false,
                    };
                    if self.conns.len() <= token.index() {
                        self.conns.resize_with(token.index() + 1, || None);
                    }
                    if let Some(old) = self.conns[token.index()].replace(conn) {
                        // Overwriting it would lose its close: its requests
                        // in flight, its place in `open`, its replacement.
                        self.closing.push(old);
                    }
                    self.connecting += 1;
                }
                Err(e) => {
                    tracing::debug!("connect failed at once: {e}");
                    self.error(|e| e.connect_failures += 1);
                    if self.phase == Phase::Connecting {
                        self.result.never_connected += 1;
                    }
                }
            }
        }
    }
}
