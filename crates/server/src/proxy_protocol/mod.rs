//! The PROXY protocol (HAProxy's, versions 1 and 2) as a reactor
//! transport: with `--proxy-protocol`, every accepted connection must
//! start with the header a balancer in front sends (HAProxy's
//! `send-proxy`/`send-proxy-v2`), which names the client; the server then
//! sees that address as the client's (`reactor::Io::client_addr`: the
//! access log, a proxy's X-Forwarded-For), not the balancer's.
//!
//! [`mod@parse`] reads the header, without I/O; [`layer`] is the transport
//! that reads it off a connection and is then spent, leaving the
//! connection to the layer it wraps (TLS, which comes after the header)
//! or plain. See docs/proxy-protocol.md.
//!
//! Here rather than in a crate of its own: tenk's servers are its only
//! users, and it needs nothing but the reactor's transport trait, so
//! lifting it out later, should a library user want it, is a move.

pub mod layer;
pub mod parse;

pub use layer::{ProxyProtocolFactory, ProxyProtocolLayer};
pub use parse::{parse, Parsed};

/// The default of `--proxy-protocol-timeout`: how long a connection may
/// take to send its header. A balancer sends it with the connection's
/// first segment, so anything near a round trip is plenty; 5 s matches
/// the order of HAProxy's own `timeout client` examples and keeps a port
/// scanner or a client that connects straight to the port (and waits for
/// the server to speak) from holding a connection long.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
