//! `--threads N`: one reactor per thread, sharing the port by
//! SO_REUSEPORT or EPOLLEXCLUSIVE, one connection cap for the process,
//! and one signal that shuts every thread down.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use util::{summary_count, Server, PROMPTLY, STRATEGIES};

fn start(accept: &[&str], extra: &[&str]) -> Server {
    let mut args = vec!["--threads", "2"];
    args.extend_from_slice(accept);
    args.extend_from_slice(extra);
    Server::echo(&args)
}

fn client(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(PROMPTLY)).unwrap();
    stream.set_write_timeout(Some(PROMPTLY)).unwrap();
    stream
}

fn echo_once(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    stream.write_all(message)?;
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back)?;
    assert_eq!(back, message);
    Ok(())
}

fn summary_after_sigint(server: &mut Server) -> String {
    server.signal(libc::SIGINT);
    let status = server.wait_exit(PROMPTLY);
    assert!(status.success(), "exit {status:?}");
    loop {
        let line = server.next_line(PROMPTLY).expect("a summary line");
        if line.contains("shut down gracefully") {
            return line;
        }
    }
}

#[test]
fn every_strategy_serves_on_all_threads_and_shuts_down_on_one_signal() {
    for accept in STRATEGIES {
        let mut server = start(accept, &[]);
        assert!(
            server
                .banner
                .contains(&format!("threads 2, accept {}", accept[1])),
            "{}",
            server.banner
        );
        let mut clients: Vec<TcpStream> = (0..200).map(|_| client(&server)).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            echo_once(c, format!("message {i}\n").as_bytes()).expect("echo");
        }
        // Two workers, two epoll instances; dispatch adds the acceptor's,
        // and the main thread has one to read the signals.
        let expected = if accept[1] == "dispatch" { 4 } else { 3 };
        let epolls = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
            .filter(|target| target.to_string_lossy().contains("eventpoll"))
            .count();
        assert_eq!(epolls, expected, "{accept:?}: one epoll per thread");
        let summary = summary_after_sigint(&mut server);
        assert_eq!(
            summary_count(&summary, "accepted"),
            200,
            "{accept:?}: {summary}"
        );
        for mut c in clients {
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).expect("EOF after the drain");
            assert!(rest.is_empty());
        }
    }
}

#[test]
fn max_conns_is_one_cap_for_the_whole_process() {
    for accept in STRATEGIES {
        let mut server = start(accept, &["--max-conns", "50"]);
        let mut served = 0;
        let mut refused = 0;
        let mut held = Vec::new();
        for i in 0..100 {
            let mut c = client(&server);
            match echo_once(&mut c, format!("{i}\n").as_bytes()) {
                Ok(()) => {
                    served += 1;
                    held.push(c);
                }
                Err(e) => {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::UnexpectedEof
                                | ErrorKind::ConnectionReset
                                | ErrorKind::BrokenPipe
                        ),
                        "{accept:?}: {e}"
                    );
                    refused += 1;
                }
            }
        }
        assert_eq!((served, refused), (50, 50), "{accept:?}");
        let summary = summary_after_sigint(&mut server);
        assert_eq!(
            summary_count(&summary, "rejected"),
            50,
            "{accept:?}: {summary}"
        );
    }
}

#[test]
fn dispatch_balances_as_asked() {
    for (balance, workers_expected) in [("round-robin", "50/50"), ("least-connections", "50/50")] {
        let mut server = start(
            &["--accept", "dispatch", "--balance", balance],
            &["--stats"],
        );
        let mut clients: Vec<TcpStream> = (0..100).map(|_| client(&server)).collect();
        for c in &mut clients {
            echo_once(c, b"x").expect("echo");
        }
        // The stats line shows each worker's connections.
        let line = loop {
            let line = server.next_line(PROMPTLY).expect("a stats line");
            if line.contains("conns 100 active") {
                break line;
            }
        };
        assert!(
            line.contains(&format!("workers {workers_expected}")),
            "{balance}: {line}"
        );
        summary_after_sigint(&mut server);
    }
}

/// Many clients connecting at once land on both workers under every
/// strategy, the stats line says how many each holds, and a shutdown with
/// them spread exits 0 with nothing lost. (At once: one client at a time
/// would, under `exclusive`, find both workers idle every time, and the
/// kernel wakes the first-registered one each time; docs/epoll-strategy.md
/// section 12.1.)
#[test]
fn many_clients_at_once_land_on_both_workers_and_the_stats_say_where() {
    const CLIENTS: usize = 400;
    const CLIENT_THREADS: usize = 4;
    for accept in STRATEGIES {
        let mut server = start(accept, &["--stats"]);
        let addr = server.addr;
        let clients: Vec<TcpStream> = std::thread::scope(|s| {
            let burst: Vec<_> = (0..CLIENT_THREADS)
                .map(|_| {
                    s.spawn(move || {
                        let mut mine: Vec<TcpStream> = (0..CLIENTS / CLIENT_THREADS)
                            .map(|_| util::connect(addr))
                            .collect();
                        for c in &mut mine {
                            echo_once(c, b"x").expect("echo");
                        }
                        mine
                    })
                })
                .collect();
            burst
                .into_iter()
                .flat_map(|h| h.join().expect("client thread"))
                .collect()
        });
        let line = loop {
            let line = server.next_line(PROMPTLY).expect("a stats line");
            if line.contains(&format!("conns {CLIENTS} active")) {
                break line;
            }
        };
        let split = line
            .split_once("| workers ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{accept:?}: no per-worker counts in {line}"));
        let counts: Vec<usize> = split
            .split('/')
            .map(|n| n.parse().expect("a count"))
            .collect();
        assert_eq!(counts.len(), 2, "{accept:?}: {line}");
        assert_eq!(counts.iter().sum::<usize>(), CLIENTS, "{accept:?}: {line}");
        assert!(
            counts.iter().all(|&n| n > 0),
            "{accept:?}: every connection on one worker: {line}"
        );
        eprintln!("{accept:?}: workers {split}");
        // Shut down with the connections spread over both workers: exit 0,
        // every connection counted, each client sees a clean EOF.
        let summary = summary_after_sigint(&mut server);
        assert_eq!(
            summary_count(&summary, "accepted"),
            CLIENTS as u64,
            "{accept:?}: {summary}"
        );
        for mut c in clients {
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).expect("EOF after the drain");
            assert!(rest.is_empty(), "{accept:?}: bytes after the echo");
        }
    }
}

#[test]
fn pin_puts_each_worker_on_one_core() {
    let mut server = start(&["--accept", "reuseport"], &["--pin"]);
    let mut pinned = 0;
    for task in std::fs::read_dir(format!("/proc/{}/task", server.pid())).unwrap() {
        let task = task.unwrap().path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap();
        if !name.starts_with("tenk-echo-") {
            continue;
        }
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string();
        assert!(
            allowed.parse::<usize>().is_ok(),
            "{name:?} may run on {allowed:?}, not one core"
        );
        pinned += 1;
    }
    assert_eq!(pinned, 2);
    summary_after_sigint(&mut server);
}
