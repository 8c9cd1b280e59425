//! Running a load: one reactor per thread, a [`Progress`] each second for
//! the caller to show, and the merged report at the end.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use reactor::signal::SignalSet;
use reactor::{Config, Reactor, Waker};

use crate::client::chat::ChatLoadClient;
use crate::client::echo::EchoClient;
use crate::client::http::HttpClient;
use crate::client::Client;
use crate::netstat::ListenCounters;
use crate::report::{Report, TlsReport};
use crate::spec::{LoadSpec, Workload};
use crate::totals::Totals;
use crate::worker::{Live, Shared, Worker};

/// Where a run stands, once a second while it runs (with
/// [`LoadSpec::progress`]): the library reports it, the caller decides
/// whether and where to show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Since the threads started.
    pub elapsed: Duration,
    /// Replies (chat: deliveries) per second since the last progress.
    pub rate: f64,
    /// What `rate` counts: `req` or `deliveries`.
    pub unit: &'static str,
    /// Connections open now, of `connections` asked for.
    pub open: u64,
    pub connections: usize,
    /// Errors so far.
    pub errors: u64,
}

/// Runs `spec` to the end and reports. `signals`, if given (blocked by the
/// caller beforehand), end the run early on every thread. With
/// `spec.progress`, `on_progress` is called once a second.
///
/// # Errors
/// Failing to create a reactor (e.g. out of descriptors) or a thread, and
/// fatal `epoll_wait` errors.
pub fn run(
    spec: LoadSpec,
    signals: Option<SignalSet>,
    on_progress: impl FnMut(&Progress),
) -> io::Result<Report> {
    match spec.workload {
        Workload::Echo { .. } => run_with::<EchoClient>(spec, signals, on_progress),
        Workload::Http { .. } => run_with::<HttpClient>(spec, signals, on_progress),
        Workload::Chat { .. } => run_with::<ChatLoadClient>(spec, signals, on_progress),
    }
}

/// [`run`], every connection speaking `C`.
fn run_with<C: Client>(
    spec: LoadSpec,
    signals: Option<SignalSet>,
    mut on_progress: impl FnMut(&Progress),
) -> io::Result<Report> {
    let threads = spec.threads;
    let progress = spec.progress;
    let shared = Arc::new(Shared::new(spec));

    // Each thread makes its own reactor (a reactor stays on the thread that
    // made it) and hands back its waker; no thread starts connecting until
    // every waker is known, so the first to finish connecting can wake the
    // others.
    let config = Config {
        // The cap is for inbound connections; this tool makes none.
        max_conns: usize::MAX,
        // Counted from the connect's start, as --connect-timeout is.
        handshake_timeout: shared.spec.connect_timeout,
        ..Config::default()
    };
    let barrier = Arc::new(Barrier::new(threads + 1));
    let (waker_tx, waker_rx) = mpsc::channel::<(usize, io::Result<Waker>)>();
    let (done_tx, done_rx) = mpsc::channel::<io::Result<Totals>>();
    let mut handles = Vec::with_capacity(threads);
    for id in 0..threads {
        let done = done_tx.clone();
        let wakers = waker_tx.clone();
        let barrier = barrier.clone();
        let shared = shared.clone();
        let config = config.clone();
        let signals = if id == 0 { signals } else { None };
        let handle = thread::Builder::new()
            .name(format!("tenk-load-{id}"))
            .spawn(move || {
                let made = Reactor::new(config, Worker::<C>::new(id, shared)).and_then(|mut r| {
                    if let Some(signals) = &signals {
                        r.io().watch_signals(signals)?;
                    }
                    Ok(r)
                });
                let mut reactor = match made {
                    Ok(mut reactor) => {
                        let _ = wakers.send((id, Ok(reactor.io().waker())));
                        reactor
                    }
                    Err(e) => {
                        let _ = wakers.send((id, Err(e)));
                        barrier.wait();
                        return;
                    }
                };
                barrier.wait();
                let (worker, io) = reactor.parts();
                worker.begin(io);
                let result = reactor.run().map(|_| reactor.into_handler().into_result());
                let _ = done.send(result);
            })?;
        handles.push(handle);
    }
    drop(done_tx);
    drop(waker_tx);
    let mut wakers: Vec<Option<Waker>> = (0..threads).map(|_| None).collect();
    let mut failure = None;
    for (id, waker) in waker_rx.iter().take(threads) {
        match waker {
            Ok(waker) => wakers[id] = Some(waker),
            Err(e) => failure = Some(e),
        }
    }
    let _ = shared.wakers.set(wakers.into_iter().flatten().collect());
    if let Some(e) = &failure {
        // Threads that made a reactor stop at once: the run cannot be
        // what was asked.
        shared.interrupted.store(true, Ordering::Release);
        tracing::error!("cannot start a load thread: {e}");
    }
    let listen_before = shared
        .spec
        .targets_loopback()
        .then(ListenCounters::read)
        .flatten();
    barrier.wait();
    if let Some(e) = failure {
        for handle in handles {
            let _ = handle.join();
        }
        return Err(e);
    }

    let started = Instant::now();
    let mut results = Vec::with_capacity(threads);
    let mut last = (Instant::now(), 0u64);
    while results.len() < threads {
        match done_rx.recv_timeout(Duration::from_secs(1)) {
            Ok(result) => results.push(result),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if progress {
                    let (now, requests, report) = progress_since(&shared, started, last);
                    on_progress(&report);
                    last = (now, requests);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for handle in handles {
        if handle.join().is_err() {
            return Err(io::Error::other("a load thread panicked"));
        }
    }

    let listen = listen_before
        .zip(ListenCounters::read())
        .map(|(before, after)| after.since(before));
    let mut totals = Totals::new();
    for result in results {
        totals.merge(&result?);
    }
    let mut report = Report::new(&shared.spec, &totals);
    if shared.spec.tls.is_some() {
        report.tls = Some(TlsReport::new(&totals.handshakes, &shared.tls));
    }
    report.accept_queue_overflows = listen.map(|l| l.overflows);
    report.listen_drops = listen.map(|l| l.drops);
    report.interrupted = shared.interrupted.load(Ordering::Acquire);
    Ok(report)
}

/// The run's [`Progress`] since `last` (when, and the replies counted
/// then), with the time and count to pass as `last` next.
fn progress_since(
    shared: &Shared,
    started: Instant,
    last: (Instant, u64),
) -> (Instant, u64, Progress) {
    let now = Instant::now();
    let sum = |counter: fn(&Live) -> u64| -> u64 { shared.live.iter().map(counter).sum() };
    let requests = sum(|l| l.requests.load(Ordering::Relaxed));
    let progress = Progress {
        elapsed: now - started,
        rate: (requests - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9),
        unit: match shared.spec.workload {
            Workload::Chat { .. } => "deliveries",
            _ => "req",
        },
        open: sum(|l| l.open.load(Ordering::Relaxed)),
        connections: shared.spec.connections,
        errors: sum(|l| l.errors.load(Ordering::Relaxed)),
    };
    (now, requests, progress)
}
