//! `tenk serve chat --redis`, phase 2: who is where across nodes, through
//! a real `redis-server` (started per test on a free port, persistence
//! off).
//!
//! What is proven: a nick taken on one node is refused on another, and
//! guests of different nodes never share a name; `/msg` reaches a user on
//! another node (and says so when nobody has the nick); `/who` and
//! `/rooms` answer for the whole cluster; a node killed with SIGKILL frees
//! its nicks and leaves `/who` within the (shortened) TTL while the other
//! node's room goes on, and a node that exits gracefully frees them at
//! once, and its users' leave lines reach the other nodes' rooms while it
//! drains (one with output still pending included), out of `/who`; after Redis restarts empty, nodes claim their users' nicks and
//! memberships again; two nodes that claimed one nick while Redis was down
//! are resolved by the earlier claim in Redis, the other user renamed and
//! told.
//!
//! Socket-heavy: run with `--test-threads=1`.

mod util;

use std::thread;
use std::time::{Duration, Instant};

use util::chat_client::Client;
use util::redis::Redis;
use util::{Server, PROMPTLY};

/// The nick TTL the nodes of these tests run with (`--redis-ttl`).
const TTL: Duration = Duration::from_secs(2);

fn node(redis: &Redis, name: &str) -> Server {
    let url = redis.url();
    Server::start(
        &[
            "serve",
            "chat",
            "--port",
            "0",
            "--redis",
            &url,
            "--node",
            name,
            "--redis-ttl",
            "2s",
        ],
        |_| {},
    )
}

/// `/nick nick` until it is granted, within `limit`; how long it took.
fn claim_within(client: &mut Client, guest: &str, nick: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        client.send(&format!("/nick {nick}"));
        let line =
            client.skip_until(|l| l.starts_with("! nick ") || l.contains(" is now known as "));
        if line == format!("* {guest} is now known as {nick}") {
            return started.elapsed();
        }
        assert_eq!(line, format!("! nick {nick} is taken"), "{}", client.who);
        assert!(
            started.elapsed() < limit,
            "{nick} still taken after {limit:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Whether Redis holds a claim of `nick`.
fn claimed(redis: &Redis, nick: &str) -> bool {
    redis
        .command(&["EXISTS", &format!("tenk:nick:{nick}")])
        .as_deref()
        == Some(":1")
}

#[test]
fn nick_collisions_across_nodes_are_refused() {
    let redis = Redis::start();
    let a = node(&redis, "A");
    let b = node(&redis, "B");
    let mut alice = Client::named(a.addr, "alice");
    let mut bob = Client::connect(b.addr, "bob");
    let bob_guest = bob.greeted();
    // Guests are numbered by Redis: never the same on two nodes.
    let mut carol = Client::connect(a.addr, "carol");
    let carol_guest = carol.greeted();
    assert_ne!(bob_guest, carol_guest);
    bob.send("/nick alice");
    // (After carol's join, which may come first.)
    bob.skip_until(|l| l == "! nick alice is taken");
    // Taken on A, refused on A too (locally, without asking Redis).
    carol.send("/nick alice");
    carol.skip_until(|l| l == "! nick alice is taken");
    // A guest name of another node is taken as well.
    bob.send(&format!("/nick {carol_guest}"));
    bob.skip_until(|l| l == format!("! nick {carol_guest} is taken"));
    // Alice renames: her old nick is free at once, for the other node.
    alice.send("/nick alice2");
    alice.skip_until(|l| l == "* alice is now known as alice2");
    bob.send("/nick alice");
    bob.skip_until(|l| l == format!("* {bob_guest} is now known as alice"));
}

#[test]
fn msg_reaches_a_user_on_another_node() {
    let redis = Redis::start();
    let a = node(&redis, "A");
    let b = node(&redis, "B");
    let mut alice = Client::named(a.addr, "alice");
    let mut bob = Client::named(b.addr, "bob");
    alice.send("/msg bob hello over there");
    alice.skip_until(|l| l == "-> *bob* hello over there");
    bob.skip_until(|l| l == "*alice* hello over there");
    bob.send("/msg alice and back");
    bob.expect("-> *alice* and back");
    alice.skip_until(|l| l == "*bob* and back");
    alice.send("/msg nobody hi");
    alice.expect("! no such nick: nobody");
    // The answer came before what alice says next (her input was held).
    alice.send("/msg bob 1");
    alice.send("/msg bob 2");
    alice.expect("-> *bob* 1");
    alice.expect("-> *bob* 2");
    bob.expect("*alice* 1");
    bob.expect("*alice* 2");
}

#[test]
fn who_and_rooms_answer_for_the_cluster() {
    let redis = Redis::start();
    let a = node(&redis, "A");
    let b = node(&redis, "B");
    let mut alice = Client::named(a.addr, "alice");
    let _bob = Client::named(b.addr, "bob");
    let mut carol = Client::named(b.addr, "carol");
    carol.send("/join rust");
    carol.skip_until(|l| l == "* carol joined #rust");
    alice.send("/who");
    alice.skip_until(|l| l == "* in #lobby: alice bob");
    alice.send("/rooms");
    alice.expect("* rooms: #lobby (2) #rust (1)");
    carol.send("/who");
    carol.expect("* in #rust: carol");
    carol.send("/join lobby");
    carol.skip_until(|l| l == "* carol joined #lobby");
    carol.send("/rooms");
    // #rust is empty everywhere: gone; the default room always shows.
    carol.expect("* rooms: #lobby (3)");
}

#[test]
fn a_killed_node_frees_its_nicks_within_the_ttl() {
    let redis = Redis::start();
    let mut a = node(&redis, "A");
    let b = node(&redis, "B");
    let _alice = Client::named(a.addr, "alice");
    let mut bob = Client::named(b.addr, "bob");
    let mut dave = Client::named(b.addr, "dave");
    let mut carol = Client::connect(b.addr, "carol");
    let carol_guest = carol.greeted();
    carol.send("/nick alice");
    carol.expect("! nick alice is taken");
    bob.send("/who");
    bob.skip_until(|l| l.starts_with("* in #lobby: ") && l.contains("alice"));

    a.signal(libc::SIGKILL);
    a.wait_exit(PROMPTLY);
    let killed = Instant::now();
    // B's room goes on meanwhile.
    bob.send("still here");
    dave.skip_until(|l| l == "<bob> still here");
    let took = claim_within(&mut carol, &carol_guest, "alice", TTL * 3);
    eprintln!("alice free {took:?} after the kill (TTL {TTL:?})");
    assert!(
        killed.elapsed() >= TTL / 2,
        "freed before its TTL could run out"
    );
    // The dead node's members are out of /who.
    bob.send("/who");
    bob.skip_until(|l| l == "* in #lobby: alice bob dave");
    bob.send("after");
    dave.skip_until(|l| l == "<bob> after");
}

#[test]
fn a_node_that_exits_frees_its_nicks_at_once() {
    let redis = Redis::start();
    let mut a = node(&redis, "A");
    let b = node(&redis, "B");
    let _alice = Client::named(a.addr, "alice");
    assert!(claimed(&redis, "alice"));
    a.signal(libc::SIGINT);
    assert_eq!(a.wait_exit(PROMPTLY).code(), Some(0));
    assert!(
        !claimed(&redis, "alice"),
        "alice still claimed after a graceful exit"
    );
    let mut bob = Client::connect(b.addr, "bob");
    let guest = bob.greeted();
    bob.send("/nick alice");
    bob.skip_until(|l| l == format!("* {guest} is now known as alice"));
    bob.send("/who");
    bob.expect("* in #lobby: alice");
}

/// Regression: a node that exited gracefully told other nodes its users
/// left only when their connections closed in the drain, by which time
/// its publisher could be gone (a user with output still pending closes
/// last): they left other nodes' rooms without a word.
#[test]
fn a_node_that_exits_tells_the_other_nodes_its_users_left() {
    let redis = Redis::start();
    let mut a = node(&redis, "A");
    let b = node(&redis, "B");
    let mut bob = Client::named(b.addr, "bob");
    let mut dave = Client::named(b.addr, "dave");
    dave.send("/join rust");
    dave.skip_until(|l| l == "* dave joined #rust");
    // Alice stops reading, with megabytes on their way to her (a tiny
    // receive buffer keeps them in A): A's drain waits for her, up to its
    // timeout, long after its publisher has flushed.
    let mut alice = Client::over(tiny_receive_buffer(a.addr), "alice");
    let guest = alice.greeted();
    alice.send("/nick alice");
    alice.skip_until(|l| l == format!("* {guest} is now known as alice"));
    let mut carol = Client::named(a.addr, "carol");
    carol.send("/join rust");
    carol.skip_until(|l| l == "* carol joined #rust");
    let erin = Client::named(a.addr, "erin");
    bob.skip_until(|l| l.ends_with(" is now known as erin"));
    dave.skip_until(|l| l == "* carol joined #rust");
    let line = format!("{}\n", "x".repeat(1000));
    erin.send_raw(line.repeat(6000).as_bytes());
    erin.send("done");
    bob.skip_until(|l| l == "<erin> done");
    drop(erin);
    bob.expect("* erin left #lobby");

    a.signal(libc::SIGINT);
    // What a local leave shows, once, while A still drains; and /who has
    // forgotten them.
    bob.expect("* alice left #lobby");
    dave.expect("* carol left #rust");
    assert!(
        a.child.try_wait().unwrap().is_none(),
        "A exited before its users' leave reached B"
    );
    bob.send("/who");
    bob.expect("* in #lobby: bob");
    dave.send("/who");
    dave.expect("* in #rust: dave");
    assert_eq!(a.wait_exit(PROMPTLY).code(), Some(0));
}

/// A connection to `addr` whose receive buffer is as small as the kernel
/// allows: what is sent to it stays in the sender.
fn tiny_receive_buffer(addr: std::net::SocketAddr) -> std::net::TcpStream {
    use rustix::net::{connect, socket, sockopt, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    sockopt::set_socket_recv_buffer_size(&fd, 1).unwrap();
    connect(&fd, &addr).unwrap();
    let stream = std::net::TcpStream::from(fd);
    stream.set_read_timeout(Some(PROMPTLY)).unwrap();
    stream
}

#[test]
fn nicks_and_rooms_are_claimed_again_after_redis_restarts_empty() {
    let mut redis = Redis::start();
    let a = node(&redis, "A");
    let b = node(&redis, "B");
    let _alice = Client::named(a.addr, "alice");
    let mut bob = Client::connect(b.addr, "bob");
    let bob_guest = bob.greeted();
    redis.restart();
    assert!(!claimed(&redis, "alice"), "a restarted Redis is empty");
    let back = Instant::now();
    while !claimed(&redis, "alice") {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "alice not claimed again 10 s after Redis came back"
        );
        thread::sleep(Duration::from_millis(50));
    }
    bob.send("/nick alice");
    bob.skip_until(|l| l == "! nick alice is taken");
    // Memberships too: wait for B's link as well, then /who.
    let started = Instant::now();
    loop {
        bob.send("/who");
        let line = bob.skip_until(|l| l.starts_with("* in #lobby:"));
        if line == format!("* in #lobby: alice {bob_guest}") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{line:?}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_nick_claimed_on_two_nodes_during_an_outage_goes_to_one() {
    let mut redis = Redis::start();
    let a = node(&redis, "A");
    let b = node(&redis, "B");
    let mut alice = Client::connect(a.addr, "alice");
    alice.greeted();
    let mut bob = Client::connect(b.addr, "bob");
    bob.greeted();
    redis.stop();
    // Both claim "x" locally: Redis cannot say no.
    alice.send("/nick x");
    alice.skip_until(|l| l.ends_with(" is now known as x"));
    bob.send("/nick x");
    bob.skip_until(|l| l.ends_with(" is now known as x"));
    redis.restart();
    // The first node to claim it again in Redis keeps it; the other's user
    // is renamed to a guest and told.
    let (mut loser, mut winner) = (alice, bob);
    loser
        .stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let told = loop {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no conflict resolved"
        );
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut loser.reader, &mut line);
        if line.starts_with("! nick x was claimed on another node first") {
            break line;
        }
        let mut line = String::new();
        winner
            .stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let _ = std::io::BufRead::read_line(&mut winner.reader, &mut line);
        if line.starts_with("! nick x was claimed on another node first") {
            std::mem::swap(&mut loser, &mut winner);
            break line;
        }
    };
    winner.stream.set_read_timeout(Some(PROMPTLY)).unwrap();
    loser.stream.set_read_timeout(Some(PROMPTLY)).unwrap();
    let renamed = told
        .trim_end()
        .rsplit(' ')
        .next()
        .expect("new nick")
        .to_string();
    assert!(renamed.starts_with("guest"), "{told:?}");
    loser.expect(&format!("* x is now known as {renamed}"));
    // Only one x is left: the loser's rename frees nothing of the winner.
    assert!(claimed(&redis, "x"));
    loser.send("/nick x");
    loser.expect("! nick x is taken");
    winner.send("/who");
    winner.skip_until(|l| l.starts_with("* in #lobby:") && l.contains(" x") || l.ends_with(": x"));
}

/// `tenk load chat A,B`: clients alternate between the nodes, three rooms
/// over two load threads; every message reaches every other member of its
/// room on either node, none lost, none reordered, and messages crossed
/// between the nodes.
#[test]
fn load_chat_over_two_nodes_loses_and_reorders_nothing() {
    let redis = Redis::start();
    let a = node(&redis, "A");
    let b = node(&redis, "B");
    let targets = format!("{},{}", a.addr, b.addr);
    let out = util::run_tenk(&[
        "load",
        "chat",
        &targets,
        "--json",
        // Three rooms over two nodes: with as many rooms as nodes, the
        // same parity could put each room wholly on one node, and nothing
        // would cross (seen in CI).
        "-c",
        "60",
        "--rooms",
        "3",
        "--senders",
        "4",
        "--threads",
        "2",
        "--rate",
        "400",
        "-d",
        "1s",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout:?} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let chat = &report["chat"];
    eprintln!("{chat}");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["errors_total"].as_u64(), Some(0), "{report:#}");
    let messages = chat["messages"].as_u64().unwrap();
    assert!(messages > 0, "{report:#}");
    // 20 members a room: each message is owed to 19 others.
    assert_eq!(chat["deliveries_expected"].as_u64(), Some(messages * 19));
    assert_eq!(
        chat["deliveries"].as_u64(),
        Some(messages * 19),
        "{report:#}"
    );
    assert_eq!(chat["lost"].as_u64(), Some(0), "{report:#}");
    assert_eq!(chat["reordered"].as_u64(), Some(0), "{report:#}");
    // Which load clients send is the load generator's choice: the senders
    // may all sit on one node, whose peer then publishes nothing. Messages
    // crossed nodes either way: the two nodes together received some.
    let from_peers = [a, b].map(|mut node| {
        node.signal(libc::SIGINT);
        node.wait_exit(PROMPTLY);
        let mut summary = None;
        while let Some(line) = node.next_line(PROMPTLY) {
            if line.starts_with("tenk chat redis: ") {
                summary = Some(line);
            }
        }
        let summary = summary.expect("a redis summary from each node");
        summary
            .split(", ")
            .find_map(|p| p.strip_prefix("from peers ")?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{summary}"))
    });
    assert!(
        from_peers.iter().sum::<u64>() > 0,
        "no message crossed nodes: {from_peers:?}"
    );
}
