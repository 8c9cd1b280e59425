//! Why a connection was closed: reported to `Handler::on_close` and
//! counted by cause in `Stats::closes`.

/// Why a connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its side and every pending byte was flushed.
    PeerClosed,
    /// The peer reset the connection (ECONNRESET, EPIPE).
    Reset,
    /// Another socket error, as an errno value.
    Error(i32),
    /// An outbound connect failed, with its errno value.
    ConnectFailed(i32),
    /// The protocol closed it ([`Io::close`](crate::Io::close) or [`Io::close_when_flushed`](crate::Io::close_when_flushed)).
    Local,
    /// The protocol left more unconsumed input than
    /// [`Config::max_input`](crate::Config::max_input).
    InputLimit,
    /// Graceful shutdown closed it after flushing.
    Shutdown,
    /// Graceful shutdown gave up waiting for its output to flush.
    DrainTimeout,
    /// No traffic either way for [`Config::idle_timeout`](crate::Config::idle_timeout).
    IdleTimeout,
    /// Output pending and untouched by the peer for
    /// [`Config::write_timeout`](crate::Config::write_timeout).
    WriteTimeout,
    /// Pending output passed the hard limit, or stayed above the soft limit
    /// too long ([`Config::output_hard_limit`](crate::Config::output_hard_limit)).
    OutputLimit,
    /// The connection's transport rejected the peer's bytes: a failed
    /// handshake (no common protocol version or cipher, a bad
    /// certificate), a corrupt record, bytes that are not the transport's
    /// protocol at all.
    Transport,
    /// The transport's handshake did not finish within
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout).
    HandshakeTimeout,
}

impl CloseReason {
    pub(crate) fn from_errno(errno: rustix::io::Errno) -> CloseReason {
        match errno {
            rustix::io::Errno::CONNRESET | rustix::io::Errno::PIPE => CloseReason::Reset,
            other => CloseReason::Error(other.raw_os_error()),
        }
    }
}
