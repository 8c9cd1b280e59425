//! When a Redis link is given up or pinged: the clocks of one connection
//! (since when it connects or is up, when it last heard a byte, since
//! when it owes a reply) and the verdict of a check at a given instant.
//! I/O free: `link.rs` acts on the verdict.

use std::time::{Duration, Instant};

/// How often the links' liveness is checked.
pub const HEALTH_TICK: Duration = Duration::from_secs(1);
/// Longest a connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A link that heard nothing for this long is sent a PING.
pub const PING_IDLE: Duration = Duration::from_secs(2);
/// Longest a link that owes a reply may stay silent.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// The bound on finding a silent Redis, from its last byte: a PING goes
/// out at the first tick after [`PING_IDLE`] (at most one tick late), and
/// the verdict comes at the first tick after [`REPLY_TIMEOUT`] without an
/// answer (one tick late again).
pub const DEAD_WITHIN: Duration =
    Duration::from_secs(PING_IDLE.as_secs() + REPLY_TIMEOUT.as_secs() + 2 * HEALTH_TICK.as_secs());

/// What a check asks of the link.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Fine,
    /// Idle: send a PING (and call [`Clocks::asked`]).
    Ping,
    /// Give it up: why.
    Dead(String),
}

/// The clocks of one connection.
#[derive(Debug)]
pub struct Clocks {
    /// When the connect started, or the connection came up.
    since: Instant,
    /// When bytes last came from Redis (`None`: nothing yet).
    heard: Option<Instant>,
    /// Since when a reply is owed without a byte since (`None`: none is).
    owed_since: Option<Instant>,
}

impl Clocks {
    /// A connect (or the connection up) at `now`: nothing heard, nothing owed.
    pub fn start(now: Instant) -> Clocks {
        Clocks {
            since: now,
            heard: None,
            owed_since: None,
        }
    }

    /// Whether Redis said anything on this connection.
    pub fn answered(&self) -> bool {
        self.heard.is_some()
    }

    /// Bytes came at `now`; `owing`: replies are still due after them.
    pub fn heard(&mut self, now: Instant, owing: bool) {
        self.heard = Some(now);
        self.owed_since = owing.then_some(now);
    }

    /// A request was sent at `now` (a reply is owed from then, unless one
    /// already was).
    pub fn asked(&mut self, now: Instant) {
        self.owed_since.get_or_insert(now);
    }

    /// The verdict at `now` on a connection still connecting.
    pub fn check_connect(&self, now: Instant) -> Check {
        if now.duration_since(self.since) > CONNECT_TIMEOUT {
            return Check::Dead(format!("connect timed out after {CONNECT_TIMEOUT:?}"));
        }
        Check::Fine
    }

    /// The verdict at `now` on a connection up; `owing`: its owner waits
    /// for replies (a request sent since the last check starts the clock
    /// here).
    pub fn check_up(&mut self, now: Instant, owing: bool) -> Check {
        if owing {
            self.asked(now);
        }
        match self.owed_since {
            Some(since) if now.duration_since(since) > REPLY_TIMEOUT => {
                Check::Dead(format!("no reply for {REPLY_TIMEOUT:?}"))
            }
            Some(_) => Check::Fine,
            None if now.duration_since(self.heard.unwrap_or(self.since)) >= PING_IDLE => {
                Check::Ping
            }
            None => Check::Fine,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn a_connect_is_given_up_after_the_timeout() {
        let t0 = Instant::now();
        let c = Clocks::start(t0);
        assert_eq!(c.check_connect(t0 + CONNECT_TIMEOUT), Check::Fine);
        assert!(matches!(
            c.check_connect(t0 + CONNECT_TIMEOUT + s(0.001)),
            Check::Dead(_)
        ));
    }

    #[test]
    fn an_idle_link_is_pinged_and_given_up_if_the_ping_goes_unanswered() {
        let t0 = Instant::now();
        let mut c = Clocks::start(t0);
        c.heard(t0, false);
        assert_eq!(c.check_up(t0 + s(1.9), false), Check::Fine);
        assert_eq!(c.check_up(t0 + PING_IDLE, false), Check::Ping);
        c.asked(t0 + PING_IDLE);
        // Owed: no second PING, and silence up to the timeout is fine.
        assert_eq!(c.check_up(t0 + s(3.0), false), Check::Fine);
        assert_eq!(
            c.check_up(t0 + PING_IDLE + REPLY_TIMEOUT, false),
            Check::Fine
        );
        assert!(matches!(
            c.check_up(t0 + PING_IDLE + REPLY_TIMEOUT + s(0.001), false),
            Check::Dead(_)
        ));
    }

    #[test]
    fn bytes_while_owing_restart_the_clock_and_a_full_answer_stops_it() {
        let t0 = Instant::now();
        let mut c = Clocks::start(t0);
        // A request noticed at the check: owed from there.
        assert_eq!(c.check_up(t0, true), Check::Fine);
        c.heard(t0 + s(2.5), true); // part of the replies
        assert_eq!(c.check_up(t0 + s(5.0), true), Check::Fine);
        assert!(matches!(c.check_up(t0 + s(5.6), true), Check::Dead(_)));
        let mut c = Clocks::start(t0);
        c.asked(t0);
        c.heard(t0 + s(1.0), false); // everything answered
        assert_eq!(c.check_up(t0 + s(2.5), false), Check::Fine);
        assert_eq!(c.check_up(t0 + s(3.0), false), Check::Ping);
    }

    #[test]
    fn a_silent_redis_is_found_within_the_stated_bound() {
        // Checks on every tick, Redis silent from its last byte at `last`
        // (any phase against the ticks): the verdict comes within
        // DEAD_WITHIN of it.
        for phase_ms in (0..1000).step_by(50) {
            let t0 = Instant::now();
            let mut c = Clocks::start(t0);
            let last = t0 + Duration::from_millis(phase_ms);
            c.heard(last, false);
            let mut tick = t0 + HEALTH_TICK;
            let dead_at = loop {
                match c.check_up(tick, false) {
                    Check::Ping => c.asked(tick),
                    Check::Dead(_) => break tick,
                    Check::Fine => {}
                }
                tick += HEALTH_TICK;
            };
            let took = dead_at - last;
            assert!(took <= DEAD_WITHIN, "phase {phase_ms} ms: {took:?}");
        }
    }
}
