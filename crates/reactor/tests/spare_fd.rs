//! The spare descriptor that lets a reactor at `max_conns` and at the
//! descriptor limit still accept and close (`Reactor::reject_with_spare_fd`).
//!
//! Alone in its test binary on purpose: it lowers this process's
//! RLIMIT_NOFILE and fills its descriptor table, which would make any test
//! running beside it in the same process fail with EMFILE. The limit is
//! restored at the end.

mod util;

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use reactor::{Config, Exit, Handler, Io, Token, Trigger};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketType};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use util::{any_port, reactor_with, run};

/// A bound on "promptly": accept pauses last 20 ms here, so a client the
/// reactor means to close is closed well within it.
const PROMPTLY: Duration = Duration::from_secs(3);

/// What the driver thread asks of the reactor, through a waker.
enum Cmd {
    /// Answer once every callback queued before has run.
    Ping,
    Stop,
}

#[derive(Debug, PartialEq)]
enum Ack {
    Accepted,
    Pong,
}

/// Reports accepts, answers pings, stops when told.
struct Capped {
    cmds: mpsc::Receiver<Cmd>,
    acks: mpsc::Sender<Ack>,
}

impl Handler for Capped {
    fn on_accept(&mut self, _io: &mut Io, _listener: Token, _conn: Token) {
        let _ = self.acks.send(Ack::Accepted);
    }

    fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
        data.len()
    }

    fn on_wake(&mut self, io: &mut Io) {
        for cmd in self.cmds.try_iter() {
            match cmd {
                Cmd::Ping => {
                    let _ = self.acks.send(Ack::Pong);
                }
                Cmd::Stop => io.stop(),
            }
        }
    }
}

/// Puts the soft RLIMIT_NOFILE back when dropped, even after a failure.
struct RestoreNofile(Rlimit);

impl Drop for RestoreNofile {
    fn drop(&mut self) {
        let _ = setrlimit(Resource::Nofile, self.0);
    }
}

fn open_null() -> Result<OwnedFd, Errno> {
    rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
}

/// Opens `/dev/null` until the table is full (EMFILE).
fn fill_table() -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    loop {
        match open_null() {
            Ok(fd) => fds.push(fd),
            Err(Errno::MFILE) => return fds,
            Err(e) => panic!("filling the descriptor table: {e}"),
        }
    }
}

fn tcp_socket() -> OwnedFd {
    rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap()
}

/// Connects a socket made earlier (connecting takes no new descriptor).
fn connect(fd: OwnedFd, addr: SocketAddr) -> TcpStream {
    rustix::net::connect(&fd, &addr).expect("connect");
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(PROMPTLY)).unwrap();
    stream
}

/// Whether the reactor closed `stream` (EOF or reset) within `PROMPTLY`.
fn closed_promptly(stream: &mut TcpStream) -> Result<(), String> {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
        Ok(_) => Err("got a byte, expected a close".into()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(format!(
            "still open after {PROMPTLY:?}: left in the backlog"
        )),
        Err(e) => Err(format!("read failed: {e}")),
    }
}

/// Regression (spare descriptor lost for good): when reopening the spare
/// after an accept-and-close failed (under ENFILE another process can take
/// the freed slot), nothing reopened it later, so every over-limit client
/// after that waited in the backlog instead of being closed. The spare is
/// reopened as soon as a descriptor comes free.
///
/// The reactor is created with the table so full that its spare cannot be
/// opened: the state a failed reopen leaves, which a single process cannot
/// otherwise bring about (at EMFILE the slot the rejection frees is always
/// there for the reopen). With `max_conns` 1, one connection held and the
/// table full, client B finds no spare and waits; the driver then frees
/// one descriptor, B is closed, and the table is filled again. Client C
/// must now be closed promptly, through the spare, which only a reopened
/// spare can do.
#[test]
fn regression_a_lost_spare_fd_is_reopened_and_later_clients_are_closed() {
    let original = getrlimit(Resource::Nofile);
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let soft = (open_now + 64).min(original.maximum.unwrap_or(u64::MAX));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(soft),
            maximum: original.maximum,
        },
    )
    .expect("lower RLIMIT_NOFILE");
    let _restore = RestoreNofile(original);

    let clients = [tcp_socket(), tcp_socket(), tcp_socket()];
    let mut fillers = fill_table();
    // Room for the epoll fd, the timerfd and the eventfd, not the spare.
    fillers.truncate(fillers.len() - 3);
    let config = Config {
        trigger: Trigger::Edge,
        max_conns: 1,
        accept_retry: Duration::from_millis(20),
        ..Config::default()
    };
    let (cmd_tx, cmds) = mpsc::channel();
    let (acks, ack_rx) = mpsc::channel();
    let mut r = reactor_with(config, Capped { cmds, acks });
    assert_eq!(
        open_null().err(),
        Some(Errno::MFILE),
        "the reactor should have taken every free descriptor but the spare's"
    );
    // Room for the listener and for connection A.
    fillers.truncate(fillers.len() - 2);
    let listener = r.io().listen(any_port(), 16).expect("listen");
    let addr = r.io().local_addr(listener).unwrap();
    let waker = r.io().waker();

    let driver = thread::spawn(move || {
        let ask = |cmd| {
            cmd_tx.send(cmd).unwrap();
            waker.wake().unwrap();
        };
        let outcome = (|| {
            let [a, b, c] = clients;
            let _a = connect(a, addr);
            match ack_rx.recv_timeout(PROMPTLY) {
                Ok(Ack::Accepted) => {}
                other => return Err(format!("A not accepted: {other:?}")),
            }
            // B finds the reactor at its cap, the table full and no spare.
            // (Its socket stays open, so that the only descriptor freed
            // is the one the driver frees.)
            let mut b = connect(b, addr);
            drop(fillers.pop());
            closed_promptly(&mut b).map_err(|e| format!("B, once a descriptor was freed: {e}"))?;
            // Everything the reactor did around B's close is done.
            ask(Cmd::Ping);
            match ack_rx.recv_timeout(PROMPTLY) {
                Ok(Ack::Pong) => {}
                other => return Err(format!("no pong: {other:?}")),
            }
            let refilled = fill_table();
            let mut c = connect(c, addr);
            closed_promptly(&mut c).map_err(|e| {
                format!(
                    "C, at the cap and the descriptor limit: {e} ({} descriptor(s) \
                     were free for the test to take back: the spare was not reopened)",
                    refilled.len()
                )
            })
        })();
        ask(Cmd::Stop);
        outcome
    });

    assert_eq!(run(&mut r), Exit::Stopped);
    driver.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    let stats = r.io().stats();
    assert!(stats.rejected >= 2, "B and C rejected: {stats:?}");
}
