//! Shared helpers for integration tests: start the real `tenk` binary on
//! port 0, read its banner, signal it, and read its resource use from /proc.
#![allow(dead_code)] // each test file uses a different subset

/// Generates `#[test] fn $test()` in a module per mode, each calling the
/// scenario `$test(mode)`, plus a check that the modes are exactly
/// [`crate::util::TRIGGERS`].
#[allow(unused_macros)] // not every test file runs per trigger mode
macro_rules! every_trigger {
    ([$($mode:ident),* $(,)?] => $tests:tt) => {
        $( every_trigger!(@mode $mode $tests); )*

        #[test]
        fn every_trigger_mode_is_covered() {
            assert_eq!([$(stringify!($mode)),*], crate::util::TRIGGERS);
        }
    };
    (@mode $mode:ident [$($test:ident),* $(,)?]) => {
        mod $mode {
            $(
                #[test]
                fn $test() {
                    super::$test(stringify!($mode));
                }
            )*
        }
    };
}

pub mod backend;
pub mod certs;
pub mod chat_client;
pub mod chat_node;
pub mod clients;
pub mod flood;
pub mod haproxy;
pub mod http_client;
mod pattern;
pub mod pids;
pub mod proxy;
pub mod redis;
pub mod tls;

#[allow(unused_imports)] // each test file uses a different subset
pub use pattern::{letters, pattern};

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Every trigger mode; each runs the same suite.
pub const TRIGGERS: [&str; 3] = ["edge", "level", "oneshot"];

/// `--accept` and `--balance` flags of every multi-core strategy.
pub const STRATEGIES: [&[&str]; 4] = [
    &["--accept", "reuseport"],
    &["--accept", "exclusive"],
    &["--accept", "dispatch", "--balance", "round-robin"],
    &["--accept", "dispatch", "--balance", "least-connections"],
];

/// Generous bound for anything that should happen "promptly" on loopback:
/// correctness checks with ample headroom, never performance targets.
pub const PROMPTLY: Duration = Duration::from_secs(10);

/// A running `tenk serve ...` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub banner: String,
    /// Lines of stdout after the banner, collected by a thread.
    pub lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `tenk serve echo --port 0 <extra>` and waits for its banner.
    pub fn echo(extra: &[&str]) -> Server {
        let mut args = vec!["serve", "echo", "--port", "0"];
        args.extend_from_slice(extra);
        Server::start(&args, |_| {})
    }

    /// Starts `tenk <args>`; `tweak` may adjust the command (environment,
    /// pre-exec settings) before it is spawned. A `tenk serve` also gets
    /// the [`matrix_args`], unless it sets one of those flags itself.
    pub fn start(args: &[&str], tweak: impl FnOnce(&mut Command)) -> Server {
        let matrix = matrix_args_for(args);
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenk"));
        command
            .args(args)
            .args(&matrix)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        tweak(&mut command);
        let mut child = command.spawn().expect("spawn tenk");
        let stdout = child.stdout.take().expect("stdout piped");
        let (banner, lines) = read_banner(stdout);
        // A matrix run that quietly served on one thread would prove nothing.
        let asked = matrix.iter().position(|a| a == "--threads");
        if let Some(n) = asked.and_then(|at| matrix.get(at + 1)) {
            let threads = format!("threads {n}");
            assert!(
                banner.contains(&threads),
                "matrix: {threads} not in {banner:?}"
            );
        }
        let addr = parse_addr(&banner).unwrap_or_else(|| panic!("no address in banner {banner:?}"));
        Server {
            child,
            addr,
            banner,
            lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGINT`) to the server, at once: by
    /// kill(2) from this process, not a `kill` command that would take
    /// milliseconds to start (a test racing the signal against a
    /// connection needs them close together).
    pub fn signal(&self, signal: i32) {
        send_signal(self.pid(), signal);
    }

    /// Waits for the process to exit, failing the test after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within {limit:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Open descriptors of the server process.
    pub fn fd_count(&self) -> usize {
        fd_count(self.pid())
    }

    /// Resident set size of the server, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid())
    }

    /// Peak resident set size of the server, in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        peak_rss_bytes(self.pid())
    }

    /// User + system CPU clock ticks the server has used.
    pub fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.pid())
    }

    /// The next stdout line after the banner (e.g. the final summary).
    pub fn next_line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_banner(stdout: ChildStdout) -> (String, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let reader = BufReader::new(stdout);
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let banner = rx
        .recv_timeout(PROMPTLY)
        .expect("server printed no banner (did it fail to start?)");
    (banner, rx)
}

/// Extra `tenk serve` arguments for the suite matrix, from
/// `TENK_TEST_SERVE_ARGS` (split on whitespace): `.ci/run` runs the echo,
/// HTTP, chat and static-file suites once more per accept strategy with
/// e.g. `--threads 2 --accept dispatch`, so every scenario also holds on
/// worker threads. Empty when unset (the normal run).
pub fn matrix_args() -> Vec<String> {
    std::env::var("TENK_TEST_SERVE_ARGS")
        .map(|args| args.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The [`matrix_args`] for `tenk <args>`: none unless it is a `tenk serve`,
/// and none if the test sets one of the matrix's flags itself (it asked
/// for that setting on purpose; clap would refuse the flag twice anyway).
fn matrix_args_for(args: &[&str]) -> Vec<String> {
    let matrix = matrix_args();
    if args.first() != Some(&"serve") {
        return Vec::new();
    }
    let own = |flag: &String| flag.starts_with("--") && args.contains(&flag.as_str());
    if let Some(flag) = matrix.iter().find(|flag| own(flag)) {
        eprintln!("matrix: not adding {matrix:?}: the test sets {flag} itself");
        return Vec::new();
    }
    matrix
}

/// In a matrix run (see [`matrix_args`]), prints why the calling test
/// does not apply there and returns true: the test should return at once.
/// Use it only for a scenario that cannot hold across worker threads,
/// never to hide a failure.
pub fn skip_in_matrix(test: &str, why: &str) -> bool {
    let matrix = matrix_args();
    if matrix.is_empty() {
        return false;
    }
    eprintln!("SKIPPED {test} with {matrix:?}: {why}");
    true
}

/// The `ADDR` of `tenk ... listening on ADDR (...)`.
pub fn parse_addr(banner: &str) -> Option<SocketAddr> {
    let rest = banner.split(" listening on ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

/// Resident set size of a process (`VmRSS`), in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    status_kib(pid, "VmRSS") * 1024
}

/// Peak resident set size of a process (`VmHWM`), in bytes.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    status_kib(pid, "VmHWM") * 1024
}

/// The `field` line of /proc/PID/status, a size in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
}

pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    utime + stime
}

/// Runs `tenk <args>` to completion (it is expected to fail at once),
/// killing it and failing the test if it is still running after
/// [`PROMPTLY`].
pub fn run_tenk(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenk"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tenk");
    let deadline = Instant::now() + PROMPTLY;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tenk {args:?} was still running after {PROMPTLY:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    // The outputs are a line or two: they fit in the pipes, so reading
    // after the exit cannot deadlock.
    child.wait_with_output().expect("collect output")
}

/// Sends `signal` to process `pid` by kill(2).
pub fn send_signal(pid: u32, signal: i32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("pid");
    let sig = rustix::process::Signal::from_named_raw(signal).expect("a named signal");
    rustix::process::kill_process(pid, sig).unwrap_or_else(|e| panic!("kill -{signal}: {e}"));
}

/// Polls `condition` until it holds or `limit` passes; returns whether it
/// held. For state only observable from outside (fd counts, RSS), where no
/// readiness event exists to wait on.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads until EOF. A reset, a timeout or any other error fails the test:
/// the server's answer must be followed by a clean close, read returning
/// data then 0.
pub fn read_to_eof(what: &str, reader: &mut impl Read) -> Vec<u8> {
    let mut all = Vec::new();
    if let Err(e) = reader.read_to_end(&mut all) {
        let kind = if e.kind() == ErrorKind::ConnectionReset {
            "connection reset"
        } else {
            "error"
        };
        panic!(
            "{what}: {kind} instead of EOF after {} bytes ({e}): {:?}",
            all.len(),
            String::from_utf8_lossy(&all[..all.len().min(300)])
        );
    }
    all
}

/// Reads exactly `n` bytes, failing on EOF.
pub fn read_exact_vec(stream: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).expect("read_exact");
    buf
}

impl Server {
    /// Starts `command`, which must end up running `tenk serve ...` in the
    /// process it spawns (a wrapper that `exec`s it keeps the pid), and
    /// waits for the banner. stdin is null and stdout piped; stderr is
    /// inherited.
    pub fn spawn(mut command: Command) -> Server {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("spawn server command");
        let stdout = child.stdout.take().expect("stdout piped");
        let (banner, lines) = read_banner(stdout);
        let addr = parse_addr(&banner).unwrap_or_else(|| panic!("no address in banner {banner:?}"));
        Server {
            child,
            addr,
            banner,
            lines,
        }
    }

    /// Starts `tenk <args>` through `sh -c '<prelude>; exec "$0" "$@"'`, so
    /// tenk inherits what the shell set up (`ulimit -n 64`, `trap "" INT`).
    /// `exec` keeps the pid: signals and /proc readings reach tenk itself.
    pub fn via_shell(prelude: &str, args: &[&str]) -> Server {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("{prelude}; exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_tenk"))
            .args(args);
        Server::spawn(command)
    }
}

/// The send and receive queues, in bytes, of the IPv4 TCP socket bound to
/// `local` and connected to `peer` (in this process or another): for an
/// established socket, bytes written but not yet acknowledged, and bytes
/// received but not yet read by the process that owns it. `None` if no such
/// socket exists.
pub fn tcp_queues(local: SocketAddr, peer: SocketAddr) -> Option<(u64, u64)> {
    tcp_diag(local, peer).map(|d| (d.send_queue, d.recv_queue))
}

/// What the kernel reports of one TCP socket (`struct inet_diag_msg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpDiag {
    /// Bytes written but not yet acknowledged.
    pub send_queue: u64,
    /// Bytes received but not yet read by the process that owns it.
    pub recv_queue: u64,
    /// The timer pending on it (`idiag_timer`): 0 none, 1 retransmit,
    /// 2 keepalive, 3 TIME_WAIT, 4 zero-window probe.
    pub timer: u8,
    /// Time until that timer fires.
    pub expires: Duration,
}

/// The keepalive timer's number in [`TcpDiag::timer`].
pub const TIMER_KEEPALIVE: u8 = 2;

/// [`TcpDiag`] of the IPv4 TCP socket bound to `local` and connected to
/// `peer` (in this process or another); `None` if no such socket exists.
///
/// Asked of the kernel with one `sock_diag` netlink request for that exact
/// address pair (what `ss` uses): `/proc/net/tcp` would have to list every
/// socket of the namespace, tens of thousands in TIME_WAIT after a few
/// tests, at tens of milliseconds a reading.
pub fn tcp_diag(local: SocketAddr, peer: SocketAddr) -> Option<TcpDiag> {
    use rustix::net::{netlink, AddressFamily, SocketFlags, SocketType};
    use std::fs::File;
    use std::io::Write;

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    let (SocketAddr::V4(local), SocketAddr::V4(peer)) = (local, peer) else {
        panic!("tcp_diag handles IPv4 only");
    };
    // struct nlmsghdr, then struct inet_diag_req_v2 (linux/inet_diag.h).
    let mut request = Vec::with_capacity(72);
    request.extend_from_slice(&72u32.to_ne_bytes()); // nlmsg_len
    request.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes()); // nlmsg_type
    request.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes()); // nlmsg_flags
    request.extend_from_slice(&[0; 8]); // nlmsg_seq, nlmsg_pid
    request.push(libc::AF_INET as u8); // sdiag_family
    request.push(libc::IPPROTO_TCP as u8); // sdiag_protocol
    request.extend_from_slice(&[0, 0]); // idiag_ext, pad
    request.extend_from_slice(&u32::MAX.to_ne_bytes()); // idiag_states: any
    request.extend_from_slice(&local.port().to_be_bytes()); // idiag_sport
    request.extend_from_slice(&peer.port().to_be_bytes()); // idiag_dport
    request.extend_from_slice(&local.ip().octets()); // idiag_src[0]
    request.extend_from_slice(&[0; 12]);
    request.extend_from_slice(&peer.ip().octets()); // idiag_dst[0]
    request.extend_from_slice(&[0; 12]);
    request.extend_from_slice(&[0; 4]); // idiag_if
    request.extend_from_slice(&[0xff; 8]); // idiag_cookie: INET_DIAG_NOCOOKIE
    assert_eq!(request.len(), 72);

    let socket = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )
    .expect("sock_diag socket");
    let mut netlink = File::from(socket);
    netlink.write_all(&request).expect("sock_diag request");
    let mut reply = [0u8; 1024];
    let n = netlink.read(&mut reply).expect("sock_diag reply");
    let word = |at: usize| u32::from_ne_bytes(reply[at..at + 4].try_into().unwrap());
    let kind = u16::from_ne_bytes([reply[4], reply[5]]);
    if n < 16 || kind == libc::NLMSG_ERROR as u16 {
        // ENOENT: no such socket.
        return None;
    }
    assert_eq!(kind, SOCK_DIAG_BY_FAMILY, "unexpected netlink reply");
    // After the 16-byte nlmsghdr, struct inet_diag_msg: 4 bytes of
    // family/state/timer/retrans, the 48-byte inet_diag_sockid,
    // idiag_expires (ms), then idiag_rqueue and idiag_wqueue.
    assert!(n >= 16 + 64, "short sock_diag reply ({n} B)");
    Some(TcpDiag {
        send_queue: u64::from(word(16 + 60)),
        recv_queue: u64::from(word(16 + 56)),
        timer: reply[16 + 2],
        expires: Duration::from_millis(u64::from(word(16 + 52))),
    })
}

/// The number just before `label` in the summary (`5000 accepted`,
/// `0 accept pauses`), wherever it stands and whatever follows it.
pub fn summary_count(summary: &str, label: &str) -> u64 {
    let (_, totals) = summary.split_once(": ").expect("summary totals");
    let words: Vec<&str> = totals
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')'))
        .filter(|word| !word.is_empty())
        .collect();
    let label: Vec<&str> = label.split_whitespace().collect();
    words
        .windows(label.len() + 1)
        .find_map(|w| (w[1..] == label[..]).then(|| w[0].parse().ok()).flatten())
        .unwrap_or_else(|| panic!("no '{}' count in {summary:?}", label.join(" ")))
}

/// The counts of the summary's `closed (...)` list, by cause.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Closes {
    pub client: u64,
    pub idle_timeout: u64,
    pub write_timeout: u64,
    pub buffer_limit: u64,
    pub error: u64,
    pub local: u64,
}

pub fn closes(summary: &str) -> Closes {
    let list = summary
        .split_once("closed (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .unwrap_or_else(|| panic!("no 'closed (...)' list in {summary:?}"))
        .0;
    let mut closes = Closes::default();
    for item in list.split(", ") {
        let (label, count) = item
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("odd item {item:?} in {summary:?}"));
        let count: u64 = count.parse().expect("close count");
        match label {
            "client" => closes.client = count,
            "idle timeout" => closes.idle_timeout = count,
            "write timeout" => closes.write_timeout = count,
            "buffer limit" => closes.buffer_limit = count,
            "error" => closes.error = count,
            "local" => closes.local = count,
            other => panic!("unknown close cause {other:?} in {summary:?}"),
        }
    }
    closes
}

pub fn serve(trigger: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--trigger", trigger];
    args.extend_from_slice(extra);
    let server = Server::echo(&args);
    assert!(
        server.banner.contains(&format!("trigger {trigger}")),
        "banner does not name the mode: {:?}",
        server.banner
    );
    server
}

/// A blocking client whose reads and writes fail after [`PROMPTLY`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, PROMPTLY).expect("connect");
    set_timeouts(&stream, PROMPTLY);
    stream
}

/// Makes `stream`'s blocking reads and writes fail after `limit`.
pub fn set_timeouts(stream: &TcpStream, limit: Duration) {
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    stream
        .set_write_timeout(Some(limit))
        .expect("write timeout");
}

pub fn assert_alive(server: &mut Server, what: &str) {
    let status = server.child.try_wait().expect("try_wait");
    assert!(status.is_none(), "{what}: server exited: {status:?}");
}

/// Waits for the server to exit and returns its status and its final
/// summary line (skipping `--stats` lines).
pub fn exit_and_summary(server: &mut Server, limit: Duration) -> (ExitStatus, String) {
    let status = server.wait_exit(limit);
    loop {
        match server.next_line(PROMPTLY) {
            Some(line) if line.starts_with("tenk echo ") => return (status, line),
            Some(_) => continue,
            None => panic!("no summary line on stdout (exit {status:?})"),
        }
    }
}

/// Signals SIGINT and checks that the server drains and exits 0 with the
/// graceful summary, which it returns.
pub fn shut_down_gracefully(server: &mut Server, what: &str) -> String {
    server.signal(libc::SIGINT);
    let (status, summary) = exit_and_summary(server, PROMPTLY);
    assert_eq!(status.code(), Some(0), "{what}: exit status ({summary})");
    assert!(
        summary.starts_with("tenk echo shut down gracefully after "),
        "{what}: summary {summary:?}"
    );
    summary
}
