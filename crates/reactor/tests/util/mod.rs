//! Shared helpers for the socket tests: a watchdog that bounds every run,
//! the three trigger modes, loopback addresses.
//!
//! Tests synchronise on reactor callbacks (readiness), never on sleeps. Each
//! reactor gets a watchdog timer: if a test has not stopped its reactor by
//! then, the watchdog stops it and [`run`] fails the test, so a lost event
//! shows up as a failure instead of a hang.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::time::Duration;

use reactor::{CloseReason, Config, Exit, Handler, Io, Reactor, TimerId, Token, Trigger};

/// Every test that moves bytes runs in each mode.
pub const TRIGGERS: [Trigger; 3] = [Trigger::Edge, Trigger::Level, Trigger::OneShot];

/// How long any one reactor run may take.
pub const WATCHDOG_AFTER: Duration = Duration::from_secs(10);

/// Timer data reserved for the watchdog; test handlers use other values.
pub const WATCHDOG: u64 = u64::MAX;

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

/// Wraps a test's handler: forwards every callback, except that the
/// watchdog timer stops the reactor and marks the run as timed out.
pub struct Bounded<H> {
    pub inner: H,
    pub timed_out: bool,
    /// Stop after forwarding `on_wake`: lets a test thread driving the
    /// reactor's peers end the run through a [`reactor::Waker`].
    pub stop_on_wake: bool,
}

impl<H: Handler> Handler for Bounded<H> {
    fn on_accepted_fd(&mut self, io: &mut Io, listener: Token, fd: OwnedFd) -> Option<OwnedFd> {
        self.inner.on_accepted_fd(io, listener, fd)
    }
    fn on_accept(&mut self, io: &mut Io, listener: Token, conn: Token) {
        self.inner.on_accept(io, listener, conn);
    }
    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        self.inner.on_connect(io, conn);
    }
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        self.inner.on_data(io, conn, data)
    }
    fn on_eof(&mut self, io: &mut Io, conn: Token) {
        self.inner.on_eof(io, conn);
    }
    fn on_flushed(&mut self, io: &mut Io, conn: Token) {
        self.inner.on_flushed(io, conn);
    }
    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        self.inner.on_close(io, conn, reason);
    }
    fn on_timer(&mut self, io: &mut Io, timer: TimerId, data: u64) {
        if data == WATCHDOG {
            self.timed_out = true;
            io.stop();
        } else {
            self.inner.on_timer(io, timer, data);
        }
    }
    fn on_signal(&mut self, io: &mut Io, signal: i32) {
        self.inner.on_signal(io, signal);
    }
    fn on_wake(&mut self, io: &mut Io) {
        self.inner.on_wake(io);
        if self.stop_on_wake {
            io.stop();
        }
    }
}

/// A reactor in `trigger` mode running `handler` under a watchdog.
pub fn reactor<H: Handler>(trigger: Trigger, handler: H) -> Reactor<Bounded<H>> {
    reactor_with(
        Config {
            trigger,
            ..Config::default()
        },
        handler,
    )
}

/// Like [`reactor`], with a full configuration.
pub fn reactor_with<H: Handler>(config: Config, handler: H) -> Reactor<Bounded<H>> {
    let mut reactor = Reactor::new(
        config,
        Bounded {
            inner: handler,
            timed_out: false,
            stop_on_wake: false,
        },
    )
    .expect("create reactor");
    reactor.io().add_timer(WATCHDOG_AFTER, WATCHDOG);
    reactor
}

/// Runs the reactor to its end; fails the test if the watchdog fired.
pub fn run<H: Handler>(reactor: &mut Reactor<Bounded<H>>) -> Exit {
    let exit = reactor.run().expect("reactor run");
    let trigger = reactor.io().config().trigger;
    assert!(
        !reactor.handler().timed_out,
        "watchdog: not done within {WATCHDOG_AFTER:?} ({} mode)",
        trigger.name()
    );
    exit
}
