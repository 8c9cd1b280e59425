//! `tenk load echo|http|chat`: arguments, turned into a [`load::LoadSpec`].

use std::io::IsTerminal as _;
use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Subcommand};
use load::{LoadSpec, Stop, Workload};

use crate::tls_cli::TlsLoadArgs;

#[derive(Subcommand, Debug)]
pub enum Load {
    /// Drive an echo server: fixed-size messages, every reply checked byte
    /// for byte.
    Echo(EchoArgs),
    /// Drive an HTTP/1.1 server with keep-alive requests; responses checked
    /// for status line and framing.
    Http(HttpArgs),
    /// Drive a chat server (`tenk serve chat`): clients in rooms, some
    /// sending numbered, time-stamped messages at --rate (total, default
    /// 1000/s); every member checks it gets every message of its room, in
    /// order, and measures delivery latency.
    Chat(ChatArgs),
}

/// `--rate` of `tenk load chat` when none is given: messages per second.
pub const CHAT_DEFAULT_RATE: f64 = 1000.0;

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// The server, as HOST:PORT; or the nodes of a chat cluster
    /// (`serve chat --redis`) as HOST:PORT,HOST:PORT,...: clients are
    /// spread over them round-robin.
    pub target: String,
    /// Rooms: client i joins room{i % rooms}.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Clients that send (clients 0..senders, so spread over the rooms);
    /// --rate is shared between them.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Speak TLS to the server.
    #[arg(long = "tls")]
    pub tls_on: bool,
    #[command(flatten)]
    pub tls: TlsLoadArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct EchoArgs {
    /// The server, as HOST:PORT.
    pub target: String,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=16 * 1024 * 1024))]
    pub size: u32,
    /// Speak TLS to the server.
    #[arg(long = "tls")]
    pub tls_on: bool,
    #[command(flatten)]
    pub tls: TlsLoadArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub max_rate: MaxRateArgs,
}

#[derive(Args, Debug)]
pub struct HttpArgs {
    /// The URL: http://, or https:// for TLS (port 443 by default).
    pub url: String,
    /// Request method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Extra header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Request body (sent with Content-Length).
    #[arg(long, default_value = "")]
    pub body: String,
    #[command(flatten)]
    pub tls: TlsLoadArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub max_rate: MaxRateArgs,
}

/// Options both workloads take.
#[derive(Args, Debug)]
pub struct CommonArgs {
    /// Connections to hold open (over all threads).
    #[arg(short = 'c', long, default_value_t = 100)]
    pub connections: usize,
    /// How long to measure, after connecting and warm-up (e.g. 10s, 1m).
    #[arg(short = 'd', long, value_parser = humantime::parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Stop after exactly this many requests instead of a duration.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Reactor threads: a number, or `auto` for one per core.
    #[arg(long, default_value = "1", value_parser = parse_threads)]
    pub threads: usize,
    /// Requests in flight per connection (closed loop).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Run this long before measuring (excluded from the results).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// New connections per second while connecting (a ramp).
    #[arg(long)]
    pub connect_rate: Option<f64>,
    /// A connection whose requests get no reply byte for this long has
    /// timed out (closed, replaced, its requests lost), counted from the
    /// later of the oldest request's send and the last byte received, so a
    /// long reply that keeps coming is not cut; one still waiting so when
    /// the run ends counts too. Also bounds a chat join and the chat drain.
    /// Default as wrk's.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// A connect not complete this long is a timeout (not retried). Longer
    /// than --timeout: a ramp of thousands of connects can meet SYN
    /// retransmits at 1 s and 3 s. Also the connect phase's deadline (after
    /// the --connect-rate ramp): the run then starts with the connections
    /// that are open, and reports the others as never connected.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Open loop: total requests per second on a fixed schedule; latency
    /// is measured from the intended send time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Source addresses to spread connections over (comma-separated), to
    /// go beyond one address's ephemeral ports.
    #[arg(long, value_delimiter = ',')]
    pub source: Vec<IpAddr>,
    /// Print a progress line each second on stderr (default: when stderr
    /// is a terminal).
    #[arg(long)]
    pub progress: bool,
    /// Print the report as JSON instead of the human summary. Both show
    /// `unanswered` (requests still in flight when the window ended) and
    /// `unanswered_oldest_ms`: their waits, and those of requests lost to a
    /// timeout (chat: of lost deliveries), are in the latency as lower
    /// bounds, so a server gone silent shows in max and p99; and
    /// `connections_replaced` (closed on an error, a timeout included, and
    /// reconnected); `connections_never_connected`,
    /// `connections_never_answered` (connected, then not a byte within
    /// --timeout) and `connect_s`; and, for a loopback target, the
    /// kernel's `accept_queue_overflows` and `listen_drops` during the run
    /// (counted for the whole host).
    #[arg(long)]
    pub json: bool,
    /// Errors tolerated before the exit status is 1 (for chat: errors,
    /// lost and reordered deliveries together).
    #[arg(long, default_value_t = 0)]
    pub max_errors: u64,
}

/// `--find-max-rate` and its settings (echo and HTTP).
#[derive(Args, Debug)]
pub struct MaxRateArgs {
    /// Search for the highest open-loop rate whose corrected p99 stays
    /// within --p99 with no errors, no request left waiting past the bound
    /// and an achieved rate within 2 % of the target: a closed-loop probe
    /// finds the ceiling, a ramp from 1/16 of it (or --rate-min) finds a
    /// failing rate, then bisection to 3 %; at most 20 steps, each with
    /// its own connections and a 1 s warm-up. Prints each step (target,
    /// achieved, p50, p99, max, errors) and `max_rate` (with --json:
    /// `steps` and `max_rate`); exit 1 when even the lowest step fails.
    #[arg(long)]
    pub find_max_rate: bool,
    /// The bound on the corrected p99 for --find-max-rate (e.g. 1ms).
    #[arg(long, value_parser = humantime::parse_duration, requires = "find_max_rate")]
    pub p99: Option<Duration>,
    /// Measured length of each --find-max-rate step (after its warm-up).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, requires = "find_max_rate")]
    pub step_duration: Duration,
    /// The first --find-max-rate step's rate, requests/s.
    #[arg(long, requires = "find_max_rate")]
    pub rate_min: Option<f64>,
    /// The highest rate --find-max-rate tries, requests/s.
    #[arg(long, requires = "find_max_rate")]
    pub rate_max: Option<f64>,
}

impl MaxRateArgs {
    /// The search asked for, if any, checked against the run's other
    /// settings.
    ///
    /// # Errors
    /// A message naming the flag at fault.
    pub fn search(&self, common: &CommonArgs) -> Result<Option<load::Search>, String> {
        if !self.find_max_rate {
            return Ok(None);
        }
        let conflict = |flag: &str| {
            Err(format!(
                "--find-max-rate chooses the rates and step lengths itself: drop {flag}"
            ))
        };
        if common.rate.is_some() {
            return conflict("--rate");
        }
        if common.requests.is_some() {
            return conflict("--requests (-n)");
        }
        if common.duration.is_some() {
            return conflict("--duration (-d; see --step-duration)");
        }
        if !common.warmup.is_zero() {
            return conflict("--warmup (each step warms up for 1 s)");
        }
        let Some(p99) = self.p99 else {
            return Err("--find-max-rate needs --p99, the latency bound (e.g. --p99 1ms)".into());
        };
        let search = load::Search {
            p99,
            step: self.step_duration,
            rate_min: self.rate_min,
            rate_max: self.rate_max,
        };
        search.validate()?;
        Ok(Some(search))
    }
}

/// Default measured duration when neither `-d` nor `-n` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

impl CommonArgs {
    /// The spec for `workload` against `target`.
    pub fn spec(
        &self,
        target: std::net::SocketAddr,
        label: String,
        workload: Workload,
    ) -> LoadSpec {
        let stop = match (self.requests, self.duration) {
            (Some(n), _) => Stop::Requests(n),
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Duration(DEFAULT_DURATION),
        };
        LoadSpec {
            target,
            spread: Vec::new(),
            label,
            workload,
            connections: self.connections,
            stop,
            threads: self.threads,
            pipeline: self.pipeline,
            warmup: self.warmup,
            connect_rate: self.connect_rate,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            rate: self.rate,
            sources: self.source.clone(),
            progress: self.progress || std::io::stderr().is_terminal(),
            // Set from --tls/--ca/--insecure and --new-conn-per-request
            // (issue 16, wired separately).
            tls: None,
            new_conn_per_request: false,
        }
    }
}

pub fn parse_threads(s: &str) -> Result<usize, String> {
    if s == "auto" {
        return Ok(std::thread::available_parallelism().map_or(1, |n| n.get()));
    }
    match s.parse::<usize>() {
        Ok(0) | Err(_) => Err(format!("expected a number ≥ 1 or `auto`, got {s:?}")),
        Ok(n) => Ok(n),
    }
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("expected `Name: value`, got {s:?}"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("bad header name in {s:?}"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_threads_parse() {
        assert_eq!(
            parse_header("X-Id:  7 ").unwrap(),
            ("X-Id".to_string(), "7".to_string())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": v").is_err());
        assert_eq!(parse_threads("3").unwrap(), 3);
        assert!(parse_threads("auto").unwrap() >= 1);
        assert!(parse_threads("0").is_err());
    }

    #[test]
    fn chat_defaults() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["tenk", "load", "chat", "127.0.0.1:1"]).unwrap();
        let crate::cli::Command::Load(Load::Chat(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!((args.rooms, args.senders), (1, 10));
        assert_eq!(args.common.rate, None, "CHAT_DEFAULT_RATE applies");
    }

    /// Issue 14: the request timeout is wrk's 2 s, connects keep 10 s.
    #[test]
    fn timeout_defaults() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["tenk", "load", "echo", "127.0.0.1:1"]).unwrap();
        let crate::cli::Command::Load(Load::Echo(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(args.common.timeout, Duration::from_secs(2));
        assert_eq!(args.common.connect_timeout, Duration::from_secs(10));
    }
}
