//! Child processes watched on the reactor ([`Io::watch_child`]): each
//! through a pidfd in the epoll set (`sys/pidfd.rs`), so that its end is
//! reported at once, with its exit status, by
//! [`Handler::on_child_exit`](crate::Handler::on_child_exit), and it is
//! reaped then (no zombie). A graceful restart's old process watches its
//! new one this way.

use std::io;
use std::process::ExitStatus;

use rustix::event::epoll::EventFlags;
use tracing::warn;

use crate::io::{Io, CHILD_DATA};
use crate::sys::pidfd::ChildFd;

impl Io {
    /// Watches child process `pid` (a child of this process, not yet
    /// reaped): when it ends, it is reaped and
    /// [`Handler::on_child_exit`](crate::Handler::on_child_exit) says how.
    /// Take the pid from a `std::process::Child` and drop that without
    /// waiting on it: the reactor reaps it.
    ///
    /// # Errors
    /// Those of `pidfd_open` (`ENOSYS` before Linux 5.3) and `epoll_ctl`;
    /// the child is then not watched, and the caller must kill and reap it.
    pub fn watch_child(&mut self, pid: u32) -> io::Result<()> {
        let child = ChildFd::open(pid)?;
        // Level-triggered: an exit not reaped in one pass (a failed
        // `waitid`) is reported again in the next.
        self.epoll.add(&child.fd, CHILD_DATA, EventFlags::IN)?;
        self.stats.epoll_ctls += 1;
        self.children.push(child);
        Ok(())
    }

    /// Sends SIGKILL to watched child `pid`; its end is reported as any
    /// other. Through its pidfd: never another process that took its pid.
    ///
    /// # Errors
    /// `NotFound` if `pid` is not watched (it ended and was reported).
    pub fn kill_child(&self, pid: u32) -> io::Result<()> {
        let child = self.children.iter().find(|c| c.pid == pid).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no child {pid} watched"))
        })?;
        child.kill()
    }

    /// A pidfd polled readable: reaps every watched child that has ended
    /// and gives how each ended; they are watched no more.
    pub(crate) fn reap_children(&mut self) -> Vec<(u32, ExitStatus)> {
        let mut ended = Vec::new();
        self.children.retain(|child| match child.try_reap() {
            Ok(Some(status)) => {
                ended.push((child.pid, status));
                false
            }
            Ok(None) => true,
            Err(e) => {
                // Reaped by someone else (a `waitpid(-1)` elsewhere in the
                // process): nothing more will come from it.
                warn!("child {}: waitid failed: {e}; no longer watched", child.pid);
                false
            }
        });
        // Closing a pidfd takes it out of the epoll set.
        ended
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::{Command, ExitStatus};
    use std::time::{Duration, Instant};

    use crate::{Config, Exit, Handler, Io, Reactor, Token};

    #[derive(Default)]
    struct Ends(Vec<(u32, ExitStatus)>);

    impl Handler for Ends {
        fn on_data(&mut self, _: &mut Io, _: Token, data: &[u8]) -> usize {
            data.len()
        }
        fn on_child_exit(&mut self, io: &mut Io, pid: u32, status: ExitStatus) {
            self.0.push((pid, status));
            if self.0.len() == 2 {
                io.stop();
            }
        }
    }

    #[test]
    // Reaped through their pidfds, which is what is tested.
    #[allow(clippy::zombie_processes)]
    fn a_watched_child_end_is_an_event_with_its_status_and_it_is_reaped() {
        let mut reactor = Reactor::new(Config::default(), Ends::default()).unwrap();
        let exits = Command::new("sh").args(["-c", "exit 2"]).spawn().unwrap();
        let killed = Command::new("sleep").arg("60").spawn().unwrap();
        reactor.io().watch_child(exits.id()).unwrap();
        reactor.io().watch_child(killed.id()).unwrap();
        reactor.io().kill_child(killed.id()).unwrap();
        let exit = reactor.run_until(Instant::now() + Duration::from_secs(10));
        assert_eq!(exit.unwrap(), Exit::Stopped, "both ends reported");
        let mut ends = reactor.handler().0.clone();
        ends.sort_by_key(|(pid, _)| *pid != exits.id());
        assert_eq!(ends[0].0, exits.id());
        assert_eq!(ends[0].1.code(), Some(2));
        assert_eq!((ends[1].0, ends[1].1.signal()), (killed.id(), Some(9)));
        for pid in [exits.id(), killed.id()] {
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "{pid} not reaped"
            );
        }
        assert!(
            reactor.io().kill_child(killed.id()).is_err(),
            "no longer watched"
        );
    }
}
