//! Running one of the servers: listen, announce, run until shut down, report.

use std::io::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use reactor::signal::SignalSet;
use reactor::{Config, Exit, Handler, Reactor, Stats};

use crate::serving::Serving;
use crate::stats_line::{human_bytes, human_count, StatsTicker};

/// What `tenk serve` was asked to do.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on (IPv4 or IPv6).
    pub bind: IpAddr,
    /// Port; 0 lets the kernel pick one (printed in the banner).
    pub port: u16,
    /// `listen(2)` backlog.
    pub backlog: i32,
    /// The reactor's settings.
    pub config: Config,
    /// Print a statistics line every second.
    pub stats: bool,
    /// Signals to watch for shutdown (blocked by the caller beforehand);
    /// `None` runs until the reactor is stopped some other way.
    pub signals: Option<SignalSet>,
    /// With several threads: pin each to its own core.
    pub pin: bool,
}

/// How a server run ended.
#[derive(Clone, Copy, Debug)]
pub struct ServeReport<H = ()> {
    /// Why the reactor stopped.
    pub exit: Exit,
    /// Its counters at the end.
    pub stats: Stats,
    /// How long it ran.
    pub elapsed: Duration,
    /// The server's own final figures (e.g. HTTP counters).
    pub extra: H,
}

/// Runs server `name` (as the banner and summary call it) with `handler`
/// until a watched signal shuts it down; `extra` reads the handler's own
/// figures at the end.
///
/// The banner line goes to stdout as soon as the listener is bound, so a
/// script (or a test) that asked for port 0 can read the port from it.
///
/// # Errors
/// Failing to create the reactor, bind the listener or watch the signals,
/// and fatal `epoll_wait` errors.
pub fn serve<H: Handler, X>(
    name: &str,
    options: ServeOptions,
    handler: H,
    extra: impl FnOnce(&mut H) -> X,
) -> io::Result<ServeReport<X>> {
    let started = Instant::now();
    let serving = Serving::new(handler, None);
    let mut reactor = Reactor::new(options.config.clone(), serving)?;
    let addr = SocketAddr::new(options.bind, options.port);
    let listener = reactor
        .io()
        .listen(addr, options.backlog)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let bound = reactor.io().local_addr(listener)?;
    if let Some(signals) = &options.signals {
        reactor.io().watch_signals(signals)?;
    }
    let config = &options.config;
    println!(
        "tenk {name} listening on {bound} (trigger {}, max-events {}, budget {}, max-conns {}, backlog {})",
        config.trigger.name(),
        config.max_events,
        config.read_budget,
        config.max_conns,
        options.backlog,
    );
    io::stdout().flush()?;
    if options.stats {
        let ticker = StatsTicker::start(reactor.io(), Duration::from_secs(1));
        reactor.handler().ticker = Some(ticker);
    }
    let exit = reactor.run()?;
    let stats = reactor.io().stats();
    let report = ServeReport {
        exit,
        stats,
        elapsed: started.elapsed(),
        extra: extra(&mut reactor.handler().inner),
    };
    println!("{}", summary(name, &report));
    io::stdout().flush()?;
    Ok(report)
}

/// The final line: how the run ended and its totals.
pub fn summary<X>(name: &str, report: &ServeReport<X>) -> String {
    let s = &report.stats;
    let how = match report.exit {
        Exit::Graceful => "shut down gracefully",
        Exit::Forced => "stopped at once (second signal)",
        Exit::Stopped => "stopped",
    };
    let c = &s.closes;
    format!(
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
    )
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
            extra: (),
        };
        let line = summary("echo", &report);
        assert!(line.contains("second signal"), "{line}");
        assert!(line.contains("after 1.5s"), "{line}");
        assert!(line.contains("3 accepted"), "{line}");
        assert!(line.contains("2.0 kB in"), "{line}");
    }
}
