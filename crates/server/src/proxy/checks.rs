//! Active health checks (`--health-check PATH`): every
//! `--health-interval`, worker 0 sends `GET PATH` to each upstream on a
//! connection of its own (not pooled, `Connection: close`); a 2xx or 3xx
//! response head puts the upstream up, anything else (refused, another
//! status, no answer within the interval) takes it out at once.
//!
//! Once per process, not per worker: the verdict goes on a
//! [`CheckBoard`] the workers share, and every worker (worker 0 too)
//! applies each new verdict to its own health once, when it next picks an
//! upstream or publishes its figures. Passive health stays per worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use http::proxy;
use reactor::{Io, Token};

use super::handler::{Proxy, Timer};

/// A check in flight.
pub(super) struct Check {
    pub upstream: usize,
    /// The response so far (its head is all that is read).
    pub buf: Vec<u8>,
}

/// The last active-check verdict per upstream, shared by the workers of
/// one process. Each slot holds the number of the verdict (so a worker
/// sees each once) times two, plus 1 if it was up; 0 before the first.
/// One writer (worker 0), any number of readers.
#[derive(Debug, Default)]
pub struct CheckBoard {
    verdicts: Vec<AtomicU64>,
}

impl CheckBoard {
    pub fn new(upstreams: usize) -> CheckBoard {
        CheckBoard {
            verdicts: (0..upstreams).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Posts a new verdict on `upstream`.
    fn post(&self, upstream: usize, up: bool) {
        if let Some(slot) = self.verdicts.get(upstream) {
            let number = (slot.load(Ordering::Relaxed) >> 1) + 1;
            slot.store(number << 1 | u64::from(up), Ordering::Release);
        }
    }

    /// The last verdict on `upstream`, as posted (0: none yet).
    fn read(&self, upstream: usize) -> u64 {
        self.verdicts
            .get(upstream)
            .map_or(0, |slot| slot.load(Ordering::Acquire))
    }
}

/// Response heads longer than this fail the check.
const MAX_CHECK_HEAD: usize = 16 * 1024;

impl Proxy {
    /// Time to check `upstream`: a check still in flight has failed (no
    /// answer within the interval); a new one starts.
    pub(super) fn check_due(&mut self, io: &mut Io, upstream: usize) {
        if io.is_draining() || io.is_leaving() {
            return;
        }
        if let Some(conn) = self.upstreams[upstream].check.take() {
            self.checks.remove(&conn);
            io.close(conn);
            self.check_failed(io, upstream);
        }
        let interval = self.config.health_interval;
        self.add_timer(io, interval, Timer::Check(upstream));
        let spec = &self.config.upstreams[upstream];
        match io.connect(spec.addr, None) {
            Ok(conn) => {
                let path = self.config.health_check.as_deref().unwrap_or("/");
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tenk-health-check\r\nConnection: close\r\n\r\n",
                    spec.name
                );
                io.send(conn, request.as_bytes());
                self.checks.insert(
                    conn,
                    Check {
                        upstream,
                        buf: Vec::new(),
                    },
                );
                self.upstreams[upstream].check = Some(conn);
            }
            Err(_) => self.check_failed(io, upstream),
        }
    }

    pub(super) fn check_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        let Some(check) = self.checks.get_mut(&conn) else {
            return data.len();
        };
        check.buf.extend_from_slice(data);
        let upstream = check.upstream;
        let verdict = match proxy::parse_response(&check.buf, false) {
            Ok(None) if check.buf.len() < MAX_CHECK_HEAD => return data.len(),
            Ok(Some(head)) if head.interim => {
                check.buf.drain(..head.head_len);
                return data.len();
            }
            Ok(Some(head)) => (200..400).contains(&head.status),
            Ok(None) | Err(_) => false,
        };
        self.checks.remove(&conn);
        self.upstreams[upstream].check = None;
        io.close(conn);
        self.post_verdict(io, upstream, verdict);
        data.len()
    }

    /// A check connection closed before its verdict.
    pub(super) fn check_gone(&mut self, io: &mut Io, conn: Token) {
        if let Some(check) = self.checks.remove(&conn) {
            self.upstreams[check.upstream].check = None;
            self.check_failed(io, check.upstream);
        }
    }

    fn check_failed(&mut self, io: &mut Io, upstream: usize) {
        self.post_verdict(io, upstream, false);
    }

    fn post_verdict(&mut self, io: &mut Io, upstream: usize, up: bool) {
        self.config.checks.post(upstream, up);
        self.apply_verdicts(io.now());
    }

    /// Applies the verdicts posted since this worker last looked to its
    /// own health of each upstream.
    pub(super) fn apply_verdicts(&mut self, now: Instant) {
        if self.config.health_check.is_none() {
            return;
        }
        let policy = self.config.health;
        for (i, u) in self.upstreams.iter_mut().enumerate() {
            let verdict = self.config.checks.read(i);
            if verdict == u.verdict {
                continue;
            }
            u.verdict = verdict;
            if verdict & 1 == 1 {
                u.health.succeeded();
            } else {
                u.health.check_failed(&policy, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_verdict_is_new_once_and_says_up_or_down() {
        let board = CheckBoard::new(2);
        assert_eq!(board.read(0), 0, "none yet");
        board.post(0, false);
        let first = board.read(0);
        assert_eq!(first & 1, 0);
        board.post(0, false);
        let second = board.read(0);
        assert_ne!(second, first, "the same verdict again is a new one");
        board.post(0, true);
        assert_eq!(board.read(0) & 1, 1);
        assert_eq!(board.read(1), 0, "per upstream");
        assert_eq!(board.read(7), 0, "out of range: none");
    }
}
