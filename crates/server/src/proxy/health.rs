//! Passive health of one upstream, per worker: `max_fails` failures in a
//! row take it out for `fail_timeout`; then one request (a probe) is let
//! through, and its outcome puts the upstream back or out again. Active
//! checks (`--health-check`) feed the same state.

use std::time::{Duration, Instant};

/// When failures take an upstream out, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive failures that take an upstream out (0: never).
    pub max_fails: u32,
    /// How long it stays out before a probe request is let through.
    pub fail_timeout: Duration,
}

impl Default for HealthPolicy {
    /// 3 failures in a row, out for 10 s: nginx's fail_timeout, with a
    /// little more patience than its max_fails=1 so that one reset
    /// connection does not take a backend out.
    fn default() -> HealthPolicy {
        HealthPolicy {
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
        }
    }
}

/// Where an upstream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Up,
    /// Out until then.
    Down {
        until: Instant,
    },
    /// Out, one probe request in flight: no other request is sent.
    Probing,
}

/// The passive health of one upstream.
#[derive(Clone, Debug)]
pub struct Health {
    state: State,
    /// Failures in a row while up.
    fails: u32,
    /// Times taken out (for reports).
    pub downs: u64,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            state: State::Up,
            fails: 0,
            downs: 0,
        }
    }
}

impl Health {
    /// Whether a request may go to it now. A down upstream past its
    /// timeout may take exactly one: the caller calls [`Health::picked`].
    pub fn available(&self, now: Instant) -> bool {
        match self.state {
            State::Up => true,
            State::Down { until } => now >= until,
            State::Probing => false,
        }
    }

    /// Whether it is up (not out, not probing).
    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }

    /// A request was sent to it: past a down period, that request is the
    /// probe and no other follows until it ends.
    pub fn picked(&mut self, now: Instant) {
        if let State::Down { until } = self.state {
            if now >= until {
                self.state = State::Probing;
            }
        }
    }

    /// A request (or an active check) succeeded: up again.
    pub fn succeeded(&mut self) {
        self.state = State::Up;
        self.fails = 0;
    }

    /// A request (or an active check) failed. Returns whether this took
    /// the upstream out.
    pub fn failed(&mut self, policy: &HealthPolicy, now: Instant) -> bool {
        let out = Down {
            until: now + policy.fail_timeout,
        };
        match self.state {
            State::Up => {
                self.fails += 1;
                if policy.max_fails == 0 || self.fails < policy.max_fails {
                    return false;
                }
            }
            // A failed probe: out for another period.
            State::Probing => {}
            // A request sent before it went out failed too: no change.
            State::Down { .. } => return false,
        }
        self.fails = 0;
        self.state = out;
        self.downs += 1;
        true
    }

    /// A probe request ended without a verdict (its client went away
    /// first): the next request probes instead.
    pub fn abandoned(&mut self, now: Instant) {
        if self.state == State::Probing {
            self.state = Down { until: now };
        }
    }

    /// An active check failed: out at once (the check is meant to find a
    /// dead upstream before requests do), until a check succeeds or the
    /// period ends and a probe request succeeds.
    pub fn check_failed(&mut self, policy: &HealthPolicy, now: Instant) {
        if self.state == State::Up {
            self.downs += 1;
        }
        self.fails = 0;
        self.state = Down {
            until: now + policy.fail_timeout,
        };
    }
}

use State::Down;

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: HealthPolicy = HealthPolicy {
        max_fails: 3,
        fail_timeout: Duration::from_secs(10),
    };

    #[test]
    fn out_after_max_fails_in_a_row_then_one_probe() {
        let t0 = Instant::now();
        let mut h = Health::default();
        assert!(!h.failed(&POLICY, t0));
        assert!(!h.failed(&POLICY, t0));
        h.succeeded(); // a success resets the run of failures
        assert!(!h.failed(&POLICY, t0));
        assert!(!h.failed(&POLICY, t0));
        assert!(h.failed(&POLICY, t0), "third failure in a row");
        assert!(!h.available(t0 + Duration::from_secs(9)));
        let later = t0 + Duration::from_secs(10);
        assert!(h.available(later), "probe due");
        h.picked(later);
        assert!(!h.available(later), "one probe at a time");
        assert!(h.failed(&POLICY, later), "a failed probe: out again");
        assert!(!h.available(later + Duration::from_secs(9)));
        let again = later + Duration::from_secs(10);
        h.picked(again);
        h.succeeded();
        assert!(h.is_up() && h.available(again));
        assert_eq!(h.downs, 2);
    }

    #[test]
    fn failures_of_requests_sent_before_it_went_out_change_nothing() {
        let t0 = Instant::now();
        let mut h = Health::default();
        for _ in 0..3 {
            h.failed(&POLICY, t0);
        }
        assert!(!h.failed(&POLICY, t0 + Duration::from_secs(5)));
        assert!(
            h.available(t0 + Duration::from_secs(10)),
            "period not extended"
        );
    }

    #[test]
    fn max_fails_zero_never_takes_it_out() {
        let policy = HealthPolicy {
            max_fails: 0,
            ..POLICY
        };
        let mut h = Health::default();
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(!h.failed(&policy, t0));
        }
        assert!(h.is_up());
    }

    #[test]
    fn a_failed_check_takes_it_out_at_once() {
        let t0 = Instant::now();
        let mut h = Health::default();
        h.check_failed(&POLICY, t0);
        assert!(!h.available(t0));
        h.succeeded();
        assert!(h.available(t0));
    }
}
