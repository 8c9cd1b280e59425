//! The command line: `tenk serve echo|http|chat|proxy` and their flags,
//! `tenk completions` and `tenk man`; the `tenk load` subcommands are in
//! [`crate::load_cli`], the global logging options in [`crate::logs`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reactor::Trigger;

/// Build and measure high-concurrency TCP servers on Linux epoll.
#[derive(Parser, Debug)]
#[command(name = "tenk", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub log: crate::logs::LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a server.
    #[command(subcommand)]
    Serve(Serve),
    /// Generate load against a server and report what it measured.
    #[command(subcommand)]
    Load(crate::load_cli::Load),
    /// Print a completion script for a shell on stdout, e.g.
    /// `tenk completions bash > /etc/bash_completion.d/tenk`.
    Completions {
        #[arg(value_enum)]
        shell: crate::generate::Shell,
    },
    /// Print a man page (roff) on stdout: tenk(1), or a command's, e.g.
    /// `tenk man serve http | man -l -`.
    Man {
        /// The command whose page to print (`serve http`); none for tenk(1).
        #[arg(value_name = "COMMAND")]
        command: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum Serve {
    /// A TCP echo server: every byte received is sent back.
    Echo(ServeArgs),
    /// An HTTP/1.1 server: `GET /` says hello, `/health`, `POST /echo`,
    /// `/metrics`, and the files under `--root DIR`.
    Http(HttpArgs),
    /// A line-based chat server (try it with `nc`): rooms, nicks, private
    /// messages; slow readers are cut without slowing the room.
    // A chat user who only reads sends nothing for as long as the room is
    // quiet: an idle timeout would throw them out, so chat has none by
    // default and finds dead peers with TCP keepalive instead.
    #[command(mut_arg("idle_timeout", |a| a.default_value(CHAT_IDLE_TIMEOUT).help(
        "Close connections with no traffic either way for this long (0: never). \
         Off for chat: a user reading a quiet room sends nothing and must not be \
         cut; dead peers are found by TCP keepalive (--keepalive-idle) instead"
    )))]
    #[command(mut_arg("keepalive_idle", |a| a.default_value(CHAT_KEEPALIVE_IDLE).help(
        "TCP keepalive: probe a connection silent this long, and close it when \
         --keepalive-count probes --keepalive-interval apart go unanswered, so a \
         peer gone without a FIN or RST is found (0: off; whole seconds). On for chat (60s, 10s, \
         6: a dead peer is closed within 2 minutes), as chat has no idle timeout"
    )))]
    Chat(ChatArgs),
    /// An HTTP/1.1 reverse proxy and load balancer: requests go to the
    /// `--upstream`s over pooled keep-alive connections (docs/proxy.md).
    Proxy(ProxyArgs),
}

/// Chat's `--idle-timeout` default: off (see the `Chat` variant).
pub const CHAT_IDLE_TIMEOUT: &str = "0";
/// Chat's `--keepalive-idle` default, with the default interval and count:
/// [`reactor::Keepalive::default`].
pub const CHAT_KEEPALIVE_IDLE: &str = "60s";

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
    /// default 1); repeat for each. The name is resolved once, at start.
    #[arg(long = "upstream", value_name = "HOST:PORT[=WEIGHT]", required = true)]
    pub upstreams: Vec<String>,
    /// How a request's upstream is chosen (per worker): smooth weighted
    /// round-robin, or fewest requests in flight per weight.
    #[arg(long, value_enum, default_value_t = BalanceArg::RoundRobin)]
    pub upstream_balance: BalanceArg,
    /// Idle keep-alive connections kept per upstream per worker (closed
    /// after 4s idle, before common backends close theirs).
    #[arg(long, default_value_t = 32)]
    pub upstream_keepalive: usize,
    /// Longest an upstream connect may take (then the next upstream is
    /// tried for GET/HEAD, else 502).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub upstream_connect_timeout: Duration,
    /// Longest an upstream may stay silent, before the response head
    /// (504) and between bytes after it (the client connection is cut).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Duration,
    /// Failures in a row that take an upstream out (0: never).
    #[arg(long, default_value_t = 3)]
    pub upstream_max_fails: u32,
    /// How long a failing upstream stays out before one request probes it.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub upstream_fail_timeout: Duration,
    /// Check every upstream with `GET PATH` every --health-interval: a
    /// 2xx/3xx keeps it in, anything else takes it out.
    #[arg(long, value_name = "PATH")]
    pub health_check: Option<String>,
    /// Time between active health checks.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub health_interval: Duration,
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["tenk", "serve", "echo"]).unwrap();
        let Command::Serve(Serve::Echo(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(args.port, 8080);
        assert_eq!(args.bind.to_string(), "127.0.0.1");
        assert_eq!(args.trigger, TriggerArg::Edge);
        assert_eq!(args.max_events, 1024);
        assert_eq!(args.budget, 65536);
        assert_eq!(args.backlog, 4096);
        assert_eq!(args.max_conns, None);
        assert_eq!(args.drain_timeout, Duration::from_secs(5));
        assert_eq!(args.idle_timeout, Duration::from_secs(60));
        assert_eq!(args.write_timeout, Duration::from_secs(60));
        let zero = Cli::try_parse_from(["tenk", "serve", "echo", "--idle-timeout", "0"]).unwrap();
        let Command::Serve(Serve::Echo(zero)) = zero.command else {
            panic!("parsed as another command");
        };
        assert!(zero.idle_timeout.is_zero(), "0 disables the idle timeout");
    }

    fn serve_args(argv: &[&str]) -> ServeArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(Serve::Echo(args)) => args,
            Command::Serve(Serve::Http(args)) => args.serve,
            Command::Serve(Serve::Chat(args)) => args.serve,
            Command::Serve(Serve::Proxy(args)) => args.serve,
            other => panic!("parsed as {other:?}"),
        }
    }

    /// Regression (issue 14, item 4): chat applied the 60 s idle timeout of
    /// echo and http, so a user reading a quiet room was thrown out after
    /// a minute. Chat has no idle timeout and finds dead peers by TCP
    /// keepalive; the other servers keep their idle timeout and no
    /// keepalive.
    #[test]
    fn regression_chat_has_no_idle_timeout_and_keepalive_by_default() {
        let chat = serve_args(&["tenk", "serve", "chat"]);
        assert!(chat.idle_timeout.is_zero(), "chat idle timeout");
        assert_eq!(chat.keepalive(), Some(reactor::Keepalive::default()));
        for server in ["echo", "http"] {
            let args = serve_args(&["tenk", "serve", server]);
            assert_eq!(args.idle_timeout, Duration::from_secs(60), "{server}");
            assert_eq!(args.keepalive(), None, "{server}");
        }
        // The help text states the chat defaults the constants give.
        let help = Cli::command()
            .find_subcommand_mut("serve")
            .and_then(|serve| serve.find_subcommand_mut("chat"))
            .expect("serve chat")
            .render_long_help()
            .to_string();
        assert!(help.contains("Off for chat"), "{help}");
        assert!(help.contains("On for chat (60s, 10s, 6"), "{help}");
        let k = reactor::Keepalive::default();
        assert_eq!(
            (k.idle.as_secs(), k.interval.as_secs(), k.count),
            (60, 10, 6),
            "the chat help text quotes these"
        );
    }

    /// --log-level and --log-format are global: before the command or
    /// after any subcommand, for every command.
    #[test]
    fn log_options_are_global() {
        use crate::logs::{LogFormat, LogLevel};
        for argv in [
            &[
                "tenk",
                "--log-level",
                "debug",
                "--log-format",
                "json",
                "serve",
                "echo",
            ][..],
            &[
                "tenk",
                "serve",
                "echo",
                "--log-level",
                "debug",
                "--log-format",
                "json",
            ],
            &[
                "tenk",
                "serve",
                "--log-format",
                "json",
                "chat",
                "--log-level",
                "debug",
            ],
            &[
                "tenk",
                "load",
                "echo",
                "127.0.0.1:1",
                "--log-level",
                "debug",
                "--log-format",
                "json",
            ],
            &[
                "tenk",
                "man",
                "--log-level",
                "debug",
                "--log-format",
                "json",
            ],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert_eq!(cli.log.log_level, LogLevel::Debug, "{argv:?}");
            assert_eq!(cli.log.log_format, LogFormat::Json, "{argv:?}");
        }
        let cli = Cli::try_parse_from(["tenk", "serve", "echo"]).unwrap();
        assert_eq!(cli.log.log_level, LogLevel::Warn);
        assert_eq!(cli.log.log_format, LogFormat::Text);
        assert!(Cli::try_parse_from(["tenk", "serve", "echo", "--log-level", "loud"]).is_err());
        assert!(Cli::try_parse_from(["tenk", "serve", "echo", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn proxy_defaults_and_repeated_upstreams() {
        let cli = Cli::try_parse_from([
            "tenk",
            "serve",
            "proxy",
            "--upstream",
            "127.0.0.1:1",
            "--upstream",
            "127.0.0.1:2=3",
        ])
        .unwrap();
        let Command::Serve(Serve::Proxy(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(args.upstreams, ["127.0.0.1:1", "127.0.0.1:2=3"]);
        assert_eq!(args.upstream_balance, BalanceArg::RoundRobin);
        assert_eq!(args.upstream_keepalive, 32);
        assert_eq!(args.upstream_connect_timeout, Duration::from_secs(2));
        assert_eq!(args.upstream_timeout, Duration::from_secs(60));
        assert_eq!(args.health_interval, Duration::from_secs(2));
        assert_eq!(args.health_check, None);
        assert_eq!(
            args.serve.balance,
            BalanceArg::RoundRobin,
            "--balance unchanged"
        );
    }

    #[test]
    fn keepalive_flags_tune_and_turn_off() {
        let tuned = serve_args(&[
            "tenk",
            "serve",
            "echo",
            "--keepalive-idle",
            "5s",
            "--keepalive-interval",
            "2s",
            "--keepalive-count",
            "3",
        ]);
        let k = tuned.keepalive().expect("on");
        assert_eq!(
            (k.idle, k.interval, k.count),
            (Duration::from_secs(5), Duration::from_secs(2), 3)
        );
        assert_eq!(k.dead_after(), Duration::from_secs(11));
        let off = serve_args(&["tenk", "serve", "chat", "--keepalive-idle", "0"]);
        assert_eq!(off.keepalive(), None, "--keepalive-idle 0 turns it off");
        let idle = serve_args(&["tenk", "serve", "chat", "--idle-timeout", "5m"]);
        assert_eq!(idle.idle_timeout, Duration::from_secs(300));
    }

    #[test]
    fn rejects_bad_keepalive_values() {
        for (bad, why) in [
            (&["--keepalive-idle", "1500ms"][..], "whole seconds"),
            (&["--keepalive-idle", "32768s"], "1s to 32767s"),
            (&["--keepalive-interval", "0"], "1s to 32767s"),
            (&["--keepalive-interval", "500ms"], "whole seconds"),
            (&["--keepalive-interval", "often"], ""),
            (&["--keepalive-count", "0"], "not in 1..=127"),
            (&["--keepalive-count", "128"], "not in 1..=127"),
        ] {
            for server in ["echo", "chat"] {
                let argv: Vec<&str> = ["tenk", "serve", server]
                    .iter()
                    .chain(bad)
                    .copied()
                    .collect();
                let err = Cli::try_parse_from(&argv).expect_err(&format!("{argv:?} parsed"));
                assert!(err.to_string().contains(why), "{argv:?}: {err}");
            }
        }
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["tenk", "serve", "echo", "--port", "70000"][..],
            &["tenk", "serve", "echo", "--trigger", "sideways"],
            &["tenk", "serve", "echo", "--max-events", "0"],
            &["tenk", "serve", "echo", "--bind", "localhost:1"],
            &["tenk", "serve", "echo", "--drain-timeout", "soon"],
            &["tenk", "serve", "echo", "--no-such-flag"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn ipv6_and_trigger_modes_parse() {
        let cli = Cli::try_parse_from([
            "tenk",
            "serve",
            "echo",
            "--bind",
            "::1",
            "--trigger",
            "oneshot",
        ])
        .unwrap();
        let Command::Serve(Serve::Echo(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert!(args.bind.is_ipv6());
        assert_eq!(Trigger::from(args.trigger), Trigger::OneShot);
    }
}
