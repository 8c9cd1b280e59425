//! Waking a reactor from another thread, or stopping it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::sys::eventfd::EventFd;

/// A handle that wakes its reactor from any thread; the reactor then calls
/// [`Handler::on_wake`](crate::Handler::on_wake).
///
/// Wake-ups coalesce: several calls before the reactor runs produce one
/// `on_wake`. Cloning is cheap (one reference count).
#[derive(Clone)]
pub struct Waker {
    wake: Arc<Wake>,
}

impl Waker {
    pub(crate) fn new(wake: Arc<Wake>) -> Waker {
        Waker { wake }
    }

    /// Wakes the reactor.
    ///
    /// # Errors
    /// Only if the eventfd write fails for a reason other than a full
    /// counter, which cannot happen on a live reactor.
    pub fn wake(&self) -> io::Result<()> {
        self.wake.eventfd.notify()
    }

    /// Wakes the reactor and stops it: once `on_wake` returns,
    /// [`Reactor::run`](crate::Reactor::run) returns
    /// [`Exit::Stopped`](crate::Exit::Stopped), as if `on_wake` had called
    /// [`Io::stop`](crate::Io::stop). For the thread that started a
    /// reactor's peers to end its run, with no handler of its own.
    ///
    /// # Errors
    /// Those of [`Waker::wake`].
    pub fn stop(&self) -> io::Result<()> {
        // Set before the write that wakes the reactor, which reads it
        // after draining the counter: the request is seen in that pass.
        self.wake.stop.store(true, Ordering::Release);
        self.wake.eventfd.notify()
    }
}

/// The reactor's eventfd, and whether a [`Waker::stop`] came with it.
pub(crate) struct Wake {
    eventfd: EventFd,
    stop: AtomicBool,
}

impl Wake {
    pub(crate) fn new() -> io::Result<Wake> {
        Ok(Wake {
            eventfd: EventFd::new()?,
            stop: AtomicBool::new(false),
        })
    }

    /// Drains the eventfd (one `on_wake` however many wakes); `true` if a
    /// stop was asked for since the last drain.
    pub(crate) fn drain(&self) -> bool {
        let _ = self.eventfd.drain();
        self.stop.swap(false, Ordering::Acquire)
    }
}

impl AsFd for Wake {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.eventfd.as_fd()
    }
}
