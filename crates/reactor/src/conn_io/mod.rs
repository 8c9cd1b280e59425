//! Connection I/O, in two files that one echoed byte enters in turn and
//! never twice (see `docs/architecture.md`):
//!
//! - `read.rs`: one epoll event of a connection, `on_event` → `read` →
//!   `deliver` to the handler → `finish` (the interest synced once, closes
//!   reported);
//! - `write.rs`: what the handler sends (`Io::send`, `send_shared`,
//!   `send_file`), the queue, `flush`, and the one write loop that both
//!   `Io::send` and `flush` go through.
//!
//! `read.rs` uses `write.rs` (an `EPOLLOUT` is a flush), never the reverse.

mod hold;
mod read;
mod sealed;
mod write;

pub(crate) use read::{finish, on_event, read, report_closes};
pub(crate) use sealed::write_wire;
pub(crate) use write::flush;
