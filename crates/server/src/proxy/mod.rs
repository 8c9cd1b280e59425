//! `tenk serve proxy`: an HTTP/1.1 reverse proxy and load balancer on the
//! reactor. Each worker (one reactor thread) runs its client connections
//! and its upstream connections on the same loop, with its own balancer,
//! pool, passive health and figures: nothing is written by another worker
//! on the request path but the active checks' verdicts (`checks.rs`).
//! How it works and why: `docs/proxy.md`.

pub mod balance;
mod checks;
pub mod config;
mod dispatch;
mod exchange;
mod handler;
pub mod health;
mod ids;
pub mod metrics;
mod pool;
mod request;
mod response;
pub mod stats;
mod tunnel;
pub mod upstream;

pub use balance::BalanceMode;
pub use checks::CheckBoard;
pub use config::ProxyConfig;
pub use handler::Proxy;
pub use health::HealthPolicy;
pub use stats::{ProxyBoard, ProxyStats};
pub use upstream::UpstreamSpec;
