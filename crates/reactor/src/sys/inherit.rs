//! Descriptors that cross `exec`: listening sockets handed to a new
//! process of a graceful restart, and those a service manager passes
//! (systemd's `LISTEN_FDS`). Every descriptor the reactor makes is
//! close-on-exec; these are the only exceptions, made in the child
//! between `fork` and `exec` so that no other process spawned meanwhile
//! could inherit them.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command};

use rustix::io::{fcntl_getfd, fcntl_setfd, FdFlags};

/// Spawns `command` with `fds` inherited at their own numbers (their
/// close-on-exec flag cleared in the child only); every other descriptor
/// stays close-on-exec as it was.
///
/// # Errors
/// Those of `fork`/`exec` (e.g. the program is missing), and a failed
/// `fcntl` in the child, reported as the spawn's error.
pub fn spawn_with_fds(command: &mut Command, fds: &[impl AsFd]) -> io::Result<Child> {
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_fd().as_raw_fd()).collect();
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: it reads a Vec allocated
    // before the fork (no allocation, no lock) and makes one `fcntl`
    // syscall per descriptor through rustix (a raw syscall, no libc lock).
    // The descriptors are open in the parent for the whole call (borrowed
    // by `fds`), so they are open in the child.
    unsafe {
        command.pre_exec(move || {
            for &fd in &raw {
                let fd = rustix::fd::BorrowedFd::borrow_raw(fd);
                fcntl_setfd(fd, FdFlags::empty())?;
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Takes ownership of descriptor `raw`, inherited through `exec`: it must
/// be open and a socket listening for connections. It is made
/// close-on-exec (so it goes no further unless handed on on purpose)
/// and non-blocking (systemd passes blocking sockets; a reactor must
/// never block in `accept`).
///
/// The caller must take each number once: a second `OwnedFd` for one
/// descriptor would close it twice.
///
/// # Errors
/// `EBADF` for a number that is not open; `InvalidInput` for one that is
/// not a listening socket.
pub fn take_listener(raw: RawFd) -> io::Result<OwnedFd> {
    if raw < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {raw} is stdin, stdout or stderr"),
        ));
    }
    // SAFETY: only borrowed for the checks below, while this function
    // runs; `fcntl_getfd` fails with EBADF if nothing is open at `raw`.
    let borrowed = unsafe { rustix::fd::BorrowedFd::borrow_raw(raw) };
    fcntl_getfd(borrowed).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("descriptor {raw} is not open"),
        )
    })?;
    if !rustix::net::sockopt::socket_acceptconn(borrowed).unwrap_or(false) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {raw} is not a listening socket"),
        ));
    }
    // SAFETY: `raw` is open (checked above) and was inherited for this
    // process to own; the caller takes each number once (documented), so
    // this is its only owner.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    fcntl_setfd(&fd, FdFlags::CLOEXEC)?;
    rustix::io::ioctl_fionbio(&fd, true)?;
    Ok(fd)
}

/// Takes ownership of descriptor `raw`, inherited through `exec` to
/// carry one message back to the parent (a graceful restart's readiness):
/// made close-on-exec. Same contract as [`take_listener`].
///
/// # Errors
/// `EBADF` for a number that is not open, `InvalidInput` for 0 to 2.
pub fn take_inherited(raw: RawFd) -> io::Result<OwnedFd> {
    if raw < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {raw} is stdin, stdout or stderr"),
        ));
    }
    // SAFETY: borrowed for this check only; EBADF if not open.
    let borrowed = unsafe { rustix::fd::BorrowedFd::borrow_raw(raw) };
    fcntl_getfd(borrowed).map_err(|_| io::Error::other(format!("descriptor {raw} is not open")))?;
    // SAFETY: open (checked above), inherited for this process to own,
    // taken once by the caller.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    fcntl_setfd(&fd, FdFlags::CLOEXEC)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_that_is_not_a_listener_is_refused() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let raw = a.as_raw_fd();
        let err = take_listener(raw).expect_err("a connected socket");
        assert!(err.to_string().contains("not a listening socket"), "{err}");
        assert!(take_listener(1).is_err(), "stdout");
        // Still owned by `a`: nothing was taken.
        drop(a);
    }

    #[test]
    fn a_listener_is_taken_non_blocking_and_close_on_exec() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let raw = std::os::fd::IntoRawFd::into_raw_fd(listener);
        fcntl_setfd(
            // SAFETY: `raw` was just released by the listener above.
            unsafe { rustix::fd::BorrowedFd::borrow_raw(raw) },
            FdFlags::empty(),
        )
        .unwrap();
        let fd = take_listener(raw).expect("a listener");
        assert_eq!(fcntl_getfd(&fd).unwrap(), FdFlags::CLOEXEC);
        let flags = rustix::fs::fcntl_getfl(&fd).unwrap();
        assert!(flags.contains(rustix::fs::OFlags::NONBLOCK));
    }
}
