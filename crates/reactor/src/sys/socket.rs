//! TCP socket syscalls: listen, accept4, non-blocking connect, read, send.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{self, sockopt, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

fn family(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    }
}

/// A non-blocking, close-on-exec TCP socket.
fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    Ok(net::socket_with(
        family(addr),
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?)
}

/// A descriptor on `/dev/null`, held in reserve and given up for a moment
/// when the process is out of descriptors (libuv's trick; nginx pauses
/// accepting instead).
pub(crate) fn spare_fd() -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// Bytes waiting in a socket's receive queue (`FIONREAD`); 0 on error.
pub(crate) fn unread_bytes(fd: impl AsFd) -> u64 {
    rustix::io::ioctl_fionread(fd).unwrap_or(0)
}

/// Sends FIN: no more output, input still readable.
pub(crate) fn shutdown_write(fd: impl AsFd) -> io::Result<()> {
    Ok(net::shutdown(fd, net::Shutdown::Write)?)
}

/// A listening socket on `addr` with `SO_REUSEADDR` (a restarted server must
/// not wait out TIME_WAIT) and the given backlog.
pub(crate) fn listen(addr: SocketAddr, backlog: i32, reuseport: bool) -> io::Result<OwnedFd> {
    let fd = tcp_socket(&addr)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    if reuseport {
        sockopt::set_socket_reuseport(&fd, true)?;
    }
    net::bind(&fd, &addr)?;
    net::listen(&fd, backlog)?;
    Ok(fd)
}

/// Whether a socket was bound with `SO_REUSEPORT`; false if unknown.
pub(crate) fn is_reuseport(fd: impl AsFd) -> bool {
    sockopt::socket_reuseport(fd).unwrap_or(false)
}

/// `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`: one syscall, no window in which
/// the new socket is blocking or inheritable.
pub(crate) fn accept(listener: impl AsFd) -> Result<OwnedFd, Errno> {
    net::accept_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
}

/// Starts a non-blocking connect. `Ok` means the connect completed or is in
/// progress (`EINPROGRESS`); completion is reported by EPOLLOUT and its
/// result read with [`socket_error`].
pub(crate) fn connect(addr: SocketAddr, source: Option<std::net::IpAddr>) -> io::Result<OwnedFd> {
    let fd = tcp_socket(&addr)?;
    if let Some(source) = source {
        // IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(), so the
        // 4-tuple, not the source port alone, must be unique: one source
        // address then carries as many connections as there are ports per
        // destination.
        set_bind_address_no_port(&fd)?;
        net::bind(&fd, &SocketAddr::new(source, 0))?;
    }
    match net::connect(&fd, &addr) {
        Ok(()) | Err(Errno::INPROGRESS) => Ok(fd),
        Err(e) => Err(e.into()),
    }
}

/// `IP_BIND_ADDRESS_NO_PORT`, which rustix does not wrap.
fn set_bind_address_no_port(fd: &OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: `fd` is an open socket for the duration of the call; the option
    // value points to a live c_int whose size is passed alongside.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The pending error of a socket (`SO_ERROR`), which also clears it; the
/// `getsockopt` failure itself if that fails.
pub(crate) fn socket_error(fd: impl AsFd) -> Result<(), Errno> {
    sockopt::socket_error(fd)?
}

/// Disables Nagle: a reactor writes whole replies, and Nagle with delayed
/// ACKs would add up to 40 ms to a request/response exchange.
pub(crate) fn set_nodelay(fd: impl AsFd) -> io::Result<()> {
    Ok(sockopt::set_tcp_nodelay(fd, true)?)
}

/// Turns TCP keepalive on with the given idle time, probe interval and
/// probe count (tcp(7)). The kernel takes whole seconds; rustix rounds a
/// fraction up.
pub(crate) fn set_keepalive(
    fd: impl AsFd,
    idle: std::time::Duration,
    interval: std::time::Duration,
    count: u32,
) -> io::Result<()> {
    let fd = fd.as_fd();
    // The timings before SO_KEEPALIVE, which arms the timer: armed once,
    // with the idle time asked for.
    sockopt::set_tcp_keepidle(fd, idle)?;
    sockopt::set_tcp_keepintvl(fd, interval)?;
    sockopt::set_tcp_keepcnt(fd, count)?;
    Ok(sockopt::set_socket_keepalive(fd, true)?)
}

pub(crate) fn local_addr(fd: impl AsFd) -> io::Result<SocketAddr> {
    let addr = net::getsockname(fd)?;
    SocketAddr::try_from(addr).map_err(|_| io::Error::other("not an IP socket"))
}

pub(crate) fn peer_addr(fd: impl AsFd) -> io::Result<SocketAddr> {
    let addr = net::getpeername(fd)?.ok_or_else(|| io::Error::other("no peer address"))?;
    SocketAddr::try_from(addr).map_err(|_| io::Error::other("not an IP socket"))
}

pub(crate) fn read(fd: impl AsFd, buf: &mut [u8]) -> Result<usize, Errno> {
    Ok(net::recv(fd, buf, RecvFlags::empty())?.0)
}

/// `sendmsg(MSG_NOSIGNAL)` of several slices: one syscall for a whole
/// output queue.
/// `more` sets `MSG_MORE`: more data (a file) follows at once.
pub(crate) fn send_vectored(
    fd: impl AsFd,
    slices: &[std::io::IoSlice<'_>],
    more: bool,
) -> Result<usize, Errno> {
    let mut control = net::SendAncillaryBuffer::default();
    let mut flags = SendFlags::NOSIGNAL;
    if more {
        flags |= SendFlags::MORE;
    }
    net::sendmsg(fd, slices, &mut control, flags)
}

/// `sendfile`: `count` bytes of `file` from `offset` to the socket, without
/// copying them through user space.
pub(crate) fn send_file(
    socket: impl AsFd,
    file: impl AsFd,
    offset: u64,
    count: usize,
) -> Result<usize, Errno> {
    let mut offset = offset;
    rustix::fs::sendfile(socket, file, Some(&mut offset), count)
}

/// `send(MSG_NOSIGNAL)`: a peer that has gone away yields `EPIPE`, never a
/// process-killing SIGPIPE.
pub(crate) fn send(fd: impl AsFd, buf: &[u8]) -> Result<usize, Errno> {
    net::send(fd, buf, SendFlags::NOSIGNAL)
}

/// Reads part of a file at `offset` (`pread`): the bytes of a file range
/// that must be sealed by a transport, where `sendfile` cannot go.
pub(crate) fn read_file_at(file: impl AsFd, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    rustix::io::pread(file, buf, offset)
}
