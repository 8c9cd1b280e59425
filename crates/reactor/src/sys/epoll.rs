//! A thin typed wrapper over one epoll instance.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::event::Timespec;

pub(crate) struct Epoll {
    fd: OwnedFd,
    /// Unit tests only: the next this many `add` calls fail with `ENOMEM`
    /// without reaching the kernel. Nothing else can make `EPOLL_CTL_ADD`
    /// fail on demand for a socket that is valid (ENOMEM, or ENOSPC at
    /// the per-user `max_user_watches`, which is system-wide).
    #[cfg(test)]
    pub(crate) fail_adds: std::cell::Cell<u32>,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`: the instance must not leak into
    /// children a server may spawn.
    pub(crate) fn new() -> io::Result<Epoll> {
        Ok(Epoll {
            fd: epoll::create(CreateFlags::CLOEXEC)?,
            #[cfg(test)]
            fail_adds: std::cell::Cell::new(0),
        })
    }

    pub(crate) fn add(&self, fd: impl AsFd, data: u64, flags: EventFlags) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_adds.get() > 0 {
            self.fail_adds.set(self.fail_adds.get() - 1);
            return Err(rustix::io::Errno::NOMEM.into());
        }
        Ok(epoll::add(&self.fd, fd, EventData::new_u64(data), flags)?)
    }

    pub(crate) fn modify(&self, fd: impl AsFd, data: u64, flags: EventFlags) -> io::Result<()> {
        Ok(epoll::modify(
            &self.fd,
            fd,
            EventData::new_u64(data),
            flags,
        )?)
    }

    pub(crate) fn delete(&self, fd: impl AsFd) -> io::Result<()> {
        Ok(epoll::delete(&self.fd, fd)?)
    }

    /// Waits for events, appending them to `events` (which is cleared first
    /// and must have spare capacity). `None` blocks until something happens.
    ///
    /// `EINTR` is returned as `ErrorKind::Interrupted` for the caller to retry
    /// by name.
    pub(crate) fn wait(
        &self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        events.clear();
        let timespec = timeout.map(|t| Timespec {
            tv_sec: t.as_secs() as _,
            tv_nsec: t.subsec_nanos() as _,
        });
        Ok(epoll::wait(
            &self.fd,
            rustix::buffer::spare_capacity(events),
            timespec.as_ref(),
        )?)
    }
}
