//! Chat nodes on a test Redis (`tenk serve chat --redis`), for the chat
//! cluster suites: a user's arrival, the summary and its counts.

use std::io::BufRead;
use std::time::{Duration, Instant};

use super::chat_client::Client;
use super::{Server, PROMPTLY};

/// A fresh user on `server`: greeted, its join confirmed; its guest nick.
pub fn arrive(server: &Server, who: &str) -> (Client, String) {
    let mut client = Client::connect(server.addr, who);
    let guest = client.greeted();
    (client, guest)
}

/// SIGINT, then the `tenk chat redis:` summary line.
pub fn redis_summary(server: &mut Server) -> String {
    server.signal(libc::SIGINT);
    let status = server.wait_exit(PROMPTLY);
    assert_eq!(status.code(), Some(0), "exit status after SIGINT");
    let mut lines = Vec::new();
    while let Some(line) = server.next_line(PROMPTLY) {
        if line.starts_with("tenk chat redis: ") {
            return line;
        }
        lines.push(line);
    }
    panic!("no `tenk chat redis:` line; stdout had {lines:?}");
}

/// The number after `label` in a summary or `--stats` line (`lost 3`).
pub fn count_after(summary: &str, label: &str) -> u64 {
    summary
        .split([',', ':', '|'])
        .map(str::trim)
        .find_map(|part| {
            part.strip_prefix(label)?
                .trim()
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {label:?} in {summary:?}"))
}

/// `tenk serve chat --redis URL --node NAME <extra>` on a free port.
pub fn start(url: &str, name: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "serve", "chat", "--port", "0", "--redis", url, "--node", name,
    ];
    args.extend_from_slice(extra);
    Server::start(&args, |_| {})
}

/// `sender` says `probe N` (N = 0, 1, …) until `listener`, on another
/// node, hears one; each probe must also reach `local` (if given), on the
/// sender's node (local delivery never stops). Lines at `listener` starting with
/// `stale` (messages said during an outage, that Redis may still deliver
/// from a connection the node gave up) are skipped. Fails after `limit`;
/// returns how long it took.
pub fn probe_until_heard(
    sender: &Client,
    mut local: Option<&mut Client>,
    listener: &mut Client,
    nick: &str,
    stale: &str,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    listener
        .stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let probe = format!("<{nick}> probe ");
    for n in 0.. {
        assert!(
            started.elapsed() < limit,
            "no cross-node delivery within {limit:?}"
        );
        sender.send(&format!("probe {n}"));
        if let Some(local) = local.as_deref_mut() {
            local.expect(&format!("{probe}{n}"));
        }
        loop {
            let mut line = String::new();
            match listener.reader.read_line(&mut line) {
                Ok(_) if line.ends_with('\n') => {}
                // Nothing within the read timeout: probe again.
                _ => break,
            }
            if line.starts_with(stale) {
                continue;
            }
            assert!(line.starts_with(&probe), "{}: {line:?}", listener.who);
            listener.stream.set_read_timeout(Some(PROMPTLY)).unwrap();
            return started.elapsed();
        }
    }
    unreachable!()
}
