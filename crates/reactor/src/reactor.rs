//! The event loop: wait, dispatch each event to its connection, listener
//! or the reactor's own descriptors, then the end of the pass (the
//! ready-again list, due timers, the unflushed list).
//!
//! The loop only routes: what an event does is in `conn_io/read.rs` (a
//! connection), `listener.rs` (a listener), `deadlines.rs` (a reactor
//! timer); `deferred.rs` holds the end-of-pass lists.

use std::io;
use std::mem;
use std::time::Instant;

use rustix::event::epoll::Event;
use tracing::warn;

use crate::config::Config;
use crate::conn_io::{self, report_closes};
use crate::deferred::{flush_unflushed, serve_ready_again};
use crate::handler::Handler;
use crate::io::{Exit, Io, Target, TimerKind};
use crate::listener;

/// A single-threaded epoll reactor running one [`Handler`].
///
/// # Examples
/// An echo server in a dozen lines (see `examples/` for a fuller protocol):
/// ```no_run
/// use reactor::{Config, Handler, Io, Reactor, Token};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
///         io.send(conn, data);
///         data.len()
///     }
/// }
///
/// let mut reactor = Reactor::new(Config::default(), Echo)?;
/// reactor.io().listen("127.0.0.1:7000".parse().unwrap(), 4096)?;
/// reactor.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Reactor<H> {
    io: Io,
    handler: H,
    events: Vec<Event>,
}

impl<H: Handler> Reactor<H> {
    /// Creates the epoll instance, its timerfd and eventfd.
    ///
    /// # Errors
    /// Those of `epoll_create1`, `timerfd_create`, `eventfd` and
    /// `epoll_ctl`, e.g. EMFILE.
    pub fn new(config: Config, handler: H) -> io::Result<Reactor<H>> {
        let events = Vec::with_capacity(config.max_events.max(1));
        Ok(Reactor {
            io: Io::new(config)?,
            handler,
            events,
        })
    }

    /// The reactor's [`Io`], to listen, connect or set timers before
    /// [`Reactor::run`].
    pub fn io(&mut self) -> &mut Io {
        &mut self.io
    }

    /// The handler, to read its state after `run` returns.
    pub fn handler(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The handler and the `Io` together, to start work from the handler
    /// (connect, set timers) before [`Reactor::run`].
    pub fn parts(&mut self) -> (&mut H, &mut Io) {
        (&mut self.handler, &mut self.io)
    }

    /// Consumes the reactor (closing every descriptor it holds) and
    /// returns the handler, to collect what it gathered.
    pub fn into_handler(self) -> H {
        self.handler
    }

    /// Runs the loop until a shutdown completes or [`Io::stop`] (or
    /// [`Waker::stop`](crate::Waker::stop)) is called; see
    /// [`Reactor::run_until`] to bound it in time.
    ///
    /// `epoll_wait` blocks indefinitely unless the ready-again list has
    /// work, so an idle reactor makes no wake-ups at all; timers wake it
    /// through the timerfd only when one is due.
    ///
    /// # Errors
    /// An `epoll_wait` failure other than `EINTR` (which is retried), or a
    /// `timerfd_settime` failure when arming the timer descriptor: either
    /// means the reactor's own descriptors are broken (no event or no
    /// deadline could be relied on), and the caller should report it and
    /// exit.
    pub fn run(&mut self) -> io::Result<Exit> {
        // Closes made through `Reactor::io` before `run` (a close, or a
        // shutdown that closed idle connections at once) were queued with
        // no callback to report them after.
        report_closes(&mut self.io, &mut self.handler);
        loop {
            if let Some(exit) = self.io.exit() {
                return Ok(exit);
            }
            self.turn()?;
        }
    }

    /// Like [`Reactor::run`], but returns [`Exit::Deadline`] if `deadline`
    /// passes first: a bound on the whole run, e.g. a test's watchdog, so
    /// a lost event fails the test instead of hanging it.
    ///
    /// The deadline is a timer like [`Io::add_timer`]'s: an idle reactor
    /// sleeps until it (no polling), and it is checked with the other due
    /// timers at the end of a pass, so a pass under way when it passes
    /// finishes first. It is removed when the run returns, whatever ended
    /// it; `run` itself pays nothing for this.
    ///
    /// # Errors
    /// Those of [`Reactor::run`].
    pub fn run_until(&mut self, deadline: Instant) -> io::Result<Exit> {
        let timer = self.io.set_run_deadline(deadline);
        let exit = self.run();
        // Gone already if it fired; otherwise dropped, so the queue keeps
        // only what the handler set.
        self.io.cancel_timer(timer);
        exit
    }

    /// One pass: wait for events (without blocking if the ready-again list
    /// has work), dispatch them, serve the ready-again list, fire due timers.
    fn turn(&mut self) -> io::Result<()> {
        self.io.arm_timerfd()?;
        // The wake-up time serves both as the pass's clock and as the start
        // of its busy interval (closed at the end of `turn`).
        let Some(woke) = self.io.wait(&mut self.events)? else {
            return Ok(());
        };
        let events = mem::take(&mut self.events);
        for event in &events {
            self.dispatch(event);
            if self.io.stopped() {
                break;
            }
        }
        self.events = events;

        // `stop` takes effect after the current callback: the rest of the
        // pass (ready-again list, due timers) must not run after it.
        if !self.io.stopped() {
            serve_ready_again(&mut self.io, &mut self.handler);
        }
        // One clock read for the due timers and the end of the busy
        // interval: read again only if work followed it (a timer fired,
        // the unflushed list was written), so most passes read the clock
        // twice in all, at the wake-up and here.
        let mut end = Instant::now();
        let mut worked = false;
        if !self.io.stopped() {
            worked |= self.fire_due_timers(end);
        }
        if !self.io.stopped() {
            worked |= flush_unflushed(&mut self.io, &mut self.handler);
        }
        if worked {
            end = Instant::now();
        }
        self.io.count_busy(woke, end);
        Ok(())
    }

    fn dispatch(&mut self, event: &Event) {
        let (io, handler) = (&mut self.io, &mut self.handler);
        match io.target(event.data.u64()) {
            Target::Conn(token) => conn_io::on_event(io, handler, token, event.flags),
            Target::Listener(token) => listener::accept(io, handler, token),
            // Due timers are fired at the end of every pass.
            Target::Timers => io.timerfd_fired(),
            Target::Signals => self.on_signals(),
            Target::Wake => {
                let stop = io.drain_wake();
                handler.on_wake(io);
                report_closes(io, handler);
                if stop {
                    io.stop();
                }
            }
            Target::Children => {
                for (pid, status) in io.reap_children() {
                    handler.on_child_exit(io, pid, status);
                    report_closes(io, handler);
                }
            }
            Target::Stale => {}
        }
    }

    fn on_signals(&mut self) {
        loop {
            match self.io.next_signal() {
                Ok(Some(signal)) => {
                    self.handler.on_signal(&mut self.io, signal);
                    report_closes(&mut self.io, &mut self.handler);
                }
                Ok(None) => return,
                Err(e) => {
                    warn!("signalfd read failed: {e}");
                    return;
                }
            }
        }
    }

    /// Fires the timers due at `now`; whether any was.
    ///
    /// Inline, the check for one due alone: it runs every pass, and most
    /// fire none.
    #[inline]
    fn fire_due_timers(&mut self, now: Instant) -> bool {
        if !self.io.timer_due(now) {
            return false;
        }
        self.fire_timers(now);
        true
    }

    #[inline(never)]
    fn fire_timers(&mut self, now: Instant) {
        while !self.io.stopped() {
            let Some((id, kind)) = self.io.pop_expired_timer(now) else {
                break;
            };
            match kind {
                TimerKind::User(data) => self.handler.on_timer(&mut self.io, id, data),
                other => self.io.expire(other, now),
            }
            report_closes(&mut self.io, &mut self.handler);
        }
    }
}
