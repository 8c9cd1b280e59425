//! What systemd gives a service and expects of it, written here over std's
//! Unix sockets rather than through a crate (the protocol is a datagram of
//! `KEY=VALUE` lines, and std already speaks abstract socket names):
//! socket activation (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`,
//! sd_listen_fds(3)) and readiness notification (`NOTIFY_SOCKET`,
//! sd_notify(3)).

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Sockets passed by socket activation.
#[derive(Debug)]
pub struct Activation {
    pub listeners: Vec<OwnedFd>,
    /// `LISTEN_FDNAMES`, one per socket (`FileDescriptorName=`), if given.
    pub names: Vec<String>,
}

impl Activation {
    /// Takes the socket named `name` in `LISTEN_FDNAMES` out of the
    /// serving ones, if there is one (the first of that name).
    pub fn take_named(&mut self, name: &str) -> Option<OwnedFd> {
        let at = self.names.iter().position(|n| n == name)?;
        if at >= self.listeners.len() {
            return None;
        }
        self.names.remove(at);
        Some(self.listeners.remove(at))
    }
}

/// The sockets systemd passed this process, if it passed any: `LISTEN_PID`
/// must be this process's pid (the variables are inherited by children
/// they were not meant for), `LISTEN_FDS` the count from descriptor 3.
///
/// # Errors
/// Malformed variables, or a passed descriptor that is not a listening
/// socket (e.g. a `Accept=yes` unit, which passes connections).
pub fn activation_from_env() -> io::Result<Option<Activation>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    let Some(count) = parse_activation(pid.as_deref(), count.as_deref(), std::process::id())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
    else {
        return Ok(None);
    };
    let mut listeners = Vec::with_capacity(count);
    for raw in LISTEN_FDS_START..LISTEN_FDS_START + count as RawFd {
        let fd = reactor::sys::inherit::take_listener(raw)
            .map_err(|e| io::Error::new(e.kind(), format!("LISTEN_FDS: {e}")))?;
        listeners.push(fd);
    }
    let names = names
        .map(|n| n.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    Ok(Some(Activation { listeners, names }))
}

/// How many descriptors systemd passed, from `LISTEN_PID` and
/// `LISTEN_FDS`: `None` when they are not set or not for process `me`.
pub fn parse_activation(
    pid: Option<&str>,
    count: Option<&str>,
    me: u32,
) -> Result<Option<usize>, String> {
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(None);
    };
    let pid: u32 = pid
        .parse()
        .map_err(|_| format!("LISTEN_PID={pid:?}: not a pid"))?;
    if pid != me {
        return Ok(None);
    }
    let count: usize = count
        .parse()
        .map_err(|_| format!("LISTEN_FDS={count:?}: not a count"))?;
    if count == 0 {
        return Err("LISTEN_FDS=0: socket activation passed no socket".into());
    }
    if count > 64 {
        return Err(format!("LISTEN_FDS={count}: more sockets than tenk serves"));
    }
    Ok(Some(count))
}

/// A connection to systemd's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// `WATCHDOG_USEC`, if this process is watched.
    pub watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` names (a path, or an abstract name
    /// written `@name`), if set; with the watchdog period of
    /// `WATCHDOG_USEC` when `WATCHDOG_PID` is unset or this process.
    ///
    /// # Errors
    /// A malformed `NOTIFY_SOCKET`, or no datagram socket could be made.
    pub fn from_env() -> io::Result<Option<Notifier>> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let path = path.to_str().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "NOTIFY_SOCKET: not UTF-8")
        })?;
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None if path.starts_with('/') => SocketAddr::from_pathname(path)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("NOTIFY_SOCKET={path:?}: neither a path nor an @name"),
                ))
            }
        };
        let watched =
            std::env::var("WATCHDOG_PID").map_or(true, |pid| pid == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|&usec| usec > 0 && watched)
            .map(Duration::from_micros);
        Ok(Some(Notifier {
            socket: UnixDatagram::unbound()?,
            addr,
            watchdog,
        }))
    }

    /// Sends one notification (`READY=1`, or several `KEY=VALUE` lines).
    /// A failure is logged, never fatal: systemd gone is no reason to stop
    /// serving.
    pub fn notify(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.addr) {
            tracing::warn!("sd_notify {state:?} failed: {e}");
        }
    }
}

/// `CLOCK_MONOTONIC` now, in microseconds, for `MONOTONIC_USEC=` (systemd
/// compares it with its own reading of the same clock).
pub fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_applies_only_to_its_pid_and_bad_values_say_why() {
        assert_eq!(parse_activation(None, None, 7), Ok(None));
        assert_eq!(parse_activation(Some("7"), None, 7), Ok(None));
        assert_eq!(parse_activation(Some("8"), Some("2"), 7), Ok(None));
        assert_eq!(parse_activation(Some("7"), Some("2"), 7), Ok(Some(2)));
        for (pid, count, why) in [
            ("x", "1", "not a pid"),
            ("7", "one", "not a count"),
            ("7", "0", "passed no socket"),
            ("7", "1000", "more sockets"),
        ] {
            let err = parse_activation(Some(pid), Some(count), 7).expect_err(why);
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_notification_reaches_an_abstract_socket() {
        let name = format!("tenk-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(&name).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        let notifier = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            addr,
            watchdog: None,
        };
        notifier.notify("READY=1");
        let mut buf = [0u8; 64];
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(monotonic_usec() > 0);
    }
}
