//! `tenk serve proxy --upstream-balance hash-client|hash-header:NAME`
//! through the real binary, in front of recording backends that answer
//! with their own name: a key always reaches the same backend (from any
//! connection, any worker, any proxy with the same upstreams), keys spread
//! over the backends, and a backend that is gone moves only its own keys.
//!
//! Run them one at a time (`--test-threads=1`).

mod util;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use util::backend::{Recorder, Reply};
use util::http_client::Client;
use util::proxy::proxy;
use util::{wait_until, PROMPTLY};

/// Keys tried: enough that each of three backends wins several.
const KEYS: usize = 30;

fn backends() -> Vec<Recorder> {
    ["a", "b", "c"]
        .into_iter()
        .map(|name| Recorder::start(Reply::ok(name)))
        .collect()
}

fn upstreams(backends: &[Recorder]) -> Vec<String> {
    backends.iter().map(Recorder::upstream).collect()
}

/// The backend that answers `X-User: user-K` for each key, each asked on
/// a new client connection (so from any worker); asked in reverse order
/// if `reverse` (a round-robin would then answer differently).
fn by_header(p: &util::Server, reverse: bool) -> Vec<String> {
    let ask = |k: usize| {
        let mut client = Client::connect(p.addr);
        let r = client.get_with("/", &format!("X-User: user-{k}\r\n"));
        assert_eq!(r.status, 200, "{}", r.head);
        r.text()
    };
    if reverse {
        let mut picks: Vec<String> = (0..KEYS).rev().map(ask).collect();
        picks.reverse();
        picks
    } else {
        (0..KEYS).map(ask).collect()
    }
}

/// The backend that answers a client at `198.51.100.K` (as a PROXY v1
/// header says), on a new connection.
fn by_client(p: &util::Server, k: usize) -> String {
    let mut client = Client::connect(p.addr);
    let preamble = format!("PROXY TCP4 198.51.100.{k} 127.0.0.1 40000 80\r\n");
    client
        .writer
        .write_all(preamble.as_bytes())
        .expect("PROXY header");
    let r = client.get("/");
    assert_eq!(r.status, 200, "{}", r.head);
    r.text()
}

fn spread(picks: &[String]) -> BTreeSet<&str> {
    picks.iter().map(String::as_str).collect()
}

#[test]
fn the_same_header_reaches_the_same_backend_and_keys_spread() {
    let backends = backends();
    let p = proxy(
        "edge",
        &upstreams(&backends),
        &["--upstream-balance", "hash-header:x-user"],
    );
    let first = by_header(&p, false);
    assert_eq!(by_header(&p, true), first, "a key changed backend");
    assert_eq!(spread(&first), BTreeSet::from(["a", "b", "c"]), "{first:?}");
    // Without the header: round-robin (on one connection, one worker).
    let mut client = Client::connect(p.addr);
    let rr: Vec<String> = (0..3).map(|_| client.get("/").text()).collect();
    assert_eq!(spread(&rr).len(), 3, "{rr:?}");
}

#[test]
fn the_same_client_address_reaches_the_same_backend_and_addresses_spread() {
    let backends = backends();
    let p = proxy(
        "edge",
        &upstreams(&backends),
        &["--upstream-balance", "hash-client", "--proxy-protocol"],
    );
    let first: Vec<String> = (1..=KEYS).map(|k| by_client(&p, k)).collect();
    let mut again: Vec<String> = (1..=KEYS).rev().map(|k| by_client(&p, k)).collect();
    again.reverse();
    assert_eq!(again, first, "an address changed backend");
    assert_eq!(spread(&first), BTreeSet::from(["a", "b", "c"]), "{first:?}");
}

#[test]
fn a_backend_gone_moves_only_its_own_keys() {
    let mut backends = backends();
    let names = upstreams(&backends);
    let flags = ["--upstream-balance", "hash-header:x-user"];
    let before = by_header(&proxy("edge", &names, &flags), false);
    // Backend b goes away (its port refuses connections), and a new proxy
    // with the same three upstreams meets it down: its requests are
    // retried on their key's next choice, and then it is out.
    let gone = backends.remove(1);
    let addr = gone.addr;
    drop(gone);
    assert!(
        wait_until(PROMPTLY, || TcpStream::connect_timeout(
            &addr,
            Duration::from_secs(1)
        )
        .is_err()),
        "b still accepts"
    );
    let down = proxy(
        "edge",
        &names,
        &[&flags[..], &["--upstream-max-fails", "1"]].concat(),
    );
    let mut rounds = vec![by_header(&down, false), by_header(&down, true)];
    // Without b in the list at all, the same: the upstreams are known by
    // their names, not their places in the list.
    let without = [names[0].clone(), names[2].clone()];
    rounds.push(by_header(&proxy("edge", &without, &flags), false));
    for (round, after) in rounds.iter().enumerate() {
        let mut moved = Vec::new();
        for (k, (b, a)) in before.iter().zip(after).enumerate() {
            if b == "b" {
                moved.push(a.as_str());
            } else {
                assert_eq!(b, a, "round {round}: key {k} of a live backend moved");
            }
        }
        assert!(!moved.is_empty(), "no key was b's: {before:?}");
        assert!(!moved.contains(&"b"), "{moved:?}");
    }
    assert_eq!(rounds[2], rounds[0], "out and removed differ");
}
