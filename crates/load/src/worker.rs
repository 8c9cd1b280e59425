//! One load thread: a reactor whose connections are all outbound, and the
//! handler that drives them (closed or open loop) and measures.
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
use std::time::{Duration, Instant};

use http::client::ResponseReader;
use reactor::{CloseReason, Handler, Io, TimerId, Token};

use crate::chat::{self, ChatClient, ChatError, ChatTotals, Received};
use crate::echo::EchoStream;
use crate::inflight::InFlight;
use crate::spec::{LoadSpec, Stop, Workload};
use crate::totals::Totals;

mod phase;
mod shared;
mod timeouts;
mod window;

use phase::Phase;
pub(crate) use shared::{ChatShared, Live, Shared};
use window::Window;

/// Connects in progress per thread when no `--connect-rate` is given: a
/// SYN flood of 10,000 at once would overflow the server's backlog and
/// cost the stragglers a one-second SYN retransmit.
const MAX_CONNECTING: usize = 256;
/// Open-loop sends issued in one timer callback before yielding to the
/// loop, so a schedule that fell behind cannot starve reading.
const MAX_SENDS_PER_TICK: usize = 4096;
/// Period of the `--connect-rate` ramp.
const CONNECT_TICK: Duration = Duration::from_millis(10);

const TIMER_END: u64 = 1;
const TIMER_SWEEP: u64 = 2;
const TIMER_PACE: u64 = 3;
const TIMER_CONNECT: u64 = 4;
const TIMER_MEASURE: u64 = 5;
const TIMER_DRAIN: u64 = 6;

enum Proto {
    Echo(EchoStream),
    Http(ResponseReader),
    Chat(ChatClient),
}

struct Conn {
    token: Token,
    proto: Proto,
    in_flight: InFlight,
    connected: bool,
    opened_at: Instant,
    /// The server announced it will close after the last response.
    server_closing: bool,
    /// Bytes left unconsumed by the last `on_data` (a partial head), which
    /// the reactor offers again with the new ones.
    carried: usize,
}

pub(crate) struct Worker {
    id: usize,
    shared: Arc<Shared>,
    conns: Vec<Option<Conn>>,
    /// Connections closed whose `on_close` has not come yet, displaced from
    /// their slot in `conns` by a new connection: the reactor reports
    /// closes after the callback that caused them, and may hand a freed
    /// slot's index to a connect made in between (e.g. while several
    /// `on_close` of one sweep are reported in turn).
    closing: Vec<Conn>,
    /// Connected connections, for open-loop round-robin.
    ready: Vec<Token>,
    to_open: usize,
    connecting: usize,
    /// Chat: connected clients that have not joined their room yet.
    joining: usize,
    /// Chat: connections opened so far (this thread's `k`-th client is
    /// client `k * threads + id` of the run).
    opened: u64,
    /// Chat counts of connections already closed.
    chat_closed: ChatTotals,
    /// Chat: messages sent in the measured window.
    window_sent: u64,
    open: u64,
    next_seed: u64,
    next_source: usize,
    connect_allowance: f64,
    phase: Phase,
    window: Window,
    /// `--requests`: this thread found the count used up.
    requests_exhausted: bool,
    in_flight: u64,
    /// Open loop: the schedule's start, per-thread rate, and next slot.
    schedule_t0: Instant,
    thread_rate: f64,
    slot: u64,
    out: Vec<u8>,
    result: Totals,
}

impl Worker {
    pub(crate) fn new(id: usize, shared: Arc<Shared>) -> Worker {
        let spec = &shared.spec;
        let threads = spec.threads;
        let share = spec.connections / threads + usize::from(id < spec.connections % threads);
        let thread_rate = match spec.workload {
            // The schedule is carried by this thread's senders: clients
            // id, id + threads, ... below `senders`.
            Workload::Chat { senders, .. } => {
                let mine = senders / threads + usize::from(id < senders % threads);
                spec.rate.map_or(0.0, |r| r * mine as f64 / senders as f64)
            }
            _ => spec.rate.map_or(0.0, |r| r / threads as f64),
        };
        let now = Instant::now();
        Worker {
            id,
            conns: Vec::new(),
            closing: Vec::new(),
            ready: Vec::new(),
            to_open: share,
            connecting: 0,
            joining: 0,
            opened: 0,
            chat_closed: ChatTotals::default(),
            window_sent: 0,
            open: 0,
            next_seed: (id as u64) << 40,
            next_source: id,
            connect_allowance: 0.0,
            phase: Phase::Connecting,
            window: Window::new(now),
            requests_exhausted: false,
            in_flight: 0,
            schedule_t0: now,
            thread_rate,
            slot: 0,
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
        if matches!(self.shared.spec.stop, Stop::Requests(_)) {
            // A counted run measures from the first request.
            self.window.open();
        }
        let sweep = self.sweep_period();
        io.add_timer(sweep, TIMER_SWEEP);
        if self.shared.spec.connect_rate.is_some() {
            io.add_timer(CONNECT_TICK, TIMER_CONNECT);
        }
        self.open_more(io);
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

    fn conn(&mut self, token: Token) -> Option<&mut Conn> {
        conn_mut(&mut self.conns, token)
    }

    // ---- connecting ----------------------------------------------------

    fn open_more(&mut self, io: &mut Io) {
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
            match io.connect(self.spec().target, source) {
                Ok(token) => {
                    self.next_seed += 1;
                    let proto = match &self.spec().workload {
                        Workload::Echo { size } => {
                            Proto::Echo(EchoStream::new(self.next_seed, *size))
                        }
                        Workload::Http { method, .. } => Proto::Http(ResponseReader::new(method)),
                        Workload::Chat { rooms, senders } => {
                            let client = self.opened * self.spec().threads as u64 + self.id as u64;
                            Proto::Chat(ChatClient::new(
                                client,
                                *rooms as u64,
                                *senders as u64,
                                &self.shared.chat.tag,
                            ))
                        }
                    };
                    self.opened += 1;
                    let now = Instant::now();
                    let conn = Conn {
                        token,
                        proto,
                        in_flight: InFlight::new(now),
                        connected: false,
                        opened_at: now,
                        server_closing: false,
                        carried: 0,
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
                }
            }
        }
    }

    // ---- sending ---------------------------------------------------------

    /// Claims one request under `--requests`; always true for timed runs.
    fn claim(&mut self) -> bool {
        let Stop::Requests(n) = self.spec().stop else {
            return true;
        };
        if self.requests_exhausted {
            return false;
        }
        if self.shared.claimed.fetch_add(1, Ordering::Relaxed) < n {
            true
        } else {
            self.requests_exhausted = true;
            false
        }
    }

    /// Sends `count` requests on `token` in one write, stamped with their
    /// intended send time.
    fn send(&mut self, io: &mut Io, token: Token, intended: Instant, count: usize) -> bool {
        let Some(conn) = conn_mut(&mut self.conns, token) else {
            return false;
        };
        self.out.clear();
        match (&mut conn.proto, &self.shared.spec.workload) {
            (Proto::Echo(stream), _) => {
                for _ in 0..count {
                    stream.append_message(&mut self.out);
                }
            }
            (Proto::Http(_), Workload::Http { request, .. }) => {
                for _ in 0..count {
                    self.out.extend_from_slice(request);
                }
            }
            (Proto::Chat(client), _) => {
                // Stamped with the time it was due: lateness of the sender
                // counts as latency, as in every open-loop measurement here.
                let due = self.shared.chat.nanos(intended);
                for _ in 0..count {
                    client.append_message(&mut self.out, due);
                }
                let id = client.id() as usize;
                self.shared.chat.last_due[id].store(due, Ordering::Relaxed);
                self.shared.chat.sent[id].store(client.sent(), Ordering::Release);
                if self.window.is_recording() {
                    self.window_sent += count as u64;
                }
            }
            (Proto::Http(_), _) => unreachable!("protocol follows workload"),
        }
        let now = Instant::now();
        if !matches!(conn.proto, Proto::Chat(_)) {
            for _ in 0..count {
                conn.in_flight.push(intended, now);
            }
            self.in_flight += count as u64;
        }
        let len = self.out.len() as u64;
        if io.send(token, &self.out) && self.window.is_recording() {
            self.result.recorder.bytes_out += len;
        }
        true
    }

    /// Closed loop: keeps `pipeline` requests in flight on `token`, all
    /// that are missing sent in one write.
    fn fill_pipeline(&mut self, io: &mut Io, token: Token) {
        if self.spec().rate.is_some() || self.phase == Phase::Done {
            return;
        }
        let pipeline = self.spec().pipeline;
        let Some(conn) = self.conn(token) else { return };
        if conn.server_closing {
            return;
        }
        let missing = pipeline.saturating_sub(conn.in_flight.len());
        let mut claimed = 0;
        while claimed < missing && self.claim() {
            claimed += 1;
        }
        if claimed > 0 {
            self.send(io, token, Instant::now(), claimed);
        }
        if claimed < missing {
            self.check_requests_done(io);
        }
    }

    /// Open loop: sends every request whose slot on the schedule is due,
    /// round-robin over connected connections, and re-arms for the next.
    fn pace(&mut self, io: &mut Io) {
        // A chat thread without senders has no schedule (a rate of 0).
        if !self.phase.is_sending() || self.thread_rate <= 0.0 {
            return;
        }
        let now = Instant::now();
        let mut sent = 0;
        loop {
            let due =
                self.schedule_t0 + Duration::from_secs_f64(self.slot as f64 / self.thread_rate);
            if due > now {
                io.add_timer(due - now, TIMER_PACE);
                return;
            }
            if sent == MAX_SENDS_PER_TICK {
                io.add_timer(Duration::ZERO, TIMER_PACE);
                return;
            }
            if !self.claim() {
                self.check_requests_done(io);
                return;
            }
            self.slot += 1;
            sent += 1;
            if self.ready.is_empty() {
                // No connection to carry this slot: it is missed, and
                // counted as lost rather than silently skipped.
                self.result.lost += 1;
                continue;
            }
            let token = self.ready[self.slot as usize % self.ready.len()];
            if !self.send(io, token, due, 1) {
                // Its connection was displaced to `closing`: the slot is
                // missed, and counted.
                self.result.lost += 1;
            }
        }
    }

    fn check_requests_done(&mut self, io: &mut Io) {
        if self.requests_exhausted && self.in_flight == 0 {
            self.end(io);
        }
    }

    // ---- receiving -------------------------------------------------------

    fn complete(&mut self, token: Token, status: Option<u16>) {
        let Some(conn) = self.conn(token) else { return };
        let Some(sent) = conn.in_flight.pop() else {
            return;
        };
        self.in_flight -= 1;
        self.live().requests.fetch_add(1, Ordering::Relaxed);
        if self.window.is_recording() {
            let (corrected, uncorrected) = sent.ages(Instant::now());
            self.result.recorder.record(corrected, uncorrected);
            if let Some(status) = status {
                self.result.recorder.status(status);
            }
        }
    }

    fn error(&mut self, count: impl FnOnce(&mut crate::recorder::Errors)) {
        count(&mut self.result.recorder.errors);
        self.live().errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Closes a connection whose failure was already counted; it is
    /// replaced by `on_close`.
    fn abandon(&mut self, io: &mut Io, token: Token) {
        io.close(token);
    }

    fn on_echo_data(&mut self, io: &mut Io, token: Token, data: &[u8]) -> usize {
        let Some(conn) = self.conn(token) else {
            return data.len();
        };
        let Proto::Echo(stream) = &mut conn.proto else {
            return data.len();
        };
        match stream.receive(data) {
            Ok(done) => {
                for _ in 0..done {
                    self.complete(token, None);
                }
                self.fill_pipeline(io, token);
                self.check_requests_done(io);
            }
            Err(e) => {
                tracing::debug!(?token, ?e, "echo mismatch");
                self.error(|e| e.mismatches += 1);
                self.abandon(io, token);
            }
        }
        data.len()
    }

    fn on_http_data(&mut self, io: &mut Io, token: Token, data: &[u8]) -> usize {
        let mut consumed = 0;
        loop {
            let Some(conn) = self.conn(token) else {
                return data.len();
            };
            let Proto::Http(reader) = &mut conn.proto else {
                return data.len();
            };
            match reader.feed(&data[consumed..]) {
                Ok((used, response)) => {
                    consumed += used;
                    if let Some(response) = response {
                        if response.close {
                            conn.server_closing = true;
                        }
                        self.complete(token, Some(response.status));
                    } else if used == 0 {
                        break;
                    }
                    if consumed == data.len() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(?token, ?e, "bad response");
                    self.error(|e| e.malformed += 1);
                    self.abandon(io, token);
                    return data.len();
                }
            }
        }
        self.fill_pipeline(io, token);
        self.check_requests_done(io);
        consumed
    }

    /// Chat: checks every complete line; a delivery's latency is taken
    /// with one clock reading per read.
    fn on_chat_data(&mut self, io: &mut Io, token: Token, data: &[u8]) -> usize {
        let now = self.shared.chat.nanos(Instant::now());
        let (lines, consumed) = chat::complete_lines(data);
        let Some(Conn {
            proto: Proto::Chat(client),
            ..
        }) = conn_mut(&mut self.conns, token)
        else {
            return data.len();
        };
        let mut deliveries = 0;
        let mut joined = false;
        let mut failure = None;
        for line in lines {
            match client.receive(line) {
                Ok(Received::Delivery { sent_nanos }) => {
                    deliveries += 1;
                    if self.window.is_recording() {
                        let latency = Duration::from_nanos(now.saturating_sub(sent_nanos));
                        self.result.recorder.record(latency, latency);
                    }
                }
                Ok(Received::Joined) => joined = true,
                Ok(Received::Other) => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let sender = client.is_sender();
        self.live()
            .requests
            .fetch_add(deliveries, Ordering::Relaxed);
        if joined {
            self.joining -= 1;
            if sender {
                self.ready.push(token);
            }
            self.check_connected(io);
        }
        if let Some(e) = failure {
            tracing::debug!(?token, ?e, "chat");
            match e {
                ChatError::Refused(_) => self.error(|e| e.refused += 1),
                ChatError::Malformed(_) => self.error(|e| e.malformed += 1),
                ChatError::Misrouted { .. } => self.error(|e| e.mismatches += 1),
            }
            self.abandon(io, token);
            return data.len();
        }
        consumed
    }
}

impl Handler for Worker {
    fn on_connect(&mut self, io: &mut Io, token: Token) {
        let Some(conn) = self.conn(token) else { return };
        conn.connected = true;
        conn.in_flight.progress(Instant::now());
        self.connecting -= 1;
        self.open += 1;
        self.result.connects += 1;
        self.result.peak_open = self.result.peak_open.max(self.open);
        self.live().open.store(self.open, Ordering::Relaxed);
        if let Some(Conn {
            proto: Proto::Chat(client),
            ..
        }) = conn_mut(&mut self.conns, token)
        {
            // Nick and room at once: the server reads them after its
            // greeting. The client joins the schedule when it is in.
            self.out.clear();
            client.hello(&mut self.out);
            self.joining += 1;
            io.send(token, &self.out);
        } else {
            self.ready.push(token);
        }
        self.fill_pipeline(io, token);
        self.open_more(io);
        self.check_connected(io);
    }

    fn on_data(&mut self, io: &mut Io, token: Token, data: &[u8]) -> usize {
        let Some(conn) = self.conn(token) else {
            return data.len();
        };
        let fresh = data.len() - conn.carried.min(data.len());
        if fresh > 0 {
            conn.in_flight.progress(Instant::now());
        }
        if self.window.is_recording() {
            self.result.recorder.bytes_in += fresh as u64;
        }
        let consumed = match self.spec().workload {
            Workload::Echo { .. } => self.on_echo_data(io, token, data),
            Workload::Http { .. } => self.on_http_data(io, token, data),
            Workload::Chat { .. } => self.on_chat_data(io, token, data),
        };
        if let Some(conn) = self.conn(token) {
            conn.carried = data.len() - consumed;
        }
        consumed
    }

    fn on_eof(&mut self, io: &mut Io, token: Token) {
        let Some(conn) = self.conn(token) else { return };
        // An echo server never closes first; an HTTP server may, after a
        // response that announced it or between requests.
        // Nor does a chat server close a member.
        let (early, completed) = match &mut conn.proto {
            Proto::Echo(_) | Proto::Chat(_) => (true, None),
            Proto::Http(reader) => match reader.eof() {
                Ok(Some(response)) => (false, Some(response.status)),
                Ok(None) => (!conn.in_flight.is_empty() && !conn.server_closing, None),
                Err(_) => (true, None),
            },
        };
        if let Some(status) = completed {
            self.complete(token, Some(status));
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
        if self.phase != Phase::Done {
            self.result.lost += unanswered;
        }
        if conn.connected {
            self.open -= 1;
            self.live().open.store(self.open, Ordering::Relaxed);
            if let Some(i) = self.ready.iter().position(|&t| t == token) {
                self.ready.swap_remove(i);
            }
        } else {
            self.connecting -= 1;
        }
        let chat = match &conn.proto {
            Proto::Chat(client) => Some(client),
            _ => None,
        };
        if let Some(client) = chat {
            if conn.connected && !client.is_joined() {
                self.joining -= 1;
            }
            if self.phase != Phase::Done {
                // Its close was counted as an error; what it received
                // counts, what it can no longer receive is not lost.
                let sent = self.shared.chat.sent();
                let mut totals = ChatTotals::default();
                totals.receiver(client, &sent);
                totals.expected = totals.delivered;
                totals.lost = 0;
                self.chat_closed.add(&totals);
            }
        }
        if self.phase == Phase::Done {
            return;
        }
        let replace = match reason {
            CloseReason::ConnectFailed(errno) => {
                tracing::debug!(
                    "connect failed: {}",
                    std::io::Error::from_raw_os_error(errno)
                );
                self.error(|e| e.connect_failures += 1);
                false
            }
            CloseReason::Reset | CloseReason::Error(_) => {
                self.error(|e| e.resets += 1);
                conn.connected
            }
            // A chat client is not replaced: one joining late is owed
            // nothing sent before, and the accounting would not know.
            _ if chat.is_some() => false,
            // Closed by us after counting why, or by the server after EOF
            // (counted in on_eof).
            _ => conn.connected,
        };
        if replace {
            self.to_open += 1;
            self.result.replaced += 1;
        }
        self.open_more(io);
        self.check_connected(io);
        self.check_requests_done(io);
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, data: u64) {
        match data {
            TIMER_END => self.end(io),
            TIMER_DRAIN => self.drain(io),
            TIMER_MEASURE => self.start_window(io),
            TIMER_PACE => self.pace(io),
            TIMER_CONNECT => {
                if let Some(rate) = self.spec().connect_rate {
                    let per_thread = rate / self.spec().threads as f64;
                    self.connect_allowance += per_thread * CONNECT_TICK.as_secs_f64();
                    self.open_more(io);
                    if self.to_open > 0 {
                        io.add_timer(CONNECT_TICK, TIMER_CONNECT);
                    } else {
                        self.connect_allowance = 0.0;
                    }
                }
            }
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
fn conn_mut(conns: &mut [Option<Conn>], token: Token) -> Option<&mut Conn> {
    match conns.get_mut(token.index()) {
        Some(Some(conn)) if conn.token == token => Some(conn),
        _ => None,
    }
}
