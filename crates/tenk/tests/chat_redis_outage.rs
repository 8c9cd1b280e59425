//! `tenk serve chat --redis` when Redis stops answering without closing:
//! a real `redis-server` stopped with SIGSTOP (its kernel still accepts
//! and acknowledges, nothing answers), and a listener whose accept queue
//! is full (SYNs dropped, a connect that never completes).
//!
//! What is proven: a stopped Redis is found dead within the bound the
//! docs state (the PING and reply timeout; without them the links stay
//! "up" for as long as TCP does), local delivery goes on meanwhile, and
//! cross-node delivery resumes within 10 s of SIGCONT; a connect that
//! hangs is given up after the connect timeout and counted; what Redis
//! drops when it cuts a subscriber that falls behind (a node stopped with
//! SIGSTOP, a tiny `client-output-buffer-limit pubsub`) is counted as
//! lost from peers, exactly: published = received + lost.
//!
//! Socket-heavy: run with `--test-threads=1`.

mod util;

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use util::chat_node::{arrive, count_after, probe_until_heard, redis_summary, start};
use util::redis::Redis;
use util::Server;

/// Cross-node delivery must resume within this of Redis coming back.
const RESUME_WITHIN: Duration = Duration::from_secs(10);
/// docs/chat-cluster.md: a silent Redis is found within 7 s of its last
/// byte (`DEAD_WITHIN`), and `--stats` says so at its next second; twice
/// that, for a busy machine.
const DOWN_WITHIN: Duration = Duration::from_secs(16);
/// The connect timeout (3 s), a tick and a `--stats` line; twice that.
const CONNECT_GIVEN_UP_WITHIN: Duration = Duration::from_secs(10);

/// The next `--stats` line of the Redis figures of `node`, within `limit`.
fn redis_stats_line(node: &Server, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let line = node.next_line(left)?;
        if line.starts_with("tenk chat redis worker ") {
            return Some(line);
        }
    }
    None
}

/// Regression: with Redis stopped (SIGSTOP) the links stayed up for TCP,
/// so the node never noticed, nor reconnected, until the kernel gave up.
#[test]
fn a_stopped_redis_is_found_dead_and_cross_node_delivery_resumes() {
    let redis = Redis::start();
    let url = redis.url();
    let mut a = start(&url, "A", &["--stats"]);
    let b = start(&url, "B", &[]);
    let (mut alice, alice_guest) = arrive(&a, "alice");
    let (mut carol, carol_guest) = arrive(&a, "carol");
    alice.expect(&format!("* {carol_guest} joined #lobby"));
    let (mut bob, bob_guest) = arrive(&b, "bob");
    alice.expect(&format!("* {bob_guest} joined #lobby"));
    carol.expect(&format!("* {bob_guest} joined #lobby"));
    bob.send("before");
    alice.expect(&format!("<{bob_guest}> before"));
    carol.expect(&format!("<{bob_guest}> before"));
    // Both of A's links have answered: A counts them up.
    loop {
        let line = redis_stats_line(&a, DOWN_WITHIN).expect("a --stats line");
        if !line.ends_with("| redis down") {
            break;
        }
    }

    redis.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    let mut n = 0;
    loop {
        alice.send(&format!("local {n}"));
        carol.expect(&format!("<{alice_guest}> local {n}"));
        n += 1;
        let line = redis_stats_line(&a, Duration::from_millis(200));
        if line.is_some_and(|l| l.ends_with("| redis down")) {
            break;
        }
        assert!(
            stopped.elapsed() < DOWN_WITHIN,
            "Redis stopped {DOWN_WITHIN:?} ago and A still counts its links up"
        );
    }
    eprintln!("stopped Redis found dead after {:?}", stopped.elapsed());

    redis.signal(libc::SIGCONT);
    let stale = format!("<{alice_guest}> local ");
    let took = probe_until_heard(
        &alice,
        Some(&mut carol),
        &mut bob,
        &alice_guest,
        &stale,
        RESUME_WITHIN,
    );
    eprintln!("cross-node delivery back {took:?} after SIGCONT");
    // And the other way: A resubscribed too (what bob said before it had
    // is lost, at most once).
    probe_until_heard(&bob, None, &mut alice, &bob_guest, "(none)", RESUME_WITHIN);
    let summary = redis_summary(&mut a);
    assert!(count_after(&summary, "timeouts") >= 1, "{summary}");
    assert!(count_after(&summary, "reconnects") >= 1, "{summary}");
}

/// Regression: a connect to a host that drops SYNs held the link for the
/// kernel's ~2 minutes of SYN retries before the next try.
#[test]
fn a_connect_that_hangs_is_given_up_and_counted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // An accept queue of one: once it holds a connection nobody accepts,
    // the kernel drops every further SYN.
    rustix::net::listen(&listener, 0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    while let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        held.push(stream);
        assert!(held.len() < 100, "the accept queue never filled");
    }
    let a = start(&format!("redis://{addr}"), "A", &["--stats"]);
    let started = Instant::now();
    loop {
        let line = redis_stats_line(&a, CONNECT_GIVEN_UP_WITHIN).expect("a --stats line");
        if count_after(&line, "timeouts") >= 1 {
            break;
        }
        assert!(
            started.elapsed() < CONNECT_GIVEN_UP_WITHIN,
            "no connect given up within {CONNECT_GIVEN_UP_WITHIN:?}: {line}"
        );
    }
    // Meanwhile the node serves its own users.
    let (mut alice, _) = arrive(&a, "alice");
    let (_carol, carol_guest) = arrive(&a, "carol");
    alice.expect(&format!("* {carol_guest} joined #lobby"));
}

/// Regression: what Redis dropped when it cut a subscriber that fell
/// behind its `client-output-buffer-limit pubsub` showed only as a
/// reconnect, never as lost messages.
#[test]
fn messages_lost_to_a_cut_subscriber_are_counted_exactly() {
    let redis = Redis::start();
    let limit = [
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "pubsub 64kb 32kb 1",
    ];
    assert_eq!(redis.command(&limit).as_deref(), Some("+OK"));
    let url = redis.url();
    let mut a = start(&url, "A", &[]);
    let mut b = start(&url, "B", &[]);
    // B subscribes first: it hears all A publishes from alice's join on.
    let (mut bob, _) = arrive(&b, "bob");
    let (alice, alice_guest) = arrive(&a, "alice");
    bob.expect(&format!("* {alice_guest} joined #lobby"));
    // B's subscribers, by their private channels (one per worker), which
    // only they have: A's subscriber may be cut too, by its own flood
    // coming back.
    let b_channels = || redis.command(&["PUBSUB", "CHANNELS", "tenk:to:B/*"]);
    let before = b_channels();
    assert!(before.as_deref().is_some_and(|n| n != "*0"), "{before:?}");

    // B stops reading; alice says 8 MB: far more than the kernel buffers
    // between Redis and B, so Redis cuts B's subscriber.
    b.signal(libc::SIGSTOP);
    let text = "x".repeat(1000);
    alice.send_raw(format!("{text}\n").repeat(8000).as_bytes());
    let cut = util::wait_until(RESUME_WITHIN, || b_channels() != before);
    b.signal(libc::SIGCONT);
    assert!(cut, "Redis did not cut the stopped node's subscriber");

    let flood = format!("<{alice_guest}> x");
    probe_until_heard(&alice, None, &mut bob, &alice_guest, &flood, RESUME_WITHIN);
    // Everything A published is now received or missing at B.
    drop(alice);
    bob.skip_until(|l| l == format!("* {alice_guest} left #lobby"));
    let at_b = redis_summary(&mut b);
    let at_a = redis_summary(&mut a);
    eprintln!("A: {at_a}\nB: {at_b}");
    let lost = count_after(&at_b, "lost from peers");
    assert!(lost > 0, "nothing counted lost: {at_b}");
    assert_eq!(
        count_after(&at_b, "from peers") + lost,
        count_after(&at_a, "published") + count_after(&at_a, "lost"),
        "B's received and lost are not what A numbered\nA: {at_a}\nB: {at_b}"
    );
    assert!(count_after(&at_b, "reconnects") >= 1, "{at_b}");
}
