//! Busy time (`Stats::busy_ns`): a pass's work counts, the wait in
//! `epoll_wait` does not.

mod util;

use std::time::{Duration, Instant};

use reactor::{Handler, Io, TimerId, Token, Trigger};
use util::{reactor, run};

/// How long the reactor waits, idle, before the timer fires.
const IDLE: Duration = Duration::from_millis(200);
/// How long the timer callback keeps the thread busy.
const WORK: Duration = Duration::from_millis(20);

/// Spins for [`WORK`] in a timer callback, then stops the reactor.
struct Spin;

impl Handler for Spin {
    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        data.len()
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
        let until = Instant::now() + WORK;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        io.stop();
    }
}

#[test]
fn busy_time_counts_work_and_not_the_wait() {
    // Before the reactor exists: a timer's deadline counts from the
    // reactor's clock, read when it was created (and once a pass), so a
    // clock read after `add_timer` would start late and see the timer
    // fire "early".
    let started = Instant::now();
    let mut reactor = reactor(Trigger::Edge, Spin);
    let before = reactor.io().stats().busy_ns;
    assert_eq!(before, 0, "no pass yet, no busy time");
    reactor.io().add_timer(IDLE, 1);
    run(&mut reactor);
    let wall = started.elapsed();
    let busy = Duration::from_nanos(reactor.io().stats().busy_ns);
    assert!(wall >= IDLE + WORK, "ran {wall:?}");
    assert!(busy >= WORK, "busy {busy:?} misses the callback's {WORK:?}");
    // Counting the wait would make it at least IDLE + WORK; the margin
    // below that absorbs a loaded machine's preemptions.
    assert!(
        busy < WORK + IDLE / 2,
        "busy {busy:?} includes time spent waiting (ran {wall:?})"
    );
}

/// The pass histogram (`Stats::passes`) holds every pass once, and its
/// sum is the busy time: a pass of the 20 ms spin lands in the bucket
/// bounded by 67 ms (2^26 ns), above 16.8 ms.
#[test]
fn every_pass_lands_in_the_pass_histogram() {
    let mut reactor = reactor(Trigger::Edge, Spin);
    reactor.io().add_timer(Duration::from_millis(1), 1);
    run(&mut reactor);
    let stats = reactor.io().stats();
    assert_eq!(stats.passes.count(), stats.epoll_waits, "{stats:?}");
    assert_eq!(stats.passes.sum_ns, stats.busy_ns);
    let spin = reactor::Histogram::BOUNDS_NS
        .iter()
        .position(|&bound| bound >= WORK.as_nanos() as u64)
        .unwrap();
    assert!(
        stats.passes.buckets[spin..].iter().sum::<u64>() >= 1,
        "no pass of at least {WORK:?}: {:?}",
        stats.passes
    );
}
