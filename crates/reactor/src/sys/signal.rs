//! Signal masks and `signalfd`, through `libc` in `unsafe` blocks because
//! rustix wraps neither (the crate's other one is in `socket.rs`).
//!
//! The reactor reads shutdown signals as ordinary readable events. For that
//! the signals must be blocked in every thread (so the kernel queues them
//! instead of running a handler), which is why [`block`] must run in
//! `main()` before any thread is spawned: threads inherit the mask.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// `SIGINT`, the signal Ctrl-C sends.
pub const SIGINT: i32 = libc::SIGINT;
/// `SIGTERM`, the signal service managers send.
pub const SIGTERM: i32 = libc::SIGTERM;
/// `SIGHUP`: `tenk serve` restarts gracefully on it.
pub const SIGHUP: i32 = libc::SIGHUP;

/// A set of signal numbers.
#[derive(Clone, Copy)]
pub struct SignalSet {
    set: libc::sigset_t,
}

impl std::fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members: Vec<i32> = (1..libc::SIGRTMIN())
            // SAFETY: `self.set` is an initialised sigset_t; sigismember
            // only reads it.
            .filter(|&signal| unsafe { libc::sigismember(&self.set, signal) } == 1)
            .collect();
        f.debug_tuple("SignalSet").field(&members).finish()
    }
}

impl SignalSet {
    /// A set holding `signals`.
    ///
    /// # Errors
    /// `EINVAL` for a number that is not a signal.
    pub fn new(signals: &[i32]) -> io::Result<SignalSet> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole sigset_t it is given; the
        // pointer is valid for writes of one sigset_t.
        let mut set = unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            set.assume_init()
        };
        for &signal in signals {
            // SAFETY: `set` is an initialised sigset_t owned by this frame.
            if unsafe { libc::sigaddset(&mut set, signal) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(SignalSet { set })
    }
}

/// Blocks `signals` in the calling thread and resets their disposition to the
/// default action.
///
/// Resetting matters for a server started as a background job of a shell
/// script: the shell starts it with SIGINT *ignored*, and although Linux
/// still queues a blocked, ignored signal, a process that ever unblocks it
/// must not silently drop Ctrl-C. Call this from `main()` before spawning any
/// thread, so every thread inherits the mask.
///
/// # Errors
/// The errors of `sigaction(2)` and `pthread_sigmask(3)`.
pub fn block(signals: &[i32]) -> io::Result<SignalSet> {
    let set = SignalSet::new(signals)?;
    // Block first, then reset: in the other order a signal arriving in
    // between would find the default action (terminate) unblocked.
    // SAFETY: `set.set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set.set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    for &signal in signals {
        // SAFETY: SIG_DFL is a valid disposition for any catchable signal;
        // no Rust handler is installed or replaced.
        if unsafe { libc::signal(signal, libc::SIG_DFL) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(set)
}

/// Ignores SIGPIPE for the whole process.
///
/// Sockets are written with `MSG_NOSIGNAL`, but anything else that writes to
/// a closed pipe (stdout piped into `head`, say) must get `EPIPE`, not death.
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// A `signalfd` reading the signals of a [`SignalSet`] that was blocked.
pub(crate) struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    pub(crate) fn new(set: &SignalSet) -> io::Result<SignalFd> {
        // SAFETY: `set.set` is initialised; -1 asks for a new descriptor.
        let raw = unsafe { libc::signalfd(-1, &set.set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(SignalFd { fd })
    }

    /// Reads one pending signal number, or `None` when none is queued.
    pub(crate) fn read(&self) -> io::Result<Option<i32>> {
        // One `struct signalfd_siginfo` is 128 bytes; `ssi_signo` is its
        // first field, a u32, so no cast of the whole struct is needed.
        let mut buf = [0u8; 128];
        loop {
            return match rustix::io::read(&self.fd, &mut buf) {
                Ok(128) => Ok(Some(
                    u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as i32
                )),
                Ok(_) => Ok(None),
                Err(rustix::io::Errno::AGAIN) => Ok(None),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => Err(e.into()),
            };
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
