//! The server's TLS configuration from a certificate chain and a key file.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::server::ServerSessionMemoryCache;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{Error, InconsistentKeys, ServerConfig};

use crate::config_error::{Cause, ConfigError};
use crate::pem_files;

/// Sessions the server-side cache holds, shared by every worker. It serves
/// TLS 1.2 clients that resume by session ID rather than by ticket: with a
/// ticketer on, rustls resumes TLS 1.3 by tickets only.
///
/// Sized for the project's target of ten thousand clients: each can
/// resume whichever worker it reaches, without a busy minute of new
/// clients evicting the others. An entry is a 32-byte session ID and an
/// encoded session of about a hundred bytes (secret, suite, ALPN), so a
/// full cache costs a few MiB at most; the cache is
/// a least-recently-inserted ring, so it never grows past this.
pub const SESSION_CACHE_SIZE: usize = 16 * 1024;

/// TLS 1.3 tickets sent after each handshake.
///
/// One, not rustls' default of two: every handshake, resumed ones
/// included, hands out a fresh ticket, so a client that reconnects always
/// has one; a second would cost an encryption and about 200 bytes on
/// every full handshake and serves only a client opening parallel
/// connections from one handshake's tickets.
pub const TLS13_TICKETS: usize = 1;

/// The server's TLS configuration: the chain in `cert` (PEM, the server's
/// own certificate first), the private key in `key` (PEM: PKCS#8, PKCS#1
/// or SEC1), TLS 1.3 and 1.2 only, on the aws-lc-rs provider, offering
/// `alpn` (in preference order; empty: no ALPN), with session resumption
/// by both stateless tickets and a [`SESSION_CACHE_SIZE`] session cache.
///
/// Build it once and share the `Arc` with every worker thread: the
/// ticket keys and the session cache live in it, so a session made on one
/// worker resumes on any other.
///
/// An expired or not-yet-valid certificate is accepted: a server does
/// not check its own certificate's dates (clients do), and refusing to
/// start would turn a renewal late by a minute into an outage.
///
/// # Errors
/// A [`ConfigError`] naming the file: missing or unreadable, not PEM, no
/// certificate, no key, an encrypted key, a key the provider cannot use,
/// a certificate that cannot be parsed, or a key that does not match the
/// certificate.
pub fn server_config(
    cert: &Path,
    key: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, ConfigError> {
    let chain = pem_files::certificates(cert)?;
    let key_der = pem_files::private_key(key)?;
    let provider = Arc::new(aws_lc_rs::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| ConfigError::file(key, Cause::UnusableKey(e)))?;
    let certified = CertifiedKey::new(chain, signing_key);
    // Checked here rather than left to `with_single_cert`, whose one error
    // could not say which of the two files is at fault.
    match certified.keys_match() {
        // `Unknown`: the key cannot tell its public half; as rustls does,
        // that is not taken for a mismatch.
        Ok(()) | Err(Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            let certificate = cert.to_path_buf();
            return Err(ConfigError::file(key, Cause::KeyMismatch { certificate }));
        }
        Err(e) => return Err(ConfigError::file(cert, Cause::BadCertificate(e))),
    }
    let setup = |e| ConfigError::general(Cause::Setup(e));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(setup)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    // Stateless tickets, their keys rotated by the ticketer (every 6 h,
    // the previous key still accepted), kept in this one config.
    config.ticketer = aws_lc_rs::Ticketer::new().map_err(setup)?;
    config.send_tls13_tickets = TLS13_TICKETS;
    Ok(config.into())
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use super::*;
    use crate::test_certs::{KeyFormat, TestPki, Validity};

    fn error(cert: &Path, key: &Path) -> ConfigError {
        server_config(cert, key, &[]).expect_err("loaded")
    }

    #[test]
    fn loads_every_key_format() {
        for format in KeyFormat::ALL {
            let pki = TestPki::new(format);
            let config = server_config(&pki.cert, &pki.key, &[b"http/1.1"])
                .unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        }
    }

    #[test]
    fn resumption_both_ways_and_no_alpn_when_none_given() {
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let config = server_config(&pki.cert, &pki.key, &[]).unwrap();
        assert!(config.alpn_protocols.is_empty());
        assert!(config.ticketer.enabled(), "stateless tickets");
        assert!(config.session_storage.can_cache(), "session cache");
        assert_eq!(config.send_tls13_tickets, TLS13_TICKETS);
    }

    #[test]
    fn expired_certificate_is_not_an_error() {
        let pki = TestPki::with(KeyFormat::Pkcs8, Validity::Expired);
        server_config(&pki.cert, &pki.key, &[]).expect("an expired certificate loads");
    }

    #[test]
    fn missing_files() {
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let gone = pki.path("gone.pem");
        for (cert, key) in [(&gone, &pki.key), (&pki.cert, &gone)] {
            let e = error(cert, key);
            assert_eq!(e.path(), Some(gone.as_path()));
            assert!(
                matches!(e.cause(), Cause::Read(io) if io.kind() == ErrorKind::NotFound),
                "{e:?}"
            );
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("{}: cannot read", gone.display())));
            assert!(shown.contains("No such file"), "{shown}");
        }
    }

    /// Unreadable: tests run as root, which chmod 000 does not stop, so a
    /// directory stands for a file that cannot be read.
    #[test]
    fn unreadable_file() {
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let dir = pki.path("");
        let e = error(&pki.cert, &dir);
        assert_eq!(e.path(), Some(dir.as_path()));
        assert!(matches!(e.cause(), Cause::Read(_)), "{e:?}");
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn no_certificate_in_the_file() {
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let empty = pki.write("empty.pem", "just text\n");
        let e = error(&empty, &pki.key);
        assert_eq!(e.path(), Some(empty.as_path()));
        assert!(matches!(
            e.cause(),
            Cause::NoCertificate { holds_key: false }
        ));
        assert!(e.to_string().contains("no certificate"), "{e}");
        // The two files swapped: each message says what the file holds.
        let e = error(&pki.key, &pki.cert);
        assert_eq!(e.path(), Some(pki.key.as_path()));
        assert!(e.to_string().contains("it holds a private key"), "{e}");
    }

    #[test]
    fn no_key_in_the_file() {
        let pki = TestPki::new(KeyFormat::Sec1Ec);
        let e = error(&pki.cert, &pki.cert);
        assert_eq!(e.path(), Some(pki.cert.as_path()));
        assert!(matches!(
            e.cause(),
            Cause::NoKey {
                holds_certificate: true
            }
        ));
        assert!(e.to_string().contains("no private key"), "{e}");
        assert!(e.to_string().contains("it holds a certificate"), "{e}");
    }

    #[test]
    fn encrypted_key_says_to_decrypt_it() {
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let encrypted = pki.encrypted_key();
        let e = error(&pki.cert, &encrypted);
        assert_eq!(e.path(), Some(encrypted.as_path()));
        assert!(matches!(e.cause(), Cause::EncryptedKey), "{e:?}");
        let shown = e.to_string();
        assert!(shown.contains("encrypted"), "{shown}");
        assert!(
            shown.contains(&format!("openssl pkey -in {}", encrypted.display())),
            "{shown}"
        );
    }

    #[test]
    fn key_that_does_not_match_the_certificate() {
        let one = TestPki::new(KeyFormat::Pkcs8);
        let other = TestPki::new(KeyFormat::Pkcs8);
        let e = error(&one.cert, &other.key);
        assert_eq!(e.path(), Some(other.key.as_path()));
        assert!(matches!(e.cause(), Cause::KeyMismatch { .. }), "{e:?}");
        let shown = e.to_string();
        assert!(shown.contains("does not match"), "{shown}");
        assert!(shown.contains(&one.cert.display().to_string()), "{shown}");
    }

    #[test]
    fn broken_pem_and_broken_der() {
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let cut = pki.write("cut.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
        let e = error(&cut, &pki.key);
        assert!(matches!(e.cause(), Cause::Pem(_)), "{e:?}");
        let junk = pki.write(
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = error(&junk, &pki.key);
        assert_eq!(e.path(), Some(junk.as_path()));
        assert!(matches!(e.cause(), Cause::BadCertificate(_)), "{e:?}");
        let junk_key = pki.write(
            "junk-key.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let e = error(&pki.cert, &junk_key);
        assert_eq!(e.path(), Some(junk_key.as_path()));
        assert!(matches!(e.cause(), Cause::UnusableKey(_)), "{e:?}");
    }
}
