//! The reactor end to end over loopback sockets: connects, data flow,
//! closes, tokens, timers, wake-ups, stop and graceful shutdown.
//!
//! Every test that moves bytes runs in all three trigger modes. Runs are
//! bounded by the watchdog in `util`; peers outside the reactor use
//! blocking sockets with read timeouts. Nothing sleeps to synchronise.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use reactor::{CloseReason, Config, Exit, Handler, Io, TimerId, Token};
use util::{any_port, closed_port, reactor, reactor_with, run, TRIGGERS};

/// A deterministic, non-repeating-looking byte pattern, so a reordered,
/// duplicated or dropped chunk shows up as a mismatch.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

/// More than a peer that does not read lets the kernel buffer: its receive
/// window stays small, so most of this stays pending in the reactor.
const PEER_CANNOT_HOLD: usize = 4 << 20;

/// A listener on an ephemeral loopback port, and its address.
fn listen(io: &mut Io) -> (Token, SocketAddr) {
    let listener = io.listen(any_port(), 128).expect("listen");
    let addr = io.local_addr(listener).expect("local_addr");
    (listener, addr)
}

// ---------------------------------------------------------------------------
// Outbound connects
// ---------------------------------------------------------------------------

/// Client and server on one reactor: the client sends "ping" once its
/// connect completes, the server answers "pong".
#[derive(Default)]
struct PingPong {
    client: Option<Token>,
    server: Option<Token>,
    connected: u32,
    client_got: Vec<u8>,
    server_got: Vec<u8>,
}

impl Handler for PingPong {
    fn on_accept(&mut self, _io: &mut Io, _listener: Token, conn: Token) {
        assert!(self.server.replace(conn).is_none(), "one accept expected");
    }

    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        assert_eq!(
            Some(conn),
            self.client,
            "on_connect for the connecting token"
        );
        self.connected += 1;
        assert!(io.send(conn, b"ping"));
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        if Some(conn) == self.client {
            self.client_got.extend_from_slice(data);
            if self.client_got == b"pong" {
                io.stop();
            }
        } else {
            assert_eq!(Some(conn), self.server);
            self.server_got.extend_from_slice(data);
            if self.server_got == b"ping" {
                assert!(io.send(conn, b"pong"));
            }
        }
        data.len()
    }

    fn on_close(&mut self, _io: &mut Io, conn: Token, reason: CloseReason) {
        panic!("unexpected close of {conn:?}: {reason:?}");
    }
}

#[test]
fn connect_completes_and_data_flows_both_ways() {
    for trigger in TRIGGERS {
        let mut r = reactor(trigger, PingPong::default());
        let (_, addr) = listen(r.io());
        let client = r.io().connect(addr, None).expect("connect");
        r.handler().client = Some(client);

        assert_eq!(run(&mut r), Exit::Stopped);
        let h = &r.handler();
        assert_eq!(h.connected, 1, "{trigger:?}: on_connect exactly once");
        assert_eq!(h.server_got, b"ping", "{trigger:?}");
        assert_eq!(h.client_got, b"pong", "{trigger:?}");
        let stats = r.io().stats();
        assert_eq!((stats.accepted, stats.connected), (1, 1), "{trigger:?}");
        assert_eq!(r.io().connection_count(), 2, "{trigger:?}");
    }
}

/// Records the close of a connect that must fail.
#[derive(Default)]
struct Refused {
    closed: Option<(Token, CloseReason)>,
}

impl Handler for Refused {
    fn on_connect(&mut self, _io: &mut Io, conn: Token) {
        panic!("connect to a closed port completed ({conn:?})");
    }

    fn on_data(&mut self, _io: &mut Io, _conn: Token, _data: &[u8]) -> usize {
        panic!("data on a connection that never connected");
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        self.closed = Some((conn, reason));
        assert!(!io.send(conn, b"x"), "a closed token is stale");
        io.stop();
    }
}

#[test]
fn connect_to_a_closed_port_reports_connect_failed() {
    for trigger in TRIGGERS {
        let (addr, _hold_port) = closed_port();
        let mut r = reactor(trigger, Refused::default());
        let client = r.io().connect(addr, None).expect("connect starts");

        assert_eq!(run(&mut r), Exit::Stopped);
        assert_eq!(
            r.handler().closed,
            Some((client, CloseReason::ConnectFailed(libc::ECONNREFUSED))),
            "{trigger:?}"
        );
        assert_eq!(r.io().connection_count(), 0, "{trigger:?}");
        assert_eq!(r.io().stats().connected, 0, "{trigger:?}");
    }
}

/// Sends before the connect completes and again in `on_connect`; the
/// server must see both, in order.
#[derive(Default)]
struct Early {
    client: Option<Token>,
    connected: bool,
    server_got: Vec<u8>,
}

impl Handler for Early {
    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        self.connected = true;
        assert!(io.send(conn, b" late"));
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        assert_ne!(Some(conn), self.client, "the server sends nothing");
        self.server_got.extend_from_slice(data);
        if self.server_got.len() >= b"early late".len() {
            io.stop();
        }
        data.len()
    }
}

#[test]
fn data_sent_before_connect_completes_is_delivered() {
    for trigger in TRIGGERS {
        let mut r = reactor(trigger, Early::default());
        let (_, addr) = listen(r.io());
        let client = r.io().connect(addr, None).expect("connect");
        r.handler().client = Some(client);
        assert!(r.io().send(client, b"early"));
        assert_eq!(
            r.io().pending_output(client),
            5,
            "{trigger:?}: held until the connect completes"
        );

        assert_eq!(run(&mut r), Exit::Stopped);
        let h = &r.handler();
        assert!(h.connected, "{trigger:?}");
        assert_eq!(h.server_got, b"early late", "{trigger:?}");
        assert_eq!(r.io().pending_output(client), 0, "{trigger:?}");
    }
}

// ---------------------------------------------------------------------------
// Data flow, framing and closes
// ---------------------------------------------------------------------------

/// The client sends `total` bytes at once and checks the echo, consuming
/// only whole 7-byte chunks so leftovers are carried between reads; the
/// server echoes everything.
struct Bulk {
    client: Option<Token>,
    sent: Vec<u8>,
    checked: usize,
}

impl Handler for Bulk {
    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        assert!(io.send(conn, &self.sent));
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        if Some(conn) != self.client {
            assert!(io.send(conn, data));
            return data.len();
        }
        let whole = data.len() - data.len() % 7;
        let rest = self.sent.len() - self.checked;
        // The last chunk may be short: take it once everything is here.
        let take = if data.len() == rest { rest } else { whole };
        assert_eq!(
            &data[..take],
            &self.sent[self.checked..self.checked + take],
            "echo differs at byte {}",
            self.checked
        );
        self.checked += take;
        if self.checked == self.sent.len() {
            io.stop();
        }
        take
    }
}

#[test]
fn bulk_echo_survives_budgets_backpressure_and_partial_consumes() {
    for trigger in TRIGGERS {
        // Small budget, scratch and watermarks, so one transfer goes
        // through budget stops, short writes, read pauses and resumes.
        let config = Config {
            trigger,
            read_budget: 8 * 1024,
            scratch_size: 3000,
            high_watermark: 64 * 1024,
            low_watermark: 16 * 1024,
            ..Config::default()
        };
        let bulk = Bulk {
            client: None,
            sent: pattern(4 << 20),
            checked: 0,
        };
        let mut r = reactor_with(config, bulk);
        let (_, addr) = listen(r.io());
        let client = r.io().connect(addr, None).expect("connect");
        r.handler().client = Some(client);

        assert_eq!(run(&mut r), Exit::Stopped);
        assert_eq!(r.handler().checked, 4 << 20, "{trigger:?}");
        let stats = r.io().stats();
        assert!(stats.budget_stops > 0, "{trigger:?}: {stats:?}");
    }
}

/// Counts the bytes delivered to the one accepted connection in each pass
/// of the loop (a pass is one `epoll_wait`: `Stats::epoll_waits` tells
/// them apart) and keeps them all, to check their order at the end.
#[derive(Default)]
struct PerPass {
    got: Vec<u8>,
    pass: u64,
    in_pass: usize,
    most_in_a_pass: usize,
}

impl Handler for PerPass {
    fn on_data(&mut self, io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        let pass = io.stats().epoll_waits;
        if pass != self.pass {
            self.pass = pass;
            self.in_pass = 0;
        }
        self.in_pass += data.len();
        self.most_in_a_pass = self.most_in_a_pass.max(self.in_pass);
        self.got.extend_from_slice(data);
        data.len()
    }

    fn on_eof(&mut self, io: &mut Io, _conn: Token) {
        io.stop();
    }
}

/// Regression (double budget): a connection on the ready-again list that
/// also got an event was read for the event and again from the list, in the
/// same pass: twice its budget. A peer streaming faster than the budget
/// lets the reactor read keeps the connection on the list and keeps raising
/// events for it. At most one budget may be read per pass, in every mode,
/// and every byte must still arrive, in order.
#[test]
fn regression_a_connection_reads_at_most_one_budget_per_pass() {
    const BUDGET: usize = 4096;
    let sent = pattern(4 << 20);
    for trigger in TRIGGERS {
        let config = Config {
            trigger,
            read_budget: BUDGET,
            ..Config::default()
        };
        let mut r = reactor_with(config, PerPass::default());
        let (_, addr) = listen(r.io());
        let data = sent.clone();
        let writer = thread::spawn(move || {
            let mut peer = TcpStream::connect(addr).unwrap();
            peer.write_all(&data).unwrap();
            peer.shutdown(std::net::Shutdown::Write).unwrap();
        });

        assert_eq!(run(&mut r), Exit::Stopped);
        writer.join().unwrap();
        let h = &r.handler();
        assert!(
            h.got == sent,
            "{trigger:?}: {} of {} bytes, or out of order",
            h.got.len(),
            sent.len()
        );
        assert!(
            h.most_in_a_pass <= BUDGET,
            "{trigger:?}: {} bytes read in one pass, budget {BUDGET}",
            h.most_in_a_pass
        );
        let stats = r.io().stats();
        assert!(
            stats.budget_stops > 0,
            "{trigger:?}: budget never reached: {stats:?}"
        );
    }
}

/// A line protocol's framing: the server consumes complete lines only and
/// acknowledges each batch, so a partial line must be kept and offered
/// again with the bytes that complete it.
#[derive(Default)]
struct Lines {
    client: Option<Token>,
    lines: Vec<String>,
    offered: Vec<Vec<u8>>,
    replies: usize,
}

impl Handler for Lines {
    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        io.send(conn, b"one\ntw");
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        if Some(conn) == self.client {
            // Every reply is one byte; the second half of the split line
            // goes out only after the first reply, so the server has
            // already seen (and kept) "tw".
            self.replies += data.len();
            if self.replies == 1 {
                io.send(conn, b"o\nthree\n");
            }
            return data.len();
        }
        self.offered.push(data.to_vec());
        let mut consumed = 0;
        while let Some(end) = data[consumed..].iter().position(|&b| b == b'\n') {
            let line = &data[consumed..consumed + end];
            self.lines.push(String::from_utf8(line.to_vec()).unwrap());
            consumed += end + 1;
        }
        if consumed > 0 {
            io.send(conn, b"+");
        }
        if self.lines.len() == 3 {
            io.stop();
        }
        consumed
    }
}

#[test]
fn unconsumed_bytes_are_offered_again_with_the_next_ones() {
    for trigger in TRIGGERS {
        let mut r = reactor(trigger, Lines::default());
        let (_, addr) = listen(r.io());
        let client = r.io().connect(addr, None).expect("connect");
        r.handler().client = Some(client);

        assert_eq!(run(&mut r), Exit::Stopped);
        let h = &r.handler();
        assert_eq!(h.lines, ["one", "two", "three"], "{trigger:?}");
        assert!(
            h.offered.iter().any(|data| data.starts_with(b"two\n")),
            "{trigger:?}: the kept \"tw\" leads the next offer: {:?}",
            h.offered
        );
    }
}

/// The server never consumes; the client sends more than `max_input`.
#[derive(Default)]
struct Hoarder {
    client: Option<Token>,
    server_close: Option<CloseReason>,
}

impl Handler for Hoarder {
    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        io.send(conn, &[b'x'; 100]);
    }

    fn on_data(&mut self, _io: &mut Io, conn: Token, _data: &[u8]) -> usize {
        assert_ne!(Some(conn), self.client);
        0
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        if Some(conn) != self.client {
            self.server_close = Some(reason);
            io.stop();
        }
    }
}

#[test]
fn input_beyond_max_input_closes_with_input_limit() {
    for trigger in TRIGGERS {
        let config = Config {
            trigger,
            max_input: 64,
            ..Config::default()
        };
        let mut r = reactor_with(config, Hoarder::default());
        let (_, addr) = listen(r.io());
        let client = r.io().connect(addr, None).expect("connect");
        r.handler().client = Some(client);

        assert_eq!(run(&mut r), Exit::Stopped);
        assert_eq!(
            r.handler().server_close,
            Some(CloseReason::InputLimit),
            "{trigger:?}"
        );
    }
}

/// The client sends "bye" and closes; the server must get the data, then
/// EOF, then (by the default `on_eof`) a `PeerClosed` close.
#[derive(Default)]
struct Bye {
    client: Option<Token>,
    events: Vec<String>,
}

impl Handler for Bye {
    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        io.send(conn, b"bye");
        io.close_when_flushed(conn);
    }

    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        self.events
            .push(format!("data {}", String::from_utf8_lossy(data)));
        data.len()
    }

    fn on_eof(&mut self, io: &mut Io, conn: Token) {
        self.events.push("eof".into());
        io.close_when_flushed(conn);
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        let side = if Some(conn) == self.client {
            "client"
        } else {
            "server"
        };
        self.events.push(format!("{side} {reason:?}"));
        if io.connection_count() == 0 {
            io.stop();
        }
    }
}

#[test]
fn peer_close_is_reported_after_its_data() {
    for trigger in TRIGGERS {
        let mut r = reactor(trigger, Bye::default());
        let (_, addr) = listen(r.io());
        let client = r.io().connect(addr, None).expect("connect");
        r.handler().client = Some(client);

        assert_eq!(run(&mut r), Exit::Stopped);
        assert_eq!(
            r.handler().events,
            ["client Local", "data bye", "eof", "server PeerClosed"],
            "{trigger:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

/// Closes the first accepted connection, then connects again (a blocking
/// loopback connect completes in the kernel's backlog without the
/// reactor), so the second accept reuses the freed slot.
struct Reuse {
    addr: SocketAddr,
    first: Option<Token>,
    second: Option<Token>,
    peers: Vec<TcpStream>,
}

impl Handler for Reuse {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        let Some(old) = self.first else {
            self.first = Some(conn);
            io.close(conn);
            return;
        };
        self.second = Some(conn);
        assert!(!io.send(old, b"x"), "send on a stale token");
        assert_eq!(io.pending_output(old), 0);
        assert_eq!(
            io.local_addr(old).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        io.close(old); // a stale close must not close the new occupant
        assert!(io.send(conn, b"x"), "the new token works");
        assert_eq!(io.connection_count(), 1);
        io.stop();
    }

    fn on_data(&mut self, _io: &mut Io, _conn: Token, _data: &[u8]) -> usize {
        panic!("the peers send nothing");
    }

    fn on_close(&mut self, _io: &mut Io, conn: Token, reason: CloseReason) {
        assert_eq!((Some(conn), reason), (self.first, CloseReason::Local));
        self.peers.push(TcpStream::connect(self.addr).unwrap());
    }
}

#[test]
fn a_reused_slot_gets_a_new_token_and_the_old_one_is_dead() {
    for trigger in TRIGGERS {
        let mut r = reactor(
            trigger,
            Reuse {
                addr: any_port(),
                first: None,
                second: None,
                peers: Vec::new(),
            },
        );
        let (_, addr) = listen(r.io());
        let h = &mut r.handler();
        h.addr = addr;
        h.peers.push(TcpStream::connect(addr).unwrap());

        assert_eq!(run(&mut r), Exit::Stopped);
        let h = &r.handler();
        let (old, new) = (h.first.unwrap(), h.second.unwrap());
        assert_eq!(old.index(), new.index(), "{trigger:?}: the slot is reused");
        assert_ne!(old.generation(), new.generation(), "{trigger:?}");
        assert_ne!(old, new, "{trigger:?}");
    }
}

/// Two accepted connections are readable in the same `epoll_wait` batch.
/// Handling the first closes the second and gives its slot to a new
/// outbound connection; the second's queued event must then be dropped as
/// stale, reaching neither the closed connection nor the slot's new owner.
#[derive(Default)]
struct SameBatch {
    addr: Option<SocketAddr>,
    accepted: Vec<Token>,
    data_calls: Vec<Token>,
    victim: Option<Token>,
    newcomer: Option<Token>,
}

impl Handler for SameBatch {
    fn on_accept(&mut self, _io: &mut Io, _listener: Token, conn: Token) {
        self.accepted.push(conn);
    }

    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        assert_eq!(Some(conn), self.newcomer);
        io.stop();
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        self.data_calls.push(conn);
        if self.victim.is_none() {
            let victim = *self.accepted.iter().find(|&&t| t != conn).unwrap();
            self.victim = Some(victim);
            io.close(victim);
            self.newcomer = Some(io.connect(self.addr.unwrap(), None).unwrap());
        }
        data.len()
    }
}

#[test]
fn an_event_for_a_connection_closed_earlier_in_the_batch_is_dropped() {
    for trigger in TRIGGERS {
        let mut r = reactor(trigger, SameBatch::default());
        let (_, addr) = listen(r.io());
        r.handler().addr = Some(addr);
        // Both connect and send before the reactor runs, so both accepted
        // sockets are readable the moment they are registered.
        let mut peers = [
            TcpStream::connect(addr).unwrap(),
            TcpStream::connect(addr).unwrap(),
        ];
        for peer in &mut peers {
            peer.write_all(b"x").unwrap();
        }

        assert_eq!(run(&mut r), Exit::Stopped);
        let h = &r.handler();
        let (victim, newcomer) = (h.victim.unwrap(), h.newcomer.unwrap());
        // The newcomer may or may not have been accepted before it stopped.
        assert!(h.accepted.len() >= 2, "{trigger:?}");
        assert_eq!(h.data_calls.len(), 1, "{trigger:?}: {:?}", h.data_calls);
        assert_eq!(newcomer.index(), victim.index(), "{trigger:?}");
        assert_ne!(newcomer, victim, "{trigger:?}");
        assert_eq!(r.io().stats().stale_events, 1, "{trigger:?}");
    }
}

// ---------------------------------------------------------------------------
// Timers, wake-ups, stop
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Timers {
    fired: Vec<u64>,
    first: Option<TimerId>,
    to_cancel: Option<TimerId>,
}

impl Handler for Timers {
    fn on_data(&mut self, _io: &mut Io, _conn: Token, _data: &[u8]) -> usize {
        unreachable!()
    }

    fn on_timer(&mut self, io: &mut Io, timer: TimerId, data: u64) {
        assert!(timer.deadline() <= Instant::now(), "fired early");
        self.fired.push(data);
        match data {
            10 => {
                self.first = Some(timer);
                // Cancelling from inside a callback works too.
                assert!(io.cancel_timer(self.to_cancel.unwrap()));
            }
            40 => {
                assert!(!io.cancel_timer(self.first.unwrap()), "already fired");
                io.stop();
            }
            _ => {}
        }
    }
}

#[test]
fn timers_fire_in_deadline_order_and_cancelled_ones_do_not() {
    let mut r = reactor(reactor::Trigger::Edge, Timers::default());
    let io = r.io();
    let ms = Duration::from_millis;
    io.add_timer(ms(40), 40);
    io.add_timer(ms(30), 30);
    io.add_timer(ms(10), 10);
    let cancelled = io.add_timer(ms(15), 15);
    io.add_timer(ms(20), 20);
    let cancelled_in_callback = io.add_timer(ms(25), 25);
    assert!(io.cancel_timer(cancelled));
    assert!(!io.cancel_timer(cancelled), "cancelling twice");
    r.handler().to_cancel = Some(cancelled_in_callback);

    assert_eq!(run(&mut r), Exit::Stopped);
    assert_eq!(r.handler().fired, [10, 20, 30, 40]);
}

/// Stops in the first of two timers that are due in the same pass.
#[derive(Default)]
struct StopEarly {
    fired: Vec<u64>,
}

impl Handler for StopEarly {
    fn on_data(&mut self, _io: &mut Io, _conn: Token, _data: &[u8]) -> usize {
        unreachable!()
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, data: u64) {
        self.fired.push(data);
        io.stop();
    }
}

/// Regression: `Io::stop` from a timer let the rest of the pass run on, so
/// every other timer due in that pass still fired after the stop.
#[test]
fn stop_in_a_timer_fires_no_further_timers() {
    let mut r = reactor(reactor::Trigger::Edge, StopEarly::default());
    // Both deadlines have passed by the time the first pass looks.
    r.io().add_timer(Duration::ZERO, 1);
    r.io().add_timer(Duration::ZERO, 2);

    assert_eq!(run(&mut r), Exit::Stopped);
    assert_eq!(r.handler().fired, [1]);
}

/// On a zero timer (once the reactor runs), lets a thread wake the reactor.
struct Wake {
    go: mpsc::Sender<()>,
    woken: u32,
}

impl Handler for Wake {
    fn on_data(&mut self, _io: &mut Io, _conn: Token, _data: &[u8]) -> usize {
        unreachable!()
    }

    fn on_timer(&mut self, _io: &mut Io, _timer: TimerId, _data: u64) {
        self.go.send(()).unwrap();
    }

    fn on_wake(&mut self, io: &mut Io) {
        self.woken += 1;
        io.stop();
    }
}

#[test]
fn a_waker_on_another_thread_triggers_on_wake() {
    let (go, wait) = mpsc::channel();
    let mut r = reactor(reactor::Trigger::Edge, Wake { go, woken: 0 });
    let waker = r.io().waker();
    let thread = thread::spawn(move || {
        wait.recv().unwrap();
        waker.wake().unwrap();
    });
    // The reactor is running (and then idle in epoll_wait) when the thread
    // is told to wake it.
    r.io().add_timer(Duration::ZERO, 0);

    assert_eq!(run(&mut r), Exit::Stopped);
    thread.join().unwrap();
    assert_eq!(r.handler().woken, 1);
}

/// Stops as soon as a connection is accepted, with output pending.
#[derive(Default)]
struct StopOnAccept {
    conn: Option<Token>,
}

impl Handler for StopOnAccept {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        self.conn = Some(conn);
        io.send(conn, &pattern(PEER_CANNOT_HOLD));
        io.stop();
    }

    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        data.len()
    }
}

#[test]
fn stop_returns_stopped_without_flushing() {
    for trigger in TRIGGERS {
        let mut r = reactor(trigger, StopOnAccept::default());
        let (_, addr) = listen(r.io());
        let _peer = TcpStream::connect(addr).unwrap();

        assert_eq!(run(&mut r), Exit::Stopped);
        let conn = r.handler().conn.unwrap();
        assert!(r.io().pending_output(conn) > 0, "{trigger:?}: not flushed");
        assert_eq!(r.io().connection_count(), 1, "{trigger:?}: nothing closed");
        assert_eq!(r.io().stats().closed, 0, "{trigger:?}");
    }
}

// ---------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------

/// Sends more than the socket buffers hold, then starts a graceful
/// shutdown with the output still pending.
struct Drain {
    payload: Vec<u8>,
    pending_at_shutdown: usize,
    closes: Vec<CloseReason>,
    /// Shut down a second time, on a timer, to force the exit.
    force: bool,
    /// Told once the shutdown has started (the peer then starts reading).
    started: Option<mpsc::Sender<()>>,
}

impl Drain {
    fn new(payload: Vec<u8>) -> Drain {
        Drain {
            payload,
            pending_at_shutdown: 0,
            closes: Vec::new(),
            force: false,
            started: None,
        }
    }
}

impl Handler for Drain {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        assert!(io.send(conn, &self.payload));
        self.pending_at_shutdown = io.pending_output(conn);
        io.shutdown();
        assert!(io.is_draining());
        if self.force {
            io.add_timer(Duration::ZERO, 0);
        }
        if let Some(started) = &self.started {
            started.send(()).unwrap();
        }
    }

    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        data.len()
    }

    fn on_close(&mut self, _io: &mut Io, _conn: Token, reason: CloseReason) {
        self.closes.push(reason);
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
        io.shutdown();
    }
}

#[test]
fn shutdown_flushes_pending_output_then_exits_graceful() {
    for trigger in TRIGGERS {
        let payload = pattern(PEER_CANNOT_HOLD);
        let (started, wait) = mpsc::channel();
        let mut drain = Drain::new(payload.clone());
        drain.started = Some(started);
        let mut r = reactor(trigger, drain);
        let (_, addr) = listen(r.io());
        let reader = thread::spawn(move || {
            let mut peer = TcpStream::connect(addr).unwrap();
            // Not a byte is read before the shutdown starts, so it starts
            // with most of the payload pending.
            wait.recv().unwrap();
            peer.set_read_timeout(Some(util::WATCHDOG_AFTER)).unwrap();
            let mut got = Vec::new();
            peer.read_to_end(&mut got).map(|_| got)
        });

        assert_eq!(run(&mut r), Exit::Graceful, "{trigger:?}");
        let got = reader.join().unwrap().expect("read to EOF");
        let h = &r.handler();
        assert!(
            h.pending_at_shutdown > 0,
            "{trigger:?}: the payload must outgrow the socket buffers"
        );
        assert!(got == payload, "{trigger:?}: got {} bytes", got.len());
        assert_eq!(h.closes, [CloseReason::Shutdown], "{trigger:?}");
    }
}

#[test]
fn shutdown_cuts_a_peer_that_never_reads_at_the_drain_deadline() {
    for trigger in TRIGGERS {
        let config = Config {
            trigger,
            drain_timeout: Duration::from_millis(50),
            ..Config::default()
        };
        let mut r = reactor_with(config, Drain::new(pattern(PEER_CANNOT_HOLD)));
        let (_, addr) = listen(r.io());
        let _peer = TcpStream::connect(addr).unwrap();

        assert_eq!(run(&mut r), Exit::Graceful, "{trigger:?}");
        assert!(r.handler().pending_at_shutdown > 0, "{trigger:?}");
        assert_eq!(
            r.handler().closes,
            [CloseReason::DrainTimeout],
            "{trigger:?}"
        );
    }
}

#[test]
fn a_second_shutdown_forces_the_exit() {
    for trigger in TRIGGERS {
        let mut drain = Drain::new(pattern(PEER_CANNOT_HOLD));
        drain.force = true;
        let mut r = reactor(trigger, drain);
        let (_, addr) = listen(r.io());
        let _peer = TcpStream::connect(addr).unwrap();

        assert_eq!(run(&mut r), Exit::Forced, "{trigger:?}");
        assert!(r.handler().closes.is_empty(), "{trigger:?}");
    }
}

/// Spares the first connection it accepts and shuts down on the second:
/// the first is still read and written during the drain, and closed by
/// the handler after its echo.
#[derive(Default)]
struct Spare {
    first: Option<Token>,
    closes: Vec<CloseReason>,
    started: Option<mpsc::Sender<()>>,
}

impl Handler for Spare {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        let Some(first) = self.first else {
            self.first = Some(conn);
            return;
        };
        io.spare_at_shutdown(first);
        io.shutdown();
        if let Some(started) = self.started.take() {
            started.send(()).unwrap();
        }
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        io.send(conn, data);
        io.close_when_flushed(conn);
        data.len()
    }

    fn on_close(&mut self, _io: &mut Io, _conn: Token, reason: CloseReason) {
        self.closes.push(reason);
    }
}

#[test]
fn a_connection_spared_at_shutdown_is_served_through_the_drain() {
    for trigger in TRIGGERS {
        let (started, shut_down) = mpsc::channel();
        let spare = Spare {
            started: Some(started),
            ..Spare::default()
        };
        let mut r = reactor(trigger, spare);
        let (_, addr) = listen(r.io());
        let peers = thread::spawn(move || {
            // Accepted in the order they connect (the backlog is FIFO).
            let mut spared = TcpStream::connect(addr).unwrap();
            let mut other = TcpStream::connect(addr).unwrap();
            shut_down.recv_timeout(Duration::from_secs(10)).unwrap();
            spared.write_all(b"ping").unwrap();
            let mut echo = Vec::new();
            spared.read_to_end(&mut echo).unwrap();
            let mut rest = Vec::new();
            let _ = other.read_to_end(&mut rest);
            (echo, rest)
        });
        assert_eq!(run(&mut r), Exit::Graceful, "{trigger:?}");
        let (echo, rest) = peers.join().unwrap();
        assert_eq!(echo, b"ping", "{trigger:?}: the spared one is served");
        assert!(rest.is_empty(), "{trigger:?}");
        assert_eq!(
            r.handler().closes,
            [CloseReason::Shutdown, CloseReason::Local],
            "{trigger:?}"
        );
    }
}

/// Starts a shutdown and then adopts a connection, in one `on_wake`: a
/// `--accept dispatch` worker that learns of the shutdown in the same
/// wake-up as it takes a handed-over connection.
struct AdoptWhileDraining {
    fd: Option<std::os::fd::OwnedFd>,
    adopted_while_draining: bool,
    closes: Vec<CloseReason>,
}

impl AdoptWhileDraining {
    fn new(fd: std::os::fd::OwnedFd) -> AdoptWhileDraining {
        AdoptWhileDraining {
            fd: Some(fd),
            adopted_while_draining: false,
            closes: Vec::new(),
        }
    }
}

impl Handler for AdoptWhileDraining {
    fn on_wake(&mut self, io: &mut Io) {
        io.shutdown();
        if let Some(fd) = self.fd.take() {
            io.adopt(fd).expect("adopt");
            self.adopted_while_draining = io.is_draining();
        }
    }

    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        data.len()
    }

    fn on_close(&mut self, _io: &mut Io, _conn: Token, reason: CloseReason) {
        self.closes.push(reason);
    }
}

/// A connected pair: the server side (to adopt) and the client.
fn accepted_pair() -> (std::os::fd::OwnedFd, TcpStream) {
    let (listener, addr) = util::std_listener();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    (server.into(), client)
}

/// Regression (issue 14, `--accept dispatch` hung on shutdown): a
/// connection adopted by a reactor already draining, which had no
/// connection when the drain began, was never marked to close and no
/// drain deadline existed, so the reactor waited forever. It joins the
/// drain now: idle, it closes at once.
#[test]
fn regression_a_connection_adopted_while_draining_is_drained() {
    for trigger in TRIGGERS {
        let (fd, mut client) = accepted_pair();
        let mut r = reactor(trigger, AdoptWhileDraining::new(fd));
        r.io().waker().wake().unwrap();

        let started = Instant::now();
        assert_eq!(run(&mut r), Exit::Graceful, "{trigger:?}");
        let h = &r.handler();
        assert!(h.adopted_while_draining, "{trigger:?}");
        assert_eq!(h.closes, [CloseReason::Shutdown], "{trigger:?}");
        // Closed at once, not at the drain deadline (5 s).
        assert!(started.elapsed() < Duration::from_secs(1), "{trigger:?}");
        client.set_read_timeout(Some(util::WATCHDOG_AFTER)).unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).expect("EOF from the drain");
        assert!(rest.is_empty(), "{trigger:?}");
    }
}

/// Regression (issue 14): the drain deadline was set only if connections
/// were open when the drain began, so one that joined later and could not
/// close (here a lingering close of unread input, with a linger timeout
/// far beyond the drain's) kept the reactor past `drain_timeout`.
#[test]
fn regression_the_drain_deadline_bounds_a_connection_that_joined_the_drain() {
    for trigger in TRIGGERS {
        let (fd, mut client) = accepted_pair();
        // Unread input: the close lingers until the peer's FIN, which
        // never comes.
        client.write_all(b"unread").unwrap();
        let config = Config {
            trigger,
            drain_timeout: Duration::from_millis(100),
            linger_timeout: Duration::from_secs(60),
            ..Config::default()
        };
        let mut r = reactor_with(config, AdoptWhileDraining::new(fd));
        r.io().waker().wake().unwrap();

        let started = Instant::now();
        assert_eq!(run(&mut r), Exit::Graceful, "{trigger:?}");
        let elapsed = started.elapsed();
        assert_eq!(
            r.handler().closes,
            [CloseReason::DrainTimeout],
            "{trigger:?}"
        );
        assert!(
            elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(1),
            "{trigger:?}: drained in {elapsed:?}"
        );
    }
}

/// Records closes only.
#[derive(Default)]
struct CloseLog {
    closes: Vec<(Token, CloseReason)>,
}

impl Handler for CloseLog {
    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        data.len()
    }

    fn on_close(&mut self, _io: &mut Io, conn: Token, reason: CloseReason) {
        self.closes.push((conn, reason));
    }
}

/// Regression: closes made through `Reactor::io` before `run` were queued
/// for `on_close` but never reported when `run` then had nothing else to do
/// (here: a shutdown that closes the last connection at once).
#[test]
fn closes_made_before_run_are_reported() {
    for trigger in TRIGGERS {
        let mut r = reactor(trigger, CloseLog::default());
        let (_, addr) = listen(r.io());
        let client = r.io().connect(addr, None).expect("connect");
        r.io().shutdown();

        assert_eq!(run(&mut r), Exit::Graceful, "{trigger:?}");
        assert_eq!(
            r.handler().closes,
            [(client, CloseReason::Shutdown)],
            "{trigger:?}"
        );
    }
}

/// Round trips between an outbound client and the server side of the
/// same reactor, counting `epoll_ctl` calls once traffic is flowing.
#[derive(Default)]
struct RoundTrips {
    client: Option<Token>,
    rounds: u32,
    ctls_at_start: u64,
    ctls_in_steady_state: u64,
}

const ROUNDS: u32 = 200;

impl Handler for RoundTrips {
    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        self.ctls_at_start = io.stats().epoll_ctls;
        io.send(conn, b"ping");
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        if Some(conn) != self.client {
            io.send(conn, data);
            return data.len();
        }
        self.rounds += 1;
        if self.rounds == ROUNDS {
            self.ctls_in_steady_state = io.stats().epoll_ctls - self.ctls_at_start;
            io.stop();
        } else {
            io.send(conn, b"ping");
        }
        data.len()
    }
}

/// Regression (level-mode MOD per event): every event used to clear the
/// one-shot "armed" flag in every mode, so level mode paid an
/// `EPOLL_CTL_MOD` with unchanged flags after each event, as one-shot does.
/// In steady state edge and level make no `epoll_ctl` at all; one-shot
/// re-arms after every event.
#[test]
fn steady_state_epoll_ctl_calls_per_mode() {
    for trigger in TRIGGERS {
        let mut r = reactor(trigger, RoundTrips::default());
        let (_, addr) = listen(r.io());
        let client = r.io().connect(addr, None).expect("connect");
        r.handler().client = Some(client);
        assert_eq!(run(&mut r), Exit::Stopped);
        let h = &r.handler();
        assert_eq!(h.rounds, ROUNDS, "{trigger:?}");
        match trigger {
            reactor::Trigger::OneShot => assert!(
                h.ctls_in_steady_state >= u64::from(ROUNDS),
                "{trigger:?}: one-shot re-arms every event: {}",
                h.ctls_in_steady_state
            ),
            // The accept's ADD may land after the client's connect.
            _ => assert!(
                h.ctls_in_steady_state <= 1,
                "{trigger:?}: {} epoll_ctl calls over {ROUNDS} round trips",
                h.ctls_in_steady_state
            ),
        }
    }
}

/// The server side answers "go" with shared messages and copied bytes
/// interleaved; the client side collects everything.
#[derive(Default)]
struct FanOut {
    client: Option<Token>,
    got: Vec<u8>,
    expected: Vec<u8>,
    writes_for_burst: u64,
}

const BURST: usize = 100;

impl Handler for FanOut {
    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        io.send(conn, b"go");
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        if Some(conn) == self.client {
            self.got.extend_from_slice(data);
            if self.got.len() >= self.expected.len() {
                io.stop();
            }
            return data.len();
        }
        let shared: std::sync::Arc<[u8]> = std::sync::Arc::from(&b"<shared message>"[..]);
        let writes_before = io.stats().writes;
        for i in 0..BURST {
            assert!(io.send_shared(conn, &shared));
            if i % 10 == 0 {
                // Copied bytes queue behind the shared ones, in order.
                assert!(io.send(conn, format!("[{i}]").as_bytes()));
            }
        }
        // Nothing is written until the end of the pass.
        self.writes_for_burst = io.stats().writes - writes_before;
        data.len()
    }
}

#[test]
fn shared_messages_keep_order_and_go_out_in_one_write_per_pass() {
    for trigger in TRIGGERS {
        let mut expected = Vec::new();
        for i in 0..BURST {
            expected.extend_from_slice(b"<shared message>");
            if i % 10 == 0 {
                expected.extend_from_slice(format!("[{i}]").as_bytes());
            }
        }
        let mut r = reactor(
            trigger,
            FanOut {
                expected: expected.clone(),
                ..FanOut::default()
            },
        );
        let (_, addr) = listen(r.io());
        let client = r.io().connect(addr, None).expect("connect");
        r.handler().client = Some(client);
        let writes_before = r.io().stats().writes;
        assert_eq!(run(&mut r), Exit::Stopped);
        let h = &r.handler();
        assert_eq!(
            h.got, expected,
            "{trigger:?}: order across shared and copied bytes"
        );
        assert_eq!(
            h.writes_for_burst, 0,
            "{trigger:?}: writes deferred to the pass's end"
        );
        // "go" (1 write) and the burst (gathered: a few writes at most,
        // 64 segments per gather) — not one per message.
        let writes = r.io().stats().writes - writes_before;
        assert!(
            writes <= 6,
            "{trigger:?}: {writes} writes for {BURST} messages"
        );
    }
}

// ---------------------------------------------------------------------------
// File ranges (sendfile)
// ---------------------------------------------------------------------------

/// Bytes in the file of the shrunk-file test; the range queued is twice
/// that, as if the file had shrunk after its length was announced.
const SHRUNK_FILE_LEN: usize = 1000;

/// The client (same reactor) asks with "go"; the server answers with a
/// head and a file range longer than the file; the client counts what
/// arrives until EOF. Answering a request, not the accept, matters: the
/// first event of a new connection carries EPOLLOUT anyway, which would
/// hide a missing one.
#[derive(Default)]
struct ShrunkFile {
    file: Option<std::os::fd::OwnedFd>,
    client: Option<Token>,
    got: Vec<u8>,
    client_eof: bool,
    server_closed: Option<CloseReason>,
}

impl ShrunkFile {
    fn maybe_stop(&self, io: &mut Io) {
        if self.client_eof && self.server_closed.is_some() {
            io.stop();
        }
    }
}

impl Handler for ShrunkFile {
    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        assert!(io.send(conn, b"go"));
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        if Some(conn) == self.client {
            self.got.extend_from_slice(data);
            return data.len();
        }
        assert_eq!(data, b"go");
        let file = self.file.take().expect("one request expected");
        assert!(io.send_file(conn, b"head:", file, 0, 2 * SHRUNK_FILE_LEN as u64));
        data.len()
    }

    fn on_eof(&mut self, io: &mut Io, conn: Token) {
        assert_eq!(Some(conn), self.client);
        self.client_eof = true;
        io.close(conn);
        self.maybe_stop(io);
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        if Some(conn) != self.client {
            self.server_closed = Some(reason);
            self.maybe_stop(io);
        }
    }
}

/// Regression (sendfile short count at end of file): a file range longer
/// than the file, with the socket far from full, makes `sendfile` return
/// short. The reactor took every short count for a full socket and waited
/// for EPOLLOUT, which in edge mode never comes after a write that did not
/// fill the socket: the connection hung until the write timeout. It must
/// send what the file has and close with EIO at once, in every mode.
#[test]
fn regression_sendfile_short_at_end_of_file_closes_instead_of_stalling() {
    for trigger in TRIGGERS {
        let path = std::env::temp_dir().join(format!(
            "tenk-reactor-shrunk-{}-{}",
            std::process::id(),
            trigger.name()
        ));
        let contents = pattern(SHRUNK_FILE_LEN);
        std::fs::write(&path, &contents).expect("write temp file");
        let file = std::fs::File::open(&path).expect("open temp file");
        std::fs::remove_file(&path).expect("unlink temp file");
        let mut r = reactor(
            trigger,
            ShrunkFile {
                file: Some(file.into()),
                ..ShrunkFile::default()
            },
        );
        let (_, addr) = listen(r.io());
        let client = r.io().connect(addr, None).expect("connect");
        r.handler().client = Some(client);
        assert_eq!(run(&mut r), Exit::Stopped, "{trigger:?}");
        let h = &r.handler();
        let mut expected = b"head:".to_vec();
        expected.extend_from_slice(&contents);
        assert!(
            h.got == expected,
            "{trigger:?}: the head and the whole file"
        );
        assert_eq!(
            h.server_closed,
            Some(CloseReason::Error(libc::EIO)),
            "{trigger:?}"
        );
    }
}
