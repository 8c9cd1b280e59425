//! `tenk`: a thin CLI that wires the reactor and the servers together.

// First: its macros are in scope in the modules after it.
#[macro_use]
mod out;

mod cli;
mod generate;
mod load_cli;
mod load_run;
mod logs;
mod proxy_protocol_cli;
mod serve_cmd;
mod serve_opts;
mod tls_cli;

use std::process::ExitCode;

use clap::Parser as _;
use reactor::signal::{self, SIGHUP, SIGINT, SIGTERM};
use reactor::Exit;

use crate::cli::{Cli, Command, Serve};

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
        Command::Load(command) => load_run::run_load(command, signals),
        Command::Serve(Serve::Echo(args)) => serve_cmd::run_echo(&args, signals),
        Command::Serve(Serve::Chat(args)) => serve_cmd::run_chat(&args, signals),
        Command::Serve(Serve::Http(args)) => serve_cmd::run_http(&args, signals),
        Command::Serve(Serve::Proxy(args)) => serve_cmd::run_proxy(&args, signals),
    }
}

fn exit_code(exit: Exit) -> ExitCode {
    match exit {
        Exit::Forced => ExitCode::from(EXIT_FORCED),
        Exit::Graceful | Exit::Stopped | Exit::Deadline => ExitCode::SUCCESS,
    }
}

/// Exit status for bad arguments, as clap uses.
const EXIT_USAGE: u8 = 2;

fn usage_error(message: &str) -> ExitCode {
    errln!("tenk: error: {message}");
    ExitCode::from(EXIT_USAGE)
}
