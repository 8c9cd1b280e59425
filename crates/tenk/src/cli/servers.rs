//! The options of each server beyond [`ServeArgs`]: `tenk serve chat`,
//! `tenk serve http` and `tenk serve proxy`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use server::proxy::BalanceMode;

use super::ServeArgs;

/// Options of `tenk serve chat`.
#[derive(Args, Debug, Clone)]
pub struct ChatArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Longest line accepted, in bytes; longer lines are refused and dropped.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1024 * 1024))]
    pub max_line: u32,
    /// The room every connection joins first.
    #[arg(long, default_value = "lobby")]
    pub room: String,
    /// Spread rooms over every node given the same Redis, through its
    /// pub/sub: `redis://[:password@]host:port[/db]` (docs/chat-cluster.md).
    /// Without Redis reachable, rooms stay local and the node keeps trying.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// This node's name in what it publishes (1-64 of letters, digits and
    /// `_.:-`); default host:pid. Nodes sharing a Redis need distinct names.
    #[arg(long, value_name = "NAME", requires = "redis")]
    pub node: Option<String>,
    /// Lifetime of this node's nick claims and liveness key in Redis,
    /// refreshed every third of it: a node that dies frees its nicks
    /// within it. Hidden: tests shorten it.
    #[arg(long, hide = true, default_value = "15s", value_parser = humantime::parse_duration, requires = "redis")]
    pub redis_ttl: std::time::Duration,
}

/// Options of `tenk serve http`.
#[derive(Args, Debug, Clone)]
pub struct HttpArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Largest request body accepted, in bytes (413 beyond).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body: usize,
    /// A request head not complete this long after its first byte gets 408.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Log every request on stdout.
    #[arg(long)]
    pub access_log: bool,
    /// Give every response an X-Request-Id header: the client's, if it
    /// sent one, else a fresh id unique to this process and worker. Off by
    /// default: it builds every answer, the cached ones too, per request.
    #[arg(long)]
    pub request_id: bool,
    /// Serve the files under this directory for every path the built-in
    /// routes do not take (`/` too, when it holds an index.html).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Options of `tenk serve proxy`.
#[derive(Args, Debug, Clone)]
pub struct ProxyArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// A backend, `HOST:PORT` or `HOST:PORT=WEIGHT` (weight 1 to 1000,
    /// default 1); repeat for each. The name is resolved once, at start,
    /// never while running (as nginx without `resolve`, HAProxy without
    /// `resolvers`): restart (SIGHUP) to follow a changed address.
    #[arg(long = "upstream", value_name = "HOST:PORT[=WEIGHT]", required = true)]
    pub upstreams: Vec<String>,
    /// How a request's upstream is chosen: round-robin (smooth, weighted;
    /// per worker), least-connections (fewest requests in flight per
    /// weight; per worker), hash-client (the client's address, a PROXY
    /// protocol header's if any) or hash-header:NAME (that request
    /// header's value; round-robin without it). A hash is weighted
    /// rendezvous hashing: the same key goes to the same upstream from
    /// every worker, and an upstream that is out or removed moves only its
    /// own keys. An upgraded (WebSocket) connection is balanced as the
    /// request that opened it.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "round-robin",
        value_parser = BalanceMode::parse
    )]
    pub upstream_balance: BalanceMode,
    /// Idle keep-alive connections kept per upstream per worker (closed
    /// after 4s idle, before common backends close theirs).
    #[arg(long, default_value_t = 32)]
    pub upstream_keepalive: usize,
    /// Longest an upstream connect may take (then the next upstream is
    /// tried for GET/HEAD, else 502).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub upstream_connect_timeout: Duration,
    /// Longest an upstream may stay silent, before the response head
    /// (504) and between bytes after it (the client connection is cut);
    /// also how long an upgraded (WebSocket) tunnel may carry no byte
    /// either way before both ends are closed.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Duration,
    /// Failures in a row that take an upstream out (0: never).
    #[arg(long, default_value_t = 3)]
    pub upstream_max_fails: u32,
    /// How long a failing upstream stays out before one request probes it.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub upstream_fail_timeout: Duration,
    /// Check every upstream with `GET PATH` every --health-interval: a
    /// 2xx/3xx keeps it in, anything else takes it out. One worker checks
    /// for the process, whatever --threads.
    #[arg(long, value_name = "PATH")]
    pub health_check: Option<String>,
    /// Time between active health checks.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub health_interval: Duration,
}
