//! The options every server takes ([`ServeArgs`]): address, threads,
//! limits and timeouts, TCP keepalive, and the values of `--balance`,
//! `--accept` and `--trigger`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use reactor::Trigger;

/// Options every server takes.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on; IPv4 or IPv6 (`::1`).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free one and prints it.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// epoll trigger mode for connections.
    #[arg(long, value_enum, default_value_t = TriggerArg::Edge)]
    pub trigger: TriggerArg,
    /// Events taken from one epoll_wait.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_events: u32,
    /// Bytes read from one connection per pass before others get a turn.
    #[arg(long, default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub budget: u32,
    /// listen(2) backlog.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(i32).range(1..))]
    pub backlog: i32,
    /// Most connections held at once [default: RLIMIT_NOFILE minus a reserve].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_conns: Option<u64>,
    /// How long a graceful shutdown waits for output to flush (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Close connections with no traffic either way for this long (0: never).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// TCP keepalive: probe a connection silent this long, and close it
    /// when --keepalive-count probes --keepalive-interval apart go
    /// unanswered, so a peer gone without a FIN or RST is found (0: off;
    /// whole seconds). Off by default: the idle timeout closes such peers.
    #[arg(long, default_value = "0", value_parser = parse_keepalive_idle)]
    pub keepalive_idle: Duration,
    /// Time between TCP keepalive probes (whole seconds, 1s to 32767s).
    #[arg(long, default_value = "10s", value_parser = parse_keepalive_interval)]
    pub keepalive_interval: Duration,
    /// Unanswered TCP keepalive probes after which a connection is closed.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=127))]
    pub keepalive_count: u32,
    /// Close connections whose pending output the peer has not taken for
    /// this long (0: never).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub write_timeout: Duration,
    /// Close a connection at once when its pending output exceeds this many
    /// bytes (0: no limit).
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    pub output_limit_hard: usize,
    /// Close a connection whose pending output stays above this many bytes
    /// for --output-limit-soft-time (0: no limit).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub output_limit_soft: usize,
    /// How long pending output may stay above the soft limit.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub output_limit_soft_time: Duration,
    /// Print a statistics line every second.
    #[arg(long)]
    pub stats: bool,
    /// Reactor threads: a number, or `auto` for one per core.
    #[arg(long, default_value = "1", value_parser = crate::load_cli::parse_threads)]
    pub threads: usize,
    /// How threads share the port (with --threads > 1).
    #[arg(long, value_enum, default_value_t = AcceptArg::Reuseport)]
    pub accept: AcceptArg,
    /// Pin each thread to its own core (with --threads > 1).
    #[arg(long)]
    pub pin: bool,
    /// How the acceptor thread picks a worker (with --accept dispatch).
    #[arg(long, value_enum, default_value_t = BalanceArg::RoundRobin)]
    pub balance: BalanceArg,
    /// Serve Prometheus text at http://ADDR:PORT/metrics on a listener of
    /// its own (on worker 0's reactor): plain HTTP even with --tls-cert or
    /// --proxy-protocol on the main port. Port 0 picks one (in the banner).
    /// Handed over at a graceful restart like the serving sockets; under
    /// socket activation a socket named `metrics` is used instead.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Write the serving process's pid here; a graceful restart's new
    /// process rewrites it, and only a shutdown removes it.
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// How long the new process of a graceful restart (SIGHUP) has to
    /// start serving before it is killed and the old one serves on.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub restart_timeout: Duration,
    #[command(flatten)]
    pub tls: crate::tls_cli::TlsArgs,
    #[command(flatten)]
    pub proxy: crate::proxy_protocol_cli::ProxyProtocolArgs,
}

/// The kernel's limit for TCP_KEEPIDLE and TCP_KEEPINTVL (tcp(7)).
const KEEPALIVE_MAX_SECS: u64 = 32767;

/// `--keepalive-idle`: 0 (off), or whole seconds the kernel accepts.
fn parse_keepalive_idle(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Ok(d);
    }
    keepalive_secs(d)
}

/// `--keepalive-interval`: whole seconds the kernel accepts.
fn parse_keepalive_interval(text: &str) -> Result<Duration, String> {
    keepalive_secs(humantime::parse_duration(text).map_err(|e| e.to_string())?)
}

fn keepalive_secs(d: Duration) -> Result<Duration, String> {
    if d.subsec_nanos() != 0 {
        return Err("the kernel counts keepalive time in whole seconds".into());
    }
    if !(1..=KEEPALIVE_MAX_SECS).contains(&d.as_secs()) {
        return Err(format!("must be 1s to {KEEPALIVE_MAX_SECS}s"));
    }
    Ok(d)
}

/// `--balance` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalanceArg {
    RoundRobin,
    LeastConnections,
}

impl ServeArgs {
    /// The TCP keepalive the flags ask for; `None` when off.
    pub fn keepalive(&self) -> Option<reactor::Keepalive> {
        (!self.keepalive_idle.is_zero()).then_some(reactor::Keepalive {
            idle: self.keepalive_idle,
            interval: self.keepalive_interval,
            count: self.keepalive_count,
        })
    }

    /// The accept strategy the flags ask for.
    pub fn accept_strategy(&self) -> server::threads::AcceptStrategy {
        use server::threads::{AcceptStrategy, Balance};
        match self.accept {
            AcceptArg::Reuseport => AcceptStrategy::ReusePort,
            AcceptArg::Exclusive => AcceptStrategy::Exclusive,
            AcceptArg::Dispatch => AcceptStrategy::Dispatch(match self.balance {
                BalanceArg::RoundRobin => Balance::RoundRobin,
                BalanceArg::LeastConnections => Balance::LeastConnections,
            }),
        }
    }
}

/// `--accept` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptArg {
    /// A SO_REUSEPORT listener per thread; the kernel hashes connections.
    Reuseport,
    /// One listener in every thread's epoll with EPOLLEXCLUSIVE.
    Exclusive,
    /// One acceptor thread handing connections to the workers.
    Dispatch,
}

/// `--trigger` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerArg {
    Edge,
    Level,
    Oneshot,
}

impl From<TriggerArg> for Trigger {
    fn from(arg: TriggerArg) -> Trigger {
        match arg {
            TriggerArg::Edge => Trigger::Edge,
            TriggerArg::Level => Trigger::Level,
            TriggerArg::Oneshot => Trigger::OneShot,
        }
    }
}
