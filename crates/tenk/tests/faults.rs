//! Bad clients against `tenk serve echo`: clients that say nothing, clients
//! that never read, a connection flood beyond `--max-conns`, a SIGINT in
//! the middle of a thousand active connections, and ten thousand idle
//! timers expiring at once. Each fault is closed and counted by its cause
//! in the final summary, and the well-behaved clients beside it keep being
//! served.
//!
//! Scenarios run once per trigger mode (`edge::...`), except the 10,000
//! connection one, which runs once. Timing bounds are correctness checks
//! with generous headroom, never performance targets. Every wait is a
//! blocking read with a timeout, `poll(2)`, or `util::wait_until` on state
//! only visible from outside (fd counts, socket queues); the one sleep
//! paces the active client of the idle-timeout test, which is the scenario
//! itself. Measured figures are printed with `eprintln!` (`--nocapture`).

#[macro_use]
mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use util::{
    assert_alive, closes, connect, exit_and_summary, pattern, serve, shut_down_gracefully,
    summary_count, Closes, Server, PROMPTLY,
};

every_trigger!([edge, level, oneshot] => [
    silent_clients_are_closed_by_the_idle_timeout,
    non_reader_is_closed_by_the_write_timeout,
    non_reader_is_closed_by_the_hard_output_limit,
    non_reader_is_closed_by_the_soft_output_limit,
    flood_beyond_max_conns_is_rejected_promptly,
    sigint_under_1000_connections_echoes_every_byte_received,
]);

const KIB: usize = 1024;

/// Sends a small message and reads its echo; returns the round-trip time.
fn ping(what: &str, stream: &mut TcpStream, message: &[u8]) -> Duration {
    let started = Instant::now();
    stream
        .write_all(message)
        .unwrap_or_else(|e| panic!("{what}: write: {e}"));
    let mut echoed = vec![0; message.len()];
    stream
        .read_exact(&mut echoed)
        .unwrap_or_else(|e| panic!("{what}: read echo: {e}"));
    assert_eq!(echoed, message, "{what}: echo differs");
    started.elapsed()
}

#[test]
fn summary_parsing_reads_every_count() {
    let line = "tenk echo shut down gracefully after 1.2s: 7 accepted, 3 rejected (max-conns), \
                7 closed (client 1, idle timeout 2, write timeout 3, buffer limit 4, error 5, \
                local 6), 2.0 kB in, 2.0 kB out, 12 wake-ups, 0 accept pauses";
    assert_eq!(summary_count(line, "accepted"), 7);
    assert_eq!(summary_count(line, "rejected"), 3);
    assert_eq!(summary_count(line, "closed"), 7);
    assert_eq!(
        closes(line),
        Closes {
            client: 1,
            idle_timeout: 2,
            write_timeout: 3,
            buffer_limit: 4,
            error: 5,
            local: 6,
        }
    );
}

// 1. Clients that say nothing -----------------------------------------------

/// `--idle-timeout 1s`: twenty clients that connect and say nothing see
/// EOF no sooner than a second after they connected and well within five,
/// while a client that sends every 300 ms for three seconds (three idle
/// timeouts) is never closed. The summary counts exactly the twenty as idle
/// timeouts.
fn silent_clients_are_closed_by_the_idle_timeout(trigger: &str) {
    const SILENT: usize = 20;
    const TIMEOUT: Duration = Duration::from_secs(1);
    const TOLERANCE: Duration = Duration::from_secs(4);
    const PACE: Duration = Duration::from_millis(300);
    const ACTIVE_FOR: Duration = Duration::from_secs(3);

    let mut server = serve(trigger, &["--idle-timeout", "1s"]);
    let baseline = server.fd_count();
    let addr = server.addr;
    let mut active = connect(addr);
    ping(&format!("{trigger}: first ping"), &mut active, b"hello");

    let (silent_eofs, pings, mut active) = thread::scope(|s| {
        let activity = s.spawn(move || {
            let started = Instant::now();
            let mut pings = 0;
            while started.elapsed() < ACTIVE_FOR {
                // The pacing is the scenario (traffic every 300 ms), not a
                // synchronisation.
                thread::sleep(PACE);
                let what = format!("{trigger}: active client, ping {pings}");
                ping(&what, &mut active, format!("ping {pings}").as_bytes());
                pings += 1;
            }
            (active, pings)
        });
        let silent: Vec<(TcpStream, Instant)> = (0..SILENT)
            .map(|_| {
                let started = Instant::now();
                (connect(addr), started)
            })
            .collect();
        let eofs: Vec<Duration> = silent
            .into_iter()
            .enumerate()
            .map(|(i, (mut stream, started))| {
                let mut byte = [0; 1];
                match stream.read(&mut byte) {
                    Ok(0) => started.elapsed(),
                    Ok(_) => panic!("{trigger}: silent client {i} got data"),
                    Err(e) => panic!(
                        "{trigger}: silent client {i} not closed after {:?}: {e}",
                        started.elapsed()
                    ),
                }
            })
            .collect();
        let (active, pings) = activity.join().expect("active client");
        (eofs, pings, active)
    });

    let earliest = silent_eofs.iter().min().expect("silent clients");
    let latest = silent_eofs.iter().max().expect("silent clients");
    eprintln!(
        "{trigger}: {SILENT} silent clients closed {earliest:?}..{latest:?} after connecting (idle timeout {TIMEOUT:?}); active client made {pings} round trips"
    );
    assert!(
        *earliest >= TIMEOUT,
        "{trigger}: a silent client was closed after {earliest:?}, before the idle timeout"
    );
    assert!(
        *latest <= TIMEOUT + TOLERANCE,
        "{trigger}: a silent client was closed only after {latest:?}"
    );
    assert!(pings >= 9, "{trigger}: only {pings} active round trips");
    // Three idle timeouts after it connected, the active client is still
    // served.
    ping(&format!("{trigger}: last ping"), &mut active, b"still here");
    assert!(
        util::wait_until(PROMPTLY, || server.fd_count() == baseline + 1),
        "{trigger}: server holds {} descriptors, baseline {baseline} + 1 active",
        server.fd_count()
    );
    assert_alive(&mut server, trigger);

    let summary = shut_down_gracefully(&mut server, trigger);
    let closes = closes(&summary);
    assert_eq!(closes.idle_timeout, SILENT as u64, "{summary}");
    assert_eq!(
        closes,
        Closes {
            idle_timeout: SILENT as u64,
            local: 1,
            ..Closes::default()
        },
        "{trigger}: only the silent clients time out; the active one is closed by the shutdown: {summary}"
    );
    assert_eq!(summary_count(&summary, "accepted"), SILENT as u64 + 1);
}

// 2. Clients that never read --------------------------------------------------

/// How a non-reading client's connection ended.
struct Flooded {
    /// Bytes it wrote before its write failed.
    sent: u64,
    /// The error its write failed with.
    error: std::io::Error,
    /// From connect to the failed write.
    after: Duration,
}

/// Connects a client that writes and never reads until a write fails,
/// while another client pings the server as fast as it can; every round
/// trip must stay under a second. Returns how the flood ended, and the
/// pinger.
fn flood_without_reading(what: &str, server: &Server) -> (Flooded, TcpStream) {
    const CHUNK: usize = 64 * KIB;
    /// More than any kernel and server buffering: a writer not stopped by
    /// then was never cut off.
    const CAP: u64 = 512 * 1024 * 1024;
    const ROUND_TRIP_LIMIT: Duration = Duration::from_secs(1);

    let mut pinger = connect(server.addr);
    ping(what, &mut pinger, b"pinger ready");
    thread::scope(|s| {
        let started = Instant::now();
        let mut flooder = connect(server.addr);
        let writer = s.spawn(move || {
            let chunk = pattern(7, CHUNK);
            let mut sent = 0u64;
            loop {
                match flooder.write(&chunk) {
                    Ok(n) => sent += n as u64,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(error) => {
                        return Flooded {
                            sent,
                            error,
                            after: started.elapsed(),
                        }
                    }
                }
                assert!(sent < CAP, "flooder wrote {sent} B and was never cut off");
            }
        });
        // Round trips for as long as the non-reader is connected (at least
        // one, however soon it is cut off).
        let mut round_trips = 0;
        let mut slowest = Duration::ZERO;
        loop {
            let message = format!("ping {round_trips}");
            slowest = slowest.max(ping(what, &mut pinger, message.as_bytes()));
            round_trips += 1;
            if writer.is_finished() {
                break;
            }
            assert!(
                started.elapsed() < PROMPTLY * 2,
                "{what}: the non-reader is still connected after {:?}",
                started.elapsed()
            );
        }
        let flooded = writer.join().expect("flood writer");
        eprintln!(
            "{what}: non-reader wrote {} KiB, cut off after {:?} ({}); {round_trips} round trips beside it, slowest {slowest:?}",
            flooded.sent / KIB as u64,
            flooded.after,
            flooded.error
        );
        assert!(
            slowest < ROUND_TRIP_LIMIT,
            "{what}: a round trip beside the non-reader took {slowest:?}"
        );
        (flooded, pinger)
    })
}

/// The non-reader's write must fail because the server closed (with its
/// input unread, hence RST), not because of the client's own timeout.
fn assert_cut_off(what: &str, flooded: &Flooded) {
    assert!(
        matches!(
            flooded.error.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "{what}: the non-reader's write failed with {} after {:?}, not a reset",
        flooded.error,
        flooded.after
    );
}

/// Runs a server with `flags`, floods it with a non-reader beside a
/// pinger, and returns the flood's end and the summary's close counts.
fn non_reader(trigger: &str, flags: &[&str]) -> (Flooded, Closes) {
    let what = format!("{trigger} {}", flags.join(" "));
    let mut server = serve(trigger, flags);
    let baseline = server.fd_count();
    let (flooded, mut pinger) = flood_without_reading(&what, &server);
    assert_cut_off(&what, &flooded);
    // Only the pinger is left, and it is still served, as is a newcomer.
    assert!(
        util::wait_until(PROMPTLY, || server.fd_count() == baseline + 1),
        "{what}: server holds {} descriptors, baseline {baseline} + 1 pinger",
        server.fd_count()
    );
    ping(&what, &mut pinger, b"served after the cut-off");
    ping(&what, &mut connect(server.addr), b"newcomer served");
    assert_alive(&mut server, &what);
    let summary = shut_down_gracefully(&mut server, &what);
    (flooded, closes(&summary))
}

/// `--write-timeout 1s`: a client that writes and never reads is closed a
/// second after the server's output to it stops moving (not before a
/// second after it connected), while another client is echoed promptly.
fn non_reader_is_closed_by_the_write_timeout(trigger: &str) {
    let (flooded, closes) = non_reader(trigger, &["--write-timeout", "1s"]);
    assert!(
        flooded.after >= Duration::from_secs(1),
        "{trigger}: cut off after {:?}, before the write timeout",
        flooded.after
    );
    assert!(
        flooded.sent > 256 * KIB as u64,
        "{trigger}: only {} B sent: the output never backed up",
        flooded.sent
    );
    assert_eq!(closes.write_timeout, 1, "{trigger}: {closes:?}");
    assert_eq!(closes.buffer_limit, 0, "{trigger}: {closes:?}");
}

/// `--output-limit-hard 100000 --write-timeout 0`: the non-reader is closed
/// as soon as its pending output passes 100,000 bytes (below the echo's
/// 256 KiB high watermark, so it is reached before the server stops
/// reading), and counted as a buffer-limit close.
fn non_reader_is_closed_by_the_hard_output_limit(trigger: &str) {
    let (_, closes) = non_reader(
        trigger,
        &["--output-limit-hard", "100000", "--write-timeout", "0"],
    );
    assert_eq!(closes.buffer_limit, 1, "{trigger}: {closes:?}");
    assert_eq!(closes.write_timeout, 0, "{trigger}: {closes:?}");
}

/// `--output-limit-soft 100000 --output-limit-soft-time 1s`, with the hard
/// limit and the write timeout off: the non-reader's pending output passes
/// 100,000 bytes and stays there, and a second later it is closed and
/// counted as a buffer-limit close.
///
/// The echo server stops reading the non-reader at its 256 KiB high
/// watermark, so no output is added after that: the limit must be enforced
/// on a timer, not only when output is added (regression: it was checked
/// only in `send`, and such a client was never closed).
fn non_reader_is_closed_by_the_soft_output_limit(trigger: &str) {
    let (flooded, closes) = non_reader(
        trigger,
        &[
            "--output-limit-soft",
            "100000",
            "--output-limit-soft-time",
            "1s",
            "--output-limit-hard",
            "0",
            "--write-timeout",
            "0",
        ],
    );
    assert!(
        flooded.after >= Duration::from_secs(1),
        "{trigger}: cut off after {:?}, before the soft limit's time",
        flooded.after
    );
    assert_eq!(closes.buffer_limit, 1, "{trigger}: {closes:?}");
    assert_eq!(closes.write_timeout, 0, "{trigger}: {closes:?}");
}

// 3. A connection flood ------------------------------------------------------

/// `--max-conns 50` and 200 connects from four threads at once: exactly 50
/// are served and 150 see EOF (or a reset) promptly, counted as rejected;
/// the 50 are still echoed afterwards.
fn flood_beyond_max_conns_is_rejected_promptly(trigger: &str) {
    const MAX: usize = 50;
    const CLIENTS: usize = 200;
    const THREADS: usize = 4;
    const REJECT_LIMIT: Duration = Duration::from_secs(5);

    let mut server = serve(trigger, &["--max-conns", "50"]);
    let baseline = server.fd_count();
    let addr = server.addr;
    let outcomes: Vec<(Option<TcpStream>, Duration)> = thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    let streams: Vec<(TcpStream, Instant)> = (0..CLIENTS / THREADS)
                        .map(|_| {
                            let started = Instant::now();
                            (connect(addr), started)
                        })
                        .collect();
                    streams
                        .into_iter()
                        .enumerate()
                        .map(|(i, (stream, started))| {
                            let served = served_or_rejected(trigger, t, i, &stream);
                            (served.then_some(stream), started.elapsed())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("flood thread"))
            .collect()
    });
    let slowest_reject = outcomes
        .iter()
        .filter(|(stream, _)| stream.is_none())
        .map(|(_, after)| *after)
        .max()
        .unwrap_or_default();
    let mut held: Vec<TcpStream> = outcomes
        .into_iter()
        .filter_map(|(stream, _)| stream)
        .collect();
    eprintln!(
        "{trigger}: {} of {CLIENTS} served, slowest rejection seen {slowest_reject:?} after connecting",
        held.len()
    );
    assert_eq!(
        held.len(),
        MAX,
        "{trigger}: clients served under --max-conns 50"
    );
    assert!(
        slowest_reject < REJECT_LIMIT,
        "{trigger}: a rejected client learned only after {slowest_reject:?}"
    );
    for (i, stream) in held.iter_mut().enumerate() {
        ping(
            &format!("{trigger}: held client {i}"),
            stream,
            format!("still served {i}").as_bytes(),
        );
    }
    assert_eq!(
        server.fd_count(),
        baseline + MAX,
        "{trigger}: the server holds more than the cap"
    );
    let summary = shut_down_gracefully(&mut server, trigger);
    assert_eq!(summary_count(&summary, "accepted"), MAX as u64, "{summary}");
    assert_eq!(
        summary_count(&summary, "rejected"),
        (CLIENTS - MAX) as u64,
        "{summary}"
    );
}

/// Sends one message: true if it is echoed (the client was accepted), false
/// on EOF or a reset (accepted and closed by the cap).
fn served_or_rejected(trigger: &str, thread: usize, i: usize, mut stream: &TcpStream) -> bool {
    let what = format!("{trigger}: thread {thread} client {i}");
    let message = format!("flood {thread}/{i}");
    match stream.write_all(message.as_bytes()) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
            return false
        }
        Err(e) => panic!("{what}: write: {e}"),
    }
    let mut echoed = vec![0; message.len()];
    let mut got = 0;
    while got < echoed.len() {
        match stream.read(&mut echoed[got..]) {
            Ok(0) if got == 0 => return false,
            Ok(0) => panic!("{what}: EOF after {got} B of the echo"),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset && got == 0 => return false,
            Err(e) => panic!("{what}: neither echoed nor closed: {e}"),
        }
    }
    assert_eq!(echoed, message.as_bytes(), "{what}: echo differs");
    true
}

// 4. SIGINT under load ---------------------------------------------------------

/// A thousand connections each write their own bytes (up to 16 KiB; every
/// tenth 200,000 bytes) and read nothing yet. Once the server has read
/// every byte (each client's send queue and the server's receive queue of
/// that connection are empty), SIGINT: every client then reads exactly its
/// bytes back, then EOF (no reset), and the server exits 0 with every
/// connection closed by the shutdown.
///
/// The echoes wait in the kernel's buffers at the signal (the server's
/// send queue, autotuned, takes 200,000 bytes); echo left in the server's
/// own output buffer at a SIGINT is `lifecycle.rs`'s
/// `sigint_drains_active_connections`.
fn sigint_under_1000_connections_echoes_every_byte_received(trigger: &str) {
    const CLIENTS: usize = 1000;
    const THREADS: usize = 8;
    const LARGE: usize = 200_000;

    let mut server = serve(trigger, &["--drain-timeout", "60s"]);
    let addr = server.addr;
    let size = |i: usize| {
        if i.is_multiple_of(10) {
            LARGE
        } else {
            1 + (i * 7919) % (16 * KIB)
        }
    };
    let clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(addr)).collect();
    let total: usize = (0..CLIENTS).map(size).sum();

    thread::scope(|s| {
        for (group, streams) in clients.chunks(CLIENTS / THREADS).enumerate() {
            s.spawn(move || {
                for (k, mut stream) in streams.iter().enumerate() {
                    let i = group * (CLIENTS / THREADS) + k;
                    stream
                        .write_all(&pattern(i as u64, size(i)))
                        .unwrap_or_else(|e| panic!("{trigger}: client {i} write: {e}"));
                }
            });
        }
    });

    // Every byte was received by the server process: acknowledged by its
    // kernel (the client's send queue is empty) and read by it (its
    // receive queue for that connection is empty).
    let mut waiting: Vec<SocketAddr> = clients
        .iter()
        .map(|c| c.local_addr().expect("local addr"))
        .collect();
    let received = util::wait_until(PROMPTLY, || {
        waiting.retain(|&client| {
            let sent = util::tcp_queues(client, addr).map(|(send, _)| send);
            let unread = util::tcp_queues(addr, client).map(|(_, recv)| recv);
            sent != Some(0) || unread != Some(0)
        });
        waiting.is_empty()
    });
    assert!(
        received,
        "{trigger}: {} connections still have bytes the server has not read",
        waiting.len()
    );

    server.signal(libc::SIGINT);
    let started = Instant::now();
    thread::scope(|s| {
        for (group, streams) in clients.chunks(CLIENTS / THREADS).enumerate() {
            s.spawn(move || {
                for (k, mut stream) in streams.iter().enumerate() {
                    let i = group * (CLIENTS / THREADS) + k;
                    let what = format!("{trigger}: client {i} after SIGINT");
                    let mut echoed = vec![0; size(i)];
                    stream
                        .read_exact(&mut echoed)
                        .unwrap_or_else(|e| panic!("{what}: {} B: {e}", size(i)));
                    assert!(echoed == pattern(i as u64, size(i)), "{what}: echo differs");
                    let mut byte = [0; 1];
                    match stream.read(&mut byte) {
                        Ok(0) => {}
                        Ok(_) => panic!("{what}: more bytes than it sent"),
                        Err(e) => panic!("{what}: no EOF after the echo: {e}"),
                    }
                }
            });
        }
    });
    let (status, summary) = exit_and_summary(&mut server, PROMPTLY);
    eprintln!(
        "{trigger}: {CLIENTS} connections, {} KiB echoed in full across SIGINT; drained in {:?}",
        total / KIB,
        started.elapsed()
    );
    assert_eq!(status.code(), Some(0), "{trigger}: exit status ({summary})");
    assert!(
        summary.starts_with("tenk echo shut down gracefully after "),
        "{trigger}: {summary}"
    );
    assert_eq!(summary_count(&summary, "accepted"), CLIENTS as u64);
    let closes = closes(&summary);
    assert_eq!(
        closes,
        Closes {
            local: CLIENTS as u64,
            ..Closes::default()
        },
        "{trigger}: every connection closed by the shutdown: {summary}"
    );
}

// 5. Ten thousand idle timers --------------------------------------------------

/// `--idle-timeout 2s` and 10,000 connections that say nothing, opened in
/// batches of 500 (each batch once the server holds the previous ones):
/// every one sees EOF no sooner than two seconds after its connect began
/// and no later than three seconds after that, and the server's descriptor
/// count returns to its baseline. The EOFs are watched with `poll(2)` over
/// every open client, while connecting, so each is timed when it happens.
#[test]
fn ten_thousand_idle_timers_expire_on_time() {
    const WANTED: usize = 10_000;
    const BATCH: usize = 500;
    const TIMEOUT: Duration = Duration::from_secs(2);
    const TOLERANCE: Duration = Duration::from_secs(3);
    /// Descriptors this process needs besides the clients.
    const HEADROOM: usize = 200;

    // What the server does at start-up: the soft limit up to the hard one.
    let nofile = usize::try_from(reactor::sys::rlimit::raise_nofile_limit()).unwrap_or(usize::MAX);
    let clients = WANTED.min(nofile.saturating_sub(HEADROOM));
    if clients < WANTED {
        eprintln!("note: RLIMIT_NOFILE {nofile} allows only {clients} clients");
    }
    let mut server = Server::echo(&["--idle-timeout", "2s"]);
    let baseline = server.fd_count();
    let started = Instant::now();

    let mut open: Vec<(TcpStream, Instant)> = Vec::with_capacity(clients);
    let mut closed_after: Vec<Duration> = Vec::with_capacity(clients);
    let mut opened = 0;
    while opened < clients || !open.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{opened} opened, {} closed, {} still open after a minute",
            closed_after.len(),
            open.len()
        );
        // The next batch once the server holds every connection so far
        // (those it already closed are counted on our side).
        if opened < clients && server.fd_count() + closed_after.len() >= baseline + opened {
            for _ in 0..BATCH.min(clients - opened) {
                let connect_began = Instant::now();
                open.push((connect(server.addr), connect_began));
            }
            opened = open.len() + closed_after.len();
        }
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: if opened < clients {
                5_000_000
            } else {
                100_000_000
            },
        };
        let mut polled: Vec<PollFd> = open
            .iter()
            .map(|(stream, _)| PollFd::new(stream, PollFlags::IN))
            .collect();
        let ready = rustix::event::poll(&mut polled, Some(&timeout)).expect("poll");
        if ready == 0 {
            continue;
        }
        let woken: Vec<usize> = (0..polled.len())
            .filter(|&at| !polled[at].revents().is_empty())
            .collect();
        drop(polled);
        let now = Instant::now();
        // From the back: `swap_remove` moves only entries already seen.
        for at in woken.into_iter().rev() {
            let (mut stream, connect_began) = open.swap_remove(at);
            let mut byte = [0; 1];
            match stream.read(&mut byte) {
                Ok(0) => closed_after.push(now - connect_began),
                Ok(_) => panic!("a silent client got data"),
                Err(e) => panic!(
                    "a silent client's connection failed after {:?}: {e}",
                    now - connect_began
                ),
            }
        }
    }

    let earliest = closed_after.iter().min().expect("clients");
    let latest = closed_after.iter().max().expect("clients");
    eprintln!(
        "{clients} idle connections closed {earliest:?}..{latest:?} after connecting (idle timeout {TIMEOUT:?}); all done {:?} after the first connect",
        started.elapsed()
    );
    assert_eq!(closed_after.len(), clients);
    assert!(
        *earliest >= TIMEOUT,
        "a connection was closed {earliest:?} after connecting, before the idle timeout"
    );
    assert!(
        *latest <= TIMEOUT + TOLERANCE,
        "a connection was closed only {latest:?} after connecting"
    );
    assert!(
        util::wait_until(PROMPTLY, || server.fd_count() == baseline),
        "server holds {} descriptors after every idle connection closed, baseline {baseline}",
        server.fd_count()
    );
    let summary = shut_down_gracefully(&mut server, "10,000 idle timers");
    assert_eq!(
        closes(&summary),
        Closes {
            idle_timeout: clients as u64,
            ..Closes::default()
        },
        "{summary}"
    );
}
