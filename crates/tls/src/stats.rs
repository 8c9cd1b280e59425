//! Handshake counters shared by every worker of a server (a handshake is
//! rare next to the records that follow it, so one atomic add each costs
//! nothing that shows).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rustls::{Connection, Error, HandshakeKind, ProtocolVersion};

/// TLS handshakes by outcome, kind and protocol version.
#[derive(Debug, Default)]
pub struct TlsStats {
    full: AtomicU64,
    resumed: AtomicU64,
    failed: AtomicU64,
    tls12: AtomicU64,
    tls13: AtomicU64,
    /// The first handshake failure: a load run that failed every
    /// handshake tells the user why (rustls' text, and what to do).
    first_failure: OnceLock<Error>,
}

/// A reading of [`TlsStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsCounts {
    /// Full handshakes completed (a HelloRetryRequest included).
    pub full: u64,
    /// Resumed handshakes completed (a session ticket or the session cache).
    pub resumed: u64,
    /// Handshakes the peer failed (a protocol error, no common version or
    /// cipher suite, a certificate refused). Handshakes that timed out are
    /// counted by the reactor (`CloseCounts::handshake_timeout`).
    pub failed: u64,
    /// Completed handshakes that negotiated TLS 1.2.
    pub tls12: u64,
    /// Completed handshakes that negotiated TLS 1.3.
    pub tls13: u64,
}

impl TlsCounts {
    /// Handshakes completed, full and resumed.
    pub fn completed(&self) -> u64 {
        self.full + self.resumed
    }
}

impl TlsStats {
    pub(crate) fn handshake_done(&self, conn: &Connection) {
        let kind = match conn {
            Connection::Client(c) => c.handshake_kind(),
            Connection::Server(s) => s.handshake_kind(),
        };
        match kind {
            Some(HandshakeKind::Resumed) => &self.resumed,
            _ => &self.full,
        }
        .fetch_add(1, Ordering::Relaxed);
        match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_2) => {
                self.tls12.fetch_add(1, Ordering::Relaxed);
            }
            Some(ProtocolVersion::TLSv1_3) => {
                self.tls13.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    pub(crate) fn handshake_failed(&self, error: &Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let _ = self.first_failure.set(error.clone());
    }

    /// Why the first failed handshake failed, if one did.
    pub fn first_failure(&self) -> Option<&Error> {
        self.first_failure.get()
    }

    /// The counts so far.
    pub fn counts(&self) -> TlsCounts {
        TlsCounts {
            full: self.full.load(Ordering::Relaxed),
            resumed: self.resumed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            tls12: self.tls12.load(Ordering::Relaxed),
            tls13: self.tls13.load(Ordering::Relaxed),
        }
    }
}

/// What a client's user can do about a failed handshake, if the error
/// says: an untrusted certificate names the flags that trust it, bytes
/// that are not TLS suggest a plain port.
pub fn failure_hint(error: &Error) -> Option<&'static str> {
    match error {
        Error::InvalidCertificate(_) => crate::explain_certificate_error(error),
        Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. } => {
            Some("the server does not seem to speak TLS (a plain TCP port?)")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use rustls::{CertificateError, InvalidMessage};

    use super::*;

    #[test]
    fn hints_name_the_flag_or_the_likely_cause() {
        let cases = [
            (
                Error::InvalidCertificate(CertificateError::UnknownIssuer),
                Some("--ca CA.pem"),
            ),
            (
                Error::InvalidCertificate(CertificateError::NotValidForName),
                Some("--insecure"),
            ),
            (
                Error::InvalidMessage(InvalidMessage::InvalidContentType),
                Some("speak TLS"),
            ),
            (Error::DecryptError, None),
        ];
        for (error, wanted) in cases {
            let hint = failure_hint(&error);
            match wanted {
                Some(part) => assert!(
                    hint.is_some_and(|h| h.contains(part)),
                    "{error:?}: {hint:?}"
                ),
                None => assert_eq!(hint, None, "{error:?}"),
            }
        }
    }

    #[test]
    fn the_first_failure_is_kept() {
        let stats = TlsStats::default();
        assert!(stats.first_failure().is_none());
        stats.handshake_failed(&Error::DecryptError);
        stats.handshake_failed(&Error::HandshakeNotComplete);
        assert_eq!(stats.first_failure(), Some(&Error::DecryptError));
        assert_eq!(stats.counts().failed, 2);
    }
}
