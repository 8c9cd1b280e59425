//! One connection to Redis that keeps itself up: connect, and after a
//! loss (or a failed connect) try again after a backoff that starts at
//! [`FIRST_RETRY`] and doubles to [`LAST_RETRY`]. A connection that
//! Redis answered on resets it (one that connects but gets no answer, to
//! a stopped Redis whose kernel still accepts, does not). Losses are
//! logged once per outage, not per retry.
//!
//! Liveness, checked on a tick of [`HEALTH_TICK`] ([`Link::check`], the
//! rules in `liveness.rs`): a
//! connect that has not completed within [`CONNECT_TIMEOUT`] is given up
//! (a host that drops SYNs would otherwise hold it for the kernel's ~2
//! minutes); a link idle for [`PING_IDLE`] is sent a PING; and a link
//! that owes a reply and has received nothing for [`REPLY_TIMEOUT`] is
//! declared dead, closed and reconnected. A Redis that stops answering
//! (stopped, its host gone, the network dropped) is so found within
//! [`DEAD_WITHIN`] of its last byte.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reactor::{CloseReason, Io, TimerId, Token};

use super::liveness::Clocks;
pub use super::liveness::{
    Check, CONNECT_TIMEOUT, DEAD_WITHIN, HEALTH_TICK, PING_IDLE, REPLY_TIMEOUT,
};

/// The first retry after a loss.
pub const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest wait between tries: Redis back is found within this (plus
/// a connect), well inside the 10 s the issue allows.
pub const LAST_RETRY: Duration = Duration::from_secs(5);

/// The wait after `current`.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(LAST_RETRY)
}

/// Where a link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not started, or stopped for a shutdown.
    Down,
    /// Waiting for the retry timer.
    Waiting(TimerId),
    Connecting(Token),
    Up(Token),
}

/// A reconnecting connection to Redis.
#[derive(Debug)]
pub struct Link {
    /// `publisher` or `subscriber`, for the logs.
    pub name: &'static str,
    pub state: State,
    addr: SocketAddr,
    /// The timer data of this link's retries.
    timer_data: u64,
    backoff: Duration,
    /// It was up once: the next `Up` is a reconnect.
    was_up: bool,
    /// The outage was logged.
    outage_logged: bool,
    /// This connection's clocks, for its liveness.
    clocks: Clocks,
}

impl Link {
    pub fn new(name: &'static str, addr: SocketAddr, timer_data: u64) -> Link {
        Link {
            name,
            state: State::Down,
            addr,
            timer_data,
            backoff: FIRST_RETRY,
            was_up: false,
            outage_logged: false,
            clocks: Clocks::start(Instant::now()),
        }
    }

    /// Up and answered by Redis since it connected: a connection to a
    /// stopped Redis is up for the kernel, not for the chat.
    pub fn live(&self) -> Option<Token> {
        self.up().filter(|_| self.clocks.answered())
    }

    /// Bytes came from Redis at `now`; `owing`: replies are still due
    /// after them. The first answer on a connection resets the backoff.
    pub fn heard(&mut self, now: Instant, owing: bool) {
        if self.up().is_none() {
            return;
        }
        if !self.clocks.answered() {
            self.backoff = FIRST_RETRY;
            if self.outage_logged {
                tracing::info!("redis {}: {} answers again", self.name, self.addr);
            }
            self.outage_logged = false;
        }
        self.clocks.heard(now, owing);
    }

    /// A request was sent at `now` (a reply is owed from then, unless one
    /// already was).
    pub fn asked(&mut self, now: Instant) {
        self.clocks.asked(now);
    }

    /// The liveness check at `now`; `owing`: the owner waits for replies
    /// (a request sent since the last check starts its clock here).
    pub fn check(&mut self, io: &mut Io, now: Instant, owing: bool) -> Check {
        let verdict = match self.state {
            State::Connecting(_) => self.clocks.check_connect(now),
            State::Up(_) => self.clocks.check_up(now, owing),
            _ => Check::Fine,
        };
        let Check::Dead(silent) = verdict else {
            return verdict;
        };
        if let Some(token) = self.token() {
            if self.outage_logged {
                tracing::debug!("redis {}: {silent}; closing", self.name);
            } else {
                tracing::warn!(
                    "redis {} ({}): {silent}; closing, retrying every {:?} at most",
                    self.name,
                    self.addr,
                    LAST_RETRY
                );
                // Logged here with its cause: the close that follows is
                // part of this outage.
                self.outage_logged = true;
            }
            io.close(token);
        }
        Check::Dead(silent)
    }

    /// The connection's token, connecting or up.
    pub fn token(&self) -> Option<Token> {
        match self.state {
            State::Connecting(t) | State::Up(t) => Some(t),
            _ => None,
        }
    }

    /// The connection's token if it is up.
    pub fn up(&self) -> Option<Token> {
        match self.state {
            State::Up(t) => Some(t),
            _ => None,
        }
    }

    /// Starts a connect (from `Down` or when the retry timer fires).
    pub fn connect(&mut self, io: &mut Io) {
        if io.is_draining() {
            self.state = State::Down;
            return;
        }
        self.clocks = Clocks::start(io.now());
        match io.connect(self.addr, None) {
            Ok(token) => self.state = State::Connecting(token),
            Err(e) => self.failed(io, &format!("cannot connect: {e}")),
        }
    }

    /// The connect of `token` completed; `true` if it was this link's.
    /// Returns whether it is a reconnect.
    pub fn connected(&mut self, now: Instant, token: Token) -> Option<bool> {
        if self.state != State::Connecting(token) {
            return None;
        }
        self.state = State::Up(token);
        self.clocks = Clocks::start(now);
        let again = self.was_up;
        self.was_up = true;
        Some(again)
    }

    /// The connection closed (or its connect failed): try again later,
    /// unless the reactor is shutting down.
    pub fn lost(&mut self, io: &mut Io, reason: CloseReason) {
        self.failed(io, &format!("connection closed ({reason:?})"));
    }

    /// The link must be dropped and retried only after the longest wait
    /// (Redis refused it: a wrong password would otherwise be retried ten
    /// times a second).
    pub fn refused(&mut self, io: &mut Io, why: &str) {
        if let Some(token) = self.token() {
            self.backoff = LAST_RETRY;
            tracing::warn!("redis {}: {why}; closing", self.name);
            self.outage_logged = true;
            self.state = State::Down;
            io.close(token);
            self.schedule(io);
        }
    }

    fn failed(&mut self, io: &mut Io, why: &str) {
        if io.is_draining() {
            self.state = State::Down;
            return;
        }
        if !self.outage_logged {
            tracing::warn!(
                "redis {} ({}): {why}; retrying every {:?} at most",
                self.name,
                self.addr,
                LAST_RETRY
            );
            self.outage_logged = true;
        } else {
            tracing::debug!("redis {}: {why}", self.name);
        }
        self.schedule(io);
    }

    fn schedule(&mut self, io: &mut Io) {
        let timer = io.add_timer(self.backoff, self.timer_data);
        self.state = State::Waiting(timer);
        self.backoff = next_backoff(self.backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_seconds() {
        let mut d = FIRST_RETRY;
        let mut waits = vec![d];
        for _ in 0..8 {
            d = next_backoff(d);
            waits.push(d);
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }
}
