//! `tenk`: a thin CLI that wires the reactor and the servers together.

// First: its macros are in scope in the modules after it.
#[macro_use]
mod out;

mod cli;
mod generate;
mod load_cli;
mod logs;
mod proxy_protocol_cli;
mod tls_cli;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use http::server::HttpStats;
use http::static_files::StaticFiles;
use http::HttpConfig;
use load::spec::TlsClient;
use load::Workload;
use reactor::signal::{self, SIGHUP, SIGINT, SIGTERM};
use reactor::sys::rlimit;
use reactor::{Config, Exit};
use server::chat::Chat;
use server::echo::Echo;
use server::group::Group;
use server::hello;
use server::serve::summary;
use server::serve::Lifecycle;
use server::{Notice, Notify, ServeOptions};
use tls::TlsAcceptor;

use crate::cli::{Cli, Command, Serve, ServeArgs};
use crate::load_cli::Load;

/// Descriptors kept back from `--max-conns`'s default for listeners, the
/// reactor's own fds, stdio and logs.
const FD_RESERVE: u64 = 32;

/// Exit status after a forced stop (a second Ctrl-C): 128 + SIGINT, as a
/// shell reports a process killed by it.
const EXIT_FORCED: u8 = 130;

fn main() -> ExitCode {
    // Signals must be blocked before any thread exists, so every thread
    // inherits the mask and the signalfd is the only way they arrive.
    // SIGHUP restarts a server gracefully (docs/operations.md); it stops
    // a load run like the others.
    let signals = match signal::block(&[SIGINT, SIGTERM, SIGHUP]) {
        Ok(set) => set,
        Err(e) => {
            errln!("tenk: cannot block SIGINT/SIGTERM/SIGHUP: {e}");
            return ExitCode::FAILURE;
        }
    };
    signal::ignore_sigpipe();
    let cli = Cli::parse();
    logs::init(&cli.log);
    match run(cli, signals) {
        Ok(code) => code,
        Err(e) => {
            errln!("tenk: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, signals: signal::SignalSet) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Completions { shell } => {
            generate::completions(shell);
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { command } => Ok(match generate::man(&command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => usage_error(&e),
        }),
        Command::Load(command) => run_load(command, signals),
        Command::Serve(Serve::Echo(args)) => {
            let tls = match serve_tls(&args, &[]) {
                Ok(tls) => tls,
                Err(code) => return Ok(code),
            };
            let mut options = match serve_options(&args, signals) {
                Ok(options) => options,
                Err(code) => return Ok(code),
            };
            with_tls(&mut options, tls);
            args.proxy.apply(&mut options);
            if let Err(code) = with_metrics(&mut options, &args, server::metrics::echo) {
                return Ok(code);
            }
            let report = server::serve("echo", options, |_, _| Echo, |_| ())
                .context("echo server failed")?;
            outln!("{}", summary("echo", &report));
            Ok(exit_code(report.exit))
        }
        Command::Serve(Serve::Chat(args)) => run_chat(&args, signals),
        Command::Serve(Serve::Http(args)) => run_http(&args, signals),
        Command::Serve(Serve::Proxy(args)) => run_proxy(&args, signals),
    }
}

fn run_proxy(args: &crate::cli::ProxyArgs, signals: signal::SignalSet) -> anyhow::Result<ExitCode> {
    use server::proxy::{BalanceMode, HealthPolicy, Proxy, ProxyBoard, ProxyConfig, UpstreamSpec};
    let mut upstreams = Vec::with_capacity(args.upstreams.len());
    for text in &args.upstreams {
        match UpstreamSpec::parse(text) {
            Ok(spec) => upstreams.push(spec),
            Err(e) => return Ok(usage_error(&format!("--upstream {e}"))),
        }
    }
    if let Some(path) = &args.health_check {
        if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Ok(usage_error(&format!(
                "--health-check {path:?}: a path starting with / and without spaces"
            )));
        }
    }
    let tls = match serve_tls(&args.serve, &[b"http/1.1"]) {
        Ok(tls) => tls,
        Err(code) => return Ok(code),
    };
    let https = tls.is_some();
    let mut options = match serve_options(&args.serve, signals) {
        Ok(options) => options,
        Err(code) => return Ok(code),
    };
    with_tls(&mut options, tls);
    // A PROXY protocol header's source becomes the client's address, and
    // so the X-Forwarded-For the upstreams see.
    args.serve.proxy.apply(&mut options);
    options.wake_at_start = true;
    let mut config = ProxyConfig::new(upstreams);
    config.balance = match args.upstream_balance {
        crate::cli::BalanceArg::RoundRobin => BalanceMode::RoundRobin,
        crate::cli::BalanceArg::LeastConnections => BalanceMode::LeastConnections,
    };
    config.keepalive = args.upstream_keepalive;
    config.connect_timeout = args.upstream_connect_timeout;
    config.upstream_timeout = args.upstream_timeout;
    config.health = HealthPolicy {
        max_fails: args.upstream_max_fails,
        fail_timeout: args.upstream_fail_timeout,
    };
    config.health_check = args.health_check.clone();
    config.health_interval = args.health_interval;
    config.proto = if https { "https" } else { "http" };
    config.stats = args.serve.stats;
    let config = Arc::new(config);
    // Each worker publishes its figures here once a second, where the
    // --metrics listener reads them.
    let board = ProxyBoard::new(args.serve.threads);
    if let Err(code) = with_metrics(&mut options, &args.serve, || {
        server::metrics::proxy(board.clone())
    }) {
        return Ok(code);
    }
    let notify = options.notify.clone();
    let make =
        |id, _: &Arc<Group>| Proxy::new(config.clone(), id, board.clone(), Some(notify.clone()));
    let report =
        server::serve("proxy", options, make, |p| p.stats()).context("proxy server failed")?;
    outln!("{}", summary("proxy", &report));
    let mut total = server::proxy::ProxyStats::default();
    for worker in &report.extra {
        total.add(worker);
    }
    outln!("tenk {}", total.compact());
    Ok(exit_code(report.exit))
}

fn run_http(args: &crate::cli::HttpArgs, signals: signal::SignalSet) -> anyhow::Result<ExitCode> {
    let files = match args.root.as_deref().map(open_root).transpose() {
        Ok(files) => files,
        Err(message) => return Ok(usage_error(&message)),
    };
    let tls = match serve_tls(&args.serve, &[b"http/1.1"]) {
        Ok(tls) => tls,
        Err(code) => return Ok(code),
    };
    let mut options = match serve_options(&args.serve, signals) {
        Ok(options) => options,
        Err(code) => return Ok(code),
    };
    with_tls(&mut options, tls);
    args.serve.proxy.apply(&mut options);
    let config = HttpConfig {
        limits: http::Limits {
            max_body: args.max_body,
            ..http::Limits::default()
        },
        header_timeout: args.header_timeout,
        access_log: args.access_log,
    };
    options.config.max_input = options.config.max_input.max(config.reactor_max_input());
    // With threads, every worker's /metrics shows all workers: they share
    // the group's reactor figures and this board of HTTP figures.
    let board = Arc::new(http::metrics::HttpBoard::new(args.serve.threads));
    let routes = Arc::new(http::route_stats::RouteStats::new());
    if let Err(code) = with_metrics(&mut options, &args.serve, || {
        server::metrics::http(board.clone(), routes.clone())
    }) {
        return Ok(code);
    }
    // Alone, a worker shares its HTTP counters only for --metrics to read.
    let share_alone = args.serve.threads <= 1 && options.metrics.is_some();
    let make = |id, group: &Arc<Group>| {
        let mut server = hello::in_group(
            files.clone(),
            config.clone(),
            id,
            group,
            &board,
            &routes,
            args.request_id,
        );
        if share_alone {
            server.share_stats(board.clone(), id);
        }
        server
    };
    let report =
        server::serve("http", options, make, |h| h.stats()).context("http server failed")?;
    outln!("{}", summary("http", &report));
    let mut s = HttpStats::default();
    for worker in &report.extra {
        s.add(worker);
    }
    outln!(
        "tenk http: {} responses (1xx {}, 2xx {}, 3xx {}, 4xx {}, 5xx {}), {} refused, {} header timeouts",
        s.total(),
        s.responses[1],
        s.responses[2],
        s.responses[3],
        s.responses[4],
        s.responses[5],
        s.refused,
        s.header_timeouts
    );
    Ok(exit_code(report.exit))
}

/// Opens `--root DIR` for serving: it must exist and be a directory.
fn open_root(root: &Path) -> Result<StaticFiles, String> {
    let shown = root.display();
    match std::fs::metadata(root) {
        Err(e) => return Err(format!("--root {shown}: {e}")),
        Ok(meta) if !meta.is_dir() => return Err(format!("--root {shown}: not a directory")),
        Ok(_) => {}
    }
    StaticFiles::open(root).map_err(|e| format!("--root {shown}: {e}"))
}

fn run_chat(args: &crate::cli::ChatArgs, signals: signal::SignalSet) -> anyhow::Result<ExitCode> {
    if let Err(why) = server::chat::command::valid_name(&args.room) {
        return Ok(usage_error(&format!("--room {:?}: {why}", args.room)));
    }
    let tls = match serve_tls(&args.serve, &[]) {
        Ok(tls) => tls,
        Err(code) => return Ok(code),
    };
    let mut options = match serve_options(&args.serve, signals) {
        Ok(options) => options,
        Err(code) => return Ok(code),
    };
    with_tls(&mut options, tls);
    args.serve.proxy.apply(&mut options);
    let config = server::chat::ChatConfig {
        max_line: args.max_line as usize,
        default_room: args.room.clone(),
    };
    options.config.max_input = options.config.max_input.max(config.reactor_max_input());
    let cluster = match chat_cluster(args) {
        Ok(cluster) => cluster.map(Arc::new),
        Err(e) => return Ok(usage_error(&e)),
    };
    if cluster.is_some() {
        // A message from Redis is a chat line in a frame: the frame must
        // fit in the input limit. The links connect at start.
        options.config.max_input = options
            .config
            .max_input
            .max(config.max_line + server::chat::cluster::FRAME_OVERHEAD);
        options.wake_at_start = true;
    }
    // One hub (nicks, rooms, mailboxes) shared by every worker.
    let hub = Arc::new(server::chat::hub::Hub::new(
        args.serve.threads.max(1),
        &config.default_room,
    ));
    let fanout = args
        .serve
        .metrics
        .is_some()
        .then(|| Arc::new(server::metrics::HistogramBoard::new(args.serve.threads)));
    // The Redis figures, published once a second by each worker.
    let redis_board = fanout
        .as_ref()
        .and(cluster.as_ref())
        .map(|_| server::chat::cluster::ClusterBoard::new(args.serve.threads));
    if let Some(fanout) = &fanout {
        let fanout = fanout.clone();
        let redis = redis_board.clone();
        if let Err(code) = with_metrics(&mut options, &args.serve, || {
            server::metrics::chat(fanout, redis)
        }) {
            return Ok(code);
        }
    }
    let notify = options.notify.clone();
    let make = |id, group: &Arc<Group>| {
        let chat = Chat::in_group(config.clone(), id, hub.clone(), group)
            .with_fanout_board(fanout.clone());
        match &cluster {
            Some(c) => chat.with_cluster(
                server::chat::cluster::Cluster::new(c.clone(), id, Some(notify.clone()))
                    .with_board(redis_board.clone()),
            ),
            None => chat,
        }
    };
    let report =
        server::serve("chat", options, make, |c| c.stats()).context("chat server failed")?;
    outln!("{}", summary("chat", &report));
    let mut s = server::chat::ChatStats::default();
    for worker in &report.extra {
        s.add(worker);
    }
    outln!(
        "tenk chat: {} messages, {} deliveries, {} private, {} lines too long, {} slow readers disconnected, {} dropped between workers",
        s.messages,
        s.deliveries,
        s.private_messages,
        s.lines_too_long,
        s.slow_disconnects,
        s.mail_dropped
    );
    if cluster.is_some() {
        outln!("tenk chat redis: {}", s.redis.describe());
    }
    Ok(exit_code(report.exit))
}

/// `--redis` and `--node`, checked and resolved; `None` without `--redis`.
fn chat_cluster(
    args: &crate::cli::ChatArgs,
) -> Result<Option<server::chat::cluster::ClusterConfig>, String> {
    use std::net::ToSocketAddrs as _;
    let Some(text) = &args.redis else {
        return Ok(None);
    };
    let url = server::chat::cluster::RedisUrl::parse(text).map_err(|e| format!("--redis: {e}"))?;
    // Resolved once, here: a node that cannot resolve its Redis at start
    // is misconfigured, not waiting for an outage to end.
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("--redis: cannot resolve {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("--redis: {} has no address", url.host))?;
    let node = match &args.node {
        Some(node) => node.clone(),
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default();
            let host = if host.is_empty() {
                "localhost".into()
            } else {
                host
            };
            format!("{host}:{}", std::process::id())
        }
    };
    let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-');
    if node.is_empty() || node.len() > 64 || !node.bytes().all(valid) {
        return Err(format!(
            "--node {node:?}: 1 to 64 of letters, digits and _.:- (it goes into every message)"
        ));
    }
    // A run of its own: a node restarted under the same name does not
    // inherit the memberships its previous run left in Redis.
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    Ok(Some(server::chat::cluster::ClusterConfig {
        url,
        addr,
        instance: format!("{node}/{started}"),
        node,
        ttl: args.redis_ttl.max(std::time::Duration::from_millis(300)),
        stats: args.serve.stats,
    }))
}

/// The server's TLS acceptor and handshake timeout, loaded before
/// anything listens; a bad file is a usage error.
fn serve_tls(
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
fn with_tls(options: &mut ServeOptions, tls: Option<(TlsAcceptor, Duration)>) {
    if let Some((acceptor, handshake_timeout)) = tls {
        options.config.transport = Some(Arc::new(acceptor));
        options.config.handshake_timeout = handshake_timeout;
    }
}

/// Prints what a running server has to say on stdout, each line at once
/// (tests and scripts wait for the banner and the hook's lines).
fn print_notices() -> Notify {
    Arc::new(|notice| match notice {
        Notice::Listening(listening) => outln!("{}", listening.banner()),
        Notice::Stats(line) | Notice::Hook(line) | Notice::Restart(line) => outln!("{line}"),
    })
}

fn exit_code(exit: Exit) -> ExitCode {
    match exit {
        Exit::Forced => ExitCode::from(EXIT_FORCED),
        Exit::Graceful | Exit::Stopped | Exit::Deadline => ExitCode::SUCCESS,
    }
}

/// Exit status for bad arguments, as clap uses.
const EXIT_USAGE: u8 = 2;

fn run_load(command: Load, signals: signal::SignalSet) -> anyhow::Result<ExitCode> {
    let (spec, common, max_rate, tls) = match &command {
        Load::Echo(args) => {
            let target = match load::target::resolve(&args.target) {
                Ok(addr) => addr,
                Err(e) => return Ok(usage_error(&e)),
            };
            let host = load::target::host(&args.target);
            let tls = match args.tls.client_config(args.tls_on, host, &[]) {
                Ok(tls) => (tls, args.tls.new_conn_per_request),
                Err(e) => return Ok(usage_error(&e)),
            };
            let workload = Workload::Echo {
                size: args.size as usize,
            };
            let label = format!("echo {}", args.target);
            let spec = args.common.spec(target, label, workload);
            (spec, &args.common, Some(&args.max_rate), tls)
        }
        Load::Http(args) => {
            let target = match load::target::http_target(&args.url) {
                Ok(target) => target,
                Err(e) => return Ok(usage_error(&e)),
            };
            let tls = match args
                .tls
                .client_config(target.tls, &target.name, &[b"http/1.1"])
            {
                Ok(tls) => (tls, args.tls.new_conn_per_request),
                Err(e) => return Ok(usage_error(&e)),
            };
            let request = http::client::build_request(
                &args.method,
                &target.host,
                &target.path,
                &args.headers,
                args.body.as_bytes(),
            );
            let workload = Workload::Http {
                request,
                method: args.method.clone(),
            };
            let label = format!("http {}", args.url);
            let spec = args.common.spec(target.addr, label, workload);
            (spec, &args.common, Some(&args.max_rate), tls)
        }
        Load::Chat(args) => {
            let mut nodes = Vec::new();
            for node in args.target.split(',') {
                match load::target::resolve(node.trim()) {
                    Ok(addr) => nodes.push(addr),
                    Err(e) => return Ok(usage_error(&e)),
                }
            }
            let (target, spread) = (nodes[0], nodes.split_off(1));
            let host = load::target::host(args.target.split(',').next().unwrap_or(""));
            let tls = match args.tls.client_config(args.tls_on, host, &[]) {
                Ok(tls) => (tls, args.tls.new_conn_per_request),
                Err(e) => return Ok(usage_error(&e)),
            };
            let workload = Workload::Chat {
                rooms: args.rooms,
                senders: args.senders,
            };
            let label = format!("chat {}", args.target);
            let mut spec = args.common.spec(target, label, workload);
            spec.spread = spread;
            spec.rate = Some(spec.rate.unwrap_or(load_cli::CHAT_DEFAULT_RATE));
            (spec, &args.common, None, tls)
        }
    };
    let mut spec = spec;
    let (tls, new_conn_per_request) = tls;
    spec.tls = tls.map(|(config, server_name)| TlsClient {
        config,
        server_name,
    });
    spec.new_conn_per_request = new_conn_per_request;
    if let Err(e) = spec.validate() {
        return Ok(usage_error(&e));
    }
    let search = match max_rate.map(|m| m.search(common)).transpose() {
        Ok(search) => search.flatten(),
        Err(e) => return Ok(usage_error(&e)),
    };
    rlimit::raise_nofile_limit();
    if let Some(search) = search {
        return run_find_max_rate(&spec, &search, common.json, signals);
    }
    let report = load::run(spec, Some(signals), print_progress).context("load run failed")?;
    if common.json {
        outln!("{}", report.to_json());
    } else {
        outln!("{}", report.to_human());
    }
    Ok(if report.faults() > common.max_errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `[  3s] 123456 req/s | 100/100 open | errors 0`, on stderr so that
/// stdout stays the report (and `--json` stays parseable).
fn print_progress(p: &load::Progress) {
    errln!(
        "[{:>4.0}s] {:.0} {}/s | {}/{} open | errors {}",
        p.elapsed.as_secs_f64(),
        p.rate,
        p.unit,
        p.open,
        p.connections,
        p.errors
    );
}

/// `--find-max-rate`: each step on stderr as it ends (with progress), the
/// table or JSON on stdout; exit 1 when no step passed.
fn run_find_max_rate(
    spec: &load::LoadSpec,
    search: &load::Search,
    json: bool,
    signals: signal::SignalSet,
) -> anyhow::Result<ExitCode> {
    let progress = spec.progress;
    let found = load::find_max_rate(
        spec,
        search,
        Some(signals),
        |step| {
            if progress {
                errln!(
                    "step {:.0} req/s: achieved {:.0}, p99 {:.0} µs, errors {} -> {}",
                    step.target_rate,
                    step.achieved_rate,
                    step.p99_us,
                    step.errors,
                    step.failed_on.unwrap_or("pass")
                );
            }
        },
        print_progress,
    )
    .context("load run failed")?;
    if json {
        outln!("{}", found.to_json());
    } else {
        outln!("{}", found.to_human());
    }
    Ok(if found.max_rate > 0.0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn usage_error(message: &str) -> ExitCode {
    errln!("tenk: error: {message}");
    ExitCode::from(EXIT_USAGE)
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
            lifecycle.ready = inherited.ready;
        }
        Ok(None) => match server::systemd::activation_from_env() {
            Ok(Some(activation)) => {
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

fn serve_options(args: &ServeArgs, signals: signal::SignalSet) -> Result<ServeOptions, ExitCode> {
    let lifecycle = lifecycle(args)?;
    let nofile = rlimit::raise_nofile_limit();
    let default_max = nofile.saturating_sub(FD_RESERVE).max(1);
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
fn with_metrics(
    options: &mut ServeOptions,
    args: &ServeArgs,
    render: impl FnOnce() -> server::metrics::Render,
) -> Result<(), ExitCode> {
    let Some(addr) = args.metrics else {
        return Ok(());
    };
    // SO_REUSEPORT: the new process of a graceful restart binds the same
    // address while the old one still holds it (its sockets are handed
    // over, this one is not); for the restart's overlap both answer
    // scrapes. A socket held by another program without SO_REUSEPORT
    // still makes this fail.
    let bound = reactor::Io::bind_reuseport(addr, args.backlog).and_then(|fd| {
        let listener = std::net::TcpListener::from(fd);
        let local = listener.local_addr()?;
        Ok((std::os::fd::OwnedFd::from(listener), local))
    });
    let (fd, addr) = bound.map_err(|e| usage_error(&format!("--metrics {addr}: {e}")))?;
    options.metrics = Some(Arc::new(server::metrics::MetricsListener {
        fd,
        addr,
        render: render(),
    }));
    Ok(())
}
