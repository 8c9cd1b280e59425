//! Waking a reactor from another thread.

use std::io;
use std::sync::Arc;

use crate::sys::eventfd::EventFd;

/// A handle that wakes its reactor from any thread; the reactor then calls
/// [`Handler::on_wake`](crate::Handler::on_wake).
///
/// Wake-ups coalesce: several calls before the reactor runs produce one
/// `on_wake`. Cloning is cheap (one reference count).
#[derive(Clone)]
pub struct Waker {
    eventfd: Arc<EventFd>,
}

impl Waker {
    pub(crate) fn new(eventfd: Arc<EventFd>) -> Waker {
        Waker { eventfd }
    }

    /// Wakes the reactor.
    ///
    /// # Errors
    /// Only if the eventfd write fails for a reason other than a full
    /// counter, which cannot happen on a live reactor.
    pub fn wake(&self) -> io::Result<()> {
        self.eventfd.notify()
    }
}
