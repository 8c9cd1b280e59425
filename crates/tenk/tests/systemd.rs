//! systemd integration (docs/operations.md): socket activation through a
//! hand-made launcher (`util/listen_fds.py`) and through
//! `systemd-socket-activate` when installed, and the sd_notify messages of
//! a run with a graceful restart, received on a test socket in order.

mod util;

use std::io::Write as _;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpStream};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::http_client::Client;
use util::pids::{kill, read_pid, wait_exited, wait_pid_change, PidFileGuard};
use util::{Server, PROMPTLY};

const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/util/listen_fds.py");

/// `python3 listen_fds.py SPECS tenk serve http ARGS` (`--port 1` unless
/// `ARGS` has a port: with sockets passed, it is ignored).
fn launch(specs: &str, args: &[&str]) -> Command {
    let mut command = Command::new("python3");
    command
        .arg(LAUNCHER)
        .arg(specs)
        .arg(env!("CARGO_BIN_EXE_tenk"))
        .args(["serve", "http"])
        .args(args);
    if !args.contains(&"--port") {
        command.args(["--port", "1"]);
    }
    command
}

fn served(addr: SocketAddr) {
    let mut client = Client::connect(addr);
    assert_eq!(client.get("/").status, 200);
}

#[test]
fn socket_activation_serves_on_the_passed_socket_and_ignores_the_port() {
    for (specs, args, says) in [
        ("plain", &[][..], None),
        (
            "plain",
            &["--threads", "2", "--accept", "reuseport"][..],
            Some("accept exclusive instead of reuseport"),
        ),
        ("plain", &["--threads", "2", "--accept", "exclusive"], None),
        ("plain", &["--threads", "2", "--accept", "dispatch"], None),
        // A socket bound with SO_REUSEPORT (ReusePort=yes): worker 1 binds
        // its own beside it.
        (
            "reuseport",
            &["--threads", "2", "--accept", "reuseport"],
            None,
        ),
        (
            "reuseport,reuseport",
            &["--threads", "2", "--accept", "reuseport"],
            None,
        ),
        ("plain,plain", &[], None),
    ] {
        let server = Server::spawn(launch(specs, args));
        let what = format!("{specs} {args:?}: {}", server.banner);
        let count = specs.split(',').count();
        assert!(
            server.banner.contains(&format!(
                "socket activation: {count} socket(s) (web0{}), --bind/--port ignored",
                if count == 2 { ", web1" } else { "" }
            )),
            "{what}"
        );
        assert_ne!(server.addr.port(), 1, "{what}");
        match says {
            Some(says) => assert!(server.banner.contains(says), "{what}"),
            None => assert!(!server.banner.contains("instead of"), "{what}"),
        }
        for _ in 0..8 {
            served(server.addr);
        }
    }
}

#[test]
fn socket_activation_for_another_pid_is_ignored() {
    // LISTEN_PID names another process: the variables were not meant for
    // this one, which binds its own port.
    let server = Server::spawn(launch("otherpid", &["--port", "0"]));
    assert!(
        !server.banner.contains("socket activation"),
        "{}",
        server.banner
    );
    served(server.addr);
}

#[test]
fn a_passed_socket_that_is_not_a_listener_is_refused() {
    let out = launch("connected", &[])
        .stdin(Stdio::null())
        .output()
        .expect("run the launcher");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("socket activation") && err.contains("descriptor 3 is not a listening socket"),
        "{err}"
    );
}

/// An activated socket is handed over by a restart like a bound one.
#[test]
fn an_activated_socket_is_handed_over_by_a_restart() {
    let dir = std::env::temp_dir().join(format!("tenk-systemd-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("tenk.pid");
    let mut server = Server::spawn(launch("plain", &["--pid-file", pid_file.to_str().unwrap()]));
    let _guard = PidFileGuard(&pid_file);
    let old = server.pid();
    assert!(util::wait_until(PROMPTLY, || read_pid(&pid_file) == Some(old)));
    kill(old, libc::SIGHUP);
    let new = wait_pid_change(&pid_file, old, PROMPTLY);
    server.wait_line("sockets handed over by a graceful restart");
    assert!(server.wait_exit(PROMPTLY).success());
    served(server.addr);
    kill(new, libc::SIGTERM);
    wait_exited(new, PROMPTLY, "the new process");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The address after `, metrics ` in a banner.
fn metrics_addr(banner: &str) -> SocketAddr {
    banner
        .split(", metrics ")
        .nth(1)
        .and_then(|rest| rest.split([',', ')']).next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {banner:?}"))
}

/// The pid `/metrics` at `addr` says answered.
fn metrics_pid(addr: SocketAddr) -> u32 {
    let answer = Client::connect(addr).get("/metrics");
    assert_eq!(answer.status, 200, "{}", answer.head);
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    body.split("tenk_process_info{pid=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no tenk_process_info pid in {body}"))
}

/// A passed socket named `metrics` (`FileDescriptorName=metrics`) is the
/// metrics listener, without `--metrics`, not a serving socket; a
/// restart hands it over with the others.
#[test]
fn a_socket_named_metrics_is_the_metrics_listener() {
    let dir = std::env::temp_dir().join(format!("tenk-systemd-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("tenk.pid");
    let mut server = Server::spawn(launch(
        "plain,metrics",
        &["--pid-file", pid_file.to_str().unwrap()],
    ));
    let _guard = PidFileGuard(&pid_file);
    assert!(
        server
            .banner
            .contains("socket activation: 1 socket(s) (web0)"),
        "{}",
        server.banner
    );
    let metrics = metrics_addr(&server.banner);
    assert_ne!(metrics, server.addr);
    let old = server.pid();
    assert_eq!(metrics_pid(metrics), old);
    served(server.addr);
    kill(old, libc::SIGHUP);
    let new = wait_pid_change(&pid_file, old, PROMPTLY);
    assert!(server.wait_exit(PROMPTLY).success());
    assert_eq!(metrics_pid(metrics), new);
    served(server.addr);
    kill(new, libc::SIGTERM);
    wait_exited(new, PROMPTLY, "the new process");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Through systemd's own launcher, when installed: it listens, waits for
/// the first connection, then execs tenk with the socket.
#[test]
fn socket_activation_through_systemd_socket_activate() {
    if !util::clients::available("systemd-socket-activate", "socket activation") {
        return;
    }
    let port = util::haproxy::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut command = Command::new("systemd-socket-activate");
    command
        .arg(format!("--listen={addr}"))
        .arg("--fdname=http")
        .arg(env!("CARGO_BIN_EXE_tenk"))
        .args(["serve", "http", "--port", "1", "--threads", "2"]);
    // Started before the banner: the launcher starts tenk on the first
    // connection, which tenk then serves.
    let first = std::thread::spawn(move || {
        let deadline = Instant::now() + PROMPTLY;
        loop {
            match TcpStream::connect(addr) {
                Ok(stream) => break stream,
                Err(e) => {
                    assert!(Instant::now() < deadline, "connect to the launcher: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    });
    let server = Server::spawn(command);
    let mut stream = first.join().expect("the first connection");
    util::set_timeouts(&stream, PROMPTLY);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let answer = util::read_to_eof("the first request", &mut stream);
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    assert!(
        server
            .banner
            .contains("socket activation: 1 socket(s) (http), --bind/--port ignored"),
        "{}",
        server.banner
    );
    assert!(
        server
            .banner
            .contains("accept exclusive instead of reuseport"),
        "{}",
        server.banner
    );
    assert_eq!(server.addr, addr);
    served(addr);
}

/// A notification and the pid of the process that sent it.
fn receive(socket: &UnixDatagram, limit: Duration) -> Option<(String, u32)> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        socket,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &mut control,
        rustix::net::RecvFlags::empty(),
    )
    .ok()?;
    let pid = control
        .drain()
        .find_map(|m| match m {
            rustix::net::RecvAncillaryMessage::ScmCredentials(cred) => {
                Some(cred.pid.as_raw_nonzero().get() as u32)
            }
            _ => None,
        })
        .expect("the sender's credentials");
    Some((String::from_utf8_lossy(&buf[..got.bytes]).into_owned(), pid))
}

/// The next notification that is not a watchdog ping (counted).
fn next_state(socket: &UnixDatagram, pings: &mut Vec<u32>) -> (String, u32) {
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (message, pid) = receive(socket, left).expect("a notification in time");
        if message == "WATCHDOG=1" {
            pings.push(pid);
            continue;
        }
        return (message, pid);
    }
}

/// READY=1 when serving; across a SIGHUP RELOADING=1 (with the clock),
/// MAINPID= the new process, READY=1 from the new process; STOPPING=1 at
/// the end, from the process stopping; WATCHDOG=1 from the main process
/// meanwhile. Sent to an abstract socket (`@name`).
#[test]
fn sd_notify_messages_come_in_order_across_a_restart() {
    let name = format!("tenk-test-notify-{}", std::process::id());
    let socket = UnixDatagram::bind_addr(
        &std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap(),
    )
    .unwrap();
    rustix::net::sockopt::set_socket_passcred(&socket, true).unwrap();
    let dir = std::env::temp_dir().join(format!("tenk-systemd-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("tenk.pid");
    let pid_path = pid_file.to_str().unwrap().to_string();
    let server = Server::start(
        &["serve", "http", "--port", "0", "--pid-file", &pid_path],
        |command| {
            command
                .env("NOTIFY_SOCKET", format!("@{name}"))
                .env("WATCHDOG_USEC", "200000");
        },
    );
    let _guard = PidFileGuard(Path::new(&pid_file));
    let old = server.pid();
    let mut pings = Vec::new();
    assert_eq!(next_state(&socket, &mut pings), ("READY=1".into(), old));
    // Half the watchdog period apart: a few come while nothing happens.
    std::thread::sleep(Duration::from_millis(500));
    kill(old, libc::SIGHUP);
    let (reloading, pid) = next_state(&socket, &mut pings);
    assert_eq!(pid, old);
    let usec = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("{reloading:?}"));
    assert!(usec.parse::<u64>().is_ok(), "{reloading:?}");
    let (mainpid, pid) = next_state(&socket, &mut pings);
    assert_eq!(pid, old);
    let new: u32 = mainpid
        .strip_prefix("MAINPID=")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{mainpid:?}"));
    assert_eq!(next_state(&socket, &mut pings), ("READY=1".into(), new));
    assert_eq!(wait_pid_change(&pid_file, old, PROMPTLY), new);
    wait_exited(old, PROMPTLY, "the old process");
    let before = pings.len();
    std::thread::sleep(Duration::from_millis(500));
    kill(new, libc::SIGTERM);
    assert_eq!(next_state(&socket, &mut pings), ("STOPPING=1".into(), new));
    wait_exited(new, PROMPTLY, "the new process");
    assert!(
        pings[..before].iter().filter(|&&p| p == old).count() >= 2,
        "the old process sent {pings:?}"
    );
    assert!(
        pings[before..].iter().all(|&p| p == new) && pings.len() - before >= 2,
        "after the restart only the new process pings: {pings:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
