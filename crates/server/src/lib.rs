//! The servers tenk ships, each a [`reactor::Handler`]: echo, chat (line
//! framing inside) and the HTTP app (on `crates/http`), and the code that
//! runs one on a reactor thread or several.

pub mod chat;
pub mod echo;
pub mod group;
pub mod hello;
pub mod metrics;
pub mod pid_file;
pub mod proxy;
pub mod proxy_protocol;
pub mod restart;
pub mod serve;
pub mod serving;
pub mod stats_line;
mod summary;
pub mod systemd;
pub mod threads;

pub use serve::{serve, Listening, Notice, Notify, ServeOptions, ServeReport};
