//! Every syscall the reactor makes, and every `unsafe` block in the crate.
//!
//! Most calls go through `rustix`, which already turns `-1` into a typed
//! error on the line of the call. Only signal masks and `signalfd`, which
//! rustix does not wrap, use `libc` directly; those are the crate's only
//! `unsafe` blocks.

pub mod affinity;
pub(crate) mod epoll;
pub(crate) mod eventfd;
pub mod rlimit;
pub mod signal;
pub(crate) mod socket;
pub(crate) mod timerfd;
