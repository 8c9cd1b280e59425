//! Idle keep-alive connections to the upstreams, per upstream, of one
//! worker (the reactor owns their sockets; this keeps their tokens).
//!
//! Counted as nginx's `keepalive N`: at most N idle connections per
//! upstream per worker; connections busy with a request are not counted
//! and not limited. Reuse is last-in first-out: the connection used most
//! recently is the least likely to have been closed by its backend.
//!
//! The cap holds at the end of every reactor pass, not after every
//! release: within a pass the pool may hold more, and [`Pool::excess`]
//! trims it (oldest first) once the pass's events are handled. Responses
//! and requests arrive in one pass in any order; a cap enforced at each
//! release closed connections that a request later in the same pass then
//! had to open again (0.41 upstream connects per request under wrk with
//! 100 connections and a cap of 32, where nginx opens 0.31).
//!
//! Each idle connection has a timer: closed after [`POOL_IDLE_TIMEOUT`]
//! idle. An idle connection stays registered with the reactor, so one the
//! backend closes (EOF, RST) or that sends anything while idle is dropped
//! at once, before a request can be sent on it.

use std::time::Duration;

use reactor::Token;

use super::handler::Armed;

/// How long an upstream connection may sit idle in the pool: shorter than
/// the common backend keep-alive timeouts (Node.js 5 s, Go's net/http and
/// nginx 60-75 s, Apache 5 s), so the proxy closes an idle connection
/// before its backend would, and never sends a request just as the
/// backend closes it (the race a retry can only paper over for GET/HEAD).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// One idle connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Idle {
    pub conn: Token,
    /// Its idle timer.
    pub timer: Armed,
}

/// The idle connections of one worker, per upstream: [`Idle`] ones in the
/// proxy (generic so that its logic is tested without a reactor).
#[derive(Debug)]
pub(super) struct Pool<I = Idle> {
    /// Idle connections kept per upstream (`--upstream-keepalive`).
    capacity: usize,
    /// Per upstream, oldest first.
    idle: Vec<Vec<I>>,
}

impl<I: Copy> Pool<I> {
    pub fn new(upstreams: usize, capacity: usize) -> Pool<I> {
        Pool {
            capacity,
            idle: vec![Vec::new(); upstreams],
        }
    }

    /// The most recently pooled idle connection to `upstream`, if any.
    pub fn take(&mut self, upstream: usize) -> Option<I> {
        self.idle[upstream].pop()
    }

    /// Pools `idle` as the newest of `upstream`'s, even beyond the
    /// capacity (see [`Pool::excess`]). Returns the connection the caller
    /// must close instead: `idle` itself with a capacity of 0.
    pub fn put(&mut self, upstream: usize, idle: I) -> Option<I> {
        if self.capacity == 0 {
            return Some(idle);
        }
        self.idle[upstream].push(idle);
        None
    }

    /// Whether some upstream holds more idle connections than the
    /// capacity (so [`Pool::excess`] has work).
    pub fn over(&self, upstream: usize) -> bool {
        self.idle[upstream].len() > self.capacity
    }

    /// The oldest idle connection to `upstream` beyond the capacity, taken
    /// out for the caller to close; `None` once it is within it.
    pub fn excess(&mut self, upstream: usize) -> Option<I> {
        let list = &mut self.idle[upstream];
        (list.len() > self.capacity).then(|| list.remove(0))
    }

    /// Forgets the connection `is` picks (it closed, or its timer
    /// fired). Returns it if it was pooled.
    pub fn remove(&mut self, upstream: usize, is: impl Fn(&I) -> bool) -> Option<I> {
        let list = &mut self.idle[upstream];
        let at = list.iter().position(is)?;
        Some(list.remove(at))
    }

    /// Idle connections to `upstream`.
    pub fn idle(&self, upstream: usize) -> usize {
        self.idle[upstream].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection and its timer, as numbers.
    type Fake = (u32, u32);

    fn idle(n: u32) -> Fake {
        (n, n + 100)
    }

    #[test]
    fn last_in_first_out_and_bounded_per_upstream() {
        let mut pool = Pool::new(2, 2);
        assert_eq!(pool.put(0, idle(1)), None);
        assert_eq!(pool.put(0, idle(2)), None);
        assert_eq!(pool.put(1, idle(3)), None, "each upstream its own room");
        assert!(!pool.over(0));
        assert_eq!(pool.put(0, idle(4)), None, "over the cap until trimmed");
        assert!(pool.over(0) && !pool.over(1));
        assert_eq!(pool.excess(0), Some(idle(1)), "the oldest goes");
        assert_eq!(pool.excess(0), None);
        assert_eq!((pool.idle(0), pool.idle(1)), (2, 1));
        assert_eq!(pool.take(0), Some(idle(4)), "the newest first");
        assert_eq!(pool.take(0), Some(idle(2)));
        assert_eq!(pool.take(0), None);
        assert_eq!(pool.take(1), Some(idle(3)));
    }

    /// Regression (pool-32 churn): a burst of releases followed, in the
    /// same pass, by a burst of requests reuses every connection.
    #[test]
    fn a_burst_of_releases_is_reused_before_the_cap_applies() {
        let mut pool: Pool<Fake> = Pool::new(1, 2);
        for n in 1..=5 {
            assert_eq!(pool.put(0, idle(n)), None);
        }
        let reused: Vec<_> = (0..5).filter_map(|_| pool.take(0)).collect();
        assert_eq!(reused.len(), 5);
        assert_eq!(pool.excess(0), None);
    }

    #[test]
    fn removes_a_connection_that_closed_while_idle() {
        let mut pool: Pool<Fake> = Pool::new(1, 4);
        pool.put(0, idle(1));
        pool.put(0, idle(2));
        assert_eq!(pool.remove(0, |i| i.0 == 1), Some(idle(1)));
        assert_eq!(pool.remove(0, |i| i.0 == 1), None, "not pooled twice");
        assert_eq!(pool.take(0), Some(idle(2)));
        assert_eq!(pool.take(0), None);
    }

    #[test]
    fn capacity_zero_pools_nothing() {
        let mut pool: Pool<Fake> = Pool::new(1, 0);
        assert_eq!(pool.put(0, idle(1)), Some(idle(1)));
        assert_eq!(pool.idle(0), 0);
    }
}
