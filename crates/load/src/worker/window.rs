//! The measured window of one thread: when recording began and when the
//! window ended, in wall-clock time and in the thread's CPU time.
//!
//! Recording begins at the end of warm-up (a counted run: at the first
//! request) and, once begun, goes on to the thread's finish: a chat drain
//! records the deliveries it waits for. The window's length ends earlier
//! for chat (when sending stops), its CPU time only at the finish.

use std::time::{Duration, Instant};

pub(super) struct Window {
    recording: bool,
    /// When recording began; the thread's start if it never did (a run
    /// ended during connect or warm-up reports that time, with nothing
    /// recorded in it).
    from: Instant,
    cpu_from: Duration,
    /// The end of sending (chat) or of the run.
    end: Option<Instant>,
    cpu_end: Duration,
}

impl Window {
    pub(super) fn new(now: Instant) -> Window {
        Window {
            recording: false,
            from: now,
            cpu_from: Duration::ZERO,
            end: None,
            cpu_end: Duration::ZERO,
        }
    }

    /// Replies, bytes and chat deliveries are measured.
    pub(super) fn is_recording(&self) -> bool {
        self.recording
    }

    /// Begins recording now; begun again, the window restarts (counted
    /// chat runs measure from the first message, not from the connects).
    pub(super) fn open(&mut self) {
        self.recording = true;
        self.from = Instant::now();
        self.cpu_from = thread_cpu();
    }

    /// The window ends at `at`, unless it ended already.
    pub(super) fn close(&mut self, at: Instant) {
        self.end.get_or_insert(at);
    }

    /// The thread is finished: its CPU time stops counting.
    pub(super) fn stop_cpu(&mut self) {
        self.cpu_end = thread_cpu();
    }

    /// The window's length and the CPU time spent in it.
    pub(super) fn measured(&mut self) -> (Duration, Duration) {
        let end = self.end.unwrap_or_else(Instant::now);
        if self.end.is_none() {
            self.cpu_end = thread_cpu();
        }
        if self.recording || self.end.is_some() {
            (
                end.saturating_duration_since(self.from),
                self.cpu_end.saturating_sub(self.cpu_from),
            )
        } else {
            (Duration::ZERO, Duration::ZERO)
        }
    }
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_window_never_opened_nor_ended_measured_nothing() {
        let mut w = Window::new(Instant::now());
        assert_eq!(w.measured(), (Duration::ZERO, Duration::ZERO));
    }

    /// Chat closes the window when sending stops; the finish after the
    /// drain must not stretch it.
    #[test]
    fn the_first_end_is_the_windows_end() {
        let mut w = Window::new(Instant::now());
        w.open();
        let end = Instant::now() + 5 * SEC;
        w.close(end);
        w.close(end + 10 * SEC);
        let (length, _) = w.measured();
        assert!(length >= 5 * SEC && length < 6 * SEC, "{length:?}");
    }
}
