//! A signal sent the moment the banner is out is never lost: SIGINT and
//! SIGTERM shut the server down, SIGHUP restarts it (or is refused with a
//! line). Guards the suspicion of a window between the banner and the
//! watcher reading its signalfd (a SIGINT once seemed ignored right after
//! the proxy's banner): threads spawned before the mask was set, a signal
//! consumed or discarded before the signalfd is read. Every server, on one
//! thread, on two, and under `--accept dispatch` (the acceptor thread).

mod util;

use std::time::{Duration, Instant};

use util::backend::{Recorder, Reply};
use util::pids::{kill, wait_exited, wait_pid_change, PidFileGuard};
use util::Server;

/// How fast an idle server must exit on SIGINT/SIGTERM: it takes
/// milliseconds, this is 10x headroom over a loaded machine.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// Starts per layout: signals alternate SIGINT and SIGTERM.
const ROUNDS: usize = 20;

/// The thread layouts a signal must reach.
const LAYOUTS: [&[&str]; 3] = [
    &["--threads", "1"],
    &["--threads", "2"],
    &["--threads", "2", "--accept", "dispatch"],
];

/// `tenk serve <server> --port 0 <layout> <extra>`, an upstream for the
/// proxy.
fn start(server: &str, upstream: &str, layout: &[&str], extra: &[&str]) -> Server {
    let mut args = vec!["serve", server, "--port", "0"];
    if server == "proxy" {
        args.extend_from_slice(&["--upstream", upstream]);
    }
    args.extend_from_slice(layout);
    args.extend_from_slice(extra);
    Server::start(&args, |_| {})
}

/// Each layout `ROUNDS` times: banner, signal at once, exit 0 promptly.
fn shutdown_right_after_the_banner(server: &str, extra: &[&str]) {
    let backend = Recorder::start(Reply::ok("up"));
    let upstream = backend.upstream();
    let started = Instant::now();
    for layout in LAYOUTS {
        for round in 0..ROUNDS {
            let signal = if round % 2 == 0 {
                libc::SIGINT
            } else {
                libc::SIGTERM
            };
            let mut s = start(server, &upstream, layout, extra);
            s.signal(signal);
            let sent = Instant::now();
            let exited = util::wait_until(EXIT_WITHIN, || {
                s.child.try_wait().expect("try_wait").is_some()
            });
            assert!(
                exited,
                "{server} {layout:?} round {round}: signal {signal} sent right after \
                 the banner was lost (still running after {EXIT_WITHIN:?})"
            );
            let status = s.child.wait().expect("wait");
            assert_eq!(
                status.code(),
                Some(0),
                "{server} {layout:?} round {round}: signal {signal}: exit {status:?} \
                 after {:?}",
                sent.elapsed()
            );
        }
    }
    eprintln!(
        "{server}: {} starts in {:?}",
        LAYOUTS.len() * ROUNDS,
        started.elapsed()
    );
}

#[test]
fn echo_exits_on_a_signal_sent_right_after_its_banner() {
    shutdown_right_after_the_banner("echo", &[]);
}

#[test]
fn chat_exits_on_a_signal_sent_right_after_its_banner() {
    shutdown_right_after_the_banner("chat", &[]);
}

#[test]
fn http_exits_on_a_signal_sent_right_after_its_banner() {
    shutdown_right_after_the_banner("http", &[]);
}

#[test]
fn proxy_exits_on_a_signal_sent_right_after_its_banner() {
    shutdown_right_after_the_banner("proxy", &[]);
}

/// The proxy's health checks start at the first wake-up, which the banner
/// precedes: a shutdown must not wait on them.
#[test]
fn a_proxy_with_health_checks_exits_on_a_signal_sent_right_after_its_banner() {
    shutdown_right_after_the_banner(
        "proxy",
        &["--health-check", "/health", "--health-interval", "100ms"],
    );
}

/// SIGHUP the moment the banner is out: the restart happens (the pid file
/// names a new process, which a SIGINT then stops), never silently lost.
#[test]
fn a_sighup_right_after_the_banner_restarts_every_server() {
    let backend = Recorder::start(Reply::ok("up"));
    let upstream = backend.upstream();
    let dir = std::env::temp_dir().join(format!("tenk-signals-at-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let pid_file = dir.join("tenk.pid");
    let pid_path = pid_file.to_str().expect("UTF-8 path");
    for server in ["echo", "chat", "http", "proxy"] {
        for layout in LAYOUTS {
            let _ = std::fs::remove_file(&pid_file);
            let _guard = PidFileGuard(&pid_file);
            let mut s = start(server, &upstream, layout, &["--pid-file", pid_path]);
            let old = s.pid();
            s.signal(libc::SIGHUP);
            let new = wait_pid_change(&pid_file, old, util::PROMPTLY);
            s.wait_line(&format!("process {new} serves after"));
            assert!(
                s.wait_exit(EXIT_WITHIN).success(),
                "{server} {layout:?}: the old process"
            );
            kill(new, libc::SIGINT);
            wait_exited(new, EXIT_WITHIN, "the new process");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
