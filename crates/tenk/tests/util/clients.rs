//! Real client programs (curl, python3) as the tests' clients: whether one
//! is installed, and running one to completion.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::thread;

/// Whether `program` can be run here; prints a note when it cannot.
pub fn available(program: &str, what: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("note: {program} not found; skipping {what} (CI installs it)");
    }
    found
}

/// Runs `command` with `stdin` as its input; fails the test if it fails.
pub fn run(mut command: Command, stdin: &[u8]) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn client");
    let mut input = child.stdin.take().expect("stdin piped");
    let output = thread::scope(|s| {
        s.spawn(move || input.write_all(stdin));
        child.wait_with_output().expect("client output")
    });
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `curl --silent --show-error --max-time 10 <args>`, which must succeed.
pub fn curl(args: &[&str], stdin: &[u8]) -> Output {
    let mut command = Command::new("curl");
    command.args(["--silent", "--show-error", "--max-time", "10"]);
    command.args(args);
    run(command, stdin)
}
