//! `--threads N`: one reactor per thread, each with its own epoll
//! instance, buffers and timers; nothing shared on the hot path but the
//! process-wide connection count for `--max-conns`.

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicUsize;
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use reactor::{Exit, Handler, Io, Reactor, Stats};

use crate::serve::{summary, ServeOptions, ServeReport};
use crate::serving::{Group, Serving};
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
}

impl AcceptStrategy {
    pub fn name(self) -> &'static str {
        match self {
            AcceptStrategy::ReusePort => "reuseport",
            AcceptStrategy::Exclusive => "exclusive",
        }
    }
}

/// Binds the listening sockets: one per thread for reuseport (the first
/// picks the port if it is 0, the rest bind to it), one shared (dup'ed)
/// for exclusive.
fn bind_listeners(
    addr: SocketAddr,
    backlog: i32,
    threads: usize,
    accept: AcceptStrategy,
) -> io::Result<(SocketAddr, Vec<OwnedFd>)> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
    let first = match accept {
        AcceptStrategy::ReusePort => Io::bind_reuseport(addr, backlog),
        AcceptStrategy::Exclusive => Io::bind(addr, backlog),
    }
    .map_err(context)?;
    let first = TcpListener::from(first);
    let bound = first.local_addr()?;
    let mut fds = Vec::with_capacity(threads);
    for _ in 1..threads {
        let fd = match accept {
            AcceptStrategy::ReusePort => Io::bind_reuseport(bound, backlog).map_err(context)?,
            AcceptStrategy::Exclusive => OwnedFd::from(first.try_clone()?),
        };
        fds.push(fd);
    }
    fds.insert(0, OwnedFd::from(first));
    Ok((bound, fds))
}

/// Runs server `name` on `threads` reactors; `make(id)` builds each
/// thread's handler (on that thread) and `extra` reads its figures at the
/// end. The first reactor reads the signals and relays them.
///
/// # Errors
/// Failing to bind, to create a reactor, or a fatal `epoll_wait` error in
/// any thread.
pub fn serve_threads<H: Handler, X: Send>(
    name: &str,
    options: ServeOptions,
    threads: usize,
    accept: AcceptStrategy,
    make: impl Fn(usize) -> H + Sync,
    extra: impl Fn(&mut H) -> X + Sync,
) -> io::Result<ServeReport<Vec<X>>> {
    let started = Instant::now();
    let threads = threads.max(1);
    let addr = SocketAddr::new(options.bind, options.port);
    let (bound, listeners) = bind_listeners(addr, options.backlog, threads, accept)?;
    let group = Arc::new(Group::default());
    *group.board.lock().unwrap_or_else(|e| e.into_inner()) = vec![Stats::default(); threads];
    let mut config = options.config.clone();
    config.shared_conns = Some(Arc::new(AtomicUsize::new(0)));
    let barrier = Barrier::new(threads + 1);
    let (ready_tx, ready_rx) = mpsc::channel();

    let results: Vec<io::Result<(Exit, Stats, X)>> = thread::scope(|scope| {
        let mut handles = Vec::with_capacity(threads);
        for (id, listener) in listeners.into_iter().enumerate() {
            let (config, group, barrier, ready) =
                (config.clone(), group.clone(), &barrier, ready_tx.clone());
            let (make, extra, options) = (&make, &extra, &options);
            let handle = thread::Builder::new()
                .name(format!("tenk-{name}-{id}"))
                .spawn_scoped(scope, move || {
                    let made = (|| {
                        let serving = Serving::new(make(id), Some((id, group)));
                        let mut reactor = Reactor::new(config, serving)?;
                        reactor
                            .io()
                            .add_listener(listener, accept == AcceptStrategy::Exclusive)?;
                        if id == 0 {
                            if let Some(signals) = &options.signals {
                                reactor.io().watch_signals(signals)?;
                            }
                        }
                        Ok::<_, io::Error>(reactor)
                    })();
                    let mut reactor = match made {
                        Ok(mut reactor) => {
                            let _ = ready.send((id, Ok(reactor.io().waker())));
                            reactor
                        }
                        Err(e) => {
                            let _ = ready.send((id, Err(io::Error::new(e.kind(), e.to_string()))));
                            barrier.wait();
                            return Err(e);
                        }
                    };
                    barrier.wait();
                    if options.stats {
                        let ticker = StatsTicker::start(reactor.io(), Duration::from_secs(1));
                        reactor.handler().ticker = Some(ticker);
                    }
                    let exit = reactor.run()?;
                    let stats = reactor.io().stats();
                    Ok((exit, stats, extra(&mut reactor.handler().inner)))
                })
                .expect("spawn a server thread");
            handles.push(handle);
        }
        drop(ready_tx);
        let mut wakers = vec![None; threads];
        let mut failed = None;
        for (id, waker) in ready_rx.iter().take(threads) {
            match waker {
                Ok(waker) => wakers[id] = Some(waker),
                Err(e) => failed = Some(e),
            }
        }
        let _ = group.wakers.set(wakers.into_iter().flatten().collect());
        if failed.is_none() {
            let c = &options.config;
            println!(
                "tenk {name} listening on {bound} (trigger {}, max-events {}, budget {}, max-conns {}, backlog {}, threads {threads}, accept {})",
                c.trigger.name(),
                c.max_events,
                c.read_budget,
                c.max_conns,
                options.backlog,
                accept.name(),
            );
            let _ = io::stdout().flush();
        } else {
            // Tell the threads that started to stop at once.
            group
                .shutdowns
                .store(2, std::sync::atomic::Ordering::Release);
            for waker in group.wakers.get().into_iter().flatten() {
                let _ = waker.wake();
            }
        }
        barrier.wait();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a server thread panicked")))
            })
            .collect()
    });

    let mut total = Stats::default();
    let mut extras = Vec::with_capacity(threads);
    let mut exit = Exit::Graceful;
    for result in results {
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
