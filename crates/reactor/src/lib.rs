//! # tenk reactor
//!
//! A single-threaded event loop on Linux `epoll`, in the style of nginx and
//! Redis, that knows no protocol. A protocol implements [`Handler`]; the
//! reactor owns sockets, buffers and timers and calls it back.
//!
//! - **Trigger modes** per reactor ([`Trigger`]): edge, level or one-shot
//!   for connections; listeners and the reactor's own fds are level.
//! - **Tokens** ([`Token`]) carry a slot index and a generation, so an
//!   event for a connection closed earlier in the same batch is dropped,
//!   never delivered to the connection that reused its slot.
//! - **Fairness**: each connection reads at most [`Config::read_budget`]
//!   bytes per pass; in edge mode one stopped by the budget is served again
//!   next pass from a ready-again list, so no edge is ever lost.
//! - **Backpressure**: above [`Config::high_watermark`] of pending output a
//!   connection stops being read; at [`Config::low_watermark`] it resumes
//!   and reads what arrived meanwhile.
//! - **Memory**: reads land in one scratch buffer per reactor; only
//!   unconsumed input and unsent output live with a connection, in pooled
//!   buffers. An idle connection holds no buffer.
//! - **Timers** on one `timerfd`, **signals** on a `signalfd`, **wake-ups**
//!   and stops from other threads on an `eventfd` ([`Waker`]). An idle
//!   reactor makes no wake-ups at all; a run can be bounded by a deadline
//!   ([`Reactor::run_until`]) at no cost to one that is not.
//! - **Child processes** ([`Io::watch_child`]) through pidfds: an end is
//!   an event, with its exit status, and the child is reaped.
//! - **Accept** with `accept4`, a batch per wake-up, a connection cap, and
//!   a timed pause on EMFILE/ENFILE instead of a spin.
//! - **Outbound** non-blocking connects ([`Io::connect`]) on the same loop.
//! - **Transports** ([`Transport`]): a layer such as TLS between a
//!   connection's socket and its protocol, which never knows it is there.
//!
//! The design and its trade-offs are in `docs/epoll-strategy.md`;
//! `examples/kv.rs`, a line-based key-value server, shows the whole API in use.

mod buffer;
mod child;
mod close;
mod close_reason;
mod config;
mod conn;
mod conn_io;
mod connect;
mod deadlines;
mod deferred;
mod handler;
mod histogram;
mod io;
#[cfg(test)]
mod layers;
mod listener;
mod output;
mod reactor;
pub mod signal;
mod slab;
mod stats;
pub mod sys;
mod timer;
mod token;
mod transport;
mod waker;

pub use buffer::Buffer;
pub use close_reason::CloseReason;
pub use config::{Config, Keepalive, Trigger};
pub use handler::Handler;
pub use histogram::Histogram;
pub use io::{Exit, Io};
pub use reactor::Reactor;
pub use stats::{CloseCounts, Stats};
pub use timer::TimerId;
pub use token::Token;
pub use transport::{
    PreambleCounts, Received, Transport, TransportCounts, TransportError, TransportFactory,
};
pub use waker::Waker;
