//! Where a thread is in its run, and the moves between phases.
//!
//! ```text
//! Connecting ─► Connected ─► Warmup ─► Measuring ─► Draining ─► Done
//!  this thread   waiting for   --warmup   the window   chat only:
//!  opens (chat:  the other                             receiving
//!  and joins)    threads                               what was sent
//! ```
//!
//! Phases only move forward, and any phase can end the run: the window's
//! end, `--requests` reached, a signal, or nothing left connected nor
//! connecting (a chat run goes to `Draining` then, the others to `Done`).
//! A run with `--requests` skips `Warmup`. Measurement is the [`Window`]'s, not a
//! phase's: a counted run records from its first request, while still
//! connecting.
//!
//! [`Window`]: super::window::Window

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reactor::Io;

use super::{Worker, TIMER_DRAIN, TIMER_END, TIMER_MEASURE};
use crate::client::Client;
use crate::spec::Stop;

/// How often a chat thread checks whether its receivers have everything.
const DRAIN_TICK: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Opening this thread's connections (chat: and joining their rooms),
    /// until each connected or failed, or the deadline passed (see
    /// `connect_deadline`). Connections lost meanwhile are replaced once
    /// the run starts (see `deferred`).
    Connecting,
    /// Every connection of this thread connected or failed; the other
    /// threads are not all there yet. No request flows before every
    /// thread is here (see `fill_pipeline`).
    Connected,
    /// Every thread is connected: the schedule runs, unmeasured until
    /// `--warmup` is over.
    Warmup,
    /// The measured window.
    Measuring,
    /// Chat: sending is over; receiving goes on until every thread stopped
    /// sending and this thread's receivers have every message owed them,
    /// or until `deadline` (what is missing then is lost).
    Draining { deadline: Instant },
    /// The thread is finished and its reactor stopping.
    Done,
}

impl Phase {
    /// Requests go out on the schedule (open loop; chat senders).
    pub(super) fn is_sending(self) -> bool {
        matches!(self, Phase::Warmup | Phase::Measuring)
    }
}

impl<C: Client> Worker<C> {
    /// The connect phase ends when every connection of this thread has
    /// connected or failed; the run starts when all threads are there.
    pub(super) fn check_connected(&mut self, io: &mut Io) {
        if self.phase != Phase::Connecting
            || self.to_open > 0
            || self.connecting > 0
            || self.joining > 0
        {
            return;
        }
        self.phase = Phase::Connected;
        let done = self.shared.connected_threads.fetch_add(1, Ordering::AcqRel) + 1;
        if done == self.spec().threads {
            for waker in self.shared.wakers.get().into_iter().flatten() {
                let _ = waker.wake();
            }
        }
        self.maybe_start(io);
    }

    pub(super) fn maybe_start(&mut self, io: &mut Io) {
        if self.phase != Phase::Connected
            || self.shared.connected_threads.load(Ordering::Acquire) < self.spec().threads
        {
            return;
        }
        let now = Instant::now();
        self.schedule.start(now);
        self.result.connecting = now.saturating_duration_since(self.began);
        match self.spec().stop {
            Stop::Duration(_) => {
                self.phase = Phase::Warmup;
                if self.spec().warmup.is_zero() {
                    self.start_window(io);
                } else {
                    io.add_timer(self.spec().warmup, TIMER_MEASURE);
                }
            }
            Stop::Requests(_) => {
                self.phase = Phase::Measuring;
                if !C::REPLIES {
                    // Messages start now, not when connecting started.
                    self.window.open();
                    if !self.schedule.is_carried() {
                        // No sender here: no message of the count to wait for.
                        self.stop_sending(io);
                    }
                }
            }
        }
        // What the connect phase lost is replaced now (see `deferred`).
        self.to_open += std::mem::take(&mut self.deferred);
        self.open_more(io);
        if self.spec().rate.is_some() {
            self.pace(io);
        } else {
            self.start_requests(io);
        }
        self.check_nothing_left(io);
    }

    /// Nothing connected and nothing left to connect (every connect failed
    /// and a failed connect is not retried): nothing more can be measured,
    /// and a `--requests` run would wait for ever for answers to requests
    /// it can no longer send.
    pub(super) fn check_nothing_left(&mut self, io: &mut Io) {
        let running = matches!(self.phase, Phase::Warmup | Phase::Measuring);
        if running && self.open == 0 && self.connecting == 0 && self.to_open == 0 {
            self.end(io);
        }
    }

    /// The end of `--warmup`: the measured window opens.
    pub(super) fn start_window(&mut self, io: &mut Io) {
        if self.phase != Phase::Warmup {
            return;
        }
        self.phase = Phase::Measuring;
        self.window.open();
        if let Stop::Duration(d) = self.spec().stop {
            io.add_timer(d, TIMER_END);
        }
    }

    /// The end of the run (the window is over, `-n` is reached, a
    /// signal): a chat run stops sending and drains; others finish.
    pub(super) fn end(&mut self, io: &mut Io) {
        if !C::REPLIES {
            self.stop_sending(io);
        } else {
            self.finish(io);
        }
    }

    pub(super) fn finish(&mut self, io: &mut Io) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        self.window.close(Instant::now());
        self.window.stop_cpu();
        if !C::REPLIES {
            self.tally_chat();
        } else {
            self.tally_unanswered();
        }
        io.stop();
    }

    /// Chat: the sending window is over. Deliveries per second are counted
    /// over the window; receiving goes on (see [`Worker::drain`]).
    fn stop_sending(&mut self, io: &mut Io) {
        if matches!(self.phase, Phase::Draining { .. } | Phase::Done) {
            return;
        }
        let now = Instant::now();
        self.window.close(now);
        self.phase = Phase::Draining {
            deadline: now + self.spec().timeout,
        };
        self.shared.chat.done_sending.fetch_add(1, Ordering::AcqRel);
        self.drain(io);
    }

    /// Chat: finishes once every thread stopped sending and this thread's
    /// receivers have every message owed them, or at the drain deadline.
    pub(super) fn drain(&mut self, io: &mut Io) {
        let Phase::Draining { deadline } = self.phase else {
            return;
        };
        let everyone = self.shared.chat.done_sending.load(Ordering::Acquire) == self.spec().threads;
        if everyone && self.chat_missing() == 0 || Instant::now() >= deadline {
            self.finish(io);
        } else {
            io.add_timer(DRAIN_TICK, TIMER_DRAIN);
        }
    }
}
