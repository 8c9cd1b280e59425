//! `--threads N`: one reactor per thread, each with its own epoll
//! instance, buffers and timers; nothing shared on the hot path but the
//! process-wide connection count for `--max-conns`.

mod stall;
mod watcher;

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use reactor::{Config, Exit, Handler, Io, Reactor, Stats, Token, Waker};

use crate::serve::{summary, ServeOptions, ServeReport};
use crate::serving::{Group, Serving};
use crate::stats_line::StatsTicker;
use stall::{StallHook, Stalling};
use watcher::Watcher;

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
struct Dispatcher {
    group: Arc<Group>,
    balance: Balance,
    next: usize,
}

impl Dispatcher {
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
fn bind_listeners(
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
struct Part<'a> {
    id: usize,
    config: Config,
    listener: Option<OwnedFd>,
    exclusive: bool,
    options: &'a ServeOptions,
    barrier: &'a Barrier,
    ready: mpsc::Sender<(usize, io::Result<Waker>)>,
}

impl Part<'_> {
    fn run<T: Handler>(self, handler: Serving<T>) -> io::Result<(Exit, Stats, T)> {
        if self.options.pin {
            if let Err(e) = reactor::sys::affinity::pin_current_thread(self.id) {
                tracing::warn!("cannot pin thread {} to a core: {e}", self.id);
            }
        }
        let made = (|| {
            let mut reactor = Reactor::new(self.config, handler)?;
            if let Some(listener) = self.listener {
                reactor.io().add_listener(listener, self.exclusive)?;
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
        if self.options.stats {
            let ticker = StatsTicker::start(reactor.io(), Duration::from_secs(1));
            reactor.handler().ticker = Some(ticker);
        }
        let exit = reactor.run()?;
        let stats = reactor.io().stats();
        Ok((exit, stats, reactor.into_handler().inner))
    }
}

/// Runs server `name` on `threads` worker reactors; `make(id, group)` builds
/// each worker's handler (on its thread; `group` is what the workers share,
/// e.g. to wake one another) and `extra` reads its figures at the
/// end. The calling thread reads the signals and relays them to every
/// reactor until the last thread has exited (`threads/watcher.rs`), so a
/// second signal forces the exit however many threads are still draining.
///
/// # Errors
/// Failing to bind, to create a reactor or the signal watcher, or a fatal
/// `epoll_wait` error in any thread; a malformed `TENK_TEST_STALL_WORKER`
/// (a test hook, see `threads/stall.rs`).
pub fn serve_threads<H: Handler, X: Send>(
    name: &str,
    options: ServeOptions,
    threads: usize,
    accept: AcceptStrategy,
    make: impl Fn(usize, &Arc<Group>) -> H + Sync,
    extra: impl Fn(&mut H) -> X + Sync,
) -> io::Result<ServeReport<Vec<X>>> {
    let started = Instant::now();
    let workers = threads.max(1);
    let stall = StallHook::from_env()?;
    let dispatch = match accept {
        AcceptStrategy::Dispatch(balance) => Some(balance),
        _ => None,
    };
    let addr = SocketAddr::new(options.bind, options.port);
    let (bound, listeners) = bind_listeners(addr, options.backlog, workers, accept)?;
    let group = Arc::new(Group::new(workers));
    let mut config = options.config.clone();
    config.shared_conns = Some(Arc::new(AtomicUsize::new(0)));
    let reactors = workers + usize::from(dispatch.is_some());
    let watcher = Watcher::new(options.signals.as_ref(), group.clone(), reactors)?;
    let barrier = Barrier::new(reactors + 1);
    let (ready_tx, ready_rx) = mpsc::channel();

    let mut listeners = listeners.into_iter();
    let results = thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        for id in 0..workers {
            let part = Part {
                id,
                config: config.clone(),
                listener: if dispatch.is_some() {
                    None
                } else {
                    listeners.next()
                },
                exclusive: accept == AcceptStrategy::Exclusive,
                options: &options,
                barrier: &barrier,
                ready: ready_tx.clone(),
            };
            let departure = watcher.departure(&group, Some(id));
            let (make, extra, group, stall) = (&make, &extra, group.clone(), stall.clone());
            let handle = thread::Builder::new()
                .name(format!("tenk-{name}-{id}"))
                .spawn_scoped(scope, move || {
                    let _departure = departure;
                    let handler = Stalling::new(make(id, &group), id, stall);
                    part.run(Serving::new(handler, Some((id, group))))
                        .map(|(exit, stats, mut h)| (exit, stats, extra(&mut h.inner)))
                })
                .expect("spawn a server thread");
            handles.push(handle);
        }
        let acceptor = dispatch.map(|balance| {
            let part = Part {
                id: workers,
                config: config.clone(),
                listener: listeners.next(),
                exclusive: false,
                options: &options,
                barrier: &barrier,
                ready: ready_tx.clone(),
            };
            let dispatcher = Dispatcher {
                group: group.clone(),
                balance,
                next: 0,
            };
            let departure = watcher.departure(&group, None);
            let group = group.clone();
            thread::Builder::new()
                .name(format!("tenk-{name}-accept"))
                .spawn_scoped(scope, move || {
                    let _departure = departure;
                    part.run(Serving::new(dispatcher, Some((workers, group))))
                        .map(|(exit, stats, _)| (exit, stats))
                })
                .expect("spawn the acceptor thread")
        });
        drop(ready_tx);
        let mut wakers: Vec<Option<Waker>> = vec![None; reactors];
        let mut failed = false;
        for (id, waker) in ready_rx.iter().take(reactors) {
            match waker {
                Ok(waker) => wakers[id] = Some(waker),
                Err(_) => failed = true,
            }
        }
        let all: Vec<Waker> = wakers.into_iter().flatten().collect();
        let _ = group.wakers.set(all);
        if failed {
            // Tell the threads that started to stop at once.
            group.shutdowns.store(2, Ordering::Release);
            for waker in group.wakers.get().into_iter().flatten() {
                let _ = waker.wake();
            }
        } else {
            let c = &options.config;
            println!(
                "tenk {name} listening on {bound} (trigger {}, max-events {}, budget {}, max-conns {}, backlog {}, threads {workers}, accept {})",
                c.trigger.name(),
                c.max_events,
                c.read_budget,
                c.max_conns,
                options.backlog,
                accept.name(),
            );
            let _ = io::stdout().flush();
        }
        barrier.wait();
        let watched = watcher.run();
        if watched.is_err() {
            // No one reads the signals any more: stop every thread now
            // rather than leave them running with no way to end them.
            group.request_shutdown();
            group.request_shutdown();
        }
        let acceptor = acceptor.map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(io::Error::other("the acceptor thread panicked")))
        });
        let workers: Vec<io::Result<(Exit, Stats, X)>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a server thread panicked")))
            })
            .collect();
        (acceptor, workers, watched)
    });

    let (acceptor, worker_results, watched) = results;
    watched?;
    let mut total = Stats::default();
    let mut exit = Exit::Graceful;
    if let Some(acceptor) = acceptor {
        let (acceptor_exit, stats) = acceptor?;
        total.add(&stats);
        if acceptor_exit == Exit::Forced {
            exit = Exit::Forced;
        }
    }
    let mut extras = Vec::with_capacity(workers);
    for result in worker_results {
        let (thread_exit, stats, x) = result?;
        total.add(&stats);
        extras.push(x);
        if thread_exit == Exit::Forced {
            exit = Exit::Forced;
        }
    }
    let report = ServeReport {
        exit,
        stats: total,
        elapsed: started.elapsed(),
        extra: extras,
    };
    println!("{}", summary(name, &report));
    io::stdout().flush()?;
    Ok(report)
}
