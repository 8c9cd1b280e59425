//! What a run measured, in one struct at both scales: a thread hands its
//! own back when it ends, and the run merges every thread's into the one
//! the report is made from.

use std::time::Duration;

use crate::chat::ChatTotals;
use crate::handshakes::Handshakes;
use crate::recorder::Recorder;

/// What a thread (or, merged, the whole run) measured.
pub(crate) struct Totals {
    pub(crate) recorder: Recorder,
    /// Length of the measured window (merged: the longest).
    pub(crate) measured: Duration,
    /// CPU time in the measured window.
    pub(crate) cpu: Duration,
    /// Connects that completed (with TLS: the handshake too), reconnects
    /// included.
    pub(crate) connects: u64,
    /// Of them, in the measured window.
    pub(crate) window_connects: u64,
    /// TLS runs: the handshakes' times and the failures the sessions
    /// cannot see.
    pub(crate) handshakes: Handshakes,
    /// Most connections open at once (merged: summed over threads).
    pub(crate) peak_open: u64,
    /// Requests sent and never answered because their connection closed,
    /// or schedule slots with no connection to carry them.
    pub(crate) lost: u64,
    /// Connections closed on an error (a timeout, a reset...) and
    /// replaced by a new connect.
    pub(crate) replaced: u64,
    /// Connections of the connect phase that never connected: refused,
    /// timed out, or cut (or never started) by its deadline.
    pub(crate) never_connected: u64,
    /// Connections that timed out without a byte of answer, ever.
    pub(crate) never_answered: u64,
    /// How long the connect phase lasted (merged: the longest).
    pub(crate) connecting: Duration,
    pub(crate) chat: ChatTotals,
}

impl Totals {
    pub(crate) fn new() -> Totals {
        Totals {
            recorder: Recorder::new(),
            measured: Duration::ZERO,
            cpu: Duration::ZERO,
            connects: 0,
            window_connects: 0,
            handshakes: Handshakes::new(),
            peak_open: 0,
            lost: 0,
            replaced: 0,
            never_connected: 0,
            never_answered: 0,
            connecting: Duration::ZERO,
            chat: ChatTotals::default(),
        }
    }

    /// Adds another thread's: counts add up; the threads measured the
    /// same window concurrently, so its length is the longest of theirs.
    pub(crate) fn merge(&mut self, other: &Totals) {
        self.recorder.merge(&other.recorder);
        self.measured = self.measured.max(other.measured);
        self.cpu += other.cpu;
        self.connects += other.connects;
        self.window_connects += other.window_connects;
        self.handshakes.merge(&other.handshakes);
        self.peak_open += other.peak_open;
        self.lost += other.lost;
        self.replaced += other.replaced;
        self.never_connected += other.never_connected;
        self.never_answered += other.never_answered;
        self.connecting = self.connecting.max(other.connecting);
        self.chat.add(&other.chat);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_counts_add_up_and_the_window_is_the_longest() {
        let mut a = Totals::new();
        a.measured = Duration::from_secs(2);
        a.cpu = Duration::from_millis(300);
        a.connects = 3;
        a.peak_open = 2;
        a.lost = 1;
        a.recorder
            .record(Duration::from_micros(5), Duration::from_micros(5));
        a.chat.delivered = 7;
        let mut b = Totals::new();
        b.measured = Duration::from_secs(3);
        b.cpu = Duration::from_millis(200);
        b.connects = 4;
        b.peak_open = 5;
        b.replaced = 6;
        b.never_connected = 2;
        b.never_answered = 1;
        a.connecting = Duration::from_millis(40);
        b.connecting = Duration::from_millis(30);
        b.chat.delivered = 1;
        a.merge(&b);
        assert_eq!(a.measured, Duration::from_secs(3));
        assert_eq!(a.cpu, Duration::from_millis(500));
        assert_eq!((a.connects, a.peak_open, a.lost, a.replaced), (7, 7, 1, 6));
        assert_eq!((a.never_connected, a.never_answered), (2, 1));
        assert_eq!(a.connecting, Duration::from_millis(40), "the longest");
        assert_eq!(a.recorder.requests, 1);
        assert_eq!(a.chat.delivered, 8);
    }
}
