//! Shutting down `tenk serve echo --threads 2` under every accept
//! strategy (issue 14, where `--accept dispatch` could hang forever):
//!
//! - after a mixed workload, SIGINT with connections opened just before
//!   it (handed over in the same wake-up as the shutdown, under dispatch)
//!   still ends the process within the drain timeout;
//! - a second SIGINT exits 130 while a worker is still draining, even
//!   once the thread that used to read the signals (the acceptor under
//!   dispatch, worker 0 otherwise) has exited.
//!
//! The deterministic form of the first, an inbox filled before the
//! shutdown and adopted in the same wake-up, is
//! `a_connection_handed_over_with_the_shutdown_is_drained` in
//! `crates/server/src/serving/handover.rs`.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use util::flood::{pattern, Flooder};
use util::{connect, exit_and_summary, Server, PROMPTLY, STRATEGIES};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Exit status of a forced stop (second signal), documented in main.rs.
const EXIT_FORCED: i32 = 130;

/// A reply later than this did not come "at once" (loopback echo is well
/// under a millisecond).
const PROMPT: Duration = Duration::from_millis(200);

/// Sends `message` and reads its echo, checking it.
fn echo(stream: &mut TcpStream, message: &[u8]) {
    let mut writer = stream.try_clone().expect("clone");
    let message_copy = message.to_vec();
    // Written from a thread: a large message's echo must be read while it
    // is still being sent, or both sides' buffers fill.
    let sender = thread::spawn(move || writer.write_all(&message_copy));
    let echoed = util::read_exact_vec(stream, message.len());
    sender.join().expect("sender").expect("write");
    assert!(echoed == message, "echo differs ({} B)", message.len());
}

/// A small deterministic generator for message sizes.
fn sizes(seed: u64, count: usize, max: usize) -> Vec<usize> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1 + (x % max as u64) as usize
        })
        .collect()
}

/// The workload, reduced: concurrent clients with random sizes, a
/// slow reader, a half-close, resets mid-send, connect/disconnect cycles,
/// a flood beside a ping-pong client, many connections at once. Every
/// client that expects an echo checks it.
fn mixed_workload(addr: SocketAddr) {
    thread::scope(|s| {
        for id in 0..40 {
            s.spawn(move || {
                let mut c = connect(addr);
                for size in sizes(id, 4, 64 * KIB) {
                    echo(&mut c, &pattern(size));
                }
            });
        }
        // A slow reader: its echo waits in the server while it dawdles.
        s.spawn(move || {
            let mut c = connect(addr);
            let message = pattern(MIB);
            let mut writer = c.try_clone().unwrap();
            let sent = message.clone();
            let sender = thread::spawn(move || writer.write_all(&sent));
            let mut got = Vec::with_capacity(MIB);
            let mut buf = [0; 16 * KIB];
            while got.len() < MIB {
                let n = c.read(&mut buf).expect("slow read");
                assert!(n > 0, "EOF after {} B", got.len());
                got.extend_from_slice(&buf[..n]);
                // Reading slowly is the point, not a synchronisation.
                thread::sleep(Duration::from_millis(2));
            }
            sender.join().unwrap().expect("slow reader's send");
            assert!(got == message, "slow reader's echo differs");
        });
        // A half-close: the echo of everything sent, then EOF.
        s.spawn(move || {
            let mut c = connect(addr);
            let message = pattern(10 * KIB);
            c.write_all(&message).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).expect("EOF after the half-close");
            assert!(got == message, "half-close echo differs");
        });
        // Resets mid-send: closed with echo unread, which makes the
        // kernel send RST while the server may still be writing.
        s.spawn(move || {
            for _ in 0..20 {
                let mut c = connect(addr);
                c.write_all(&pattern(128 * KIB)).unwrap();
                let mut first = [0; 1];
                c.read_exact(&mut first).unwrap();
            }
        });
        // Connect/disconnect cycles, every other one with a round trip.
        s.spawn(move || {
            for i in 0..300 {
                let mut c = connect(addr);
                if i % 2 == 0 {
                    echo(&mut c, b"cycle");
                }
            }
        });
        // A flood beside a ping-pong client.
        s.spawn(move || {
            let mut flooder = Flooder::start(addr, 8 * MIB);
            flooder.read_all_echo("flood");
        });
        s.spawn(move || {
            let mut c = connect(addr);
            for i in 0..200 {
                echo(&mut c, format!("ping {i}").as_bytes());
            }
        });
        // Many connections at once, each served, then all closed.
        s.spawn(move || {
            let mut many: Vec<TcpStream> = (0..300).map(|_| connect(addr)).collect();
            for c in &mut many {
                echo(c, b"many");
            }
        });
    });
}

/// Regression (issue 14): after a mixed workload, `--accept dispatch`
/// never exited on SIGINT sent right after a client connected: the
/// worker learnt of the shutdown and adopted the connection in one
/// wake-up, drained before adopting (nothing to drain, so no deadline),
/// and then held the connection forever. Under every strategy the process
/// now exits 0 within the drain timeout, and the client sees its
/// connection end.
#[test]
fn regression_sigint_after_a_mixed_workload_exits_within_the_drain_timeout() {
    const DRAIN: Duration = Duration::from_secs(2);
    for accept in STRATEGIES {
        let started = Instant::now();
        let mut args = vec!["serve", "echo", "--port", "0", "--threads", "2"];
        args.extend_from_slice(accept);
        args.extend_from_slice(&["--drain-timeout", "2s"]);
        let mut server = Server::start(&args, |_| {});
        mixed_workload(server.addr);

        // Connected, not yet served: SIGINT follows at once, so a
        // hand-over and the shutdown often meet in one wake-up. (A few, to
        // make that likely on each worker; the issue needed one.)
        let mut idle: Vec<TcpStream> = (0..4).map(|_| connect(server.addr)).collect();
        server.signal(libc::SIGINT);
        let (status, summary) = exit_and_summary(&mut server, DRAIN + PROMPT * 10);
        assert_eq!(status.code(), Some(0), "{accept:?}: {summary}");
        assert!(
            summary.contains("shut down gracefully"),
            "{accept:?}: {summary}"
        );
        // Served and closed by the drain, or still in the backlog when
        // the listener closed (reset): either way, not left hanging.
        for c in &mut idle {
            let mut rest = Vec::new();
            match c.read_to_end(&mut rest) {
                Ok(_) => assert!(rest.is_empty(), "{accept:?}"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{accept:?}"),
            }
        }
        eprintln!(
            "{accept:?}: workload and shutdown in {:?}",
            started.elapsed()
        );
    }
}

/// How long the stall hook blocks the first worker: long enough to place
/// the connections (a few [`PROMPT`]s at worst), short enough to wait out.
const STALL_MS: u64 = 3000;

fn wait_for_resume(server: &Server) {
    loop {
        let line = server.next_line(PROMPTLY).expect("the stall did not end");
        if line.ends_with("resumes") {
            return;
        }
    }
}

/// Whether `stream`, which just sent `message`, gets its echo within
/// [`PROMPT`]: no echo means its worker is the stalled one.
fn echoed_promptly(stream: &mut TcpStream, message: &[u8]) -> bool {
    stream.set_read_timeout(Some(PROMPT)).unwrap();
    let mut got = vec![0; message.len()];
    let result = stream.read_exact(&mut got);
    stream.set_read_timeout(Some(PROMPTLY)).unwrap();
    match result {
        Ok(()) => {
            assert_eq!(got, message);
            true
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("echo: {e}"),
    }
}

/// Waits for the hook's "stalls" line; returns the stalled worker's id.
fn wait_for_stall(server: &Server) -> usize {
    loop {
        let line = server.next_line(PROMPTLY).expect("no worker stalled");
        if let Some(rest) = line.strip_prefix("tenk test hook: worker ") {
            let (id, what) = rest.split_once(' ').expect("hook line");
            assert!(what.starts_with("stalls for"), "{line}");
            return id.parse().expect("worker id");
        }
    }
}

/// The names of the server's threads (`tenk-echo-0`, `tenk-echo-accept`…).
fn thread_names(server: &Server) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", server.pid())) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

/// Regression (issue 14): only one reactor read the signals (the acceptor
/// under dispatch, worker 0 otherwise), and it stopped reading when its
/// own drain ended; a second SIGINT then reached no thread while another
/// worker went on draining. Here worker 0 ends its drain at once and
/// exits, worker 1 holds a client that reads nothing (its drain would last
/// the 60 s drain timeout): the second SIGINT must exit 130 at once.
///
/// Placement: the stall hook blocks whichever worker gets the first
/// connection. If that is worker 1, that connection becomes the client
/// that reads nothing; if worker 0, a connection served during the stall
/// is on worker 1 and becomes it.
#[test]
fn regression_a_second_sigint_exits_130_while_a_worker_still_drains() {
    for accept in STRATEGIES {
        let started = Instant::now();
        let mut args = vec!["serve", "echo", "--port", "0", "--threads", "2"];
        args.extend_from_slice(accept);
        args.extend_from_slice(&["--drain-timeout", "60s"]);
        let mut server = Server::start(&args, |command| {
            command.env("TENK_TEST_STALL_WORKER", format!("first:{STALL_MS}"));
        });

        let mut first = connect(server.addr);
        first.write_all(b"first\n").unwrap();
        let mut held = Vec::new();
        let stuck = match wait_for_stall(&server) {
            1 => {
                // Flooded once worker 1 reads again, so that its output
                // to this client piles up.
                wait_for_resume(&server);
                first
            }
            _ => {
                held.push(first);
                // A connection served during the stall is on worker 1.
                let free = loop {
                    assert!(
                        held.len() < 32,
                        "{accept:?}: nothing served during the stall"
                    );
                    let mut c = connect(server.addr);
                    c.write_all(b"free\n").unwrap();
                    if echoed_promptly(&mut c, b"free\n") {
                        break c;
                    }
                    held.push(c);
                };
                while let Ok(line) = server.lines.try_recv() {
                    assert!(!line.ends_with("resumes"), "the stall ended too early");
                }
                free
            }
        };
        let mut flooder = Flooder::on(stuck, 64 * MIB);
        flooder.wait_stalled(accept[1]);

        server.signal(libc::SIGINT);
        // Worker 0 drains its idle connections at once (after its stall,
        // if it stalled) and exits; worker 1 keeps draining.
        assert!(
            util::wait_until(PROMPTLY, || !thread_names(&server)
                .iter()
                .any(|t| t == "tenk-echo-0")),
            "{accept:?}: worker 0 did not exit: {:?}",
            thread_names(&server)
        );
        util::assert_alive(&mut server, "worker 1 still drains");

        let second = Instant::now();
        server.signal(libc::SIGINT);
        let (status, summary) = exit_and_summary(&mut server, PROMPTLY);
        assert_eq!(status.code(), Some(EXIT_FORCED), "{accept:?}: {summary}");
        assert!(summary.contains("second signal"), "{accept:?}: {summary}");
        eprintln!(
            "{accept:?}: second SIGINT exited in {:?} ({:?} in all)",
            second.elapsed(),
            started.elapsed()
        );
        flooder.stop();
    }
}
