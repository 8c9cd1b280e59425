//! `tenk serve`: one runner per server (echo, chat, http, proxy) and the
//! options, TLS, metrics and lifecycle they share.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use http::server::HttpStats;
use http::static_files::StaticFiles;
use http::HttpConfig;
use reactor::signal;
use server::chat::Chat;
use server::echo::Echo;
use server::group::Group;
use server::hello;
use server::serve::summary;

use crate::cli::ServeArgs;
use crate::serve_opts::{serve_options, serve_tls, with_metrics, with_tls};
use crate::{exit_code, usage_error};

/// `tenk serve echo`: every byte read is written back.
pub(crate) fn run_echo(args: &ServeArgs, signals: signal::SignalSet) -> anyhow::Result<ExitCode> {
    let tls = match serve_tls(args, &[]) {
        Ok(tls) => tls,
        Err(code) => return Ok(code),
    };
    let mut options = match serve_options(args, signals) {
        Ok(options) => options,
        Err(code) => return Ok(code),
    };
    with_tls(&mut options, tls);
    args.proxy.apply(&mut options);
    if let Err(code) = with_metrics(&mut options, args, server::metrics::echo) {
        return Ok(code);
    }
    let report =
        server::serve("echo", options, |_, _| Echo, |_| ()).context("echo server failed")?;
    outln!("{}", summary("echo", &report));
    Ok(exit_code(report.exit))
}

pub(crate) fn run_proxy(
    args: &crate::cli::ProxyArgs,
    signals: signal::SignalSet,
) -> anyhow::Result<ExitCode> {
    use server::proxy::{HealthPolicy, Proxy, ProxyBoard, ProxyConfig, UpstreamSpec};
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
    config.balance = args.upstream_balance.clone();
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

pub(crate) fn run_http(
    args: &crate::cli::HttpArgs,
    signals: signal::SignalSet,
) -> anyhow::Result<ExitCode> {
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

pub(crate) fn run_chat(
    args: &crate::cli::ChatArgs,
    signals: signal::SignalSet,
) -> anyhow::Result<ExitCode> {
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
