//! What a thread measured of its connections' TLS handshakes: how long
//! each took (connect start to established: the TCP connect and the TLS
//! handshake together, as a user waits for them), and the failures the
//! TLS session cannot see (time-outs, a server that closed mid-handshake).
//! Their outcome by kind (full, resumed) and version is counted by the
//! run's one `tls::TlsStats`.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::recorder::latency_histogram;

/// One thread's handshakes (merged: the run's).
#[derive(Clone, Debug)]
pub(crate) struct Handshakes {
    /// Connect start to established, in nanoseconds: every handshake of
    /// the run, not only the window's (a keep-alive run makes all of them
    /// before the window opens).
    pub(crate) time: Histogram<u64>,
    /// Connects with their handshake not done within `--connect-timeout`.
    pub(crate) timeouts: u64,
    /// Connections the server closed during the handshake.
    pub(crate) closed: u64,
}

impl Handshakes {
    pub(crate) fn new() -> Handshakes {
        Handshakes {
            time: latency_histogram(),
            timeouts: 0,
            closed: 0,
        }
    }

    pub(crate) fn record(&mut self, took: Duration) {
        self.time
            .saturating_record(took.as_nanos().max(1).try_into().unwrap_or(u64::MAX));
    }

    pub(crate) fn merge(&mut self, other: &Handshakes) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.time.add(&other.time);
        self.timeouts += other.timeouts;
        self.closed += other.closed;
    }
}
