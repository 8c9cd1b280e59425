//! One connection to Redis that keeps itself up: connect, and after a
//! loss (or a failed connect) try again after a backoff that starts at
//! [`FIRST_RETRY`] and doubles to [`LAST_RETRY`]. A connection that
//! comes up resets it. Losses are logged once per outage, not per retry.

use std::net::SocketAddr;
use std::time::Duration;

use reactor::{CloseReason, Io, TimerId, Token};

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
        }
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
        match io.connect(self.addr, None) {
            Ok(token) => self.state = State::Connecting(token),
            Err(e) => self.failed(io, &format!("cannot connect: {e}")),
        }
    }

    /// The connect of `token` completed; `true` if it was this link's.
    /// Returns whether it is a reconnect.
    pub fn connected(&mut self, token: Token) -> Option<bool> {
        if self.state != State::Connecting(token) {
            return None;
        }
        self.state = State::Up(token);
        self.backoff = FIRST_RETRY;
        let again = self.was_up;
        self.was_up = true;
        if self.outage_logged {
            tracing::info!("redis {}: connected to {} again", self.name, self.addr);
        }
        self.outage_logged = false;
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
