//! Every syscall the reactor makes, and every `unsafe` block in the crate.
//!
//! Most calls go through `rustix`, which already turns `-1` into a typed
//! error on the line of the call. What rustix does not wrap uses `libc`
//! directly, in the crate's only `unsafe` blocks, each with its `SAFETY`
//! comment: signal masks and `signalfd` (`signal.rs`), the
//! `IP_BIND_ADDRESS_NO_PORT` socket option (`socket.rs`), and descriptors
//! that cross `exec` (`inherit.rs`).

pub mod affinity;
pub(crate) mod epoll;
pub(crate) mod eventfd;
pub mod inherit;
pub(crate) mod pidfd;
pub mod rlimit;
pub mod signal;
pub(crate) mod socket;
pub(crate) mod timerfd;
