//! The HTTP layer's settings and counters.

use std::time::Duration;

use crate::parse::Limits;

/// The `tracing` target of the access log ([`HttpConfig::access_log`]).
pub const ACCESS_LOG: &str = "http::access";

/// Settings of the HTTP layer.
///
/// A request waits whole (head and body) in the connection's input buffer,
/// so the reactor's [`Config::max_input`](reactor::Config::max_input) must
/// exceed `limits.max_head + limits.max_body` (twice the body for chunked
/// uploads); [`HttpConfig::reactor_max_input`] gives that figure. With
/// less, a large upload is cut by the reactor instead of answered.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub limits: Limits,
    /// A request head not complete this long after its first byte is
    /// answered 408 (slowloris).
    pub header_timeout: Duration,
    /// Log every request: an `INFO` event of target [`ACCESS_LOG`] whose
    /// message is the line (`127.0.0.1 "GET / HTTP/1.1" 200 13`) and whose
    /// fields are `client`, `method`, `target`, `version` (1 for 1.1),
    /// `status`, `bytes` (the body's), `duration_us` (from the start of the
    /// loop pass that read the request to the answer queued) and, when the
    /// answer carries one, `request_id` (its `X-Request-Id` header).
    pub access_log: bool,
}

impl HttpConfig {
    /// The reactor input limit these limits need (see the type's docs).
    pub fn reactor_max_input(&self) -> usize {
        self.limits.max_head + 2 * self.limits.max_body + 64 * 1024
    }
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            limits: Limits::default(),
            header_timeout: Duration::from_secs(10),
            access_log: false,
        }
    }
}

/// Counters of the HTTP layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Requests answered, by status class: index 1 for 1xx … 5 for 5xx.
    pub responses: [u64; 6],
    /// Requests refused as malformed or hostile (4xx/5xx from the framing).
    pub refused: u64,
    /// Heads cut by the header timeout (408).
    pub header_timeouts: u64,
}

impl HttpStats {
    /// Adds another server's counters (for a total over threads).
    pub fn add(&mut self, other: &HttpStats) {
        for (mine, theirs) in self.responses.iter_mut().zip(other.responses) {
            *mine += theirs;
        }
        self.refused += other.refused;
        self.header_timeouts += other.header_timeouts;
    }

    /// Responses of every class.
    pub fn total(&self) -> u64 {
        self.responses.iter().sum()
    }
}
