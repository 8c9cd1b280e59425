//! The command line: `tenk serve echo` now; `load`, `chat` and `http`
//! follow as their own subcommands.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reactor::Trigger;

/// Build and measure high-concurrency TCP servers on Linux epoll.
#[derive(Parser, Debug)]
#[command(name = "tenk", version, about)]
pub struct Cli {
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
    Chat(ChatArgs),
}

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
    /// Serve the files under this directory for every path the built-in
    /// routes do not take (`/` too, when it holds an index.html).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
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
}

/// `--balance` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalanceArg {
    RoundRobin,
    LeastConnections,
}

impl ServeArgs {
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
