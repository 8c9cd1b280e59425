//! The options every `tenk serve` runner shares: TLS, lifecycle (restarts,
//! systemd, pid file), limits, stats notices and the metrics listener.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use reactor::signal;
use reactor::sys::rlimit;
use reactor::Config;
use server::serve::Lifecycle;
use server::{Notice, Notify, ServeOptions};
use tls::TlsAcceptor;

use crate::cli::ServeArgs;
use crate::usage_error;

/// The server's TLS acceptor and handshake timeout, loaded before
/// anything listens; a bad file is a usage error.
pub(crate) fn serve_tls(
    args: &ServeArgs,
    alpn: &[&[u8]],
) -> Result<Option<(TlsAcceptor, Duration)>, ExitCode> {
    let config = match args.tls.server_config(alpn) {
        Ok(Some(config)) => config,
        Ok(None) => return Ok(None),
        Err(e) => return Err(usage_error(&e)),
    };
    match TlsAcceptor::new(config) {
        Ok(acceptor) => Ok(Some((acceptor, args.tls.tls_handshake_timeout))),
        Err(e) => Err(usage_error(&format!("--tls-cert: {e}"))),
    }
}

/// Serves every connection over TLS: one acceptor (one rustls config,
/// session cache and ticket keys) shared by every worker.
pub(crate) fn with_tls(options: &mut ServeOptions, tls: Option<(TlsAcceptor, Duration)>) {
    if let Some((acceptor, handshake_timeout)) = tls {
        options.config.transport = Some(Arc::new(acceptor));
        options.config.handshake_timeout = handshake_timeout;
    }
}

/// Prints what a running server has to say on stdout, each line at once
/// (tests and scripts wait for the banner and the hook's lines).
pub(crate) fn print_notices() -> Notify {
    Arc::new(|notice| match notice {
        Notice::Listening(listening) => outln!("{}", listening.banner()),
        Notice::Stats(line) | Notice::Hook(line) | Notice::Restart(line) => outln!("{line}"),
    })
}

/// Where the sockets come from (a restart's hand-over, socket activation,
/// or bound here) and what the process tells of its life: restarts,
/// systemd, the pid file (docs/operations.md).
fn lifecycle(args: &ServeArgs) -> Result<Lifecycle, ExitCode> {
    let mut lifecycle = Lifecycle::default();
    if let Some(path) = &args.pid_file {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(usage_error(&format!(
                "--pid-file {}: {} is not a directory",
                path.display(),
                dir.display()
            )));
        }
        lifecycle.pid_file = Some(path.clone());
    }
    // A restart's new process: it must serve on the old one's sockets or
    // fail (and the old one serves on), never bind sockets of its own.
    match server::restart::inherited_from_env() {
        Ok(Some(inherited)) => {
            let origin = "sockets handed over by a graceful restart".to_string();
            lifecycle.inherited = Some((inherited.listeners, origin));
            lifecycle.metrics = inherited.metrics;
            lifecycle.ready = inherited.ready;
        }
        Ok(None) => match server::systemd::activation_from_env() {
            Ok(Some(mut activation)) => {
                lifecycle.metrics = activation.take_named(server::restart::METRICS_ROLE);
                let n = activation.listeners.len();
                let mut origin = format!("socket activation: {n} socket(s)");
                if !activation.names.is_empty() {
                    origin.push_str(&format!(" ({})", activation.names.join(", ")));
                }
                origin.push_str(", --bind/--port ignored");
                lifecycle.inherited = Some((activation.listeners, origin));
            }
            Ok(None) => {}
            Err(e) => {
                errln!("tenk: error: socket activation: {e}");
                return Err(ExitCode::FAILURE);
            }
        },
        Err(e) => {
            errln!("tenk: error: restart hand-over: {e}");
            return Err(ExitCode::FAILURE);
        }
    }
    match server::restart::RestartPlan::of_this_process(args.restart_timeout) {
        Ok(plan) => lifecycle.restart = Some(plan),
        Err(e) => tracing::warn!("cannot resolve this executable ({e}): SIGHUP will be ignored"),
    }
    match server::systemd::Notifier::from_env() {
        Ok(notifier) => lifecycle.systemd = notifier.map(Arc::new),
        Err(e) => tracing::warn!("NOTIFY_SOCKET: {e}; not notifying systemd"),
    }
    Ok(lifecycle)
}

pub(crate) fn serve_options(
    args: &ServeArgs,
    signals: signal::SignalSet,
) -> Result<ServeOptions, ExitCode> {
    let lifecycle = lifecycle(args)?;
    let nofile = rlimit::raise_nofile_limit();
    let default_max = nofile.saturating_sub(crate::FD_RESERVE).max(1);
    let max_conns = args.max_conns.unwrap_or(default_max);
    if max_conns > default_max {
        tracing::warn!(
            "--max-conns {max_conns} exceeds what RLIMIT_NOFILE ({nofile}) allows; \
             accepts will pause on EMFILE and retry"
        );
    }
    let config = Config {
        trigger: args.trigger.into(),
        max_events: args.max_events as usize,
        read_budget: args.budget as usize,
        max_conns: usize::try_from(max_conns).unwrap_or(usize::MAX),
        drain_timeout: args.drain_timeout,
        idle_timeout: args.idle_timeout,
        write_timeout: args.write_timeout,
        output_hard_limit: args.output_limit_hard,
        output_soft_limit: args.output_limit_soft,
        output_soft_time: args.output_limit_soft_time,
        keepalive: args.keepalive(),
        ..Config::default()
    };
    Ok(ServeOptions {
        bind: args.bind,
        port: args.port,
        backlog: args.backlog,
        config,
        stats: args.stats,
        signals: Some(signals),
        threads: args.threads,
        accept: args.accept_strategy(),
        pin: args.pin,
        notify: print_notices(),
        wake_at_start: false,
        metrics: None,
        lifecycle,
    })
}

/// `--metrics ADDR:PORT`: binds the metrics listener now, so that an
/// address that cannot be bound is a usage error before anything starts,
/// and has the server serve `render`'s text on it.
pub(crate) fn with_metrics(
    options: &mut ServeOptions,
    args: &ServeArgs,
    render: impl FnOnce() -> server::metrics::Render,
) -> Result<(), ExitCode> {
    // Inherited (a restart's hand-over, or systemd's socket named
    // `metrics`): served on, whatever `--metrics` says, as `--bind` and
    // `--port` are ignored for inherited serving sockets.
    let bound = match (options.lifecycle.metrics.take(), args.metrics) {
        (Some(fd), _) => fd_and_addr(fd).map_err(|e| {
            errln!("tenk: error: the inherited metrics listener: {e}");
            ExitCode::FAILURE
        })?,
        (None, None) => return Ok(()),
        // A plain socket, handed over at a restart like the serving ones
        // (not bound beside them with SO_REUSEPORT, which would let the
        // old and new processes answer scrapes at once, and let another
        // program with SO_REUSEPORT bind it too).
        (None, Some(addr)) => reactor::Io::bind(addr, args.backlog)
            .and_then(fd_and_addr)
            .map_err(|e| usage_error(&format!("--metrics {addr}: {e}")))?,
    };
    let (fd, addr) = bound;
    options.metrics = Some(Arc::new(server::metrics::MetricsListener {
        fd,
        addr,
        render: render(),
    }));
    Ok(())
}

/// A listening socket and the address it listens on.
fn fd_and_addr(
    fd: std::os::fd::OwnedFd,
) -> std::io::Result<(std::os::fd::OwnedFd, std::net::SocketAddr)> {
    let listener = std::net::TcpListener::from(fd);
    let local = listener.local_addr()?;
    Ok((std::os::fd::OwnedFd::from(listener), local))
}
