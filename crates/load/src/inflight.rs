//! The requests in flight on one connection and when it last made
//! progress: what decides a request timeout. I/O free.
//!
//! A request times out when its connection has made no progress for
//! `--timeout`: no reply byte since the later of the oldest request's send
//! and the last byte received. Counting from the last byte, not from the
//! send, means a 16 MiB reply that keeps arriving is never cut, while a
//! server that stops answering is caught after the same delay whatever the
//! message size (wrk's timeout, whose default of 2 s is ours, counts from
//! the send).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::recorder::Recorder;

/// One request's send times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    /// When the schedule wanted it sent (open loop); the send otherwise.
    pub(crate) intended: Instant,
    pub(crate) actual: Instant,
}

impl Sent {
    /// How long it has waited at `now`: (from the intended send, from the
    /// actual one), the two latencies the recorder keeps.
    pub(crate) fn ages(&self, now: Instant) -> (Duration, Duration) {
        (
            now.saturating_duration_since(self.intended),
            now.saturating_duration_since(self.actual),
        )
    }
}

/// The requests in flight on one connection, oldest first.
#[derive(Debug)]
pub(crate) struct InFlight {
    sent: VecDeque<Sent>,
    /// The last reply byte, or the connect.
    last_progress: Instant,
}

impl InFlight {
    pub(crate) fn new(now: Instant) -> InFlight {
        InFlight {
            sent: VecDeque::new(),
            last_progress: now,
        }
    }

    pub(crate) fn push(&mut self, intended: Instant, actual: Instant) {
        self.sent.push_back(Sent { intended, actual });
    }

    /// The oldest request, answered.
    pub(crate) fn pop(&mut self) -> Option<Sent> {
        self.sent.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.sent.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Records what every request in flight has waited at `now` as a lower
    /// bound of its latency: they are lost (a timeout closed their
    /// connection).
    pub(crate) fn record_waits(&self, now: Instant, recorder: &mut Recorder) {
        for sent in &self.sent {
            let (corrected, uncorrected) = sent.ages(now);
            recorder.record_lower_bound(corrected, uncorrected, 1);
        }
    }

    /// Counts every request in flight as unanswered at the end of the
    /// window, its wait recorded as a lower bound of its latency.
    pub(crate) fn record_unanswered(&self, now: Instant, recorder: &mut Recorder) {
        for sent in &self.sent {
            let (corrected, uncorrected) = sent.ages(now);
            recorder.record_unanswered(corrected, uncorrected);
        }
    }

    /// Bytes of a reply arrived (or the connect completed) at `now`.
    pub(crate) fn progress(&mut self, now: Instant) {
        self.last_progress = now;
    }

    /// How long a request has waited at `now` with no progress: since the
    /// later of the oldest request's send and the last progress. `None`
    /// when nothing is in flight (an idle connection waits for nothing).
    pub(crate) fn stalled(&self, now: Instant) -> Option<Duration> {
        let oldest = self.sent.front()?;
        Some(now.saturating_duration_since(oldest.actual.max(self.last_progress)))
    }

    /// Time since the last progress, whatever is in flight: for a chat
    /// client waiting to be let into its room.
    pub(crate) fn idle(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn nothing_in_flight_is_never_stalled() {
        let t0 = Instant::now();
        let f = InFlight::new(t0);
        assert_eq!(f.stalled(t0 + 10_000 * MS), None);
        assert_eq!(f.idle(t0 + 10 * MS), 10 * MS);
    }

    #[test]
    fn a_stall_counts_from_the_send_when_nothing_came_since() {
        let t0 = Instant::now();
        let mut f = InFlight::new(t0);
        f.push(t0 + 5 * MS, t0 + 10 * MS);
        assert_eq!(f.stalled(t0 + 30 * MS), Some(20 * MS));
    }

    /// Regression (issue 14): the timeout counted from the send, so a long
    /// reply still arriving was cut; it counts from the last reply byte.
    #[test]
    fn regression_reply_bytes_restart_the_stall() {
        let t0 = Instant::now();
        let mut f = InFlight::new(t0);
        f.push(t0, t0);
        f.progress(t0 + 1500 * MS);
        assert_eq!(f.stalled(t0 + 2000 * MS), Some(500 * MS));
    }

    #[test]
    fn a_request_sent_after_the_last_reply_counts_from_its_send() {
        let t0 = Instant::now();
        let mut f = InFlight::new(t0);
        f.push(t0, t0);
        f.progress(t0 + MS);
        assert_eq!(f.pop().map(|s| s.actual), Some(t0));
        f.push(t0 + 3 * MS, t0 + 4 * MS);
        assert_eq!(f.stalled(t0 + 10 * MS), Some(6 * MS));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn ages_are_from_intended_and_actual_send() {
        let t0 = Instant::now();
        let sent = Sent {
            intended: t0,
            actual: t0 + 2 * MS,
        };
        assert_eq!(sent.ages(t0 + 5 * MS), (5 * MS, 3 * MS));
        assert_eq!(sent.ages(t0), (Duration::ZERO, Duration::ZERO));
    }
}
