//! A test hook, never for production: `TENK_TEST_STALL_WORKER=WHO:MS`
//! blocks one worker thread for `MS` milliseconds, as a handler stuck in a
//! slow computation or a blocking call would, so tests can check what each
//! accept strategy does with the connections that keep arriving
//! (`crates/tenk/tests/stall.rs`, docs/epoll-strategy.md section 12).
//!
//! `WHO` is a worker id, or `first` for whichever worker gets a connection
//! first (under `--accept exclusive` the kernel picks it, so a test cannot
//! name it in advance). The stall starts on that worker's first accepted
//! or adopted connection, before the handler hears of it: the test
//! controls the moment, and that connection waits out the stall. Worker
//! `W` reports `tenk test hook: worker W stalls for MS ms` (a
//! [`Notice::Hook`], which `tenk` prints on stdout) just before blocking
//! and `tenk test hook: worker W resumes` after, so a test waits for the
//! lines instead of guessing with sleeps.
//!
//! The only cost without the variable is one `Option` check per worker's
//! first connection ([`Serving`](crate::serving::Serving) holds the hook).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::serve::{Notice, Notify};

/// The environment variable that enables the hook.
pub const VAR: &str = "TENK_TEST_STALL_WORKER";

/// Which worker to stall, and for how long.
#[derive(Debug)]
pub struct StallHook {
    /// `None`: the first worker to get a connection.
    worker: Option<usize>,
    pause: Duration,
    /// Set by the worker that stalls, so `first` stalls only one.
    taken: AtomicBool,
}

impl StallHook {
    /// The hook [`VAR`] asks for, if it is set.
    ///
    /// # Errors
    /// A malformed value (a typo must not quietly disable a test).
    pub fn from_env() -> io::Result<Option<Arc<StallHook>>> {
        let Ok(value) = std::env::var(VAR) else {
            return Ok(None);
        };
        StallHook::parse(&value)
            .map(|hook| Some(Arc::new(hook)))
            .map_err(|why| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{VAR}={value:?}: {why}"),
                )
            })
    }

    fn parse(value: &str) -> Result<StallHook, &'static str> {
        let (who, ms) = value.split_once(':').ok_or("expected WHO:MS")?;
        let worker = match who {
            "first" => None,
            id => Some(id.parse().map_err(|_| "WHO is a worker id or `first`")?),
        };
        let ms = ms.parse().map_err(|_| "MS is a number of milliseconds")?;
        Ok(StallHook {
            worker,
            pause: Duration::from_millis(ms),
            taken: AtomicBool::new(false),
        })
    }

    /// Called once per worker, on its first connection: blocks the thread
    /// if this worker is the one to stall.
    pub(crate) fn first_connection(&self, worker: usize, notify: &Notify) {
        if self.worker.is_some_and(|w| w != worker) || self.taken.swap(true, Ordering::AcqRel) {
            return;
        }
        let ms = self.pause.as_millis();
        notify(Notice::Hook(&format!(
            "tenk test hook: worker {worker} stalls for {ms} ms"
        )));
        thread::sleep(self.pause);
        notify(Notice::Hook(&format!(
            "tenk test hook: worker {worker} resumes"
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_worker_id_or_first() {
        let hook = StallHook::parse("1:2500").unwrap();
        assert_eq!(
            (hook.worker, hook.pause),
            (Some(1), Duration::from_millis(2500))
        );
        assert_eq!(StallHook::parse("first:10").unwrap().worker, None);
        for bad in ["", "1", "x:10", "1:", "1:ten", "-1:10"] {
            assert!(StallHook::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn first_stalls_one_worker_only() {
        let hook = StallHook::parse("first:0").unwrap();
        let quiet: Notify = Arc::new(|_| {});
        hook.first_connection(1, &quiet);
        assert!(hook.taken.load(Ordering::Acquire));
        // A named worker that is not this one leaves `taken` alone.
        let named = StallHook::parse("1:0").unwrap();
        named.first_connection(0, &quiet);
        assert!(!named.taken.load(Ordering::Acquire));
        named.first_connection(1, &quiet);
        assert!(named.taken.load(Ordering::Acquire));
    }
}
