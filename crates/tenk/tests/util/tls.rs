//! TLS through the real binary: the server flags of a [`TestPki`], Python's
//! `ssl` module as a client (`tls_client.py` beside this file: OpenSSL, not
//! rustls, so the two sides are independent implementations), and the
//! summary lines a TLS server prints at exit.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::certs::TestPki;
use super::clients;
use super::{Server, PROMPTLY};

/// The client script; its docstring lists the modes.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/util/tls_client.py");

/// `--tls-cert CERT --tls-key KEY` of `pki`.
pub fn flags(pki: &TestPki) -> [&str; 4] {
    [
        "--tls-cert",
        pki.cert.to_str().expect("UTF-8 temporary path"),
        "--tls-key",
        pki.key.to_str().expect("UTF-8 temporary path"),
    ]
}

/// Starts `tenk serve <server> --port 0 --trigger <trigger>` with TLS and
/// `extra`; the banner must say `tls`.
pub fn serve(pki: &TestPki, server: &str, trigger: &str, extra: &[&str]) -> Server {
    let mut args = vec!["serve", server, "--port", "0", "--trigger", trigger];
    args.extend_from_slice(&flags(pki));
    args.extend_from_slice(extra);
    let server = Server::start(&args, |_| {});
    assert!(
        server.banner.contains(", tls"),
        "banner does not say tls: {:?}",
        server.banner
    );
    server
}

/// `python3 tls_client.py CA HOST PORT <mode> <args>`.
fn command(pki: &TestPki, addr: SocketAddr, mode: &str, args: &[&str]) -> Command {
    let mut command = Command::new("python3");
    command
        .arg(SCRIPT)
        .arg(&pki.ca)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(mode)
        .args(args);
    command
}

/// Runs a one-shot mode of the Python client with `stdin` as its input;
/// its stdout. Fails the test if the client fails.
pub fn python(pki: &TestPki, addr: SocketAddr, mode: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    clients::run(command(pki, addr, mode, args), stdin).stdout
}

/// A long-lived mode of the Python client (`stall`, `idle`, `slow`): its
/// stdout read line by line while it runs, ended by closing its stdin.
/// Killed on drop.
pub struct PythonClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl PythonClient {
    pub fn start(pki: &TestPki, addr: SocketAddr, mode: &str, args: &[&str]) -> PythonClient {
        let mut child = command(pki, addr, mode, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        PythonClient {
            child,
            stdin,
            lines,
        }
    }

    /// The next line, waiting at most `limit`; `None` if none came.
    pub fn try_line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    /// The next line, which must come within [`PROMPTLY`] after `after`
    /// (the time the client needs besides, e.g. a paced transfer).
    pub fn line(&self, after: Duration) -> String {
        self.try_line(after + PROMPTLY)
            .unwrap_or_else(|| panic!("the Python client printed no line (it failed, or hangs)"))
    }

    /// Closes its stdin (the signal to finish), waits for it to exit 0 and
    /// returns the lines it printed since the last one read.
    pub fn finish(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let deadline = Instant::now() + PROMPTLY;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the Python client did not exit");
            thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "the Python client failed: {status}");
        self.lines.try_iter().collect()
    }
}

impl Drop for PythonClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a TLS server printed at a graceful exit.
pub struct Summary {
    /// `tenk NAME shut down gracefully after ...`: the reactor's totals.
    pub main: String,
    /// `tenk NAME tls: N handshakes (...)`.
    pub tls: String,
}

impl Summary {
    /// `(full, resumed)` of the tls line's `N handshakes (full F, resumed R)`.
    pub fn full_and_resumed(&self) -> (u64, u64) {
        let inside = self
            .tls
            .split_once("handshakes (full ")
            .and_then(|(_, rest)| rest.split_once(')'))
            .unwrap_or_else(|| panic!("no handshake kinds in {:?}", self.tls))
            .0;
        let (full, resumed) = inside
            .split_once(", resumed ")
            .unwrap_or_else(|| panic!("odd handshake kinds in {:?}", self.tls));
        (
            full.parse().expect("full count"),
            resumed.parse().expect("resumed count"),
        )
    }
}

/// Signals SIGINT, expects exit 0 and returns the summary of `tenk serve
/// <name>` (skipping `--stats` lines and the server's own last line).
pub fn shut_down(server: &mut Server, name: &str) -> Summary {
    server.signal(libc::SIGINT);
    let status = server.wait_exit(PROMPTLY);
    // The server has exited: the reader thread sees EOF and hangs up, so
    // this ends once every line is in.
    let lines: Vec<String> = std::iter::from_fn(|| server.next_line(PROMPTLY)).collect();
    assert_eq!(
        status.code(),
        Some(0),
        "{name}: exit status; printed {lines:#?}"
    );
    let find = |prefix: String| {
        lines
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:#?}"))
            .clone()
    };
    Summary {
        main: find(format!("tenk {name} shut down gracefully after ")),
        tls: find(format!("tenk {name} tls: ")),
    }
}
