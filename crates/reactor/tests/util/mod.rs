//! Shared helpers for the socket tests: a watchdog that bounds every run,
//! the three trigger modes, loopback addresses.
//!
//! Tests synchronise on reactor callbacks (readiness), never on sleeps.
//! [`run`] bounds each run with a deadline (`Reactor::run_until`): if a
//! test has not stopped its reactor by then, the run ends and the test
//! fails, so a lost event shows up as a failure instead of a hang.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use reactor::{Config, Exit, Handler, Reactor, Trigger};

/// Every test that moves bytes runs in each mode.
pub const TRIGGERS: [Trigger; 3] = [Trigger::Edge, Trigger::Level, Trigger::OneShot];

/// How long any one reactor run may take.
pub const WATCHDOG_AFTER: Duration = Duration::from_secs(10);

/// A loopback address with a port the kernel picks.
pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A loopback address nothing listens on. The port is held by a socket
/// that is bound but never listens, so no other test or process can take it
/// while the caller holds the returned descriptor: a SYN to it is answered
/// with RST.
pub fn closed_port() -> (SocketAddr, OwnedFd) {
    use rustix::net::{bind, getsockname, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(&fd, &any_port()).unwrap();
    let addr = SocketAddr::try_from(getsockname(&fd).unwrap()).unwrap();
    (addr, fd)
}

/// A blocking listener outside any reactor, for tests that need a peer the
/// reactor does not control.
pub fn std_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A reactor in `trigger` mode running `handler`.
pub fn reactor<H: Handler>(trigger: Trigger, handler: H) -> Reactor<H> {
    reactor_with(
        Config {
            trigger,
            ..Config::default()
        },
        handler,
    )
}

/// Like [`reactor`], with a full configuration.
pub fn reactor_with<H: Handler>(config: Config, handler: H) -> Reactor<H> {
    Reactor::new(config, handler).expect("create reactor")
}

/// Runs the reactor to its end, at most [`WATCHDOG_AFTER`]; fails the test
/// if that deadline passed first.
pub fn run<H: Handler>(reactor: &mut Reactor<H>) -> Exit {
    let exit = reactor
        .run_until(Instant::now() + WATCHDOG_AFTER)
        .expect("reactor run");
    let trigger = reactor.io().config().trigger;
    assert!(
        exit != Exit::Deadline,
        "watchdog: not done within {WATCHDOG_AFTER:?} ({} mode)",
        trigger.name()
    );
    exit
}
