//! `tenk completions SHELL` and `tenk man [COMMAND]`: what packagers
//! install beside the binary, generated from the clap definition so they
//! cannot drift from `--help`.

use std::io::Write as _;

use clap::{CommandFactory as _, ValueEnum};

use crate::cli::Cli;

/// Shells `tenk completions` writes for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: Shell) {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Into memory first: clap_complete panics on a failed write (stdout
    // closed by `| head`), and the script is a few tens of kilobytes.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tenk", &mut script);
    write_stdout(&script);
}

/// Prints the man page of `tenk` or of the command `path` names (`serve
/// http` gives tenk-serve-http(1)) on stdout.
///
/// # Errors
///
/// A word of `path` that names no command of the one before it.
pub fn man(path: &[String]) -> Result<(), String> {
    let mut command = Cli::command();
    // Builds the whole tree: the global options reach every command and
    // each gets its page name (tenk-serve-http) and usage (tenk serve http).
    command.build();
    for word in path {
        let Some(sub) = command.find_subcommand(word) else {
            let known: Vec<&str> = command
                .get_subcommands()
                .map(clap::Command::get_name)
                .filter(|name| *name != "help")
                .collect();
            return Err(format!(
                "{} has no command {word:?} (it has: {})",
                command.get_bin_name().unwrap_or("tenk"),
                known.join(", ")
            ));
        };
        command = sub.clone();
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|e| format!("man page: {e}"))?;
    write_stdout(&page);
    Ok(())
}

/// Writes all of `bytes` to stdout; a reader gone away (EPIPE) is not an
/// error worth a message.
fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}
