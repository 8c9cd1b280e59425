//! Bounded runs: `Reactor::run_until` ends a run at its deadline, idle or
//! busy, without polling the clock; `Waker::stop` ends one from another
//! thread. Together they let a test bound a reactor it runs and stop it
//! from outside, with no wrapper around its handler.

mod util;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use reactor::{Exit, Handler, Io, TimerId, Token, Trigger};

/// The deadline of the runs below.
const DEADLINE: Duration = Duration::from_millis(100);

/// Ten times the deadline: if a run is not over by then, it stops itself
/// (and the test fails on `Exit::Stopped`) instead of hanging.
const BACKSTOP: u64 = 1;
/// A 1 ms timer that sets itself again, to keep the reactor busy.
const TICK: u64 = 2;

#[derive(Default)]
struct Timers {
    ticks: u32,
    woken: u32,
    go: Option<mpsc::Sender<()>>,
}

impl Handler for Timers {
    fn on_data(&mut self, _io: &mut Io, _conn: Token, _data: &[u8]) -> usize {
        unreachable!("no connection")
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, data: u64) {
        match data {
            BACKSTOP => io.stop(),
            TICK => {
                self.ticks += 1;
                io.add_timer(Duration::from_millis(1), TICK);
            }
            _ => {
                if let Some(go) = &self.go {
                    go.send(()).unwrap();
                }
            }
        }
    }

    /// Does not stop: ending the run is `Waker::stop`'s part.
    fn on_wake(&mut self, _io: &mut Io) {
        self.woken += 1;
    }
}

/// Runs `r` until `DEADLINE` from now; the exit and how long it took.
fn run_for(r: &mut reactor::Reactor<Timers>) -> (Exit, Duration) {
    r.io().add_timer(DEADLINE * 10, BACKSTOP);
    let started = Instant::now();
    let exit = r.run_until(started + DEADLINE).expect("run");
    (exit, started.elapsed())
}

#[test]
fn run_until_returns_at_the_deadline_when_idle_without_spinning() {
    let mut r = util::reactor(Trigger::Edge, Timers::default());
    let (exit, took) = run_for(&mut r);
    assert_eq!(exit, Exit::Deadline);
    assert!(took >= DEADLINE, "returned early, after {took:?}");
    assert!(took < DEADLINE * 5, "returned late, after {took:?}");
    // One wait, woken by the timerfd at the deadline; a loop that polled
    // the clock would count one a pass.
    let waits = r.io().stats().epoll_waits;
    assert!(waits <= 2, "{waits} epoll_waits while idle");
}

#[test]
fn run_until_ends_a_busy_run_at_the_deadline() {
    let mut r = util::reactor(Trigger::Edge, Timers::default());
    r.io().add_timer(Duration::from_millis(1), TICK);
    let (exit, took) = run_for(&mut r);
    assert_eq!(exit, Exit::Deadline);
    assert!(took >= DEADLINE, "returned early, after {took:?}");
    assert!(took < DEADLINE * 5, "returned late, after {took:?}");
    assert!(r.handler().ticks > 1, "the timer did not keep it busy");
}

#[test]
fn waker_stop_ends_the_run_after_on_wake() {
    let (go, wait) = mpsc::channel();
    let handler = Timers {
        go: Some(go),
        ..Timers::default()
    };
    let mut r = util::reactor(Trigger::Edge, handler);
    let waker = r.io().waker();
    let thread = thread::spawn(move || {
        wait.recv().unwrap();
        waker.stop().unwrap();
    });
    // The reactor is running (and then idle in epoll_wait) when the thread
    // is told to stop it.
    r.io().add_timer(Duration::ZERO, 0);

    assert_eq!(util::run(&mut r), Exit::Stopped);
    thread.join().unwrap();
    assert_eq!(r.handler().woken, 1, "on_wake runs before the stop");
}
