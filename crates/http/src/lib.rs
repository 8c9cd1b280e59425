//! # tenk http
//!
//! HTTP/1.1 on the tenk reactor: request framing on `httparse`, keep-alive,
//! pipelining (every complete request in the buffer is answered, in order,
//! in one write), Content-Length and chunked request bodies,
//! `Expect: 100-continue`, HEAD, a `Date` header refreshed at most once a
//! second and only while requests come, and hostile input answered with
//! the right status followed by a lingering close.

pub mod date;
pub mod parse;
pub mod response;
pub mod server;
pub mod status;

pub use parse::{Limits, Method, Request};
pub use response::Response;
pub use server::{App, HttpConfig, HttpServer};
