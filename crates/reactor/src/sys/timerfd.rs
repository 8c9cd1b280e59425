//! `timerfd`: the reactor's single kernel timer, armed for the earliest
//! deadline only.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::Timespec;
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
};

pub(crate) struct TimerFd {
    fd: OwnedFd,
}

const ZERO: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

impl TimerFd {
    /// CLOCK_MONOTONIC, like `Instant`: wall-clock jumps must not fire or
    /// delay deadlines.
    pub(crate) fn new() -> io::Result<TimerFd> {
        Ok(TimerFd {
            fd: timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
            )?,
        })
    }

    /// Arms a one-shot expiry `after` from now. A zero duration would disarm
    /// the timer (timerfd_settime(2)), so it is raised to one nanosecond.
    pub(crate) fn arm(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: ZERO,
            it_value: Timespec {
                tv_sec: after.as_secs() as _,
                tv_nsec: after.subsec_nanos() as _,
            },
        };
        timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec)?;
        Ok(())
    }

    pub(crate) fn disarm(&self) -> io::Result<()> {
        let spec = Itimerspec {
            it_interval: ZERO,
            it_value: ZERO,
        };
        timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec)?;
        Ok(())
    }

    /// Consumes the expiry count so the level-triggered registration goes
    /// quiet until the next expiry.
    pub(crate) fn drain(&self) -> io::Result<()> {
        let mut buf = [0u8; 8];
        match rustix::io::read(&self.fd, &mut buf) {
            Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for TimerFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
