//! `tenk load chat` end to end, from its `--json` report: against
//! `tenk serve chat` every message reaches every other member of its room,
//! none lost, none reordered, whatever the rooms and threads; against a
//! small in-test chat server that drops or reorders messages, the fault is
//! counted and fails the exit status unless tolerated.
//!
//! Socket-heavy: run with `--test-threads=1`. Every run is killed (and the
//! test failed) after [`RUN_LIMIT`]; the in-test server's sockets have
//! timeouts of [`PROMPTLY`].

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use util::{Server, PROMPTLY};

/// Longest any one `tenk load chat` run may take: runs here send for at
/// most 2 s and drain for at most `--timeout`, so this only catches a hang.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// `tenk load chat ADDR <args> --json`: the exit status and the report.
fn load_chat(addr: SocketAddr, args: &[&str]) -> (Option<i32>, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenk"))
        .args(["load", "chat", &addr.to_string(), "--json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tenk load chat");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().expect("stdout");
    thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let status = child.wait().expect("wait");
        let _ = tx.send((status, out));
    });
    let (status, stdout) = rx.recv_timeout(RUN_LIMIT).unwrap_or_else(|_| {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("tenk load chat {args:?} did not finish within {RUN_LIMIT:?}");
    });
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout:?}"));
    let c = &report["chat"];
    eprintln!(
        "tenk load chat {args:?} -> exit {:?}: {} messages, {} of {} deliveries ({:.0}/s), lost {}, reordered {}, p99 {}µs, errors {}",
        status.code(),
        c["messages"],
        c["deliveries"],
        c["deliveries_expected"],
        c["deliveries_per_s"].as_f64().unwrap_or(0.0),
        c["lost"],
        c["reordered"],
        report["latency_us"]["p99"],
        report["errors"],
    );
    (status.code(), report)
}

fn count(report: &Value, path: &[&str]) -> u64 {
    let mut v = report;
    for key in path {
        v = &v[key];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a count in {report:#}"))
}

/// The run: 200 clients in one room, 5 senders at 500 messages/s
/// for 2 s. Every message reaches the 199 other members: deliveries are
/// exactly messages × 199, nothing lost or reordered, no error; the rate
/// is met.
#[test]
fn every_message_reaches_every_other_member() {
    let server = Server::start(&["serve", "chat", "--port", "0"], |_| {});
    let (code, r) = load_chat(
        server.addr,
        &["-c", "200", "--senders", "5", "--rate", "500", "-d", "2s"],
    );
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(count(&r, &["errors_total"]), 0, "{r:#}");
    assert_eq!(count(&r, &["connections_established"]), 200, "{r:#}");
    let messages = count(&r, &["chat", "messages"]);
    assert!(
        (900..=1100).contains(&messages),
        "{messages} messages at 500/s for 2 s"
    );
    assert_eq!(count(&r, &["chat", "deliveries_expected"]), messages * 199);
    assert_eq!(count(&r, &["chat", "deliveries"]), messages * 199);
    assert_eq!(count(&r, &["chat", "lost"]), 0, "{r:#}");
    assert_eq!(count(&r, &["chat", "reordered"]), 0, "{r:#}");
    // Every delivery in the window had its latency recorded.
    assert_eq!(count(&r, &["requests"]), messages * 199);
    assert!(r["latency_us"]["p99"].as_f64().unwrap() > 0.0, "{r:#}");
}

/// Rooms and threads: 60 clients in 3 rooms of 20 (client i in room i % 3),
/// 6 senders (two per room) over 2 threads, at the default rate. Each
/// message reaches the 19 others of its room and no one else (a message
/// seen in the wrong room is an error); the nicks and rooms are visible on
/// the server.
#[test]
fn rooms_and_threads_keep_messages_in_their_room() {
    let mut server = Server::start(&["serve", "chat", "--port", "0"], |_| {});
    let (code, r) = load_chat(
        server.addr,
        &[
            "-c",
            "60",
            "--rooms",
            "3",
            "--senders",
            "6",
            "--threads",
            "2",
            "-d",
            "1s",
        ],
    );
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(count(&r, &["errors_total"]), 0, "{r:#}");
    assert_eq!(r["target_rate"].as_f64(), Some(1000.0), "the default rate");
    let messages = count(&r, &["chat", "messages"]);
    assert!(messages >= 900, "{messages} messages at 1000/s for 1 s");
    assert_eq!(count(&r, &["chat", "deliveries_expected"]), messages * 19);
    assert_eq!(count(&r, &["chat", "deliveries"]), messages * 19);
    assert_eq!(count(&r, &["chat", "lost"]), 0);
    assert_eq!(count(&r, &["chat", "reordered"]), 0);
    server.signal(libc::SIGINT);
    server.wait_exit(PROMPTLY);
    let summary = std::iter::from_fn(|| server.next_line(PROMPTLY))
        .find(|l| l.starts_with("tenk chat: "))
        .expect("chat summary");
    assert!(
        summary.starts_with(&format!("tenk chat: {messages} messages, ")),
        "{summary}"
    );
}

/// How the in-test chat server misbehaves with room text.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Each sender's 6th, 16th, 26th... line reaches nobody.
    Drop,
    /// Each sender's 6th, 16th, 26th... line goes out after the next one.
    Swap,
}

/// A one-room chat server just good enough for `tenk load chat`: `/nick`
/// is taken silently, `/join` answers with the join notice, other lines go
/// to every other member as `<nick> text`, with `fault` applied. A thread
/// per connection; runs until the test process ends.
fn faulty_chat(fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let members: Arc<Mutex<Vec<(usize, TcpStream)>>> = Arc::default();
    thread::spawn(move || {
        for (id, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            stream.set_read_timeout(Some(PROMPTLY)).expect("timeout");
            stream.set_write_timeout(Some(PROMPTLY)).expect("timeout");
            let members = members.clone();
            thread::spawn(move || serve_member(id, stream, fault, &members));
        }
    });
    addr
}

fn serve_member(
    id: usize,
    stream: TcpStream,
    fault: Fault,
    members: &Mutex<Vec<(usize, TcpStream)>>,
) {
    let broadcast = |line: &str| {
        for (other, member) in members.lock().expect("members").iter() {
            if *other != id {
                let _ = (&*member).write_all(line.as_bytes());
            }
        }
    };
    let mut nick = format!("guest{id}");
    let mut said = 0;
    let mut held: Option<String> = None;
    for line in BufReader::new(stream.try_clone().expect("clone")).lines() {
        let Ok(line) = line else { return };
        if let Some(name) = line.strip_prefix("/nick ") {
            nick = name.to_string();
        } else if let Some(room) = line.strip_prefix("/join ") {
            // A member before it is told so: the load starts sending once
            // every client has been told.
            let clone = stream.try_clone().expect("clone");
            members.lock().expect("members").push((id, clone));
            let _ = (&stream).write_all(format!("* {nick} joined #{room}\n").as_bytes());
        } else {
            said += 1;
            let text = format!("<{nick}> {line}\n");
            match fault {
                Fault::Drop if said % 10 == 6 => {}
                Fault::Swap if said % 10 == 6 => held = Some(text),
                _ => {
                    broadcast(&text);
                    if let Some(held) = held.take() {
                        broadcast(&held);
                    }
                }
            }
        }
    }
}

/// Dropped messages are lost at every other member, and fail the run
/// unless `--max-errors` tolerates them; nothing is reordered.
#[test]
fn dropped_messages_are_lost() {
    let addr = faulty_chat(Fault::Drop);
    let args = [
        "-c",
        "10",
        "--senders",
        "2",
        "--rate",
        "200",
        "-d",
        "1s",
        "--timeout",
        "1s",
    ];
    let (code, r) = load_chat(addr, &args);
    assert_eq!(code, Some(1), "{r:#}");
    let messages = count(&r, &["chat", "messages"]);
    let lost = count(&r, &["chat", "lost"]);
    // One in ten of each sender's messages, each lost at the 9 other
    // members.
    assert_eq!(lost % 9, 0, "{r:#}");
    let dropped = lost / 9;
    assert!(
        (messages / 10 - 1..=messages / 10 + 1).contains(&dropped),
        "{dropped} of {messages} dropped: {r:#}"
    );
    assert_eq!(
        count(&r, &["chat", "deliveries"]) + lost,
        count(&r, &["chat", "deliveries_expected"])
    );
    assert_eq!(count(&r, &["chat", "reordered"]), 0, "{r:#}");
    assert_eq!(count(&r, &["errors_total"]), 0, "{r:#}");

    let tolerant: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--max-errors", "100000"])
        .collect();
    let (code, r) = load_chat(addr, &tolerant);
    assert_eq!(code, Some(0), "{r:#}");
    assert!(count(&r, &["chat", "lost"]) > 0);
}

/// Swapped messages are reordered at every other member (and none is lost
/// but, perhaps, a last one still held back) and fail the run.
#[test]
fn swapped_messages_are_reordered() {
    let addr = faulty_chat(Fault::Swap);
    let (code, r) = load_chat(
        addr,
        &[
            "-c",
            "10",
            "--senders",
            "2",
            "--rate",
            "200",
            "-d",
            "1s",
            "--timeout",
            "1s",
        ],
    );
    assert_eq!(code, Some(1), "{r:#}");
    let messages = count(&r, &["chat", "messages"]);
    // One in ten of each sender's messages, each late at the 9 other
    // members; a last one held back for good is lost instead.
    let reordered = count(&r, &["chat", "reordered"]);
    let lost = count(&r, &["chat", "lost"]);
    assert_eq!(reordered % 9, 0, "{r:#}");
    assert!(
        (messages / 10 - 1..=messages / 10 + 1).contains(&(reordered / 9 + lost / 9)),
        "{reordered} reordered, {lost} lost of {messages}: {r:#}"
    );
    assert!(lost <= 2 * 9, "{r:#}");
    assert_eq!(count(&r, &["errors_total"]), 0, "{r:#}");
}

/// Regression (issue 14): lost deliveries were counted but left out of the
/// delivery latency, so a server that drops one message in ten showed the
/// latency of the nine it delivered. A lost delivery waited at least since
/// its sender's last message, and the drain ran `--timeout` (1 s) past
/// that: 1 s is in the latency as a lower bound, for one delivery in ten,
/// so p99 and max show it.
#[test]
fn regression_lost_deliveries_are_in_the_latency() {
    let addr = faulty_chat(Fault::Drop);
    let (code, r) = load_chat(
        addr,
        &[
            "-c",
            "10",
            "--senders",
            "2",
            "--rate",
            "200",
            "-d",
            "1s",
            "--timeout",
            "1s",
        ],
    );
    assert_eq!(code, Some(1), "{r:#}");
    assert!(count(&r, &["chat", "lost"]) > 0, "{r:#}");
    let latency = |p: &str| r["latency_us"][p].as_f64().expect("a latency");
    assert!(latency("max") >= 1_000_000.0, "{r:#}");
    assert!(latency("p99") >= 1_000_000.0, "{r:#}");
    // The deliveries that came are quick: the lower bounds are what's slow.
    assert!(latency("p50") < 100_000.0, "{r:#}");
}
