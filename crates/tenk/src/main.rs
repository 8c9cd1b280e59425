//! `tenk`: a thin CLI that wires the reactor and the servers together.

mod cli;
mod load_cli;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use http::{HttpConfig, HttpServer};
use load::Workload;
use reactor::signal::{self, SIGINT, SIGTERM};
use reactor::sys::rlimit;
use reactor::{Config, Exit};
use server::ServeOptions;

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
    let signals = match signal::block(&[SIGINT, SIGTERM]) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("tenk: cannot block SIGINT/SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    signal::ignore_sigpipe();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(cli, signals) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tenk: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, signals: signal::SignalSet) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Load(command) => run_load(command, signals),
        Command::Serve(Serve::Echo(args)) => {
            let options = serve_options(&args, signals);
            let report = server::serve("echo", options, server::echo::Echo, |_| ())
                .context("echo server failed")?;
            Ok(exit_code(report.exit))
        }
        Command::Serve(Serve::Chat(args)) => run_chat(&args, signals),
        Command::Serve(Serve::Http(args)) => {
            let mut options = serve_options(&args.serve, signals);
            let config = HttpConfig {
                limits: http::Limits {
                    max_body: args.max_body,
                    ..http::Limits::default()
                },
                header_timeout: args.header_timeout,
                access_log: args.access_log,
            };
            options.config.max_input = options.config.max_input.max(config.reactor_max_input());
            let handler = HttpServer::new(server::hello::Hello::default(), config);
            let report = server::serve("http", options, handler, |h| h.stats())
                .context("http server failed")?;
            let s = report.extra;
            println!(
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
    }
}

fn run_chat(args: &crate::cli::ChatArgs, signals: signal::SignalSet) -> anyhow::Result<ExitCode> {
    if let Err(why) = server::chat::command::valid_name(&args.room) {
        return Ok(usage_error(&format!("--room {:?}: {why}", args.room)));
    }
    let options = serve_options(&args.serve, signals);
    let config = server::chat::ChatConfig {
        max_line: args.max_line as usize,
        default_room: args.room.clone(),
    };
    let chat = server::chat::Chat::new(config);
    let report =
        server::serve("chat", options, chat, |c| c.stats()).context("chat server failed")?;
    let s = report.extra;
    println!(
        "tenk chat: {} messages, {} deliveries, {} private, {} lines too long, {} slow readers disconnected",
        s.messages, s.deliveries, s.private_messages, s.lines_too_long, s.slow_disconnects
    );
    Ok(exit_code(report.exit))
}

fn exit_code(exit: Exit) -> ExitCode {
    match exit {
        Exit::Forced => ExitCode::from(EXIT_FORCED),
        Exit::Graceful | Exit::Stopped => ExitCode::SUCCESS,
    }
}

/// Exit status for bad arguments, as clap uses.
const EXIT_USAGE: u8 = 2;

fn run_load(command: Load, signals: signal::SignalSet) -> anyhow::Result<ExitCode> {
    let (spec, common) = match &command {
        Load::Echo(args) => {
            let target = match load::target::resolve(&args.target) {
                Ok(addr) => addr,
                Err(e) => return Ok(usage_error(&e)),
            };
            let workload = Workload::Echo {
                size: args.size as usize,
            };
            let label = format!("echo {}", args.target);
            (args.common.spec(target, label, workload), &args.common)
        }
        Load::Http(args) => {
            let target = match load::target::http_target(&args.url) {
                Ok(target) => target,
                Err(e) => return Ok(usage_error(&e)),
            };
            let request = load::http::build_request(
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
            (args.common.spec(target.addr, label, workload), &args.common)
        }
    };
    if let Err(e) = spec.validate() {
        return Ok(usage_error(&e));
    }
    rlimit::raise_nofile_limit();
    let report = load::run(spec, Some(signals)).context("load run failed")?;
    if common.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.to_human());
    }
    Ok(if report.errors_total > common.max_errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("tenk: error: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn serve_options(args: &ServeArgs, signals: signal::SignalSet) -> ServeOptions {
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
        ..Config::default()
    };
    ServeOptions {
        bind: args.bind,
        port: args.port,
        backlog: args.backlog,
        config,
        stats: args.stats,
        signals: Some(signals),
    }
}
