//! TCP keepalive ([`Config::keepalive`]): the options are set on every
//! accepted socket with the configured values; a live peer that sends
//! nothing answers the probes and is kept; a peer that vanished without a
//! FIN or RST is closed with `ETIMEDOUT` and counted as an error close.
//!
//! The dead peer is a client in a network namespace of its own, joined to
//! the reactor by a veth pair this test creates (a private /30 in
//! 10.254.0.0/16, on interfaces that exist only for the test, so nothing
//! beyond the machine is ever addressed); taking the client's end of the
//! link down makes it vanish without a word. That needs root and `ip`
//! (iproute2): without them the test says why and skips. The namespace and
//! the link are removed on every exit, a failure included.
//!
//! Every test runs in all three trigger modes under the watchdog of `util`;
//! waits are reactor timers only where time passing is what is tested.

mod util;

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use reactor::{CloseReason, Config, Handler, Io, Keepalive, TimerId, Token, Trigger};
use rustix::net::sockopt;
use util::{any_port, reactor_with, run, TRIGGERS};

/// The fastest keepalive the kernel allows: a dead peer is found 3 s
/// after its last packet (1 s idle, then 2 probes 1 s apart).
const FAST: Keepalive = Keepalive {
    idle: Duration::from_secs(1),
    interval: Duration::from_secs(1),
    count: 2,
};

/// Only keepalive may close a connection here.
fn keepalive_only(trigger: Trigger, keepalive: Option<Keepalive>) -> Config {
    Config {
        trigger,
        idle_timeout: Duration::ZERO,
        write_timeout: Duration::ZERO,
        keepalive,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// The options on the socket
// ---------------------------------------------------------------------------

/// The keepalive settings of a socket, read back from the kernel.
fn read_back(fd: impl AsFd) -> (bool, Duration, Duration, u32) {
    let fd = fd.as_fd();
    (
        sockopt::socket_keepalive(fd).expect("SO_KEEPALIVE"),
        sockopt::tcp_keepidle(fd).expect("TCP_KEEPIDLE"),
        sockopt::tcp_keepintvl(fd).expect("TCP_KEEPINTVL"),
        sockopt::tcp_keepcnt(fd).expect("TCP_KEEPCNT"),
    )
}

/// Reads the options of the accepted socket as the reactor hands it over
/// (where an acceptor passes it on to another reactor, which adopts it
/// as it is), then stops.
#[derive(Default)]
struct ReadBack {
    seen: Option<(bool, Duration, Duration, u32)>,
}

impl Handler for ReadBack {
    fn on_accepted_fd(&mut self, _io: &mut Io, _listener: Token, fd: OwnedFd) -> Option<OwnedFd> {
        self.seen = Some(read_back(&fd));
        Some(fd)
    }
    fn on_accept(&mut self, io: &mut Io, _listener: Token, _conn: Token) {
        io.stop();
    }
    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        data.len()
    }
}

fn accepted_options(config: Config) -> (bool, Duration, Duration, u32) {
    let mut r = reactor_with(config, ReadBack::default());
    let listener = r.io().listen(any_port(), 16).expect("listen");
    let addr = r.io().local_addr(listener).expect("local addr");
    let _peer = TcpStream::connect(addr).expect("connect");
    run(&mut r);
    r.into_handler().seen.expect("no connection accepted")
}

/// Regression (issue 14, item 4): chat users who only read were thrown out
/// by the idle timeout, and nothing else would find a dead peer; the
/// configured keepalive must be on each accepted socket.
#[test]
fn regression_keepalive_options_are_set_on_accepted_sockets() {
    let tuned = Keepalive {
        idle: Duration::from_secs(7),
        interval: Duration::from_secs(3),
        count: 4,
    };
    for trigger in TRIGGERS {
        let got = accepted_options(keepalive_only(trigger, Some(tuned)));
        assert_eq!(
            got,
            (true, tuned.idle, tuned.interval, tuned.count),
            "{trigger:?}: (SO_KEEPALIVE, idle, interval, count)"
        );
    }
}

#[test]
fn without_keepalive_the_socket_keeps_the_kernel_default() {
    for trigger in TRIGGERS {
        let (on, ..) = accepted_options(keepalive_only(trigger, None));
        assert!(!on, "{trigger:?}: SO_KEEPALIVE set though not configured");
    }
}

// ---------------------------------------------------------------------------
// A live silent peer is kept; a vanished one is closed
// ---------------------------------------------------------------------------

/// Records the close of the one connection; optionally stops the reactor
/// at a timer, checking the connection is still open.
#[derive(Default)]
struct Watch {
    accepted: Option<Instant>,
    close: Option<(CloseReason, Duration, u64)>,
    open_at_timer: Option<usize>,
}

impl Handler for Watch {
    fn on_accept(&mut self, _io: &mut Io, _listener: Token, _conn: Token) {
        self.accepted = Some(Instant::now());
    }
    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        data.len()
    }
    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
        self.open_at_timer = Some(io.connection_count());
        io.stop();
    }
    fn on_close(&mut self, io: &mut Io, _conn: Token, reason: CloseReason) {
        let after = self.accepted.expect("closed before accepted").elapsed();
        self.close = Some((reason, after, io.stats().closes.error));
        io.stop();
    }
}

/// A peer that neither sends nor reads, but whose kernel answers the
/// probes, outlives the time a dead one is found in ([`FAST`]).
#[test]
fn a_silent_live_peer_is_kept() {
    for trigger in TRIGGERS {
        let mut r = reactor_with(keepalive_only(trigger, Some(FAST)), Watch::default());
        let listener = r.io().listen(any_port(), 16).expect("listen");
        let addr = r.io().local_addr(listener).expect("local addr");
        let _peer = TcpStream::connect(addr).expect("connect");
        r.io()
            .add_timer(FAST.dead_after() + Duration::from_secs(1), 1);
        run(&mut r);
        let h = r.into_handler();
        assert_eq!(h.close, None, "{trigger:?}: live silent peer closed");
        assert_eq!(h.open_at_timer, Some(1), "{trigger:?}: open connections");
    }
}

/// A peer gone without FIN or RST is closed with `ETIMEDOUT` once the
/// probes go unanswered, and counted as an error close. Without keepalive
/// (no idle timeout either) nothing would ever close it: the watchdog
/// fails the test.
#[test]
fn a_vanished_peer_is_closed_and_counted() {
    let Some(link) = Link::create() else {
        return;
    };
    for trigger in TRIGGERS {
        let mut r = reactor_with(keepalive_only(trigger, Some(FAST)), Watch::default());
        let listener = r
            .io()
            .listen(SocketAddr::new(link.host.into(), 0), 16)
            .expect("listen on the host end of the link");
        let addr = r.io().local_addr(listener).expect("local addr");
        let peer = link.connect_from_namespace(addr);
        link.set_peer_up(false);
        run(&mut r);
        let h = r.into_handler();
        let (reason, after, errors) = h
            .close
            .unwrap_or_else(|| panic!("{trigger:?}: vanished peer not closed"));
        assert_eq!(
            reason,
            CloseReason::Error(libc::ETIMEDOUT),
            "{trigger:?}: closed after {after:?}"
        );
        assert_eq!(errors, 1, "{trigger:?}: error closes counted");
        // Found by the probes, not before the last could go unanswered.
        assert!(
            after >= FAST.dead_after() - Duration::from_millis(500),
            "{trigger:?}: closed after {after:?}, before the probes ran out"
        );
        eprintln!("{trigger:?}: vanished peer closed after {after:?}");
        drop(peer);
        link.set_peer_up(true);
    }
}

// ---------------------------------------------------------------------------
// The network namespace and its veth pair
// ---------------------------------------------------------------------------

/// A network namespace joined to this one by a veth pair, each end with
/// an address of a private /30; removed on drop.
struct Link {
    namespace: String,
    host_if: String,
    peer_if: String,
    host: Ipv4Addr,
    peer: Ipv4Addr,
}

/// Several links in one run get different names and subnets.
static LINKS: AtomicU32 = AtomicU32::new(0);

impl Link {
    /// `None`, with the reason on stderr, where the test cannot create one.
    fn create() -> Option<Link> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: creating a network namespace needs root");
            return None;
        }
        match Command::new("ip").arg("-V").output() {
            Ok(out) if out.status.success() => {}
            _ => {
                eprintln!("skipped: `ip` (iproute2) is not installed");
                return None;
            }
        }
        let n = std::process::id() * 4 + LINKS.fetch_add(1, Ordering::Relaxed);
        // One of 16,384 /30 subnets of 10.254.0.0/16: .1 here, .2 there.
        let subnet = n % 16_384;
        let (c, d) = ((subnet / 64) as u8, (subnet % 64 * 4) as u8);
        let link = Link {
            namespace: format!("tenk-ka-{n}"),
            host_if: format!("tkah{n}"),
            peer_if: format!("tkap{n}"),
            host: Ipv4Addr::new(10, 254, c, d + 1),
            peer: Ipv4Addr::new(10, 254, c, d + 2),
        };
        // From here on, drop removes whatever was made.
        let (ns, host, peer) = (&link.namespace, &link.host_if, &link.peer_if);
        let steps: [&[&str]; 6] = [
            &["netns", "add", ns],
            &[
                "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns,
            ],
            &["addr", "add", &format!("{}/30", link.host), "dev", host],
            &["link", "set", host, "up"],
            &[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/30", link.peer),
                "dev",
                peer,
            ],
            &["-n", ns, "link", "set", peer, "up"],
        ];
        for step in steps {
            if let Err(why) = ip(step) {
                eprintln!("skipped: cannot set up the link: {why}");
                return None;
            }
        }
        Some(link)
    }

    /// A connection to `addr` from inside the namespace: a thread joins the
    /// namespace and connects; the socket stays in it.
    fn connect_from_namespace(&self, addr: SocketAddr) -> TcpStream {
        let path = format!("/run/netns/{}", self.namespace);
        let expected = IpAddr::V4(self.peer);
        thread::spawn(move || {
            let ns = File::open(&path).expect("open the namespace");
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns into the namespace");
            let stream =
                TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
            assert_eq!(stream.local_addr().unwrap().ip(), expected, "source");
            stream
        })
        .join()
        .expect("connecting thread")
    }

    /// Takes the namespace's end of the link down (or up): the peer then
    /// neither receives nor answers, and sends no FIN or RST.
    fn set_peer_up(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.namespace, "link", "set", &self.peer_if, state]).expect("ip link set");
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; the namespace goes when its
        // last socket does.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.namespace]);
    }
}

/// Runs `ip args`; the error says what failed and why.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr);
    Err(format!("ip {}: {}", args.join(" "), why.trim()))
}
