//! What one thread measured: latency histograms, counts and errors.
//! Threads' recorders are merged into the report.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded exactly (one hour, in nanoseconds); longer
/// ones saturate to it.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;
/// Three significant digits: 0.1% precision at every scale, in bounded
/// memory however many samples come.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Every way a request or connection can fail, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    /// Connects refused, unreachable, or failed at once (e.g. no ports);
    /// TLS handshakes that failed (why: in the report's `tls.error`).
    pub connect_failures: u64,
    /// Connects (with TLS: and their handshake) not complete within
    /// `--connect-timeout`; connections whose
    /// requests made no progress (no reply byte) for `--timeout`, whether
    /// the sweep closed them or the run ended first.
    pub timeouts: u64,
    /// Echo replies that differ from what was sent; chat messages from a
    /// sender of another room.
    pub mismatches: u64,
    /// HTTP responses that did not parse or frame correctly; chat messages
    /// that did not parse.
    pub malformed: u64,
    /// Connections reset by the server.
    pub resets: u64,
    /// Connections the server closed with requests unanswered (or, for
    /// echo and chat, at all).
    pub early_closes: u64,
    /// Chat: lines the server refused (`! ...`).
    pub refused: u64,
}

impl Errors {
    /// All errors.
    pub fn total(&self) -> u64 {
        self.connect_failures
            + self.timeouts
            + self.mismatches
            + self.malformed
            + self.resets
            + self.early_closes
            + self.refused
    }

    fn add(&mut self, other: &Errors) {
        self.connect_failures += other.connect_failures;
        self.timeouts += other.timeouts;
        self.mismatches += other.mismatches;
        self.malformed += other.malformed;
        self.resets += other.resets;
        self.early_closes += other.early_closes;
        self.refused += other.refused;
    }
}

/// Latency and counts of one thread's measured window.
#[derive(Clone, Debug)]
pub struct Recorder {
    /// Latency from the intended send time (open loop), or from the send
    /// (closed loop), in nanoseconds.
    pub corrected: Histogram<u64>,
    /// Latency from the actual send time, in nanoseconds.
    pub uncorrected: Histogram<u64>,
    /// Requests answered.
    pub requests: u64,
    /// Requests still in flight when the measured window ended.
    pub unanswered: u64,
    /// How long the oldest of them had waited (from its intended send).
    pub unanswered_oldest: Duration,
    /// Responses by status class: index 1 for 1xx … 5 for 5xx, 0 for others.
    pub status_classes: [u64; 6],
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub errors: Errors,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

/// An empty latency histogram, in nanoseconds, with the bounds every
/// latency of a run is kept in (so that any two merge).
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            corrected: latency_histogram(),
            uncorrected: latency_histogram(),
            requests: 0,
            unanswered: 0,
            unanswered_oldest: Duration::ZERO,
            status_classes: [0; 6],
            bytes_in: 0,
            bytes_out: 0,
            errors: Errors::default(),
        }
    }

    /// Records one answered request.
    pub fn record(&mut self, corrected: Duration, uncorrected: Duration) {
        self.requests += 1;
        self.corrected
            .saturating_record(corrected.as_nanos().max(1) as u64);
        self.uncorrected
            .saturating_record(uncorrected.as_nanos().max(1) as u64);
    }

    /// Records `n` requests never answered (timed out, lost, or still in
    /// flight at the end) that had waited this long: a lower bound of
    /// their latency. Leaving them out is coordinated omission: a server
    /// that stops answering would show the latency of the replies it gave
    /// before. Not counted in `requests`.
    pub fn record_lower_bound(&mut self, corrected: Duration, uncorrected: Duration, n: u64) {
        if n == 0 {
            // HdrHistogram would still move its max to the value.
            return;
        }
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.corrected.saturating_record_n(ns(corrected), n);
        self.uncorrected.saturating_record_n(ns(uncorrected), n);
    }

    /// Counts a request still in flight when the window ended, and records
    /// its wait so far as a lower bound of its latency.
    pub fn record_unanswered(&mut self, corrected: Duration, uncorrected: Duration) {
        self.unanswered += 1;
        self.unanswered_oldest = self.unanswered_oldest.max(corrected);
        self.record_lower_bound(corrected, uncorrected, 1);
    }

    /// Counts an HTTP status.
    pub fn status(&mut self, status: u16) {
        let class = usize::from(status / 100);
        self.status_classes[if (1..=5).contains(&class) { class } else { 0 }] += 1;
    }

    /// Adds another thread's recorder.
    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.corrected.add(&other.corrected);
        let _ = self.uncorrected.add(&other.uncorrected);
        self.requests += other.requests;
        self.unanswered += other.unanswered;
        self.unanswered_oldest = self.unanswered_oldest.max(other.unanswered_oldest);
        for (mine, theirs) in self.status_classes.iter_mut().zip(other.status_classes) {
            *mine += theirs;
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.errors.add(&other.errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_everything() {
        let mut a = Recorder::new();
        a.record(Duration::from_micros(10), Duration::from_micros(10));
        a.status(200);
        a.errors.timeouts = 1;
        let mut b = Recorder::new();
        b.record(Duration::from_millis(5), Duration::from_micros(20));
        b.status(503);
        b.status(999);
        b.errors.resets = 2;
        a.merge(&b);
        assert_eq!(a.requests, 2);
        assert_eq!(a.status_classes, [1, 0, 1, 0, 0, 1]);
        assert_eq!(a.errors.total(), 3);
        assert_eq!(a.corrected.len(), 2);
        let max = a.corrected.max();
        assert!((4_990_000..=5_010_000).contains(&max), "{max}");
        assert!(a.uncorrected.max() < 21_000);
    }

    #[test]
    fn unanswered_requests_are_lower_bounds_not_requests() {
        let mut a = Recorder::new();
        a.record(Duration::from_micros(100), Duration::from_micros(100));
        a.record_unanswered(Duration::from_secs(2), Duration::from_secs(1));
        let mut b = Recorder::new();
        b.record_unanswered(Duration::from_secs(3), Duration::from_secs(3));
        b.record_lower_bound(Duration::from_millis(5), Duration::from_millis(5), 3);
        b.record_lower_bound(Duration::from_secs(9), Duration::from_secs(9), 0);
        a.merge(&b);
        assert_eq!(a.requests, 1, "only answers are requests");
        assert_eq!(a.unanswered, 2);
        assert_eq!(a.unanswered_oldest, Duration::from_secs(3));
        assert_eq!(a.corrected.len(), 6);
        assert!(a.corrected.max() >= 3_000_000_000);
        assert!(a.uncorrected.max() >= 3_000_000_000);
        assert!(a.corrected.value_at_quantile(0.5) < 10_000_000);
    }

    #[test]
    fn huge_latencies_saturate_instead_of_panicking() {
        let mut r = Recorder::new();
        r.record(Duration::from_secs(10_000), Duration::from_secs(10_000));
        assert_eq!(r.requests, 1);
        assert!(r.corrected.max() >= MAX_LATENCY_NS / 2);
    }
}
