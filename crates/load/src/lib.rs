//! # tenk load
//!
//! A load generator on the tenk reactor: each thread runs one reactor whose
//! connections are outbound ([`reactor::Io::connect`]), so the tool that
//! measures a server costs what the server costs to run.
//!
//! - **Closed loop** (default): each connection keeps `pipeline` requests
//!   in flight and sends the next when a reply completes.
//! - **Open loop** (`rate`): sends follow a fixed schedule that does not wait
//!   for replies; latency is measured from the *intended* send time, which
//!   corrects coordinated omission, and also from the actual send time.
//! - **Verification**: every echo reply is checked byte for byte against
//!   what its connection sent; every HTTP response's status line and
//!   framing are checked; every chat message is checked in at every member
//!   of its room, in order. Failures are counted and reported, never hidden.
//! - **No hidden stalls**: a connection whose requests get no reply byte for
//!   `timeout` has timed out; requests still in flight at the end are
//!   reported as unanswered. What such requests (and lost chat deliveries)
//!   had waited enters the latency as a lower bound, so a server that goes
//!   silent shows in max and p99.
//! - **Bounded by its settings**: the connect phase ends by a deadline
//!   ([`LoadSpec::connect_deadline`]), and the run then starts with the
//!   connections that are open; connections that never connected, never
//!   answered, and (on loopback) the kernel's accept-queue overflows
//!   during the run are reported.
//! - **Bounded memory**: latency goes into HdrHistograms, not sample lists.
//! - **TLS** ([`LoadSpec::tls`]): rustls sessions behind the reactor's
//!   transport hook, one client config for the run so reconnects resume;
//!   requests start once the handshake is done, and handshakes are timed
//!   and counted apart (full, resumed, failed with rustls' reason and the
//!   flag that would help). [`LoadSpec::new_conn_per_request`] makes a
//!   run of connections (handshakes) per second.
//!
//! Where things are: [`run()`] starts one thread per `--threads`, each a
//! reactor driven by a worker (`worker.rs`: its phases, connects, sends,
//! timeouts) whose connections each speak through a client of the
//! workload's protocol (`client.rs`, one type per protocol behind one
//! trait; the protocols' own I/O-free logic in [`echo`], [`chat`], and
//! `http::client` for HTTP framing). Threads hand back what they measured
//! ([`recorder`]), merged into the [`report`]. [`find_max_rate()`] runs
//! [`run()`] step after step to find the highest rate within a p99 bound.

pub mod chat;
mod client;
pub mod echo;
pub mod find_max_rate;
mod handshakes;
mod inflight;
mod netstat;
pub mod pattern;
pub mod recorder;
pub mod report;
pub mod run;
pub mod spec;
pub mod target;
mod totals;
mod worker;

pub use find_max_rate::{find_max_rate, MaxRate, Search};
pub use report::Report;
pub use run::{run, Progress};
pub use spec::{LoadSpec, Stop, TlsClient, Workload};
