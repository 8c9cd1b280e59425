//! The TLS part of a report: handshakes by outcome and kind, their time
//! (apart from request latency), and why they failed, in words that say
//! which flag to use.

use serde::Serialize;
use tls::TlsStats;

use crate::handshakes::Handshakes;

/// What a TLS run's handshakes did. Absent from plain TCP runs.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TlsReport {
    /// Handshakes completed over the whole run (the connect phase and
    /// reconnects included): one per connect.
    pub handshakes: u64,
    /// Of them, full and resumed (a session ticket or the server's cache).
    pub full: u64,
    pub resumed: u64,
    /// Completed with TLS 1.3 and TLS 1.2.
    pub tls13: u64,
    pub tls12: u64,
    /// Handshakes that failed: refused by rustls, or closed by the server.
    pub failed: u64,
    /// Handshakes not done within `--connect-timeout`.
    pub timeouts: u64,
    /// Connect start to established (TCP connect and handshake), in
    /// microseconds.
    pub handshake_p50_us: f64,
    pub handshake_p99_us: f64,
    pub handshake_max_us: f64,
    /// Why the first failed handshake failed.
    pub error: Option<String>,
    /// What to do about it (the flag to pass), when the error says.
    pub hint: Option<&'static str>,
}

impl TlsReport {
    pub(crate) fn new(handshakes: &Handshakes, stats: &TlsStats) -> TlsReport {
        let counts = stats.counts();
        let time = &handshakes.time;
        let us = |ns: u64| ns as f64 / 1000.0;
        let quantile = |q: f64| {
            if time.is_empty() {
                0.0
            } else {
                us(time.value_at_quantile(q))
            }
        };
        let failure = stats.first_failure();
        let error = match failure {
            Some(e) => Some(e.to_string()),
            None if handshakes.closed > 0 => {
                Some("the server closed the connection during the handshake".to_string())
            }
            None => None,
        };
        TlsReport {
            handshakes: time.len(),
            full: counts.full,
            resumed: counts.resumed,
            tls13: counts.tls13,
            tls12: counts.tls12,
            failed: counts.failed + handshakes.closed,
            timeouts: handshakes.timeouts,
            handshake_p50_us: quantile(0.5),
            handshake_p99_us: quantile(0.99),
            handshake_max_us: if time.is_empty() { 0.0 } else { us(time.max()) },
            error,
            hint: failure.and_then(tls::failure_hint),
        }
    }
}
