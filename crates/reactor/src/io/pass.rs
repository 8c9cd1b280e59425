//! The reactor's side of `Io` in a pass: waiting for events, naming what
//! an event's user data points at, the timerfd, the eventfd and the
//! signalfd, and the busy-time count. `reactor.rs` drives these; handlers
//! never see them. A child module of `io`, so that it reaches `Io`'s
//! fields without widening them.

use std::io;
use std::time::Instant;

use rustix::event::epoll::Event;

use super::*;

impl Io {
    /// Waits for events into `events`: blocking, unless the end of the
    /// pass owes work (then with a zero timeout). Returns the wake-up
    /// time, which becomes the pass's clock (`Io::now`), or `None` if a
    /// signal interrupted the wait (retried by the caller, not counted as
    /// a wake-up).
    ///
    /// # Errors
    /// Any other `epoll_wait` failure: the reactor's own epoll descriptor
    /// is broken.
    #[inline(always)]
    pub(crate) fn wait(&mut self, events: &mut Vec<Event>) -> io::Result<Option<Instant>> {
        let timeout = if self.has_deferred_work() {
            Some(Duration::ZERO)
        } else {
            None
        };
        match self.epoll.wait(events, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
            Err(e) => {
                error!("epoll_wait failed: {e}");
                return Err(io::Error::new(e.kind(), format!("epoll_wait failed: {e}")));
            }
        }
        let woke = Instant::now();
        self.now = woke;
        self.stats.epoll_waits += 1;
        self.stats.events += events.len() as u64;
        self.pass += 1;
        Ok(Some(woke))
    }

    /// Counts a pass's busy time: from its wake-up to `end`, in the total
    /// and in the pass histogram. Re-arming the timerfd before the next
    /// wait is left out, to keep to one extra clock read a pass.
    #[inline]
    pub(crate) fn count_busy(&mut self, woke: Instant, end: Instant) {
        let busy =
            u64::try_from(end.saturating_duration_since(woke).as_nanos()).unwrap_or(u64::MAX);
        self.stats.busy_ns += busy;
        // Its sum is `busy_ns`, filled in by `Io::stats`.
        self.stats.passes.count_only(busy);
    }

    /// What an event's user data names.
    #[inline]
    pub(crate) fn target(&mut self, data: u64) -> Target {
        match data {
            TIMERFD_DATA => Target::Timers,
            SIGNALFD_DATA => Target::Signals,
            EVENTFD_DATA => Target::Wake,
            CHILD_DATA => Target::Children,
            _ => {
                let token = Token::from_u64(data);
                match self.entries.get(token) {
                    Some(Entry::Listener(_)) => Target::Listener(token),
                    Some(Entry::Conn(_)) => Target::Conn(token),
                    None => {
                        self.stats.stale_events += 1;
                        Target::Stale
                    }
                }
            }
        }
    }

    /// The timerfd fired: drain it. Due timers are fired at the end of
    /// every pass, whatever woke it.
    #[inline]
    pub(crate) fn timerfd_fired(&mut self) {
        let _ = self.timerfd.drain();
        self.timer_armed = None;
    }

    /// The eventfd fired: drain it (one `on_wake` however many wakes);
    /// `true` if a [`Waker::stop`] came with it.
    #[inline]
    pub(crate) fn drain_wake(&self) -> bool {
        self.wake.drain()
    }

    /// The next signal waiting on the signalfd, if any.
    ///
    /// # Errors
    /// A failed read of the signalfd.
    pub(crate) fn next_signal(&self) -> io::Result<Option<i32>> {
        match &self.signalfd {
            Some(signalfd) => signalfd.read(),
            None => Ok(None),
        }
    }

    /// Whether any timer is queued: with none, the end of a pass skips
    /// its clock read for due timers.
    #[inline]
    pub(crate) fn timer_due(&self, now: Instant) -> bool {
        self.timers.is_due(now)
    }

    /// The next timer due at `now`, if any.
    #[inline]
    pub(crate) fn pop_expired_timer(&mut self, now: Instant) -> Option<(TimerId, TimerKind)> {
        self.timers.pop_expired(now)
    }

    /// Arms the timerfd for the earliest deadline, unless it is already
    /// armed for that deadline or an earlier one (an early expiry costs one
    /// wake-up that re-arms; re-arming on every timer change would cost a
    /// syscall each).
    ///
    /// Inline, the check that it is armed right already alone: it runs
    /// every pass, and rarely finds work.
    #[inline]
    pub(crate) fn arm_timerfd(&mut self) -> io::Result<()> {
        let next = self.timers.next_deadline();
        let armed_right = match (next, self.timer_armed) {
            (None, None) => true,
            (Some(deadline), Some(armed)) => deadline >= armed,
            _ => false,
        };
        if armed_right {
            return Ok(());
        }
        self.rearm_timerfd(next)
    }

    #[inline(never)]
    fn rearm_timerfd(&mut self, next: Option<Instant>) -> io::Result<()> {
        match next {
            None => {
                if self.timer_armed.take().is_some() {
                    self.stats.timer_arms += 1;
                    self.timerfd.disarm()?;
                }
            }
            Some(deadline) => {
                if self.timer_armed.is_none_or(|armed| deadline < armed) {
                    self.stats.timer_arms += 1;
                    self.timerfd
                        .arm(deadline.saturating_duration_since(Instant::now()))?;
                    self.timer_armed = Some(deadline);
                }
            }
        }
        Ok(())
    }
}
