//! What operators and packagers get from the binary (issue 18): shell
//! completions that the shells accept, man pages that render, logs at the
//! level and in the format asked for (the JSON access log parsed), and
//! output to a reader gone away that does not panic.

#[macro_use]
mod util;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Command, Output, Stdio};

use util::http_client::{get, Client};
use util::{connect, run_tenk, Server, PROMPTLY};

/// Whether `program` runs here (`zsh`, `fish`: not installed everywhere).
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `program args` with `input` on stdin.
fn run_with_stdin(program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin piped");
    let input = input.to_vec();
    // Written from a thread: a large input must not block on a full pipe
    // while the program's output waits to be read.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait");
    writer.join().expect("stdin writer");
    output
}

fn stdout_of(args: &[&str]) -> String {
    let out = run_tenk(args);
    assert!(
        out.status.success(),
        "tenk {args:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn completions_pass_each_shells_syntax_check() {
    for (shell, check, marker) in [
        ("bash", "bash", "complete -F _tenk"),
        ("zsh", "zsh", "#compdef tenk"),
        ("fish", "fish", "complete -c tenk"),
    ] {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        // Every command and the global options are offered.
        for word in ["serve", "load", "proxy", "log-level", "log-format"] {
            assert!(script.contains(word), "{shell}: {word} not completed");
        }
        // bash is everywhere the tests run; zsh and fish where installed.
        if shell == "bash" || installed(check) {
            let checked = run_with_stdin(check, &["-n"], script.as_bytes());
            assert!(
                checked.status.success(),
                "{check} -n refused the {shell} script: {}",
                String::from_utf8_lossy(&checked.stderr)
            );
        } else {
            eprintln!("{check} not installed: {shell} script checked by content only");
        }
    }
    let bad = run_tenk(&["completions", "tcsh"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

/// `tenk man` and a command's page render through man(1) without a groff
/// warning, and say what `--help` says.
#[test]
fn man_pages_render() {
    for (args, name, expected) in [
        (
            &["man"][..],
            "tenk",
            &["SUBCOMMANDS", "tenk-serve(1)", "--log-format"][..],
        ),
        (
            &["man", "serve", "http"],
            "tenk-serve-http",
            &["--access-log", "--log-level", "tenk serve http"],
        ),
    ] {
        let page = stdout_of(args);
        assert!(page.contains(&format!(".TH {name} 1")), "{args:?}: title");
        let rendered = run_with_stdin("man", &["--warnings", "-l", "-"], page.as_bytes());
        let (text, warnings) = (
            String::from_utf8_lossy(&rendered.stdout),
            String::from_utf8_lossy(&rendered.stderr),
        );
        assert!(rendered.status.success(), "man -l: {warnings}");
        assert!(
            warnings.trim().is_empty(),
            "{args:?}: man warned: {warnings}"
        );
        assert!(text.contains("NAME"), "{args:?}: {text}");
        for word in expected {
            // man hyphenates long words across lines; undo that.
            let flat = text.replace("\u{2010}\n", "").replace(['\n', ' '], "");
            assert!(
                flat.contains(&word.replace(' ', "")),
                "{args:?}: {word:?} not in the page:\n{text}"
            );
        }
    }
    let bad = run_tenk(&["man", "serve", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    let why = String::from_utf8_lossy(&bad.stderr);
    assert!(
        why.contains("\"nope\"") && why.contains("echo, http"),
        "{why}"
    );
}

/// Reads a server's stderr once it has exited.
fn stderr_after_exit(server: &mut Server) -> String {
    server.signal(libc::SIGINT);
    assert!(server.wait_exit(PROMPTLY).success(), "graceful exit");
    let mut all = String::new();
    server
        .child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut all)
        .expect("read stderr");
    all
}

/// An echo server with stderr piped, `env` set, that has had one
/// connection open and close (the reactor logs the close at debug).
fn echo_with_one_close(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut argv = vec!["serve", "echo", "--port", "0"];
    argv.extend_from_slice(args);
    let mut server = Server::start(&argv, |command| {
        command.stderr(Stdio::piped()).env_remove("RUST_LOG");
        for (name, value) in env {
            command.env(name, value);
        }
    });
    let mut client = connect(server.addr);
    client.write_all(b"ping").expect("write");
    let mut back = [0; 4];
    client.read_exact(&mut back).expect("echo");
    drop(client);
    stderr_after_exit(&mut server)
}

fn debug_closes(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.contains("DEBUG") && l.contains("closed"))
        .count()
}

/// `--log-level` filters the diagnostics, before or after the command, and
/// RUST_LOG is applied after it (a bare level replaces it, a target adds).
#[test]
fn log_level_filters_and_rust_log_combines() {
    let quiet = echo_with_one_close(&[], &[]);
    assert_eq!(debug_closes(&quiet), 0, "warn by default:\n{quiet}");
    let info = echo_with_one_close(&["--log-level", "info"], &[]);
    assert_eq!(debug_closes(&info), 0, "info:\n{info}");
    let debug = echo_with_one_close(&["--log-level", "debug"], &[]);
    assert_eq!(debug_closes(&debug), 1, "debug:\n{debug}");
    let replaced = echo_with_one_close(&["--log-level", "debug"], &[("RUST_LOG", "error")]);
    assert_eq!(debug_closes(&replaced), 0, "RUST_LOG=error:\n{replaced}");
    let refined = echo_with_one_close(&[], &[("RUST_LOG", "reactor=debug")]);
    assert_eq!(
        debug_closes(&refined),
        1,
        "RUST_LOG=reactor=debug:\n{refined}"
    );
    // A global option also goes before the command.
    let out = run_tenk(&["--log-level", "debug", "serve", "echo", "--port", "70000"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the port is refused, not the option"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"));
}

/// A RUST_LOG that does not parse is reported and left out: the server
/// runs at --log-level.
#[test]
fn bad_rust_log_is_reported_and_ignored() {
    let stderr = echo_with_one_close(&["--log-level", "debug"], &[("RUST_LOG", "reactor=loud")]);
    assert!(stderr.contains("tenk: ignoring RUST_LOG"), "{stderr}");
    assert_eq!(
        debug_closes(&stderr),
        1,
        "--log-level still applies:\n{stderr}"
    );
}

/// `--log-format json`: every diagnostic line on stderr is a JSON object.
#[test]
fn json_diagnostics_parse() {
    let stderr = echo_with_one_close(&["--log-level", "debug", "--log-format", "json"], &[]);
    let mut closes = 0;
    for line in stderr.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        if event["level"] == "DEBUG" && event["fields"]["message"] == "closed" {
            closes += 1;
        }
    }
    assert_eq!(closes, 1, "{stderr}");
}

/// `--access-log --log-format json`: one JSON object a request with the
/// documented fields; the banner and the summaries stay text.
#[test]
fn json_access_log_lines_parse_and_carry_the_fields() {
    for request_id in [false, true] {
        let mut args = vec![
            "serve",
            "http",
            "--port",
            "0",
            "--access-log",
            "--log-format",
            "json",
        ];
        if request_id {
            args.push("--request-id");
        }
        let mut server = Server::start(&args, |_| {});
        assert!(server.banner.starts_with("tenk http listening on "));
        let mut client = Client::connect(server.addr);
        client
            .get_with("/", "X-Request-Id: theirs-1\r\n")
            .expect(200, b"Hello, World!");
        client
            .exchange(&get("/nope?q=\"x\""))
            .expect(404, b"404 Not Found\n");
        for (method, target, status, bytes, id) in [
            ("GET", "/", 200, 13, "theirs-1"),
            ("GET", "/nope?q=\"x\"", 404, 14, ""),
        ] {
            let line = server.next_line(PROMPTLY).expect("an access log line");
            let entry: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            let time = entry["time"].as_str().expect("time");
            assert!(
                time.len() == "2026-01-01T00:00:00.000000Z".len() && time.ends_with('Z'),
                "{time}"
            );
            assert_eq!(entry["client"], "127.0.0.1", "{line}");
            assert_eq!(entry["method"], method, "{line}");
            assert_eq!(entry["target"], target, "{line}");
            assert_eq!(entry["status"], status, "{line}");
            assert_eq!(entry["bytes"], bytes, "{line}");
            assert!(entry["duration_us"].as_u64().is_some(), "{line}");
            match (request_id, id) {
                (false, _) => assert!(entry.get("request_id").is_none(), "{line}"),
                (true, "") => {
                    let fresh = entry["request_id"].as_str().expect("a fresh id");
                    assert!(!fresh.is_empty() && fresh != "theirs-1", "{line}");
                }
                (true, theirs) => assert_eq!(entry["request_id"], theirs, "{line}"),
            }
        }
        drop(client);
        server.signal(libc::SIGINT);
        assert!(server.wait_exit(PROMPTLY).success());
        let summary = server.next_line(PROMPTLY).unwrap_or_default();
        assert!(
            summary.starts_with("tenk http shut down gracefully"),
            "{summary:?}"
        );
    }
}

/// Regression (issue 18): a server whose stdout reader went away (`tenk
/// serve echo --stats | head -1`) panicked on Ctrl-C printing its
/// summary ("failed printing to stdout: Broken pipe") instead of exiting
/// 0.
#[test]
fn regression_a_closed_stdout_does_not_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenk"))
        .args(["serve", "echo", "--port", "0", "--stats"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tenk");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut banner = String::new();
    stdout.read_line(&mut banner).expect("banner");
    assert!(banner.starts_with("tenk echo listening on "), "{banner}");
    // As `head -1` exits: no reader left, the next write fails with EPIPE.
    drop(stdout);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// The one-shot commands with a reader gone away: no panic either.
#[test]
fn regression_one_shot_output_to_a_closed_stdout_does_not_panic() {
    let echo = Server::echo(&[]);
    let target = echo.addr.to_string();
    for args in [
        &["completions", "bash"][..],
        &["man"],
        &["load", "echo", &target, "-c", "1", "-n", "10", "--json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tenk"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tenk");
        // Closed before the command has anything to print.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
