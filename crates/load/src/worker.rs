//! One load thread: a reactor whose connections are all outbound, and the
//! handler that drives them (closed or open loop) and measures.
//!
//! The worker knows sockets, phases, the schedule and the measuring; what
//! is said on a connection is its [`Client`]'s, one type per protocol, so
//! `Worker<C>` runs any workload without a branch on which it is. Where
//! things are:
//!
//! - [`phase`]: where the thread is in its run (connecting, warm-up, the
//!   window, the chat drain) and the moves between phases;
//! - [`connect`]: opening connections, paced or bounded;
//! - [`link`]: a connection's life — connect, TLS handshake, requests,
//!   and with `--new-conn-per-request` its close after one answer;
//! - [`send`]: the closed loop's pipeline and the open loop's schedule;
//! - the reactor's callbacks below: replies in, closes, timers;
//! - [`timeouts`]: timed-out connections and what the end leaves unanswered;
//! - [`deliveries`]: what chat receivers were owed, got and lost;
//! - [`window`]: the measured window; [`shared`]: what the threads share.
//!
//! A chat run differs in three ways: a client counts as connected once it
//! has joined its room (sending starts when every client of every thread
//! has), only senders carry the schedule, and the end of the window stops
//! the sending but not the receiving: each thread drains until every
//! message sent (on any thread) has reached its receivers here, or
//! `--timeout` passes.
//!
//! Echo and HTTP runs do not drain: requests still in flight when the
//! window ends are reported as unanswered, their waits so far recorded as
//! lower bounds of their latency (see [`timeouts`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use reactor::{CloseReason, Handler, Io, TimerId, Token};

use crate::chat::ChatTotals;
use crate::client::{Client, Inbox};
use crate::inflight::InFlight;
use crate::recorder::Errors;
use crate::spec::LoadSpec;
use crate::totals::Totals;

mod connect;
mod deliveries;
mod link;
mod phase;
mod send;
mod shared;
mod timeouts;
mod window;

use link::Link;
use phase::Phase;
use send::Schedule;
use shared::ChatShared;
pub(crate) use shared::{Live, Shared};
use window::Window;

const TIMER_END: u64 = 1;
const TIMER_SWEEP: u64 = 2;
const TIMER_PACE: u64 = 3;
const TIMER_CONNECT: u64 = 4;
const TIMER_MEASURE: u64 = 5;
const TIMER_DRAIN: u64 = 6;
const TIMER_CONNECT_DEADLINE: u64 = 7;

struct Conn<C> {
    token: Token,
    client: C,
    in_flight: InFlight,
    link: Link,
    /// When its connect started.
    opened_at: Instant,
    /// Bytes left unconsumed by the last `on_data` (a partial head), which
    /// the reactor offers again with the new ones.
    carried: usize,
    /// A byte came from the server: a connection that times out without
    /// one was never answered (often: never accepted, see `timeouts`).
    answered: bool,
}

pub(crate) struct Worker<C> {
    id: usize,
    shared: Arc<Shared>,
    phase: Phase,
    /// When the connect phase began.
    began: Instant,
    window: Window,
    conns: Vec<Option<Conn<C>>>,
    /// Connections closed whose `on_close` has not come yet, displaced from
    /// their slot in `conns` by a new connection: the reactor reports
    /// closes after the callback that caused them, and may hand a freed
    /// slot's index to a connect made in between (e.g. while several
    /// `on_close` of one sweep are reported in turn).
    closing: Vec<Conn<C>>,
    /// Ready connections that send, for open-loop round-robin.
    ready: Vec<Token>,
    /// Connects still to make, and in progress.
    to_open: usize,
    /// Connections lost during the connect phase, replaced once the run
    /// starts: replacing them at once would let a server that closes
    /// every connection hold the connect phase open for ever.
    deferred: usize,
    connecting: usize,
    /// Connected clients not ready yet (chat: not in their room).
    joining: usize,
    /// Connections opened so far: numbers each thread's clients.
    opened: u64,
    open: u64,
    next_source: usize,
    /// `--connect-rate`: connects allowed and not yet made.
    connect_allowance: f64,
    /// `--requests`: this thread found the count used up.
    requests_exhausted: bool,
    /// Requests in flight over all connections.
    in_flight: u64,
    schedule: Schedule,
    /// Requests (chat: messages) sent in the measured window.
    window_sent: u64,
    /// Chat counts of connections already closed.
    chat_closed: ChatTotals,
    out: Vec<u8>,
    result: Totals,
}

impl<C: Client> Worker<C> {
    pub(crate) fn new(id: usize, shared: Arc<Shared>) -> Worker<C> {
        let spec = &shared.spec;
        let threads = spec.threads;
        let share = spec.connections / threads + usize::from(id < spec.connections % threads);
        let now = Instant::now();
        Worker {
            id,
            phase: Phase::Connecting,
            began: now,
            window: Window::new(now),
            conns: Vec::new(),
            closing: Vec::new(),
            ready: Vec::new(),
            to_open: share,
            deferred: 0,
            connecting: 0,
            joining: 0,
            opened: 0,
            open: 0,
            next_source: id,
            connect_allowance: 0.0,
            requests_exhausted: false,
            in_flight: 0,
            schedule: Schedule::new(C::thread_rate(spec, id), now),
            window_sent: 0,
            chat_closed: ChatTotals::default(),
            out: Vec::new(),
            result: Totals::new(),
            shared,
        }
    }

    /// Starts connecting; called once before the reactor runs.
    pub(crate) fn begin(&mut self, io: &mut Io) {
        if self.shared.interrupted.load(Ordering::Acquire) {
            self.finish(io);
            return;
        }
        if matches!(self.shared.spec.stop, crate::spec::Stop::Requests(_)) {
            // A counted run measures from the first request.
            self.window.open();
        }
        self.began = Instant::now();
        let sweep = self.sweep_period();
        io.add_timer(sweep, TIMER_SWEEP);
        self.begin_connecting(io);
        self.check_connected(io);
    }

    pub(crate) fn into_result(mut self) -> Totals {
        (self.result.measured, self.result.cpu) = self.window.measured();
        self.result
    }

    fn spec(&self) -> &LoadSpec {
        &self.shared.spec
    }

    fn live(&self) -> &Live {
        &self.shared.live[self.id]
    }

    fn conn(&mut self, token: Token) -> Option<&mut Conn<C>> {
        conn_mut(&mut self.conns, token)
    }

    fn error(&mut self, count: impl FnOnce(&mut Errors)) {
        count(&mut self.result.recorder.errors);
        self.live().errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Closes a connection whose failure was already counted; it is
    /// replaced by `on_close`.
    fn abandon(&mut self, io: &mut Io, token: Token) {
        io.close(token);
    }
}

impl<C: Client> Handler for Worker<C> {
    fn on_connect(&mut self, io: &mut Io, token: Token) {
        self.connected(io, token);
    }

    fn on_established(&mut self, io: &mut Io, token: Token) {
        self.established(io, token);
    }

    fn on_data(&mut self, io: &mut Io, token: Token, data: &[u8]) -> usize {
        let Some(conn) = conn_mut(&mut self.conns, token) else {
            return data.len();
        };
        let fresh = data.len() - conn.carried.min(data.len());
        if fresh > 0 {
            conn.in_flight.progress(Instant::now());
            conn.answered = true;
        }
        let recording = self.window.is_recording();
        if recording {
            self.result.recorder.bytes_in += fresh as u64;
        }
        let recorder = recording.then_some(&mut self.result.recorder);
        let mut inbox = Inbox::new(&mut conn.in_flight, recorder);
        let read = conn.client.on_bytes(data, &mut inbox, &self.shared);
        let (answered, received, ready) =
            (inbox.answered(), inbox.received(), inbox.became_ready());
        let sends = conn.client.sends();
        self.in_flight -= answered;
        if received > 0 {
            self.live().requests.fetch_add(received, Ordering::Relaxed);
        }
        if ready {
            // Chat: in its room at last.
            self.joining -= 1;
            if sends {
                self.ready.push(token);
            }
            self.check_connected(io);
        }
        let consumed = match read {
            Ok(consumed) if answered > 0 && self.spec().new_conn_per_request => {
                self.recycle(io, token);
                self.check_requests_done(io);
                consumed
            }
            Ok(consumed) => {
                self.fill_pipeline(io, token);
                self.check_requests_done(io);
                consumed
            }
            Err(fault) => {
                tracing::debug!(?token, %fault, "bad reply");
                self.error(|e| fault.count(e));
                self.abandon(io, token);
                data.len()
            }
        };
        if let Some(conn) = self.conn(token) {
            conn.carried = data.len() - consumed;
        }
        consumed
    }

    fn on_eof(&mut self, io: &mut Io, token: Token) {
        let Some(conn) = conn_mut(&mut self.conns, token) else {
            return;
        };
        if conn.link == Link::Handshaking {
            self.closed_in_handshake(io, token);
            return;
        }
        let recorder = self
            .window
            .is_recording()
            .then_some(&mut self.result.recorder);
        let mut inbox = Inbox::new(&mut conn.in_flight, recorder);
        let early = conn.client.on_eof(&mut inbox);
        let answered = inbox.answered();
        self.in_flight -= answered;
        if answered > 0 {
            self.live().requests.fetch_add(answered, Ordering::Relaxed);
        }
        if early {
            self.error(|e| e.early_closes += 1);
        }
        io.close(token);
    }

    fn on_close(&mut self, io: &mut Io, token: Token, reason: CloseReason) {
        let in_slot = self
            .conns
            .get_mut(token.index())
            .and_then(|slot| slot.take_if(|c| c.token == token));
        let conn = match in_slot {
            Some(conn) => conn,
            None => match self.closing.iter().position(|c| c.token == token) {
                Some(i) => self.closing.swap_remove(i),
                None => return,
            },
        };
        let unanswered = conn.in_flight.len() as u64;
        self.in_flight -= unanswered;
        let done = self.phase == Phase::Done;
        if !done {
            self.result.lost += unanswered;
        }
        match conn.link {
            Link::Up => {
                self.open -= 1;
                self.live().open.store(self.open, Ordering::Relaxed);
                if let Some(i) = self.ready.iter().position(|&t| t == token) {
                    self.ready.swap_remove(i);
                }
                if !conn.client.is_ready() {
                    self.joining -= 1;
                }
            }
            // Out of the books, and replaced, already.
            Link::Spent => {}
            Link::Connecting | Link::Handshaking => self.connecting -= 1,
        }
        if done {
            return;
        }
        self.tally_closed(&conn.client);
        let replace = match (conn.link, reason) {
            (Link::Spent, _) => false,
            (Link::Connecting | Link::Handshaking, reason) => {
                self.count_failed_open(reason);
                if self.phase == Phase::Connecting {
                    self.result.never_connected += 1;
                }
                false
            }
            (Link::Up, CloseReason::Reset | CloseReason::Error(_)) => {
                self.error(|e| e.resets += 1);
                true
            }
            // A corrupt TLS record, after the handshake.
            (Link::Up, CloseReason::Transport) => {
                self.error(|e| e.malformed += 1);
                true
            }
            // Closed by us after counting why, or by the server after EOF
            // (counted in on_eof). See `Client::REPLIES` for chat.
            (Link::Up, _) => C::REPLIES,
        };
        if replace {
            self.result.replaced += 1;
            if self.phase == Phase::Connecting {
                self.deferred += 1;
            } else {
                self.to_open += 1;
            }
        }
        self.open_more(io);
        self.check_connected(io);
        self.check_requests_done(io);
        self.check_nothing_left(io);
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, data: u64) {
        match data {
            TIMER_END => self.end(io),
            TIMER_DRAIN => self.drain(io),
            TIMER_MEASURE => self.start_window(io),
            TIMER_PACE => self.pace(io),
            TIMER_CONNECT => self.connect_tick(io),
            TIMER_CONNECT_DEADLINE => self.connect_deadline(io),
            TIMER_SWEEP => {
                self.sweep(io);
                if self.phase != Phase::Done {
                    io.add_timer(self.sweep_period(), TIMER_SWEEP);
                }
            }
            _ => {}
        }
    }

    fn on_wake(&mut self, io: &mut Io) {
        if self.shared.interrupted.load(Ordering::Acquire) {
            self.end(io);
            return;
        }
        self.maybe_start(io);
    }

    fn on_signal(&mut self, io: &mut Io, _signal: i32) {
        // Ctrl-C ends the run early on every thread; the report covers
        // what was measured until then. A chat run drains first (bounded
        // by --timeout); a second Ctrl-C ends the drain.
        if self.shared.interrupted.swap(true, Ordering::AcqRel) {
            self.finish(io);
            return;
        }
        for waker in self.shared.wakers.get().into_iter().flatten() {
            let _ = waker.wake();
        }
        self.end(io);
    }
}

/// The live connection of `token` (none for a stale token).
fn conn_mut<C>(conns: &mut [Option<Conn<C>>], token: Token) -> Option<&mut Conn<C>> {
    match conns.get_mut(token.index()) {
        Some(Some(conn)) if conn.token == token => Some(conn),
        _ => None,
    }
}
