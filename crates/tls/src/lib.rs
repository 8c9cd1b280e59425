//! # tenk TLS
//!
//! rustls on the tenk reactor, behind its transport hook
//! ([`reactor::Transport`]): the reactor reads and writes the wire bytes,
//! this crate turns them into plaintext and back, and no protocol knows.

mod acceptor;
mod client_config;
mod config_error;
mod insecure;
mod pem_files;
mod server_config;
mod session;
mod stats;
#[cfg(feature = "test-pki")]
pub mod test_pki;

pub use acceptor::TlsAcceptor;
pub use client_config::{client_config, explain_certificate_error, server_name};
pub use config_error::{Cause, ConfigError};
pub use server_config::{server_config, SESSION_CACHE_SIZE, TLS13_TICKETS};
pub use session::TlsSession;
pub use stats::{failure_hint, TlsCounts, TlsStats};

// One certificate helper for this crate's tests and the binary's: see its doc.
#[cfg(test)]
#[path = "../../tenk/tests/util/certs.rs"]
mod test_certs;
