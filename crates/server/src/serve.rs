//! Running one of the servers on 1..N reactor threads: listen, announce,
//! run until shut down, report. The one entry point is [`serve`]; what it
//! has to say while running goes to the caller as [`Notice`]s and what it
//! found at the end comes back as a [`ServeReport`], so only the binary
//! decides what reaches the terminal.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use reactor::signal::SignalSet;
use reactor::{Config, Exit, Handler, PreambleCounts, Stats, TransportCounts, Waker};

use crate::group::Group;
use crate::metrics::MetricsListener;
use crate::restart::RestartPlan;
use crate::serving::Serving;
use crate::systemd::Notifier;
use crate::threads::restarter::{Restarter, State};
use crate::threads::stall::StallHook;
use crate::threads::watcher::Watcher;
use crate::threads::{bind_listeners, AcceptStrategy, Dispatcher, Part};

/// What a running server tells its caller, as it happens.
#[derive(Debug)]
pub enum Notice<'a> {
    /// The listener is bound (the banner); sent before any connection is
    /// served, so a caller that asked for port 0 can pass the port on.
    Listening(&'a Listening),
    /// `--stats`: the line for the second just ended.
    Stats(&'a str),
    /// The stall test hook stalls or resumes a worker (`threads/stall.rs`).
    Hook(&'a str),
    /// A graceful restart started, finished or failed (a line that says
    /// which, and why).
    Restart(&'a str),
}

/// Where a server's [`Notice`]s go; called on the reactor threads.
pub type Notify = Arc<dyn Fn(Notice<'_>) + Send + Sync>;

/// How the server comes by its listening sockets, and what it tells
/// others of its life: graceful restarts, systemd, the pid file
/// (docs/operations.md).
#[derive(Default)]
pub struct Lifecycle {
    /// Serve on these listening sockets instead of binding `bind:port`
    /// (a restart's hand-over, or socket activation), with what the banner
    /// says of them.
    pub inherited: Option<(Vec<OwnedFd>, String)>,
    /// A restart's new process: where it reports that it serves
    /// ([`crate::restart::report_ready`]).
    pub ready: Option<OwnedFd>,
    /// What SIGHUP runs; without, SIGHUP is ignored (and logged).
    pub restart: Option<RestartPlan>,
    /// Written with this process's pid once it serves; removed at the end
    /// unless the sockets were handed over ([`crate::pid_file`]).
    pub pid_file: Option<PathBuf>,
    /// The `--metrics` listener, inherited (a restart's hand-over, or a
    /// socket systemd passes named `metrics`), to serve on instead of
    /// binding one.
    pub metrics: Option<OwnedFd>,
    /// systemd's notification socket: `READY=1`, `RELOADING=1`,
    /// `MAINPID=`, `STOPPING=1`, `WATCHDOG=1`.
    pub systemd: Option<Arc<Notifier>>,
}

/// What `tenk serve` was asked to do.
pub struct ServeOptions {
    /// Address to listen on (IPv4 or IPv6).
    pub bind: IpAddr,
    /// Port; 0 lets the kernel pick one (see [`Notice::Listening`]).
    pub port: u16,
    /// `listen(2)` backlog.
    pub backlog: i32,
    /// The reactor's settings.
    pub config: Config,
    /// Make a statistics line every second ([`Notice::Stats`]).
    pub stats: bool,
    /// Signals to watch for shutdown (blocked by the caller beforehand);
    /// `None` runs until the reactors are stopped some other way.
    pub signals: Option<SignalSet>,
    /// Worker reactor threads (at least one).
    pub threads: usize,
    /// With several threads: how they share the port.
    pub accept: AcceptStrategy,
    /// With several threads: pin each to its own core.
    pub pin: bool,
    /// Where the run's notices go.
    pub notify: Notify,
    /// Wake every reactor once when it listens, so that a handler with
    /// work of its own (the proxy's health checks and publish timer)
    /// starts it in `on_wake` without waiting for a first connection.
    /// Off for the others: an idle server makes no wake-up at all.
    pub wake_at_start: bool,
    /// `--metrics`: the listener worker 0 serves `/metrics` on
    /// ([`crate::metrics`]). Shared so the options stay `Clone`; `serve`
    /// takes the descriptor (a duplicate if the options were cloned).
    pub metrics: Option<Arc<MetricsListener>>,
    /// Restarts, inherited sockets, systemd, the pid file.
    pub lifecycle: Lifecycle,
}

impl fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("backlog", &self.backlog)
            .field("config", &self.config)
            .field("threads", &self.threads)
            .field("accept", &self.accept)
            .finish_non_exhaustive()
    }
}

/// The listener bound and the settings it serves with: what the banner
/// says.
#[derive(Clone, Debug)]
pub struct Listening {
    /// The server's name (`echo`, `chat`, `http`).
    pub name: String,
    /// The address bound (the kernel's port if 0 was asked for).
    pub addr: SocketAddr,
    pub config: Config,
    pub backlog: i32,
    pub threads: usize,
    pub accept: AcceptStrategy,
    /// Where `/metrics` is served (`--metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Where the sockets came from when not bound here (a restart's
    /// hand-over, socket activation), and what that changed.
    pub origin: Option<String>,
}

impl Listening {
    /// `tenk NAME listening on ADDR (trigger …, backlog N[, threads N,
    /// accept …])`: scripts and tests read the address from it.
    pub fn banner(&self) -> String {
        let c = &self.config;
        let mut line = format!(
            "tenk {} listening on {} (trigger {}, max-events {}, budget {}, max-conns {}, backlog {}",
            self.name,
            self.addr,
            c.trigger.name(),
            c.max_events,
            c.read_budget,
            c.max_conns,
            self.backlog,
        );
        // In the order they meet a connection: the header, then TLS.
        if let Some(counts) = c.transport.as_ref().and_then(|t| t.preamble_counts()) {
            line.push_str(&format!(", {}", counts.protocol.replace('_', " ")));
        }
        if let Some(counts) = c.transport.as_ref().and_then(|t| t.counts()) {
            line.push_str(&format!(", {}", counts.protocol));
        }
        if self.threads > 1 {
            line.push_str(&format!(
                ", threads {}, accept {}",
                self.threads,
                self.accept.name()
            ));
        }
        if let Some(addr) = self.metrics {
            line.push_str(&format!(", metrics {addr}"));
        }
        if let Some(origin) = &self.origin {
            line.push_str(&format!(", {origin}"));
        }
        line.push(')');
        line
    }
}

/// How a server run ended.
#[derive(Clone, Debug)]
pub struct ServeReport<X = ()> {
    /// Why the reactors stopped (`Forced` if any was forced).
    pub exit: Exit,
    /// Their counters at the end, summed.
    pub stats: Stats,
    /// How long it ran.
    pub elapsed: Duration,
    /// Each worker's own final figures (e.g. HTTP counters), by id.
    pub extra: Vec<X>,
    /// The transport's (TLS) handshake counters at the end, if it keeps
    /// any (timeouts are in `stats.closes`).
    pub transport: Option<TransportCounts>,
    /// The preamble's (PROXY protocol) header counters at the end, if the
    /// transport has one.
    pub preamble: Option<PreambleCounts>,
    /// The run ended by a graceful restart: its sockets went to a new
    /// process, which serves on.
    pub handed_over: bool,
}

/// Runs server `name` on `options.threads` worker reactors until a
/// watched signal shuts it down. `make(id, group)` builds each worker's
/// handler (on its thread; `group` is what the workers share, e.g. to
/// wake one another) and `extra` reads its figures at the end. The
/// calling thread reads the signals and relays them to every reactor
/// until the last thread has exited (`threads/watcher.rs`), so a second
/// signal forces the exit however many threads are still draining.
///
/// With one thread, `accept` and `pin` do not apply: one plain listener,
/// no acceptor thread, no figures shared between reactors.
///
/// # Errors
/// Failing to bind, to create a reactor or the signal watcher, or a fatal
/// `epoll_wait` error in any thread; a malformed `TENK_TEST_STALL_WORKER`
/// (a test hook, see `threads/stall.rs`).
pub fn serve<H: Handler, X: Send>(
    name: &str,
    options: ServeOptions,
    make: impl Fn(usize, &Arc<Group>) -> H + Sync,
    extra: impl Fn(&mut H) -> X + Sync,
) -> io::Result<ServeReport<X>> {
    let started = Instant::now();
    let workers = options.threads.max(1);
    let several = workers > 1;
    // One thread: a plain listener, as `Exclusive` binds it (not shared
    // with SO_REUSEPORT), registered without EPOLLEXCLUSIVE.
    let accept = if several {
        options.accept
    } else {
        AcceptStrategy::Exclusive
    };
    let stall = StallHook::from_env()?;
    let mut options = options;
    let lifecycle = std::mem::take(&mut options.lifecycle);
    let sockets = match lifecycle.inherited {
        Some((fds, origin)) => arrange_inherited(fds, workers, accept, options.backlog, origin)?,
        None => {
            let addr = SocketAddr::new(options.bind, options.port);
            let (bound, listeners) = bind_listeners(addr, options.backlog, workers, accept)?;
            // Every distinct socket, once: reuseport's are one per worker,
            // the others one shared.
            let distinct = match accept {
                AcceptStrategy::ReusePort => listeners.len(),
                _ => 1,
            };
            let handover = listeners[..distinct]
                .iter()
                .map(OwnedFd::try_clone)
                .collect::<io::Result<_>>()?;
            Sockets {
                bound,
                parts: listeners.into_iter().map(|fd| vec![fd]).collect(),
                handover,
                accept,
                origin: None,
            }
        }
    };
    let accept = sockets.accept;
    let dispatch = match accept {
        AcceptStrategy::Dispatch(balance) => Some(balance),
        _ => None,
    };
    let metrics = options.metrics.take().map(take_metrics).transpose()?;
    let metrics_addr = metrics.as_ref().map(|m| m.addr);
    let (mut metrics_fd, metrics_render) = match metrics {
        Some(m) => (Some(m.fd), Some(m.render)),
        None => (None, None),
    };
    let bound = sockets.bound;
    let origin = sockets.origin;
    let listeners = sockets.parts;
    let group = Arc::new(Group::new(workers));
    let mut config = options.config.clone();
    if several {
        config.shared_conns = Some(Arc::new(AtomicUsize::new(0)));
    }
    let reactors = workers + usize::from(dispatch.is_some());
    let restarter = Restarter {
        name: name.to_string(),
        plan: lifecycle.restart,
        listeners: sockets.handover,
        metrics: metrics_fd.as_ref().map(OwnedFd::try_clone).transpose()?,
        notify: options.notify.clone(),
        systemd: lifecycle.systemd.clone(),
        state: State::Serving,
    };
    let watcher = Watcher::new(options.signals.as_ref(), group.clone(), reactors, restarter)?;
    let mut ready = lifecycle.ready;
    let barrier = Barrier::new(reactors + 1);
    let (ready_tx, ready_rx) = mpsc::channel();

    let mut listeners = listeners.into_iter();
    let results = thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        for id in 0..workers {
            let part = Part {
                id,
                config: config.clone(),
                listeners: if dispatch.is_some() {
                    Vec::new()
                } else {
                    listeners.next().unwrap_or_default()
                },
                exclusive: several && accept == AcceptStrategy::Exclusive,
                pin: several && options.pin,
                stats: options.stats.then(|| options.notify.clone()),
                barrier: &barrier,
                ready: ready_tx.clone(),
                // Worker 0's own, even under dispatch: see `crate::metrics`.
                metrics: if id == 0 { metrics_fd.take() } else { None },
            };
            let render = if id == 0 {
                metrics_render.clone()
            } else {
                None
            };
            let departure = watcher.departure(&group, Some(id));
            let (make, extra, group) = (&make, &extra, group.clone());
            let (stall, notify) = (stall.clone(), options.notify.clone());
            let handle = thread::Builder::new()
                .name(format!("tenk-{name}-{id}"))
                .spawn_scoped(scope, move || {
                    let _departure = departure;
                    let handler = make(id, &group);
                    let serving = Serving::new(handler, id, group)
                        .with_stall(stall, notify)
                        .with_metrics(render);
                    part.run(serving)
                        .map(|(exit, stats, mut h)| (exit, stats, extra(&mut h)))
                })
                .expect("spawn a server thread");
            handles.push(handle);
        }
        let acceptor = dispatch.map(|balance| {
            let part = Part {
                id: workers,
                config: config.clone(),
                listeners: listeners.next().unwrap_or_default(),
                exclusive: false,
                pin: options.pin,
                stats: options.stats.then(|| options.notify.clone()),
                barrier: &barrier,
                ready: ready_tx.clone(),
                metrics: None,
            };
            let dispatcher = Dispatcher::new(group.clone(), balance);
            let departure = watcher.departure(&group, None);
            let group = group.clone();
            thread::Builder::new()
                .name(format!("tenk-{name}-accept"))
                .spawn_scoped(scope, move || {
                    let _departure = departure;
                    part.run(Serving::new(dispatcher, workers, group))
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
            let listening = Listening {
                name: name.to_string(),
                addr: bound,
                config: options.config.clone(),
                backlog: options.backlog,
                threads: workers,
                accept,
                metrics: metrics_addr,
                origin: origin.clone(),
            };
            (options.notify)(Notice::Listening(&listening));
            if let Some(ready) = ready.take() {
                // The old process stops accepting when it reads this.
                if let Err(e) = crate::restart::report_ready(ready) {
                    tracing::warn!("cannot tell the old process this one serves: {e}");
                }
            }
            if let Some(path) = &lifecycle.pid_file {
                if let Err(e) = crate::pid_file::write(path) {
                    tracing::error!("cannot write the pid file {}: {e}", path.display());
                }
            }
            if let Some(systemd) = &lifecycle.systemd {
                systemd.notify("READY=1");
            }
            if options.wake_at_start {
                for waker in group.wakers.get().into_iter().flatten() {
                    let _ = waker.wake();
                }
            }
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
    let handed_over = watched?;
    if let (Some(path), false) = (&lifecycle.pid_file, handed_over) {
        crate::pid_file::remove_if_ours(path);
    }
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
    Ok(ServeReport {
        exit,
        stats: total,
        elapsed: started.elapsed(),
        extra: extras,
        transport: config.transport.as_ref().and_then(|t| t.counts()),
        preamble: config.transport.as_ref().and_then(|t| t.preamble_counts()),
        handed_over,
    })
}

mod sockets;

use sockets::{arrange_inherited, take_metrics, Sockets};

pub use crate::summary::{preamble_summary, summary, transport_summary};
