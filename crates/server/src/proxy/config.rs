//! What `tenk serve proxy` was asked to do.

use std::sync::Arc;
use std::time::Duration;

use http::Limits;

use super::balance::BalanceMode;
use super::checks::CheckBoard;
use super::health::HealthPolicy;
use super::upstream::UpstreamSpec;

/// The proxy's settings, shared by every worker.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub upstreams: Vec<UpstreamSpec>,
    pub balance: BalanceMode,
    /// Idle connections kept per upstream per worker.
    pub keepalive: usize,
    /// Time an upstream connect may take.
    pub connect_timeout: Duration,
    /// Time the upstream may stay silent: to the first byte of the
    /// response, and between bytes after it.
    pub upstream_timeout: Duration,
    pub health: HealthPolicy,
    /// Active checks: `GET PATH` every `health_interval` per upstream.
    pub health_check: Option<String>,
    pub health_interval: Duration,
    /// Where worker 0 posts the active checks' verdicts for every worker
    /// (state, not a setting: shared by the workers of this process).
    pub checks: Arc<CheckBoard>,
    /// Limits on client request heads.
    pub limits: Limits,
    /// `X-Forwarded-Proto`: `https` when clients come over TLS.
    pub proto: &'static str,
    /// Make a proxy statistics line every second (`--stats`).
    pub stats: bool,
}

impl ProxyConfig {
    /// Defaults for `upstreams`, as the CLI's.
    pub fn new(upstreams: Vec<UpstreamSpec>) -> ProxyConfig {
        let checks = Arc::new(CheckBoard::new(upstreams.len()));
        ProxyConfig {
            upstreams,
            balance: BalanceMode::RoundRobin,
            keepalive: 32,
            connect_timeout: Duration::from_secs(2),
            upstream_timeout: Duration::from_secs(60),
            health: HealthPolicy::default(),
            health_check: None,
            health_interval: Duration::from_secs(2),
            checks,
            limits: Limits {
                // The proxy streams bodies: their size is the backend's
                // business.
                max_body: usize::MAX,
                ..Limits::default()
            },
            proto: "http",
            stats: false,
        }
    }
}
