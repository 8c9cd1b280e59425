//! Running one of the servers on 1..N reactor threads: listen, announce,
//! run until shut down, report. The one entry point is [`serve`]; what it
//! has to say while running goes to the caller as [`Notice`]s and what it
//! found at the end comes back as a [`ServeReport`], so only the binary
//! decides what reaches the terminal.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use reactor::signal::SignalSet;
use reactor::{
    CloseCounts, Config, Exit, Handler, Io, PreambleCounts, Stats, TransportCounts, Waker,
};

use crate::group::Group;
use crate::metrics::MetricsListener;
use crate::restart::RestartPlan;
use crate::serving::Serving;
use crate::stats_line::{human_bytes, human_count};
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

/// The listening sockets of a run: each part's (a worker's, or the
/// acceptor thread's under `dispatch`), and a duplicate of every distinct
/// socket for a restart to hand over.
struct Sockets {
    bound: SocketAddr,
    parts: Vec<Vec<OwnedFd>>,
    handover: Vec<OwnedFd>,
    /// The strategy that applies (an inherited socket may rule one out).
    accept: AcceptStrategy,
    origin: Option<String>,
}

/// Shares inherited sockets between the parts. `reuseport` needs a socket
/// per worker bound with `SO_REUSEPORT`: sockets from a restart are (one
/// per worker, in order); a socket systemd passes is only with
/// `ReusePort=yes`, and then each worker beyond the sockets passed binds
/// one more on the same address (handed over too at the next restart).
/// Otherwise the workers share the sockets with `EPOLLEXCLUSIVE`, as
/// `--accept exclusive` (said in the banner); `exclusive` and `dispatch`
/// apply to any socket.
fn arrange_inherited(
    fds: Vec<OwnedFd>,
    workers: usize,
    accept: AcceptStrategy,
    backlog: i32,
    origin: String,
) -> io::Result<Sockets> {
    let first = fds
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no inherited socket"))?;
    let bound = TcpListener::from(first.try_clone()?).local_addr()?;
    let mut origin = origin;
    let mut accept = accept;
    let mut handover: Vec<OwnedFd> = fds
        .iter()
        .map(OwnedFd::try_clone)
        .collect::<io::Result<_>>()?;
    let mut parts: Vec<Vec<OwnedFd>> = (0..workers).map(|_| Vec::new()).collect();
    match accept {
        AcceptStrategy::Dispatch(_) => parts = vec![fds],
        AcceptStrategy::ReusePort if workers > 1 && fds.iter().all(Io::is_reuseport) => {
            let count = fds.len();
            for (i, fd) in fds.into_iter().enumerate() {
                parts[i % workers].push(fd);
            }
            for part in parts.iter_mut().skip(count) {
                let fd = Io::bind_reuseport(bound, backlog)?;
                handover.push(fd.try_clone()?);
                part.push(fd);
            }
        }
        _ => {
            if workers > 1 && accept == AcceptStrategy::ReusePort {
                origin.push_str(
                    ", accept exclusive instead of reuseport: the sockets were not bound with SO_REUSEPORT",
                );
                accept = AcceptStrategy::Exclusive;
            }
            for part in &mut parts {
                for fd in &fds {
                    part.push(fd.try_clone()?);
                }
            }
        }
    }
    Ok(Sockets {
        bound,
        parts,
        handover,
        accept,
        origin: Some(origin),
    })
}

/// The metrics listener out of its `Arc`: the one descriptor, or a
/// duplicate while a clone of the options still holds it.
fn take_metrics(shared: Arc<MetricsListener>) -> io::Result<MetricsListener> {
    Arc::try_unwrap(shared).or_else(|shared| {
        Ok(MetricsListener {
            fd: shared.fd.try_clone()?,
            addr: shared.addr,
            render: shared.render.clone(),
        })
    })
}

/// The final line: how the run ended and its totals; with a preamble
/// (PROXY protocol), a line of its headers ([`preamble_summary`]); with a
/// transport that counts its handshakes, a line of those
/// ([`transport_summary`]).
pub fn summary<X>(name: &str, report: &ServeReport<X>) -> String {
    let s = &report.stats;
    let how = match report.exit {
        Exit::Graceful if report.handed_over => "handed over to a new process and drained",
        Exit::Graceful => "shut down gracefully",
        Exit::Forced => "stopped at once (second signal)",
        Exit::Stopped => "stopped",
        // Servers run without a deadline (`Reactor::run`).
        Exit::Deadline => "stopped at its deadline",
    };
    let c = &s.closes;
    let mut line = format!(
        "tenk {name} {how} after {:.1}s: {} accepted, {} rejected (max-conns), {} closed (client {}, idle timeout {}, write timeout {}, buffer limit {}, error {}, local {}), {} in, {} out, {} wake-ups, {} accept pauses; syscalls: {} epoll_wait, {} epoll_ctl, {} read, {} write",
        report.elapsed.as_secs_f64(),
        s.accepted,
        s.rejected,
        s.closed,
        c.client,
        c.idle_timeout,
        c.write_timeout,
        c.buffer_limit,
        c.error,
        c.local,
        human_bytes(s.bytes_in as f64),
        human_bytes(s.bytes_out as f64),
        human_count(s.epoll_waits as f64),
        s.accept_pauses,
        s.epoll_waits,
        s.epoll_ctls,
        s.reads,
        s.writes,
    );
    if let Some(counts) = &report.preamble {
        // With TLS behind, its line counts the timeouts (one deadline
        // covers the header and the handshake).
        let timeouts = report
            .transport
            .is_none()
            .then_some(s.closes.handshake_timeout);
        line.push('\n');
        line.push_str(&preamble_summary(name, counts, timeouts));
    }
    if let Some(counts) = &report.transport {
        line.push('\n');
        line.push_str(&transport_summary(name, counts, &s.closes));
    }
    line
}

/// `tenk http tls: 120 handshakes (full 40, resumed 80), 2 failed, 1 timed
/// out; versions 1.2: 0, 1.3: 120`. Failures are the transport's count
/// (handshakes it refused), not the reactor's `closes.handshake_failed`,
/// which also counts a corrupt record long after the handshake; timeouts
/// only the reactor sees.
pub fn transport_summary(name: &str, t: &TransportCounts, closes: &CloseCounts) -> String {
    let versions: Vec<String> = t
        .versions
        .iter()
        .map(|(v, n)| format!("{v}: {n}"))
        .collect();
    format!(
        "tenk {name} {}: {} handshakes (full {}, resumed {}), {} failed, {} timed out; versions {}",
        t.protocol,
        t.completed(),
        t.full,
        t.resumed,
        t.failed,
        closes.handshake_timeout,
        versions.join(", "),
    )
}

/// `tenk http proxy protocol: 120 headers (client 117, socket 3), 2
/// refused, 1 timed out`: headers read, by the address they left the
/// connection with (the client's they named, or the socket's), connections
/// refused for a header that was not one, and, when given (`timeouts`: the
/// reactor's count, when no TLS handshake shares the deadline), those
/// closed before their header came.
pub fn preamble_summary(name: &str, p: &PreambleCounts, timeouts: Option<u64>) -> String {
    let mut line = format!(
        "tenk {name} {}: {} headers (client {}, socket {}), {} refused",
        p.protocol.replace('_', " "),
        p.read(),
        p.with_client,
        p.without_client,
        p.refused,
    );
    if let Some(timeouts) = timeouts {
        line.push_str(&format!(", {timeouts} timed out"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_the_exit_and_totals() {
        let report = ServeReport {
            exit: Exit::Forced,
            stats: Stats {
                accepted: 3,
                closed: 3,
                bytes_in: 2_000,
                bytes_out: 2_000,
                ..Stats::default()
            },
            elapsed: Duration::from_millis(1500),
            extra: Vec::<()>::new(),
            transport: None,
            preamble: None,
            handed_over: false,
        };
        let line = summary("echo", &report);
        // Without a transport: one line, no handshakes.
        assert!(
            !line.contains('\n') && !line.contains("handshake"),
            "{line}"
        );
        assert!(line.contains("second signal"), "{line}");
        assert!(line.contains("after 1.5s"), "{line}");
        assert!(line.contains("3 accepted"), "{line}");
        assert!(line.contains("2.0 kB in"), "{line}");
    }

    #[test]
    fn summary_adds_a_preamble_line_before_the_transport_line() {
        let mut stats = Stats::default();
        stats.closes.handshake_timeout = 4;
        let proxy = PreambleCounts {
            protocol: "proxy_protocol",
            with_client: 117,
            without_client: 3,
            refused: 2,
        };
        let mut report = ServeReport {
            exit: Exit::Graceful,
            stats,
            elapsed: Duration::from_secs(1),
            extra: Vec::<()>::new(),
            transport: None,
            preamble: Some(proxy),
            handed_over: false,
        };
        let text = summary("echo", &report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1..],
            ["tenk echo proxy protocol: 120 headers (client 117, socket 3), 2 refused, 4 timed out"]
        );
        // With TLS behind, the TLS line counts the timeouts of both.
        report.transport = Some(TransportCounts {
            protocol: "tls",
            ..TransportCounts::default()
        });
        let text = summary("echo", &report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[1],
            "tenk echo proxy protocol: 120 headers (client 117, socket 3), 2 refused"
        );
        assert!(lines[2].starts_with("tenk echo tls: "), "{text}");
        assert!(lines[2].contains("4 timed out"), "{text}");
    }

    #[test]
    fn summary_adds_a_transport_line_with_its_handshakes() {
        let mut stats = Stats::default();
        stats.closes.handshake_timeout = 1;
        let report = ServeReport {
            exit: Exit::Graceful,
            stats,
            elapsed: Duration::from_secs(1),
            extra: Vec::<()>::new(),
            transport: Some(TransportCounts {
                protocol: "tls",
                full: 40,
                resumed: 80,
                failed: 2,
                versions: vec![("1.2", 20), ("1.3", 100)],
            }),
            preamble: None,
            handed_over: false,
        };
        let text = summary("http", &report);
        let (first, second) = text.split_once('\n').expect("two lines");
        assert!(
            first.starts_with("tenk http shut down gracefully"),
            "{first}"
        );
        assert_eq!(
            second,
            "tenk http tls: 120 handshakes (full 40, resumed 80), 2 failed, 1 timed out; versions 1.2: 20, 1.3: 100"
        );
    }
}
