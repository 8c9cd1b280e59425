//! The reactor threads [`serve`](crate::serve()) runs: one reactor per
//! thread, each with its own epoll instance, buffers and timers; nothing
//! shared on the hot path but the process-wide connection count for
//! `--max-conns`. Here: how the threads share the port (the accept
//! strategies, the acceptor thread's `Dispatcher`) and one thread's
//! part of the run.

pub(crate) mod restarter;
pub mod stall;
pub(crate) mod watcher;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use reactor::{Config, Exit, Handler, Io, Reactor, Stats, Token, Waker};

use crate::group::Group;
use crate::serve::Notify;
use crate::serving::Serving;
use crate::stats_line::StatsTicker;

/// How the threads share the listening port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptStrategy {
    /// A `SO_REUSEPORT` listener per thread: the kernel hashes each
    /// connection to one of them. No thundering herd and no lock, but no
    /// load feedback either: a busy thread gets its share regardless.
    ReusePort,
    /// One listener registered with `EPOLLEXCLUSIVE` in every thread's
    /// epoll: the kernel wakes one waiting thread per connection. Idle
    /// threads win, which balances by load, but the first waiter is
    /// favoured when all are idle.
    Exclusive,
    /// One acceptor thread hands accepted connections to the workers
    /// through queues: balanced as asked, at the price of a hand-over per
    /// connection, and one thread caps the accept rate.
    Dispatch(Balance),
}

/// How the acceptor thread picks a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    /// The worker with the fewest connections (open or in flight to it).
    LeastConnections,
}

impl AcceptStrategy {
    pub fn name(self) -> &'static str {
        match self {
            AcceptStrategy::ReusePort => "reuseport",
            AcceptStrategy::Exclusive => "exclusive",
            AcceptStrategy::Dispatch(Balance::RoundRobin) => "dispatch (round-robin)",
            AcceptStrategy::Dispatch(Balance::LeastConnections) => "dispatch (least-connections)",
        }
    }
}

/// The acceptor thread's handler: every accepted connection goes to a
/// worker, none is served here.
pub(crate) struct Dispatcher {
    group: Arc<Group>,
    balance: Balance,
    next: usize,
}

impl Dispatcher {
    pub(crate) fn new(group: Arc<Group>, balance: Balance) -> Dispatcher {
        Dispatcher {
            group,
            balance,
            next: 0,
        }
    }

    fn pick(&mut self) -> usize {
        let workers = self.group.inboxes.len();
        match self.balance {
            Balance::RoundRobin => {
                let w = self.next % workers;
                self.next = self.next.wrapping_add(1);
                w
            }
            // `worker_conns` counts a connection from its hand-over (in
            // flight included) to its close.
            Balance::LeastConnections => (0..workers)
                .min_by_key(|&w| self.group.worker_conns[w].load(Ordering::Relaxed))
                .unwrap_or(0),
        }
    }
}

impl Handler for Dispatcher {
    fn on_accepted_fd(&mut self, _io: &mut Io, _listener: Token, fd: OwnedFd) -> Option<OwnedFd> {
        let workers = self.group.workers();
        let first = self.pick();
        let mut fd = fd;
        for worker in (first..workers).chain(0..first) {
            match self.group.hand_over(worker, fd) {
                Ok(()) => return None,
                // That worker has exited: try the others.
                Err(back) => fd = back,
            }
        }
        // Every worker has exited (the server is going down): close it.
        None
    }

    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        // The acceptor serves no connection.
        data.len()
    }
}

/// Binds the listening sockets: one per worker for reuseport (the first
/// picks the port if it is 0, the rest bind to it), one shared (dup'ed per
/// worker) for exclusive, one for the acceptor thread for dispatch.
pub(crate) fn bind_listeners(
    addr: SocketAddr,
    backlog: i32,
    workers: usize,
    accept: AcceptStrategy,
) -> io::Result<(SocketAddr, Vec<OwnedFd>)> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
    let first = match accept {
        AcceptStrategy::ReusePort => Io::bind_reuseport(addr, backlog),
        _ => Io::bind(addr, backlog),
    }
    .map_err(context)?;
    let first = TcpListener::from(first);
    let bound = first.local_addr()?;
    let count = match accept {
        AcceptStrategy::Dispatch(_) => 1,
        _ => workers,
    };
    let mut fds = vec![OwnedFd::from(first.try_clone()?)];
    for _ in 1..count {
        let fd = match accept {
            AcceptStrategy::ReusePort => Io::bind_reuseport(bound, backlog).map_err(context)?,
            _ => OwnedFd::from(first.try_clone()?),
        };
        fds.push(fd);
    }
    Ok((bound, fds))
}

/// One thread's part: build its reactor, report its waker, wait for the
/// others, run, hand back the handler and counters.
pub(crate) struct Part<'a> {
    pub id: usize,
    pub config: Config,
    /// Its listening sockets: one, or (inherited) several, or none (a
    /// worker under `dispatch`).
    pub listeners: Vec<OwnedFd>,
    pub exclusive: bool,
    /// Pin the thread to core `id`.
    pub pin: bool,
    /// `--stats`: where the ticker's lines go.
    pub stats: Option<Notify>,
    pub barrier: &'a Barrier,
    pub ready: mpsc::Sender<(usize, io::Result<Waker>)>,
    /// `--metrics`: the listener this reactor serves `/metrics` on, plain
    /// whatever the transport ([`Io::add_plain_listener`]).
    pub metrics: Option<OwnedFd>,
}

impl Part<'_> {
    pub(crate) fn run<T: Handler>(self, handler: Serving<T>) -> io::Result<(Exit, Stats, T)> {
        if self.pin {
            if let Err(e) = reactor::sys::affinity::pin_current_thread(self.id) {
                tracing::warn!("cannot pin thread {} to a core: {e}", self.id);
            }
        }
        let made = (|| {
            let mut reactor = Reactor::new(self.config, handler)?;
            for listener in self.listeners {
                reactor.io().add_listener(listener, self.exclusive)?;
            }
            if let Some(metrics) = self.metrics {
                let token = reactor.io().add_plain_listener(metrics)?;
                reactor.handler().metrics_listener(token);
            }
            Ok::<_, io::Error>(reactor)
        })();
        let mut reactor = match made {
            Ok(mut reactor) => {
                let _ = self.ready.send((self.id, Ok(reactor.io().waker())));
                reactor
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                let _ = self.ready.send((self.id, Err(copy)));
                self.barrier.wait();
                return Err(e);
            }
        };
        self.barrier.wait();
        if let Some(notify) = self.stats {
            let ticker = StatsTicker::start(reactor.io(), Duration::from_secs(1), notify);
            reactor.handler().ticker = Some(ticker);
        }
        let exit = reactor.run()?;
        let stats = reactor.io().stats();
        Ok((exit, stats, reactor.into_handler().inner))
    }
}
