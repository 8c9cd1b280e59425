//! # tenk TLS
//!
//! rustls on the tenk reactor, behind its transport hook
//! ([`reactor::Transport`]): the reactor reads and writes the wire bytes,
//! this crate turns them into plaintext and back, and no protocol knows.

mod acceptor;
mod session;
mod stats;

pub use acceptor::TlsAcceptor;
pub use session::TlsSession;
pub use stats::{TlsCounts, TlsStats};
