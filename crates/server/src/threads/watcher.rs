//! The main thread's part while the reactor threads run: it reads the
//! shutdown signals and relays each to every reactor of the group, until
//! the last thread has exited.
//!
//! A reactor thread cannot do this job: it stops reading its signalfd when
//! its own drain ends. Under `--accept dispatch` the acceptor has no
//! connection to drain and ended at once; under `reuseport` and
//! `exclusive` worker 0 ended as soon as its own connections were
//! flushed. A second signal then reached no thread at all (blocked
//! everywhere, read by no one) while another worker went on draining, and
//! the forced exit it asks for never came (issue 14).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reactor::signal::SignalSet;
use reactor::{Config, Handler, Io, Reactor, Token, Waker};

use crate::group::Group;

/// A reactor of its own (an epoll with the signalfd and an eventfd, no
/// connection) for the main thread.
pub struct Watcher {
    reactor: Reactor<Relay>,
    running: Arc<Running>,
}

/// Reactor threads not yet exited, and the watcher's waker to tell it.
struct Running {
    threads: AtomicUsize,
    waker: Waker,
}

/// Held by each reactor thread for its whole life (dropped on return or
/// panic alike): closes a worker's inbox, then counts the thread out and
/// wakes the watcher.
pub struct Departure<'a> {
    running: Arc<Running>,
    inbox: Option<(&'a Group, usize)>,
}

impl Drop for Departure<'_> {
    fn drop(&mut self) {
        if let Some((group, worker)) = self.inbox {
            group.close_inbox(worker);
        }
        self.running.threads.fetch_sub(1, Ordering::AcqRel);
        let _ = self.running.waker.wake();
    }
}

impl Watcher {
    /// A watcher for `threads` reactor threads of `group`, reading
    /// `signals` if any. Created before the threads, so a failure leaves
    /// nothing to stop.
    ///
    /// # Errors
    /// Those of creating a reactor and of `signalfd`.
    pub fn new(signals: Option<&SignalSet>, group: Arc<Group>, threads: usize) -> io::Result<Self> {
        let mut reactor = Reactor::new(
            Config::default(),
            Relay {
                group,
                running: None,
            },
        )?;
        if let Some(signals) = signals {
            reactor.io().watch_signals(signals)?;
        }
        let running = Arc::new(Running {
            threads: AtomicUsize::new(threads),
            waker: reactor.io().waker(),
        });
        reactor.handler().running = Some(running.clone());
        Ok(Watcher { reactor, running })
    }

    /// The guard a reactor thread holds; `worker` is its id, `None` for
    /// the acceptor thread.
    pub fn departure<'a>(&self, group: &'a Group, worker: Option<usize>) -> Departure<'a> {
        Departure {
            running: self.running.clone(),
            inbox: worker.map(|w| (group, w)),
        }
    }

    /// Relays signals until every reactor thread has exited.
    ///
    /// # Errors
    /// A fatal `epoll_wait` error; the caller must then stop the threads.
    pub fn run(mut self) -> io::Result<()> {
        self.reactor.run().map(|_| ())
    }
}

struct Relay {
    group: Arc<Group>,
    running: Option<Arc<Running>>,
}

impl Handler for Relay {
    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        // The watcher has no connection.
        data.len()
    }

    fn on_signal(&mut self, _io: &mut Io, _signal: i32) {
        self.group.request_shutdown();
    }

    fn on_wake(&mut self, io: &mut Io) {
        // A departure's wake-up may come before `run`: the eventfd keeps
        // it, so none is missed.
        if self
            .running
            .as_ref()
            .is_some_and(|r| r.threads.load(Ordering::Acquire) == 0)
        {
            io.stop();
        }
    }
}
