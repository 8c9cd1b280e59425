//! The servers tenk ships, each a [`reactor::Handler`]: `echo` now; `chat`
//! and `http` build on the same pieces.

pub mod chat;
pub mod echo;
pub mod hello;
pub mod serve;
pub mod serving;
pub mod stats_line;
pub mod threads;

pub use serve::{serve, ServeOptions, ServeReport};
