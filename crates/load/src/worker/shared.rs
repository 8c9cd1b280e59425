//! What the threads of a run share: the spec, the `--requests` count, the
//! rendezvous at the end of the connect phase, the live counters of the
//! progress line, and chat's run-wide counts.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use reactor::Waker;
use tls::TlsStats;

use crate::spec::{LoadSpec, Workload};

/// Live counters a thread publishes for the progress line.
#[derive(Default)]
#[repr(align(64))]
pub(crate) struct Live {
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) open: AtomicU64,
}

/// State shared by all threads of a run.
pub(crate) struct Shared {
    pub(crate) spec: LoadSpec,
    /// `--requests`: requests claimed so far, over all threads.
    pub(crate) claimed: AtomicU64,
    /// Threads whose connect phase is over.
    pub(crate) connected_threads: AtomicUsize,
    /// Every thread's waker, to announce the end of the connect phase.
    pub(crate) wakers: OnceLock<Vec<Waker>>,
    pub(crate) live: Vec<Live>,
    /// A signal asked every thread to stop.
    pub(crate) interrupted: AtomicBool,
    pub(crate) chat: ChatShared,
    /// The handshakes of every TLS session of the run, by outcome.
    pub(crate) tls: Arc<TlsStats>,
}

impl Shared {
    pub(crate) fn new(spec: LoadSpec) -> Shared {
        Shared {
            live: (0..spec.threads).map(|_| Live::default()).collect(),
            chat: ChatShared::new(&spec),
            spec,
            claimed: AtomicU64::new(0),
            connected_threads: AtomicUsize::new(0),
            wakers: OnceLock::new(),
            interrupted: AtomicBool::new(false),
            tls: Arc::default(),
        }
    }
}

/// What the threads of a chat run share.
pub(crate) struct ChatShared {
    /// Messages sent by each sender (by client number): receivers on any
    /// thread are owed them.
    pub(crate) sent: Vec<AtomicU64>,
    /// Threads that stopped sending.
    pub(crate) done_sending: AtomicUsize,
    /// Messages are stamped with nanoseconds since this instant.
    pub(crate) epoch: Instant,
    /// The stamp (nanoseconds since `epoch`) of each sender's latest
    /// message: a lost message was sent no later, so the time since is a
    /// lower bound of its wait.
    pub(crate) last_due: Vec<AtomicU64>,
    /// Nicks are `{tag}-{client}`: the process id tells runs apart.
    pub(crate) tag: String,
}

impl ChatShared {
    fn new(spec: &LoadSpec) -> ChatShared {
        let senders = match spec.workload {
            Workload::Chat { senders, .. } => senders,
            _ => 0,
        };
        ChatShared {
            sent: (0..senders).map(|_| AtomicU64::new(0)).collect(),
            last_due: (0..senders).map(|_| AtomicU64::new(0)).collect(),
            done_sending: AtomicUsize::new(0),
            epoch: Instant::now(),
            tag: format!("load{}", std::process::id()),
        }
    }

    /// What every sender has sent so far.
    pub(crate) fn sent(&self) -> Vec<u64> {
        self.sent
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .collect()
    }

    pub(crate) fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}
