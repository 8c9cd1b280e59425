//! One worker of `tenk serve echo --threads 2` blocked for a few seconds
//! (the `TENK_TEST_STALL_WORKER` test hook, `crates/server/src/threads/
//! stall.rs`): what happens to the connections that keep arriving depends
//! on the accept strategy, as docs/epoll-strategy.md section 12 says.
//!
//! - reuseport: the kernel hashes each connection to a listener whatever
//!   its thread is doing, so those hashed to the stalled worker wait (in
//!   its backlog) and are served after the stall; the others are served
//!   at once.
//! - exclusive: the kernel skips an epoll with no thread waiting in it, so
//!   every new connection goes to the free worker.
//! - dispatch round-robin: every other connection is handed to the
//!   stalled worker and waits.
//! - dispatch least-connections: the stalled worker's count only grows,
//!   so after at most one more connection stuck there, short-lived
//!   connections all go to the free worker.
//!
//! The hook prints a line when the stall starts and when it ends, so the
//! tests wait on those instead of sleeping. "Prompt" is [`PROMPT`]: a
//! correctness bound with ample headroom over a loopback echo (well under
//! a millisecond), not a performance target. The stall is long enough
//! ([`STALL_MS`]) for every check made during it to finish first, and
//! each test checks that it did.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use util::{connect, summary_count, Server, PROMPTLY};

/// How long the hook blocks the worker.
const STALL_MS: u64 = 5000;

/// A reply later than this did not come "at once".
const PROMPT: Duration = Duration::from_millis(500);

/// Starts `tenk serve echo --threads 2 <accept>` with worker `who` (an id,
/// or `first`) set to stall on its first connection.
fn start(accept: &[&str], who: &str) -> Server {
    let mut args = vec!["serve", "echo", "--port", "0", "--threads", "2"];
    args.extend_from_slice(accept);
    Server::start(&args, |command| {
        command.env("TENK_TEST_STALL_WORKER", format!("{who}:{STALL_MS}"));
    })
}

/// Waits for the hook's "stalls" line; returns the stalled worker's id.
fn wait_for_stall(server: &Server) -> usize {
    loop {
        let line = server
            .next_line(PROMPTLY)
            .expect("no worker stalled: no connection reached it?");
        if let Some(rest) = line.strip_prefix("tenk test hook: worker ") {
            let (id, what) = rest.split_once(' ').expect("hook line");
            assert!(what.starts_with("stalls for"), "{line}");
            return id.parse().expect("worker id");
        }
    }
}

/// Fails if the stall is over already: what was classified as waiting
/// might have been served late rather than never during the stall.
fn assert_still_stalled(server: &Server) {
    while let Ok(line) = server.lines.try_recv() {
        assert!(
            !line.ends_with("resumes"),
            "the stall ended before the checks made during it did (a slow machine?)"
        );
    }
}

fn wait_for_resume(server: &Server) {
    loop {
        let line = server.next_line(PROMPTLY).expect("the stall did not end");
        if line.ends_with("resumes") {
            return;
        }
    }
}

/// A client that sent a message and collects its echo.
struct Client {
    stream: TcpStream,
    sent: Vec<u8>,
    got: Vec<u8>,
}

impl Client {
    fn open(addr: SocketAddr) -> Client {
        Client {
            stream: connect(addr),
            sent: Vec::new(),
            got: Vec::new(),
        }
    }

    fn send(&mut self, message: &str) {
        self.stream.write_all(message.as_bytes()).expect("send");
        self.sent.extend_from_slice(message.as_bytes());
    }

    /// Reads until everything sent has come back (true) or `deadline`
    /// passes (false). Past the deadline it still takes what has already
    /// arrived, without waiting. Bytes read so far are kept for the next
    /// call.
    fn echoed_by(&mut self, deadline: Instant) -> bool {
        let mut buf = [0; 256];
        while self.got.len() < self.sent.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            // A zero timeout is refused; past the deadline, don't block.
            self.stream
                .set_nonblocking(left.is_zero())
                .expect("nonblocking");
            if !left.is_zero() {
                self.stream.set_read_timeout(Some(left)).expect("timeout");
            }
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("EOF after {} of {} bytes", self.got.len(), self.sent.len()),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        assert_eq!(self.got, self.sent, "the echo differs from what was sent");
        true
    }

    /// Sends one more message and says whether it came back promptly.
    fn ping(&mut self, message: &str) -> bool {
        self.send(message);
        self.echoed_by(Instant::now() + PROMPT)
    }

    /// Closes the sending side and waits for the server's close, so the
    /// server has closed its end (and counted it) before the next client.
    fn finish(mut self) {
        self.stream.shutdown(Shutdown::Write).expect("shutdown");
        self.stream
            .set_read_timeout(Some(PROMPTLY))
            .expect("timeout");
        let mut rest = Vec::new();
        self.stream
            .read_to_end(&mut rest)
            .expect("EOF from the server");
        assert!(rest.is_empty(), "unexpected bytes before EOF");
    }
}

/// Splits `clients`, which have all sent, into those whose echo came back
/// within [`PROMPT`] and those still waiting.
fn split_by_reply(clients: Vec<Client>) -> (Vec<Client>, Vec<Client>) {
    let deadline = Instant::now() + PROMPT;
    clients
        .into_iter()
        .map(|mut c| (c.echoed_by(deadline), c))
        .fold(
            (Vec::new(), Vec::new()),
            |(mut served, mut waiting), (ok, c)| {
                if ok {
                    served.push(c);
                } else {
                    waiting.push(c);
                }
                (served, waiting)
            },
        )
}

/// Opens `n` connections and sends one message on each.
fn open_and_send(server: &Server, n: usize, tag: &str) -> Vec<Client> {
    (0..n)
        .map(|i| {
            let mut c = Client::open(server.addr);
            c.send(&format!("{tag} {i}\n"));
            c
        })
        .collect()
}

/// After the stall: every waiting client gets its echo (nothing lost),
/// and SIGINT ends the server cleanly having accepted `accepted`.
fn nothing_lost(mut server: Server, waiting: Vec<Client>, accepted: u64) {
    wait_for_resume(&server);
    for mut c in waiting {
        assert!(
            c.echoed_by(Instant::now() + PROMPTLY),
            "a connection that waited out the stall was not served after it"
        );
    }
    let summary = util::shut_down_gracefully(&mut server, "after the stall");
    assert_eq!(summary_count(&summary, "accepted"), accepted, "{summary}");
}

#[test]
fn reuseport_serves_the_free_workers_share_and_holds_the_rest() {
    let server = start(&["--accept", "reuseport"], "1");
    // 16 connections: both listeners get some (all on one: p = 2^-15).
    let before = open_and_send(&server, 16, "before");
    assert_eq!(wait_for_stall(&server), 1);
    let (mut served, mut waiting) = split_by_reply(before);
    assert!(
        !served.is_empty(),
        "nothing was served during the stall: did every connection go to the stalled worker?"
    );
    assert!(
        !waiting.is_empty(),
        "everything was served: the worker did not stall, or its connection went elsewhere"
    );
    // The free worker keeps serving its connections...
    for round in 0..3 {
        for c in &mut served {
            assert!(c.ping(&format!("round {round}\n")), "free worker's client");
        }
    }
    // ... and new ones are still hashed to both listeners: the kernel does
    // not know the stalled worker is not accepting.
    let (new_served, new_waiting) = split_by_reply(open_and_send(&server, 16, "during"));
    assert!(!new_served.is_empty(), "no new connection was served");
    assert!(
        !new_waiting.is_empty(),
        "every new connection was served: reuseport steered around the stalled worker?"
    );
    assert_still_stalled(&server);
    eprintln!(
        "reuseport: {} + {} served during the stall, {} + {} waited",
        served.len(),
        new_served.len(),
        waiting.len(),
        new_waiting.len()
    );
    waiting.extend(new_waiting);
    nothing_lost(server, waiting, 32);
}

#[test]
fn exclusive_sends_every_new_connection_to_the_free_worker() {
    // Which worker the kernel wakes first is not ours to choose: stall
    // whichever gets the first connection.
    let server = start(&["--accept", "exclusive"], "first");
    let mut first = Client::open(server.addr);
    first.send("first\n");
    let stalled = wait_for_stall(&server);
    // A burst, so that the free worker is busy (not in epoll_wait) while
    // some connections arrive: they must still not wake the stalled one.
    let (served, waiting) = split_by_reply(open_and_send(&server, 32, "burst"));
    assert!(
        waiting.is_empty(),
        "{} of 32 new connections waited for stalled worker {stalled}",
        waiting.len()
    );
    // And one at a time, with the free worker idle in epoll_wait.
    for i in 0..8 {
        assert!(Client::open(server.addr).ping(&format!("single {i}\n")));
    }
    assert!(
        !first.echoed_by(Instant::now() + PROMPT),
        "the first connection was served during the stall: did worker {stalled} stall?"
    );
    assert_still_stalled(&server);
    eprintln!(
        "exclusive: worker {stalled} stalled; {} + 8 new connections served by the other",
        served.len()
    );
    nothing_lost(server, vec![first], 1 + 32 + 8);
}

#[test]
fn dispatch_round_robin_holds_every_other_connection() {
    let server = start(&["--accept", "dispatch", "--balance", "round-robin"], "1");
    // The first two connections go to workers 0 and 1; worker 1 stalls.
    let held = open_and_send(&server, 2, "held");
    assert_eq!(wait_for_stall(&server), 1);
    let (held_served, mut waiting) = split_by_reply(held);
    assert_eq!((held_served.len(), waiting.len()), (1, 1), "one each");
    // Round-robin knows nothing of load: the next ten alternate too.
    let (served, new_waiting) = split_by_reply(open_and_send(&server, 10, "burst"));
    assert_eq!(
        (served.len(), new_waiting.len()),
        (5, 5),
        "round-robin: half of the new connections wait"
    );
    assert_still_stalled(&server);
    waiting.extend(new_waiting);
    nothing_lost(server, waiting, 12);
}

#[test]
fn dispatch_least_connections_steers_new_connections_to_the_free_worker() {
    let server = start(
        &["--accept", "dispatch", "--balance", "least-connections"],
        "1",
    );
    // Counts 0/0: the first goes to worker 0 (ties go to the lowest id),
    // the second to worker 1, which stalls. Both stay open.
    let held = open_and_send(&server, 2, "held");
    assert_eq!(wait_for_stall(&server), 1);
    let (mut held_served, mut waiting) = split_by_reply(held);
    assert_eq!((held_served.len(), waiting.len()), (1, 1), "one each");
    // Short connections, one after another, each closed before the next.
    // Worker 1 keeps its count (it closes nothing), so each goes to worker
    // 0 unless worker 0 has not yet counted the previous close; then one
    // goes to worker 1 and is stuck, its count grows, and that cannot
    // happen again.
    let mut stuck = 0;
    for i in 0..20 {
        let mut c = Client::open(server.addr);
        if c.ping(&format!("short {i}\n")) {
            c.finish();
        } else {
            stuck += 1;
            waiting.push(c);
        }
    }
    assert!(
        stuck <= 1,
        "{stuck} of 20 short connections went to the stalled worker"
    );
    // The long-lived connection on the free worker is still served.
    assert!(held_served[0].ping("still here\n"));
    assert_still_stalled(&server);
    eprintln!("least-connections: {stuck} of 20 short connections stuck");
    nothing_lost(server, waiting, 22);
}
