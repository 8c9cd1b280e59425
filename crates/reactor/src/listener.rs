//! The listener: bind, register, accept, pause and resume, adopt a
//! connection accepted elsewhere, and the spare descriptor that lets a
//! full reactor still turn a client away.
//!
//! Listeners are level-triggered in every trigger mode: connections left
//! in the backlog after one batch of accepts are reported again on the
//! next wait, after every other ready descriptor had its turn.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rustix::io::Errno;
use tracing::{debug, error, warn};

use crate::close_reason::CloseReason;
use crate::conn::{Entry, Listener};
use crate::conn_io::report_closes;
use crate::handler::Handler;
use crate::io::{Io, RunState, TimerKind};
use crate::sys::socket;
use crate::token::Token;

impl Io {
    /// Listens on `addr` with `SO_REUSEADDR` and the given backlog.
    /// The listener is level-triggered: connections left in the backlog
    /// after one batch of accepts are reported again on the next wait.
    ///
    /// # Errors
    /// Those of `socket`, `bind` (e.g. `AddrInUse`) and `listen`.
    pub fn listen(&mut self, addr: SocketAddr, backlog: i32) -> io::Result<Token> {
        let fd = socket::listen(addr, backlog, false)?;
        self.add_listener(fd, false)
    }

    /// [`listen`](Io::listen) for a side door: its connections are plain
    /// TCP even when [`Config::transport`](crate::Config::transport) puts
    /// every other inbound connection behind a transport (TLS, a PROXY
    /// protocol header), e.g. a metrics endpoint a scraper reaches
    /// directly, not through the balancer that sends the headers.
    ///
    /// The exemption holds for connections this reactor registers itself.
    /// One a handler keeps in [`Handler::on_accepted_fd`] and passes to
    /// another reactor's [`Io::adopt`] gets that reactor's transport:
    /// serve a plain listener on a reactor that accepts for itself.
    ///
    /// # Errors
    /// Those of [`listen`](Io::listen).
    pub fn listen_plain(&mut self, addr: SocketAddr, backlog: i32) -> io::Result<Token> {
        let fd = socket::listen(addr, backlog, false)?;
        self.add_plain_listener(fd)
    }

    /// Registers a listening socket bound elsewhere (see [`Io::bind`]) as
    /// [`listen_plain`](Io::listen_plain) does: its connections skip
    /// `Config::transport`.
    ///
    /// # Errors
    /// Those of `epoll_ctl`.
    pub fn add_plain_listener(&mut self, fd: OwnedFd) -> io::Result<Token> {
        let token = self.add_listener(fd, false)?;
        if let Some(Entry::Listener(l)) = self.entries.get_mut(token) {
            l.plain = true;
        }
        Ok(token)
    }

    /// Binds a listening socket for `addr` with `SO_REUSEPORT` as well, so
    /// that several reactors (threads) can each have their own on the same
    /// port, the kernel spreading connections between them. The socket is
    /// returned unregistered: pass it to [`Io::add_listener`].
    ///
    /// # Errors
    /// Those of `socket`, `setsockopt`, `bind` and `listen`.
    pub fn bind_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<OwnedFd> {
        socket::listen(addr, backlog, true)
    }

    /// Binds a plain listening socket, returned unregistered (to share one
    /// socket between reactors with [`Io::add_listener`]).
    ///
    /// # Errors
    /// Those of `socket`, `setsockopt`, `bind` and `listen`.
    pub fn bind(addr: SocketAddr, backlog: i32) -> io::Result<OwnedFd> {
        socket::listen(addr, backlog, false)
    }

    /// Whether listening socket `fd` was bound with `SO_REUSEPORT` (false
    /// if unknown): only such sockets can be given one per reactor.
    pub fn is_reuseport(fd: &OwnedFd) -> bool {
        socket::is_reuseport(fd)
    }

    /// Registers a listening socket. With `exclusive`, it is registered
    /// with `EPOLLEXCLUSIVE`: several reactors may register (duplicates
    /// of) the same socket, and the kernel wakes one of them, not all, per
    /// connection (no thundering herd).
    ///
    /// # Errors
    /// Those of `epoll_ctl`.
    pub fn add_listener(&mut self, fd: OwnedFd, exclusive: bool) -> io::Result<Token> {
        let reuseport = socket::is_reuseport(&fd);
        let listener = Listener {
            fd,
            paused: false,
            failed_resumes: 0,
            exclusive,
            plain: false,
            reuseport,
        };
        let token = self.entries.next_token();
        self.ctl_add(&listener.fd, token, listener.interest())?;
        Ok(self.entries.insert(Entry::Listener(listener)))
    }

    /// Registers a connection accepted elsewhere (by an acceptor thread's
    /// reactor, see [`Handler::on_accepted_fd`](crate::Handler::on_accepted_fd))
    /// and counts it as accepted here. The caller then treats it as a new
    /// connection (e.g. calls its handler's `on_accept`). With a shared
    /// connection count (`Config::shared_conns`) the acceptor counted it
    /// when it handed it over, so the cap holds while it is in flight.
    ///
    /// During a graceful shutdown ([`Io::is_draining`]) the connection
    /// joins the drain as every connection did when it began: it is closed
    /// when flushed, which, with nothing sent yet, is at once (or a
    /// lingering close if input is waiting), and the drain deadline covers
    /// it. The token may then already be stale, and its close is reported
    /// after the current callback: a caller should check `is_draining`
    /// before treating it as a new connection. (Left open, it would keep
    /// a draining reactor running with nothing to end it.)
    ///
    /// # Errors
    /// Those of `epoll_ctl`.
    pub fn adopt(&mut self, fd: OwnedFd) -> io::Result<Token> {
        match self.register_conn(fd, false, true, self.inbound_transport()) {
            Ok(token) => {
                self.stats.accepted += 1;
                if self.state != RunState::Running {
                    self.close_when_flushed_with(token, CloseReason::Shutdown);
                }
                Ok(token)
            }
            Err(e) => {
                if let Some(shared) = &self.config.shared_conns {
                    shared.fetch_sub(1, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    pub(crate) fn close_listener(&mut self, token: Token) {
        if let Some(Entry::Listener(listener)) = self.entries.get_mut(token) {
            if !listener.paused {
                let _ = self.epoll.delete(&listener.fd);
                self.stats.epoll_ctls += 1;
            }
            if listener.reuseport {
                // Out of the epoll set, open until the reactor is dropped.
                listener.paused = true;
                return;
            }
            self.entries.remove(token);
        }
    }

    /// Stops accepting on `listener` after EMFILE/ENFILE/ENOMEM: a
    /// level-triggered listener with a full backlog would otherwise report
    /// readable on every wait, and every accept would fail again: a spin.
    /// Accepting resumes on a timer.
    pub(crate) fn pause_accept(&mut self, listener: Token, errno: Errno) {
        let Some(Entry::Listener(l)) = self.entries.get_mut(listener) else {
            return;
        };
        if l.paused {
            return;
        }
        let _ = self.epoll.delete(&l.fd);
        l.paused = true;
        self.stats.epoll_ctls += 1;
        self.stats.accept_pauses += 1;
        // Out of descriptors, the pause repeats every retry period: log
        // the 1st, 2nd, 4th, 8th… so the log says it without flooding.
        if self.stats.accept_pauses.is_power_of_two() {
            warn!(
                "accept failed ({}), pausing accepts for {:?} ({} pauses so far)",
                io::Error::from(errno),
                self.config.accept_retry,
                self.stats.accept_pauses
            );
        }
        let retry = Instant::now() + self.config.accept_retry;
        self.timers.insert(retry, TimerKind::ResumeAccept(listener));
    }

    /// The pause of `listener` is over: put it back in the epoll set. If
    /// the re-add fails (ENOMEM, or ENOSPC at `max_user_watches`), the
    /// listener stays paused and the re-add is tried again after another
    /// `accept_retry`, for as long as it fails: given up, the listener
    /// would be out of the epoll set for good, and the server would accept
    /// nothing more while looking alive.
    pub(crate) fn resume_accept(&mut self, listener: Token) {
        if self.state != RunState::Running {
            return;
        }
        // Descriptors may have been freed during the pause.
        self.reopen_spare_fd();
        let Some(Entry::Listener(l)) = self.entries.get_mut(listener) else {
            return;
        };
        if !l.paused {
            return;
        }
        self.stats.epoll_ctls += 1;
        match self.epoll.add(&l.fd, listener.to_u64(), l.interest()) {
            Ok(()) => {
                l.paused = false;
                if l.failed_resumes > 0 {
                    warn!(
                        "accepting again after {} failed attempts to resume",
                        l.failed_resumes
                    );
                    l.failed_resumes = 0;
                }
            }
            Err(e) => {
                l.failed_resumes += 1;
                // Logged at the 1st, 2nd, 4th… failure in a row, as pauses.
                if l.failed_resumes.is_power_of_two() {
                    warn!(
                        "cannot resume accepting ({e}), retrying in {:?} ({} failures in a row)",
                        self.config.accept_retry, l.failed_resumes
                    );
                }
                let retry = Instant::now() + self.config.accept_retry;
                self.timers.insert(retry, TimerKind::ResumeAccept(listener));
            }
        }
    }

    /// Opens the spare descriptor again if it was lost: when reopening it
    /// after an accept-and-close failed (`ENFILE`: another process took the
    /// freed slot), or it could not be opened at start-up. Called where a
    /// descriptor may have come free: a connection closed, a rejected one
    /// dropped, an accept pause ending. Costs an `open` only while the
    /// spare is missing.
    pub(crate) fn reopen_spare_fd(&mut self) {
        if self.spare_fd.is_none() {
            self.spare_fd = socket::spare_fd().ok();
            if self.spare_fd.is_some() {
                debug!("spare descriptor reopened");
            }
        }
    }

    /// Closes the spare descriptor, accepts one connection into its place
    /// and closes it, then takes the spare back. False if there was no
    /// spare or nothing to accept.
    ///
    /// Under `ENFILE` another process can take the freed slot before the
    /// spare is reopened. The spare is then missing, and
    /// `Io::reopen_spare_fd` tries again wherever a descriptor may come
    /// free (a close, an accept pause ending), so that later rejections
    /// work again instead of leaving clients in the backlog.
    pub(crate) fn reject_with_spare_fd(&mut self, listener: Token) -> bool {
        if self.spare_fd.take().is_none() {
            return false;
        }
        let accepted = match self.entries.get(listener) {
            Some(Entry::Listener(l)) => socket::accept(&l.fd).ok(),
            _ => None,
        };
        let rejected = accepted.is_some();
        if rejected {
            self.stats.rejected += 1;
        }
        drop(accepted);
        match socket::spare_fd() {
            Ok(fd) => self.spare_fd = Some(fd),
            Err(e) => {
                warn!("cannot reopen the spare descriptor ({e}); retried as descriptors come free")
            }
        }
        rejected
    }
}

/// Accepts up to `accept_batch` connections. The listener is
/// level-triggered, so connections left in the backlog are reported
/// again on the next wait, after every other ready fd had its turn.
pub(crate) fn accept<H: Handler>(io: &mut Io, handler: &mut H, listener: Token) {
    for _ in 0..io.config.accept_batch {
        let Some(Entry::Listener(l)) = io.entries.get(listener) else {
            return;
        };
        // Paused or stopped earlier in this batch (`Io::stop_accepting`):
        // its event is stale. Under `dispatch` a connection accepted after
        // the stop could reach a worker that has already left.
        if l.paused {
            return;
        }
        let plain = l.plain;
        match socket::accept(&l.fd) {
            Ok(fd) => {
                if io.at_capacity() {
                    // Accept-and-close: the client gets a prompt close
                    // instead of a connection left in the backlog to
                    // time out.
                    io.stats.rejected += 1;
                    drop(fd);
                    io.reopen_spare_fd();
                    continue;
                }
                let _ = socket::set_nodelay(&fd);
                if let Some(k) = io.config.keepalive {
                    // Serve it anyway: only dead-peer detection is lost.
                    if let Err(e) = socket::set_keepalive(&fd, k.idle, k.interval, k.count) {
                        warn!("cannot set TCP keepalive on an accepted connection: {e}");
                    }
                }
                let Some(fd) = handler.on_accepted_fd(io, listener, fd) else {
                    // Handed to another reactor, which adopts it
                    // uncounted: count it now, so the shared cap
                    // holds while it is in flight.
                    if let Some(shared) = &io.config.shared_conns {
                        shared.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                };
                let transport = if plain { None } else { io.inbound_transport() };
                match io.register_conn(fd, false, false, transport) {
                    Ok(conn) => {
                        io.stats.accepted += 1;
                        handler.on_accept(io, listener, conn);
                        report_closes(io, handler);
                    }
                    Err(e) => warn!("cannot register accepted connection: {e}"),
                }
            }
            Err(Errno::AGAIN) => return,
            // The connection died in the backlog, or a signal, or (per
            // accept(2)) a network error already pending on the new
            // socket: none is the listener's fault.
            Err(
                Errno::INTR
                | Errno::CONNABORTED
                | Errno::PROTO
                | Errno::NETDOWN
                | Errno::NOPROTOOPT
                | Errno::HOSTDOWN
                | Errno::NONET
                | Errno::HOSTUNREACH
                | Errno::OPNOTSUPP
                | Errno::NETUNREACH
                | Errno::PERM,
            ) => continue,
            Err(errno @ (Errno::MFILE | Errno::NFILE)) if io.at_capacity() => {
                // At the cap and at the descriptor limit: give up the
                // spare descriptor for a moment to accept and close,
                // so the client learns at once instead of waiting in
                // the backlog.
                if !io.reject_with_spare_fd(listener) {
                    io.pause_accept(listener, errno);
                    return;
                }
            }
            Err(errno @ (Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)) => {
                io.pause_accept(listener, errno);
                return;
            }
            Err(errno) => {
                error!("accept failed: {}", io::Error::from(errno));
                io.pause_accept(listener, errno);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::time::Duration;

    use super::*;
    use crate::{Config, Reactor, TimerId};

    /// Stops at the first accept, or when its one timer (the watchdog)
    /// fires.
    #[derive(Default)]
    struct FirstAccept {
        accepted: bool,
    }

    impl Handler for FirstAccept {
        fn on_accept(&mut self, io: &mut Io, _listener: Token, _conn: Token) {
            self.accepted = true;
            io.stop();
        }

        fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
            data.len()
        }

        fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
            io.stop();
        }
    }

    /// Regression (dead listener): when an accept pause ended and the
    /// listener's `EPOLL_CTL_ADD` failed, the listener was left out of the
    /// epoll set and marked as no longer paused: nothing retried, and the
    /// server accepted nothing more. The re-add is retried every
    /// `accept_retry` until it succeeds, and the client waiting in the
    /// backlog meanwhile is accepted then. (The listener is
    /// level-triggered in every mode, so one mode covers all three.)
    #[test]
    fn regression_a_failed_listener_readd_is_retried_until_it_accepts() {
        let config = Config {
            accept_retry: Duration::from_millis(10),
            ..Config::default()
        };
        let mut reactor = Reactor::new(config, FirstAccept::default()).unwrap();
        let io = reactor.io();
        let listener = io.listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = io.local_addr(listener).unwrap();
        io.pause_accept(listener, Errno::MFILE);
        // Three re-adds fail: the 10 ms pause ends, then two retries fail.
        io.epoll.fail_adds.set(3);
        io.add_timer(Duration::from_secs(5), 0);
        let _client = TcpStream::connect(addr).unwrap();

        reactor.run().unwrap();
        assert!(
            reactor.handler().accepted,
            "no accept within 5 s after three failed re-adds: the listener is dead"
        );
        assert_eq!(reactor.io().epoll.fail_adds.get(), 0);
        let Some(Entry::Listener(l)) = reactor.io().entries.get(listener) else {
            panic!("listener gone");
        };
        assert!(!l.paused && l.failed_resumes == 0);
    }
}
