//! # tenk http
//!
//! HTTP/1.1 on the tenk reactor: request framing on `httparse`, keep-alive,
//! pipelining (every complete request in the buffer is answered, in order,
//! in one write), Content-Length and chunked request bodies,
//! `Expect: 100-continue`, HEAD, a `Date` header refreshed at most once a
//! second and only while requests come, and hostile input answered with
//! the right status followed by a lingering close. Header values are
//! opaque bytes (obs-text, bytes 0x80 to 0xFF, is served, UTF-8 or not);
//! the headers that frame a request and Host are strict ASCII (see
//! [`parse`](parse#header-values)).
//!
//! For applications: a [`router::Router`] by method and path with
//! parameters (`/users/:id`) and a wildcard tail (`/files/*path`), 404 and
//! 405 (with `Allow`) answered for you, [`middleware`] layers around
//! the handlers (request log, request ids), and per-route statistics
//! counted by the router itself ([`route_stats`]: requests by status class
//! and a duration histogram, cached routes included at the cost of one
//! counter bump); [`metrics::render`] gives the counters in Prometheus
//! text format.
//! [`static_files::StaticFiles`] serves a directory: ETag and
//! Last-Modified with 304s, single ranges, bodies sent with `sendfile`,
//! and paths confined to the root by `openat2(RESOLVE_BENEATH)`.
//! `examples/json_api.rs` builds a small JSON API on them:
//! `cargo run -p tenk-http --example json_api`.
//!
//! For clients: [`client`] builds requests and frames responses
//! (Content-Length, chunked, until close; interim 1xx skipped) without
//! keeping bodies; `tenk load http` reads every response through it.
//!
//! For a reverse proxy: [`proxy`] checks a client's request head as the
//! server does, rewrites heads both ways (hop-by-hop headers, forwarding
//! headers, framing) and streams bodies of any size.

pub mod client;
pub mod date;
pub mod metrics;
pub mod middleware;
mod ows;
pub mod parse;
pub mod proxy;
pub mod response;
pub mod route_stats;
pub mod router;
pub mod server;
pub mod static_files;
pub mod status;

pub use parse::{Limits, Method, Request};
pub use response::Response;
pub use server::{App, HttpConfig, HttpServer};
