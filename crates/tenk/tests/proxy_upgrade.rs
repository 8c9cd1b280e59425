//! `tenk serve proxy` tunnelling upgraded connections (WebSocket-style
//! handshakes), through the real binary, in front of [`UpgradeBackend`]:
//! a backend that records each request head and, by its path, answers an
//! upgrade with 101 and then echoes, floods or hangs up, or refuses it
//! with an ordinary response. Also: tunnels across a graceful restart,
//! and through a TLS client connection.
//!
//! Run them one at a time (`--test-threads=1`).

#[macro_use]
mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use util::certs::{KeyFormat, TestPki};
use util::flood::{Flooder, HIGH_WATERMARK};
use util::http_client::{read_head, Client};
use util::pids::{kill, wait_exited, wait_pid_change, PidFileGuard};
use util::proxy::{proxy, proxy_summary};
use util::{pattern, wait_until, PROMPTLY};

every_trigger!([edge, level, oneshot] => [
    a_handshake_passes_with_upgrade_and_connection_intact,
    bytes_echo_both_ways_byte_exact,
    a_refused_upgrade_is_an_ordinary_response,
    the_client_closing_closes_the_upstream,
    the_upstream_closing_closes_the_client,
    a_slow_reader_holds_the_upstream_back,
    a_client_flooding_an_echo_is_held_back_both_ways,
    a_tunnel_lives_on_in_the_old_process_across_a_restart,
    a_tls_client_tunnels_both_ways,
    a_tls_client_sending_ahead_of_the_101_is_tunnelled,
]);

/// A handshake for `path`, WebSocket-style (RFC 6455 section 4.1).
fn handshake(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: tenk\r\nConnection: keep-alive, Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Bytes the backend floods a `/flood` tunnel with.
const FLOOD: usize = 64 << 20;

#[derive(Default)]
struct Shared {
    /// Each request head received, in order.
    heads: Mutex<Vec<String>>,
    /// Tunnels whose client side the backend saw end (EOF or error).
    ended: AtomicUsize,
    /// Bytes written into `/flood` tunnels so far.
    flooded: AtomicU64,
    stop: AtomicBool,
}

/// The backend: for an upgrade to `/echo`, 101 then an echo of every
/// byte; `/flood`, 101 then [`FLOOD`] bytes of pattern 9; `/hangup`, 101,
/// `bye`, then close; `/refuse`, 403. Any other request (or an upgrade
/// to another path) gets `200 ok`, on a kept-alive connection.
struct UpgradeBackend {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl UpgradeBackend {
    fn start() -> UpgradeBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if state.stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = state.clone();
                thread::spawn(move || serve(stream, &state));
            }
        });
        UpgradeBackend { addr, shared }
    }

    fn upstream(&self) -> String {
        self.addr.to_string()
    }

    fn heads(&self) -> Vec<String> {
        self.shared.heads.lock().unwrap().clone()
    }

    fn ended(&self) -> usize {
        self.shared.ended.load(Ordering::Acquire)
    }
}

impl Drop for UpgradeBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(stream: TcpStream, state: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        state.heads.lock().unwrap().push(head.clone());
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let upgrade = head
            .to_ascii_lowercase()
            .contains("\r\nupgrade: websocket\r\n");
        if !upgrade || !matches!(path.as_str(), "/echo" | "/flood" | "/hangup") {
            let reply: &[u8] = if upgrade && path == "/refuse" {
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            };
            if writer.write_all(reply).is_err() {
                return;
            }
            continue;
        }
        // Made before the 101: in a debug build, 64 MiB take a while.
        let flood = (path == "/flood").then(|| pattern(9, FLOOD));
        let switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        if writer.write_all(switching).is_err() {
            return;
        }
        match path.as_str() {
            "/hangup" => {
                let _ = writer.write_all(b"bye");
                let _ = writer.shutdown(Shutdown::Both);
            }
            "/flood" => {
                for piece in flood.unwrap_or_default().chunks(64 * 1024) {
                    if writer.write_all(piece).is_err() {
                        break;
                    }
                    state
                        .flooded
                        .fetch_add(piece.len() as u64, Ordering::AcqRel);
                }
                // Then wait for the client's end.
                let _ = reader.read_to_end(&mut Vec::new());
            }
            _ => {
                // Echo, in the bytes' own pieces, until the client's end.
                loop {
                    let buf = match reader.fill_buf() {
                        Ok([]) | Err(_) => break,
                        Ok(buf) => buf.to_vec(),
                    };
                    reader.consume(buf.len());
                    if writer.write_all(&buf).is_err() {
                        break;
                    }
                }
            }
        }
        state.ended.fetch_add(1, Ordering::AcqRel);
        let _ = writer.shutdown(Shutdown::Both);
        return;
    }
}

/// Sends the handshake for `path` on a new client connection and reads
/// the 101.
fn upgraded(addr: SocketAddr, path: &str) -> Client {
    let mut client = Client::connect(addr);
    client.send(&handshake(path));
    let head = read_head(&mut client.reader);
    assert_eq!(head.status, 101, "{}", head.head);
    client
}

fn a_handshake_passes_with_upgrade_and_connection_intact(trigger: &str) {
    let backend = UpgradeBackend::start();
    let p = proxy(trigger, &[backend.upstream()], &[]);
    let mut client = Client::connect(p.addr);
    client.send(&handshake("/echo"));
    let head = read_head(&mut client.reader);
    assert_eq!(head.status, 101, "{}", head.head);
    assert_eq!(head.header("upgrade"), Some("websocket"), "{}", head.head);
    assert_eq!(head.header("connection"), Some("upgrade"), "{}", head.head);
    assert_eq!(head.header("via"), Some("1.1 tenk"), "{}", head.head);
    assert_eq!(
        head.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{}",
        head.head
    );
    let seen = backend.heads();
    assert_eq!(seen.len(), 1);
    for line in [
        "GET /echo HTTP/1.1\r\n",
        "\r\nUpgrade: websocket\r\n",
        "\r\nConnection: upgrade\r\n",
        "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        "\r\nVia: 1.1 tenk\r\n",
    ] {
        assert!(seen[0].contains(line), "{line:?} not in {:?}", seen[0]);
    }
    assert!(!seen[0].contains("keep-alive"), "{:?}", seen[0]);
    client.writer.write_all(b"ping").expect("send");
    let mut echo = [0; 4];
    client.reader.read_exact(&mut echo).expect("echo");
    assert_eq!(&echo, b"ping");
    drop(client);
    assert!(wait_until(PROMPTLY, || backend.ended() == 1), "tunnel end");
    let summary = proxy_summary(p);
    assert!(
        summary.contains("tunnels 0 open 1 total 8 bytes"),
        "{summary}"
    );
}

fn bytes_echo_both_ways_byte_exact(trigger: &str) {
    const LEN: usize = 8 << 20;
    let backend = UpgradeBackend::start();
    let p = proxy(trigger, &[backend.upstream()], &[]);
    let mut client = upgraded(p.addr, "/echo");
    let data = pattern(17, LEN);
    let mut writer = client.writer.try_clone().expect("clone");
    let sent = data.clone();
    let sender = thread::spawn(move || {
        for piece in sent.chunks(100_003) {
            writer.write_all(piece).expect("send");
        }
    });
    let mut echo = vec![0; LEN];
    client.reader.read_exact(&mut echo).expect("echo");
    sender.join().expect("sender");
    assert!(echo == data, "the echo differs from what was sent");
    drop(client);
    assert!(wait_until(PROMPTLY, || backend.ended() == 1), "tunnel end");
    let summary = proxy_summary(p);
    let bytes = format!("tunnels 0 open 1 total {} bytes", 2 * LEN);
    assert!(summary.contains(&bytes), "{summary}");
}

fn a_refused_upgrade_is_an_ordinary_response(trigger: &str) {
    let backend = UpgradeBackend::start();
    let p = proxy(trigger, &[backend.upstream()], &[]);
    let mut client = Client::connect(p.addr);
    client.exchange(&handshake("/refuse")).expect(403, b"no");
    // The connection is still HTTP, both sides of the proxy.
    client.get("/after").expect(200, b"ok");
    client.exchange(&handshake("/refuse")).expect(403, b"no");
    let heads = backend.heads();
    assert_eq!(heads.len(), 3, "{heads:?}");
    assert!(heads[0].contains("\r\nUpgrade: websocket\r\n"), "{heads:?}");
    // h2c is not tunnelled: its Upgrade (and what Connection names) is
    // dropped and the request is an ordinary one.
    let h2c = "GET /h2c HTTP/1.1\r\nHost: tenk\r\nConnection: Upgrade, HTTP2-Settings\r\n\
               Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
    client.exchange(h2c.as_bytes()).expect(200, b"ok");
    let last = backend.heads().pop().expect("h2c head");
    assert!(last.starts_with("GET /h2c "), "{last:?}");
    assert!(!last.to_ascii_lowercase().contains("upgrade"), "{last:?}");
    assert!(!last.contains("HTTP2-Settings"), "{last:?}");
    drop(client);
    let summary = proxy_summary(p);
    assert!(summary.contains("tunnels 0 open 0 total"), "{summary}");
}

fn the_client_closing_closes_the_upstream(trigger: &str) {
    let backend = UpgradeBackend::start();
    let p = proxy(trigger, &[backend.upstream()], &[]);
    let baseline = p.fd_count();
    for round in 1..=3 {
        let mut client = upgraded(p.addr, "/echo");
        client.writer.write_all(b"x").expect("send");
        let mut echo = [0; 1];
        client.reader.read_exact(&mut echo).expect("echo");
        // The client, the upstream connection.
        assert_eq!(p.fd_count(), baseline + 2, "round {round}");
        drop(client);
        assert!(
            wait_until(PROMPTLY, || backend.ended() == round),
            "round {round}: the backend never saw the tunnel end"
        );
        assert!(
            wait_until(PROMPTLY, || p.fd_count() == baseline),
            "round {round}: {} descriptors, {baseline} before",
            p.fd_count()
        );
    }
}

fn the_upstream_closing_closes_the_client(trigger: &str) {
    let backend = UpgradeBackend::start();
    let p = proxy(trigger, &[backend.upstream()], &[]);
    let baseline = p.fd_count();
    let mut client = upgraded(p.addr, "/hangup");
    let rest = util::read_to_eof("after the 101", &mut client.reader);
    assert_eq!(rest, b"bye");
    assert!(
        wait_until(PROMPTLY, || p.fd_count() == baseline),
        "{} descriptors, {baseline} before",
        p.fd_count()
    );
}

fn a_slow_reader_holds_the_upstream_back(trigger: &str) {
    let backend = UpgradeBackend::start();
    let p = proxy(trigger, &[backend.upstream()], &[]);
    let before = p.rss_bytes();
    let mut client = upgraded(p.addr, "/flood");
    // The client reads nothing: the backend must stall well short of the
    // flood, held by the proxy not reading it.
    let mut last = (u64::MAX, Instant::now());
    let stalled = wait_until(PROMPTLY, || {
        let now = backend.shared.flooded.load(Ordering::Acquire);
        if now != last.0 {
            last = (now, Instant::now());
            return false;
        }
        now > HIGH_WATERMARK && last.1.elapsed() >= Duration::from_millis(300)
    });
    let flooded = backend.shared.flooded.load(Ordering::Acquire);
    assert!(stalled, "the backend never stalled ({flooded} B written)");
    // Kernel buffers on both hops and the proxy's high watermark: a few
    // MiB at most, against 64.
    assert!(flooded < (FLOOD / 4) as u64, "{flooded} B written");
    let grew = p.rss_bytes().saturating_sub(before);
    assert!(grew < 16 << 20, "proxy RSS grew {grew} B");
    // Then it reads: every byte arrives, in order.
    let mut got = vec![0; FLOOD];
    client.reader.read_exact(&mut got).expect("flood");
    assert!(got == pattern(9, FLOOD), "the flood differs");
}

fn a_client_flooding_an_echo_is_held_back_both_ways(trigger: &str) {
    let backend = UpgradeBackend::start();
    let p = proxy(trigger, &[backend.upstream()], &[]);
    let before = p.rss_bytes();
    let client = upgraded(p.addr, "/echo");
    // The client writes and does not read: the echo piles up towards it,
    // the proxy stops reading the backend, the backend stops reading its
    // input, the proxy stops reading the client: the client stalls.
    let mut flood = Flooder::on(client.writer, FLOOD);
    let written = flood.wait_stalled("flooding client");
    assert!(written < (FLOOD / 4) as u64, "{written} B written");
    let grew = p.rss_bytes().saturating_sub(before);
    assert!(grew < 16 << 20, "proxy RSS grew {grew} B");
    flood.read_all_echo("flooding client");
}

/// Idle past `--upstream-timeout`, a tunnel is closed on both sides.
#[test]
fn an_idle_tunnel_is_closed_after_the_upstream_timeout() {
    let backend = UpgradeBackend::start();
    let p = proxy(
        "edge",
        &[backend.upstream()],
        &["--upstream-timeout", "300ms"],
    );
    let mut client = upgraded(p.addr, "/echo");
    // Bytes keep it open past the timeout.
    for _ in 0..4 {
        thread::sleep(Duration::from_millis(150));
        client.writer.write_all(b"k").expect("send");
        let mut echo = [0; 1];
        client.reader.read_exact(&mut echo).expect("echo");
    }
    let started = Instant::now();
    let rest = util::read_to_eof("idle tunnel", &mut client.reader);
    assert!(rest.is_empty(), "{rest:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    assert!(
        wait_until(PROMPTLY, || backend.ended() == 1),
        "upstream end"
    );
    let summary = proxy_summary(p);
    assert!(summary.contains("tunnels 0 open 1 total"), "{summary}");
}

/// A pid file of its own per test, in a fresh directory.
fn pid_file(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tenk-upgrade-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join("tenk.pid")
}

/// Echoes `bytes` through `client`'s tunnel.
fn echo_through(client: &mut Client, bytes: &[u8]) {
    client.writer.write_all(bytes).expect("send");
    let mut echo = vec![0; bytes.len()];
    client.reader.read_exact(&mut echo).expect("echo");
    assert_eq!(echo, bytes);
}

/// The next `tenk proxy: …` summary line on the shared stdout.
fn next_summary(p: &util::Server) -> String {
    p.wait_line("tenk proxy: ")
}

/// A graceful restart (SIGHUP) leaves a tunnel open on the old process,
/// which serves it on (as nginx keeps an upgraded connection on its old
/// worker) until a side closes it; a tunnel opened after the restart is
/// the new process's. The old process exits once its tunnel is gone.
fn a_tunnel_lives_on_in_the_old_process_across_a_restart(trigger: &str) {
    let backend = UpgradeBackend::start();
    let pid_file = pid_file(&format!("restart-{trigger}"));
    let path = pid_file.to_str().expect("UTF-8 path");
    let mut p = proxy(
        trigger,
        &[backend.upstream()],
        &["--pid-file", path, "--drain-timeout", "60s"],
    );
    let _guard = PidFileGuard(&pid_file);
    let mut old_tunnel = upgraded(p.addr, "/echo");
    echo_through(&mut old_tunnel, b"before");
    let old = p.pid();
    kill(old, libc::SIGHUP);
    let new = wait_pid_change(&pid_file, old, PROMPTLY);
    p.wait_line("stops accepting and drains");
    echo_through(&mut old_tunnel, b"after the restart");
    let mut new_tunnel = upgraded(p.addr, "/echo");
    echo_through(&mut new_tunnel, b"new");
    // Bytes both ways again, the old tunnel still the old process's.
    echo_through(&mut old_tunnel, &pattern(3, 256 << 10));
    util::assert_alive(&mut p, "the old process, its tunnel open");
    drop(old_tunnel);
    assert!(wait_until(PROMPTLY, || backend.ended() == 1), "tunnel end");
    assert!(p.wait_exit(PROMPTLY).success(), "the old process's exit");
    let summary = next_summary(&p);
    assert!(summary.contains("tunnels 0 open 1 total"), "{summary}");
    echo_through(&mut new_tunnel, b"still");
    drop(new_tunnel);
    assert!(wait_until(PROMPTLY, || backend.ended() == 2), "tunnel end");
    kill(new, libc::SIGTERM);
    wait_exited(new, PROMPTLY, "the new process");
    let summary = next_summary(&p);
    assert!(summary.contains("tunnels 0 open 1 total"), "{summary}");
    let _ = std::fs::remove_dir_all(pid_file.parent().expect("a directory"));
}

/// The old process's drain timeout bounds a tunnel it keeps after a
/// restart: the tunnel is closed on both sides then, and the old process
/// exits 0.
#[test]
fn a_tunnel_kept_across_a_restart_is_closed_at_the_drain_timeout() {
    let backend = UpgradeBackend::start();
    let pid_file = pid_file("drain-timeout");
    let path = pid_file.to_str().expect("UTF-8 path");
    let mut p = proxy(
        "edge",
        &[backend.upstream()],
        &["--pid-file", path, "--drain-timeout", "1s"],
    );
    let _guard = PidFileGuard(&pid_file);
    let mut tunnel = upgraded(p.addr, "/echo");
    echo_through(&mut tunnel, b"before");
    let old = p.pid();
    kill(old, libc::SIGHUP);
    let new = wait_pid_change(&pid_file, old, PROMPTLY);
    p.wait_line("stops accepting and drains");
    let handed_over = Instant::now();
    echo_through(&mut tunnel, b"after the restart");
    let rest = util::read_to_eof("a tunnel at the drain timeout", &mut tunnel.reader);
    assert!(rest.is_empty(), "{rest:?}");
    let waited = handed_over.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
    assert!(
        wait_until(PROMPTLY, || backend.ended() == 1),
        "upstream end"
    );
    assert!(p.wait_exit(PROMPTLY).success(), "the old process's exit");
    kill(new, libc::SIGTERM);
    wait_exited(new, PROMPTLY, "the new process");
    let _ = std::fs::remove_dir_all(pid_file.parent().expect("a directory"));
}

/// A client speaking TLS to the proxy (`--tls-cert`/`--tls-key`), the
/// upstream plain: the handshake and its 101 pass through TLS, then bytes
/// both ways, byte-exact across many TLS records. The client is Python's
/// ssl module (OpenSSL), which sends only once the 101 is in.
fn a_tls_client_tunnels_both_ways(trigger: &str) {
    tls_tunnel(trigger, 2 << 20, false);
}

/// Bytes a TLS client sends in the same write as its handshake, before
/// the 101, are held while the exchange runs (the client is not read),
/// then tunnelled: none may be stranded in the TLS layer meanwhile.
fn a_tls_client_sending_ahead_of_the_101_is_tunnelled(trigger: &str) {
    tls_tunnel(trigger, 256 << 10, true);
}

/// `len` bytes echoed through a tunnel of a TLS client, sent after the
/// 101 or `ahead` of it; the 101 and the bytes checked, then the summary.
fn tls_tunnel(trigger: &str, len: usize, ahead: bool) {
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let backend = UpgradeBackend::start();
    let p = proxy(trigger, &[backend.upstream()], &util::tls::flags(&pki));
    assert!(p.banner.contains(", tls"), "{}", p.banner);
    let data = pattern(23, len);
    let expect = len.to_string();
    let mut args = vec!["/echo", &expect];
    if ahead {
        args.push("ahead");
    }
    let out = util::tls::python(&pki, p.addr, "upgrade", &args, &data);
    let at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&out[..at]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    for line in [
        "\r\nupgrade: websocket\r\n",
        "\r\nconnection: upgrade\r\n",
        "\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n",
    ] {
        assert!(head.contains(line), "{line:?} not in {head:?}");
    }
    assert!(out[at..] == data[..], "the echo through TLS differs");
    let seen = backend.heads();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("\r\nUpgrade: websocket\r\n"), "{seen:?}");
    assert!(wait_until(PROMPTLY, || backend.ended() == 1), "tunnel end");
    let summary = proxy_summary(p);
    let bytes = format!("tunnels 0 open 1 total {} bytes", 2 * len);
    assert!(summary.contains(&bytes), "{summary}");
}

/// A handshake that comes after a restart on a keep-alive connection the
/// old process still serves is that connection's next request: it is
/// answered (101) and tunnelled there, bounded by the old process's drain
/// like any tunnel it keeps, rather than refused.
#[test]
fn a_handshake_on_a_kept_alive_connection_after_a_restart_tunnels_on_the_old_process() {
    let backend = UpgradeBackend::start();
    let pid_file = pid_file("kept-alive");
    let path = pid_file.to_str().expect("UTF-8 path");
    let mut p = proxy(
        "edge",
        &[backend.upstream()],
        &["--pid-file", path, "--drain-timeout", "60s"],
    );
    let _guard = PidFileGuard(&pid_file);
    let mut client = Client::connect(p.addr);
    client.get("/before").expect(200, b"ok");
    let old = p.pid();
    kill(old, libc::SIGHUP);
    let new = wait_pid_change(&pid_file, old, PROMPTLY);
    p.wait_line("stops accepting and drains");
    client.send(&handshake("/echo"));
    let head = read_head(&mut client.reader);
    assert_eq!(head.status, 101, "{}", head.head);
    echo_through(&mut client, b"on the old process");
    util::assert_alive(&mut p, "the old process, its tunnel open");
    drop(client);
    assert!(p.wait_exit(PROMPTLY).success(), "the old process's exit");
    let summary = next_summary(&p);
    assert!(summary.contains("tunnels 0 open 1 total"), "{summary}");
    kill(new, libc::SIGTERM);
    wait_exited(new, PROMPTLY, "the new process");
    let _ = std::fs::remove_dir_all(pid_file.parent().expect("a directory"));
}
