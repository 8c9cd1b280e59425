//! Shutdown signals, read through a signalfd.
//!
//! Call [`block`] in `main()` before spawning any thread, then
//! [`Io::watch_signals`](crate::Io::watch_signals) on the reactor that
//! should receive them.

pub use crate::sys::signal::{block, ignore_sigpipe, SignalSet, SIGHUP, SIGINT, SIGTERM};
