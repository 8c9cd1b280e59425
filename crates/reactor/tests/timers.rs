//! Per-connection deadlines through the library: the idle timeout, the
//! write timeout and the output limits close with their own
//! [`CloseReason`]s, activity defers an idle close, and resetting idle
//! deadlines under traffic costs no `timerfd_settime` (lazy re-arm: activity
//! only stamps the connection; the timer checks the stamp when it fires).
//!
//! Every test runs in all three trigger modes under the watchdog of `util`.
//! Peers are blocking std sockets; nothing sleeps to synchronise.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use reactor::{CloseReason, Config, Handler, Io, Stats, TimerId, Token, Trigger};
use util::{any_port, reactor_with, run, TRIGGERS};

/// More than a peer that does not read lets the kernel buffer: its receive
/// window stays small, so most of this stays pending in the reactor.
const PEER_CANNOT_HOLD: usize = 8 * 1024 * 1024;

/// Generous: a bound on "promptly", not a performance target.
const PROMPTLY: Duration = Duration::from_secs(5);

/// A config with every per-connection deadline and limit off, to turn on
/// one at a time.
fn quiet(trigger: Trigger) -> Config {
    Config {
        trigger,
        idle_timeout: Duration::ZERO,
        write_timeout: Duration::ZERO,
        output_hard_limit: 0,
        output_soft_limit: 0,
        ..Config::default()
    }
}

fn listen(io: &mut Io) -> SocketAddr {
    let listener = io.listen(any_port(), 128).expect("listen");
    io.local_addr(listener).expect("local addr")
}

// ---------------------------------------------------------------------------
// Closes by deadline and limit
// ---------------------------------------------------------------------------

/// On accept, sends `payload` (if any) and, optionally, schedules one more
/// byte of output after `poke_after`; records how the connection ended and
/// how long after its accept, then stops the reactor.
#[derive(Default)]
struct Deadline {
    payload: usize,
    poke_after: Option<Duration>,
    accepted: Option<(Token, Instant)>,
    send_accepted: Option<bool>,
    close: Option<(CloseReason, Duration)>,
}

impl Handler for Deadline {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        self.accepted = Some((conn, Instant::now()));
        if self.payload > 0 {
            self.send_accepted = Some(io.send(conn, &vec![b'x'; self.payload]));
        }
        if let Some(after) = self.poke_after {
            io.add_timer(after, 1);
        }
    }

    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        data.len()
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
        if let Some((conn, _)) = self.accepted {
            // Activity: the connection's idle deadline moves, the timer
            // does not.
            assert!(io.send(conn, b"!"), "poke failed");
        }
    }

    fn on_close(&mut self, io: &mut Io, _conn: Token, reason: CloseReason) {
        let (_, accepted) = self.accepted.expect("closed before accepted");
        self.close = Some((reason, accepted.elapsed()));
        io.stop();
    }
}

/// Runs `handler` with `config` against one peer that connects and then
/// neither sends nor reads; returns the handler after the close.
fn against_silent_peer(config: Config, handler: Deadline) -> Deadline {
    let mut r = reactor_with(config, handler);
    let addr = listen(r.io());
    let _peer = TcpStream::connect(addr).expect("connect");
    run(&mut r);
    r.into_handler()
}

fn assert_closed(what: &str, h: &Deadline, reason: CloseReason, not_before: Duration) -> Duration {
    let (got, after) = h.close.unwrap_or_else(|| panic!("{what}: not closed"));
    assert_eq!(got, reason, "{what}: closed after {after:?}");
    assert!(
        after >= not_before,
        "{what}: closed after {after:?}, before {not_before:?}"
    );
    assert!(
        after < not_before + PROMPTLY,
        "{what}: closed only after {after:?}"
    );
    after
}

#[test]
fn idle_timeout_closes_a_silent_connection() {
    for trigger in TRIGGERS {
        let config = Config {
            idle_timeout: Duration::from_millis(200),
            ..quiet(trigger)
        };
        let h = against_silent_peer(config, Deadline::default());
        let what = format!("{trigger:?}: idle 200ms");
        assert_closed(
            &what,
            &h,
            CloseReason::IdleTimeout,
            Duration::from_millis(200),
        );
    }
}

/// Output at 200 ms is activity: with a 300 ms idle timeout the close comes
/// no sooner than 500 ms after the accept. The timer set at the accept
/// fires at 300 ms, finds the later activity and sets itself again.
#[test]
fn activity_defers_the_idle_close() {
    for trigger in TRIGGERS {
        let config = Config {
            idle_timeout: Duration::from_millis(300),
            ..quiet(trigger)
        };
        let handler = Deadline {
            poke_after: Some(Duration::from_millis(200)),
            ..Deadline::default()
        };
        let h = against_silent_peer(config, handler);
        let what = format!("{trigger:?}: idle 300ms, output at 200ms");
        assert_closed(
            &what,
            &h,
            CloseReason::IdleTimeout,
            Duration::from_millis(500),
        );
    }
}

#[test]
fn write_timeout_closes_a_peer_that_never_reads() {
    for trigger in TRIGGERS {
        let config = Config {
            write_timeout: Duration::from_millis(200),
            ..quiet(trigger)
        };
        let handler = Deadline {
            payload: PEER_CANNOT_HOLD,
            ..Deadline::default()
        };
        let h = against_silent_peer(config, handler);
        let what = format!("{trigger:?}: write timeout 200ms");
        assert_eq!(h.send_accepted, Some(true), "{what}");
        assert_closed(
            &what,
            &h,
            CloseReason::WriteTimeout,
            Duration::from_millis(200),
        );
    }
}

#[test]
fn output_hard_limit_closes_at_once() {
    for trigger in TRIGGERS {
        let config = Config {
            output_hard_limit: 1024 * 1024,
            ..quiet(trigger)
        };
        let handler = Deadline {
            payload: PEER_CANNOT_HOLD,
            ..Deadline::default()
        };
        let h = against_silent_peer(config, handler);
        let what = format!("{trigger:?}: hard limit 1 MiB");
        assert_eq!(
            h.send_accepted,
            Some(false),
            "{what}: send reported success"
        );
        let after = assert_closed(&what, &h, CloseReason::OutputLimit, Duration::ZERO);
        assert!(
            after < Duration::from_secs(1),
            "{what}: closed after {after:?}"
        );
    }
}

/// Regression: the soft output limit was checked only when output was
/// added, so a peer that stopped reading after a single large send (or, in
/// a server with backpressure, one that is no longer read and so gets no
/// more output) stayed above the limit for ever and was never closed. It
/// is now enforced by a timer too.
#[test]
fn regression_soft_output_limit_closes_a_peer_stalled_above_it() {
    for trigger in TRIGGERS {
        let config = Config {
            output_soft_limit: 100_000,
            output_soft_time: Duration::from_millis(200),
            ..quiet(trigger)
        };
        let handler = Deadline {
            payload: PEER_CANNOT_HOLD,
            ..Deadline::default()
        };
        let h = against_silent_peer(config, handler);
        let what = format!("{trigger:?}: soft limit 100000 for 200ms, one send");
        assert_eq!(h.send_accepted, Some(true), "{what}");
        assert_closed(
            &what,
            &h,
            CloseReason::OutputLimit,
            Duration::from_millis(200),
        );
    }
}

/// Sends 8 MiB on accept (above a 100,000-byte soft limit), then lets the
/// peer start reading; once the peer has taken it all, waits out twice the
/// soft-limit time and stops. The soft-limit timer fires in between and
/// must find the output back under the limit.
struct DrainedInTime {
    start_reading: mpsc::Sender<()>,
    close: Option<CloseReason>,
    flushed: bool,
}

impl Handler for DrainedInTime {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        assert!(io.send(conn, &vec![b'y'; PEER_CANNOT_HOLD]));
        let pending = io.pending_output(conn);
        assert!(pending > 100_000, "only {pending} B left pending");
        self.start_reading.send(()).expect("reader gone");
    }

    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        data.len()
    }

    fn on_flushed(&mut self, io: &mut Io, _conn: Token) {
        if !self.flushed {
            self.flushed = true;
            // Past the soft-limit timer's deadline, which was set at
            // the accept, before this flush.
            io.add_timer(Duration::from_millis(600), 2);
        }
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
        io.stop();
    }

    fn on_close(&mut self, _io: &mut Io, _conn: Token, reason: CloseReason) {
        self.close = Some(reason);
    }
}

#[test]
fn output_back_under_the_soft_limit_in_time_is_not_closed() {
    for trigger in TRIGGERS {
        let config = Config {
            output_soft_limit: 100_000,
            output_soft_time: Duration::from_millis(500),
            ..quiet(trigger)
        };
        let (start_reading, started) = mpsc::channel();
        let handler = DrainedInTime {
            start_reading,
            close: None,
            flushed: false,
        };
        let mut r = reactor_with(config, handler);
        let addr = listen(r.io());
        let mut peer = TcpStream::connect(addr).expect("connect");
        peer.set_read_timeout(Some(PROMPTLY)).expect("read timeout");
        let reader = thread::spawn(move || {
            started.recv_timeout(PROMPTLY).expect("never accepted");
            let mut got = vec![0; PEER_CANNOT_HOLD];
            peer.read_exact(&mut got).expect("read the output");
            peer
        });
        run(&mut r);
        let _peer = reader.join().expect("reader");
        let h = r.into_handler();
        assert!(h.flushed, "{trigger:?}: output never flushed");
        assert_eq!(
            h.close, None,
            "{trigger:?}: closed although drained in time"
        );
    }
}

// ---------------------------------------------------------------------------
// Lazy re-arm: activity costs no timer syscall
// ---------------------------------------------------------------------------

/// Echoes; on each wake-up from the driver thread reports its counters to
/// it, and stops after the second.
struct Traffic {
    to_driver: mpsc::Sender<Stats>,
    wakes: u32,
    closes: Vec<CloseReason>,
}

impl Handler for Traffic {
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        io.send(conn, data);
        data.len()
    }

    fn on_close(&mut self, _io: &mut Io, _conn: Token, reason: CloseReason) {
        self.closes.push(reason);
    }

    fn on_wake(&mut self, io: &mut Io) {
        self.wakes += 1;
        let _ = self.to_driver.send(io.stats());
        if self.wakes == 2 {
            io.stop();
        }
    }
}

fn round_trip(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).expect("write");
    let mut echoed = vec![0; message.len()];
    stream.read_exact(&mut echoed).expect("read echo");
    assert_eq!(echoed, message);
}

/// 100 connections with a 5 s idle timeout (earlier than the watchdog, so
/// their deadlines are the ones the timerfd is armed for), each echoed
/// once; then 1000 round trips, every one of them activity that resets a
/// connection's idle deadline. The timerfd is re-armed at most twice over
/// the traffic (in fact never): resetting a deadline writes a timestamp,
/// no syscall and no timer-queue change.
#[test]
fn idle_deadline_resets_under_traffic_cost_no_timerfd_arms() {
    const CLIENTS: usize = 100;
    const ROUND_TRIPS: usize = 1000;
    const MESSAGE: &[u8] = b"activity resets the idle deadline";
    for trigger in TRIGGERS {
        let config = Config {
            trigger,
            idle_timeout: Duration::from_secs(5),
            ..Config::default()
        };
        let (to_driver, from_reactor) = mpsc::channel();
        let handler = Traffic {
            to_driver,
            wakes: 0,
            closes: Vec::new(),
        };
        let mut r = reactor_with(config, handler);
        let addr = listen(r.io());
        let waker = r.io().waker();
        let driver = thread::spawn(move || {
            let mut clients: Vec<TcpStream> = (0..CLIENTS)
                .map(|_| {
                    let mut stream = TcpStream::connect(addr).expect("connect");
                    stream.set_read_timeout(Some(PROMPTLY)).expect("timeout");
                    stream.set_nodelay(true).expect("nodelay");
                    // Echoed: accepted, registered, idle deadline set.
                    round_trip(&mut stream, b"hello");
                    stream
                })
                .collect();
            waker.wake().expect("wake");
            let before = from_reactor.recv_timeout(PROMPTLY).expect("before");
            for i in 0..ROUND_TRIPS {
                round_trip(&mut clients[i % CLIENTS], MESSAGE);
            }
            waker.wake().expect("wake");
            let after = from_reactor.recv_timeout(PROMPTLY).expect("after");
            (before, after, clients)
        });
        run(&mut r);
        let (before, after, _clients) = driver.join().expect("driver");
        let traffic = after.since(&before);
        eprintln!(
            "{trigger:?}: {CLIENTS} connections, {ROUND_TRIPS} round trips: {} timerfd arms before the traffic, {} during it ({} reads, {} writes, {} epoll_ctl)",
            before.timer_arms, traffic.timer_arms, traffic.reads, traffic.writes, traffic.epoll_ctls
        );
        assert_eq!(before.active, CLIENTS as u64, "{trigger:?}");
        assert!(before.timer_arms >= 1, "{trigger:?}: timerfd never armed");
        assert_eq!(
            traffic.bytes_in,
            (ROUND_TRIPS * MESSAGE.len()) as u64,
            "{trigger:?}: the traffic did not pass through the reactor"
        );
        assert!(
            traffic.timer_arms <= 2,
            "{trigger:?}: {} timerfd arms during {ROUND_TRIPS} round trips",
            traffic.timer_arms
        );
        assert!(
            r.handler().closes.is_empty(),
            "{trigger:?}: closes during the traffic: {:?}",
            r.handler().closes
        );
    }
}
