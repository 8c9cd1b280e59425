//! The load generator's TLS configuration: whom to trust, and how to say
//! so when a server's certificate is refused.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{InvalidDnsNameError, ServerName};
use rustls::{CertificateError, ClientConfig, Error, RootCertStore};

use crate::config_error::{Cause, ConfigError};
use crate::insecure::AcceptAnyCertificate;
use crate::pem_files;

/// The client's TLS configuration for `tenk load`: TLS 1.3 and 1.2, on the
/// aws-lc-rs provider, offering `alpn` (empty: none), with resumption by
/// rustls' default in-memory session cache (tickets and session IDs,
/// per server name).
///
/// Whom it trusts:
/// - `insecure`: any certificate (`ca` is then not read); the handshake
///   signatures are still verified, so the server does the same work as
///   for a verifying client;
/// - else `ca`: the certificates in that PEM file, and nothing else;
/// - else the system's roots, read by rustls-native-certs from where the
///   platform keeps them (`/etc/ssl/certs` on Debian; `SSL_CERT_FILE` and
///   `SSL_CERT_DIR` override), as curl and openssl do. Not webpki-roots'
///   compiled-in copy of Mozilla's list: a load generator aimed at a
///   company's internal servers must trust what the machine's
///   administrator added, and a stale copy in the binary would not.
///
/// No early data (0-RTT): a load test replaying requests must not have
/// them accepted twice, and it keeps the handshake count honest.
///
/// # Errors
/// A [`ConfigError`]: the CA file missing, unreadable, without a
/// certificate or with one that cannot be a trust anchor; or no roots at
/// all in the system's store.
pub fn client_config(
    ca: Option<&Path>,
    insecure: bool,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, ConfigError> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError::general(Cause::Setup(e)))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(provider)))
            .with_no_client_auth()
    } else {
        let roots = match ca {
            Some(path) => ca_roots(path)?,
            None => roots_from(rustls_native_certs::load_native_certs())?,
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config.into())
}

/// The name a client checks the server's certificate against (and sends
/// as SNI when it is a DNS name): the host part of `HOST:PORT` or of a
/// URL, a DNS name or an IP address, IPv6 with or without brackets.
///
/// # Errors
/// `host` is neither a valid DNS name nor an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, InvalidDnsNameError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_string())
}

/// A hint for the user when `err` is a refused server certificate: which
/// flag of `tenk load` gets past it. `None` for other errors.
pub fn explain_certificate_error(err: &Error) -> Option<&'static str> {
    let Error::InvalidCertificate(cert) = err else {
        return None;
    };
    Some(match cert {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            "the server's certificate is not trusted: pass --ca CA.pem (the CA that \
             signed it), or --insecure to skip verification"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the server's certificate does not name the host connected to: connect by a \
             name or address it holds, or pass --insecure to skip verification"
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is expired or not yet valid (or a clock is wrong): \
             renew it, or pass --insecure to skip verification"
        }
        _ => {
            "the server's certificate was refused: pass --ca CA.pem if your own CA \
             signed it, or --insecure to skip verification"
        }
    })
}

/// A root store of exactly the certificates in the CA file.
fn ca_roots(path: &Path) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in pem_files::certificates(path)? {
        roots
            .add(cert)
            .map_err(|e| ConfigError::file(path, Cause::BadCertificate(e)))?;
    }
    Ok(roots)
}

/// A root store of what the system's store gave; an error if that is
/// nothing, as every handshake would then fail with a less useful message.
fn roots_from(found: rustls_native_certs::CertificateResult) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!("{ignored} system CA certificates could not be parsed; skipped");
    }
    for e in &found.errors {
        tracing::debug!("reading the system's CA certificates: {e}");
    }
    if added == 0 {
        let why = found.errors.first().map_or_else(
            || "none found; is the ca-certificates package installed?".to_string(),
            |e| e.to_string(),
        );
        return Err(ConfigError::general(Cause::NoSystemRoots(why)));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use rustls::server::ServerConfig;
    use rustls::sign::{CertifiedKey, SingleCertAndKey};
    use rustls::{ClientConnection, HandshakeKind, ServerConnection};

    use super::*;
    use crate::server_config::server_config;
    use crate::test_certs::{KeyFormat, TestPki, Validity};

    /// Runs a handshake between the two configs in memory, to its end or
    /// the first error; the client connection on success.
    fn handshake(
        client: &Arc<ClientConfig>,
        server: &Arc<ServerConfig>,
        host: &str,
    ) -> Result<(ClientConnection, ServerConnection), Error> {
        let name = server_name(host).unwrap();
        let mut c = ClientConnection::new(client.clone(), name)?;
        let mut s = ServerConnection::new(server.clone())?;
        // A bounded number of flights: a handshake takes two or three.
        for _ in 0..10 {
            let mut wire = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut wire).unwrap();
            }
            s.read_tls(&mut &wire[..]).unwrap();
            s.process_new_packets()?;
            wire.clear();
            while s.wants_write() {
                s.write_tls(&mut wire).unwrap();
            }
            c.read_tls(&mut &wire[..]).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() && !s.wants_write() {
                return Ok((c, s));
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn ca_trusts_its_certificates_and_alpn_is_negotiated() {
        for format in KeyFormat::ALL {
            let pki = TestPki::new(format);
            let server = server_config(&pki.cert, &pki.key, &[b"http/1.1"]).unwrap();
            let client = client_config(Some(&pki.ca), false, &[b"http/1.1"]).unwrap();
            for host in ["127.0.0.1", "[::1]", "localhost"] {
                let (c, s) = handshake(&client, &server, host)
                    .unwrap_or_else(|e| panic!("{format:?} {host}: {e}"));
                assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
                assert_eq!(s.alpn_protocol(), Some(&b"http/1.1"[..]));
            }
        }
    }

    #[test]
    fn untrusted_certificate_is_refused_with_a_hint() {
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let other_ca = TestPki::new(KeyFormat::Pkcs8);
        let server = server_config(&pki.cert, &pki.key, &[]).unwrap();
        let client = client_config(Some(&other_ca.ca), false, &[]).unwrap();
        let err = handshake(&client, &server, "127.0.0.1").expect_err("trusted");
        assert_eq!(
            err,
            Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        let hint = explain_certificate_error(&err).expect("a hint");
        assert!(
            hint.contains("--ca CA.pem") && hint.contains("--insecure"),
            "{hint}"
        );

        let err = handshake(
            &client_config(Some(&pki.ca), false, &[]).unwrap(),
            &server,
            "10.0.0.1",
        )
        .expect_err("a name the certificate does not hold");
        let hint = explain_certificate_error(&err).expect("a hint");
        assert!(hint.contains("does not name"), "{err}: {hint}");

        let expired = TestPki::with(KeyFormat::Pkcs8, Validity::Expired);
        let server = server_config(&expired.cert, &expired.key, &[]).unwrap();
        let client = client_config(Some(&expired.ca), false, &[]).unwrap();
        let err = handshake(&client, &server, "127.0.0.1").expect_err("expired");
        assert!(explain_certificate_error(&err).unwrap().contains("expired"));

        assert_eq!(explain_certificate_error(&Error::DecryptError), None);
    }

    #[test]
    fn insecure_accepts_any_certificate() {
        let pki = TestPki::with(KeyFormat::Sec1Ec, Validity::Expired);
        let server = server_config(&pki.cert, &pki.key, &[]).unwrap();
        let client = client_config(None, true, &[]).unwrap();
        handshake(&client, &server, "10.0.0.1").expect("insecure accepts");
    }

    /// `--insecure` skips the certificate's verification, not the proof
    /// that the server holds its key: a server signing with another key
    /// than its certificate's is refused.
    #[test]
    fn insecure_still_verifies_handshake_signatures() {
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let other = TestPki::new(KeyFormat::Pkcs8);
        let good = server_config(&pki.cert, &pki.key, &[]).unwrap();
        // A resolver pairing one certificate with another key, which
        // server_config refuses to build.
        let provider = good.crypto_provider().clone();
        let chain = crate::pem_files::certificates(&pki.cert).unwrap();
        let key = crate::pem_files::private_key(&other.key).unwrap();
        let key = provider.key_provider.load_private_key(key).unwrap();
        let mut liar = (*good).clone();
        liar.cert_resolver = Arc::new(SingleCertAndKey::from(CertifiedKey::new(chain, key)));
        let liar = Arc::new(liar);
        // A client config each: a resumed handshake has no signature.
        let client = client_config(None, true, &[]).unwrap();
        handshake(&client, &good, "127.0.0.1").expect("the honest server");
        let client = client_config(None, true, &[]).unwrap();
        let err = handshake(&client, &liar, "127.0.0.1").expect_err("a forged signature");
        assert!(
            matches!(
                err,
                Error::InvalidCertificate(CertificateError::BadSignature)
                    | Error::PeerMisbehaved(_)
            ),
            "{err:?}"
        );
    }

    /// One config shared by every worker: a session made through one
    /// connection resumes on another, by a TLS 1.3 or TLS 1.2 ticket
    /// (stateless) or by the server's cache (a TLS 1.2 session ID).
    #[test]
    fn sessions_resume_through_the_shared_config() {
        use rustls::client::{Resumption, Tls12Resumption};
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let server = server_config(&pki.cert, &pki.key, &[]).unwrap();
        for (version, tls12) in [
            (&rustls::version::TLS13, Tls12Resumption::SessionIdOrTickets),
            (&rustls::version::TLS12, Tls12Resumption::SessionIdOrTickets),
            (&rustls::version::TLS12, Tls12Resumption::SessionIdOnly),
        ] {
            let mut client = ClientConfig::builder_with_provider(server.crypto_provider().clone())
                .with_protocol_versions(&[version])
                .unwrap()
                .with_root_certificates(ca_roots(&pki.ca).unwrap())
                .with_no_client_auth();
            client.resumption = Resumption::in_memory_sessions(8).tls12_resumption(tls12);
            let client = Arc::new(client);
            let (first, _) = handshake(&client, &server, "127.0.0.1").unwrap();
            assert_eq!(first.handshake_kind(), Some(HandshakeKind::Full));
            assert_eq!(first.protocol_version(), Some(version.version));
            let (second, _) = handshake(&client, &server, "127.0.0.1").unwrap();
            assert_eq!(
                second.handshake_kind(),
                Some(HandshakeKind::Resumed),
                "{version:?} {tls12:?}"
            );
        }
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let gone = pki.path("gone.pem");
        let e = client_config(Some(&gone), false, &[]).expect_err("missing");
        assert_eq!(e.path(), Some(gone.as_path()));
        assert!(matches!(e.cause(), Cause::Read(io) if io.kind() == ErrorKind::NotFound));
        let e = client_config(Some(&pki.key), false, &[]).expect_err("a key, no certificate");
        assert_eq!(e.path(), Some(pki.key.as_path()));
        assert!(e.to_string().contains("no certificate"), "{e}");
        // --insecure reads no CA file.
        client_config(Some(&gone), true, &[]).expect("insecure ignores --ca");
    }

    #[test]
    fn empty_system_store_is_an_error_saying_what_to_pass() {
        let e =
            roots_from(rustls_native_certs::CertificateResult::default()).expect_err("no roots");
        assert!(matches!(e.cause(), Cause::NoSystemRoots(_)));
        let shown = e.to_string();
        assert!(
            shown.contains("--ca CA.pem") && shown.contains("--insecure"),
            "{shown}"
        );
        let pki = TestPki::new(KeyFormat::Pkcs8);
        let mut found = rustls_native_certs::CertificateResult::default();
        found.certs = crate::pem_files::certificates(&pki.ca).unwrap();
        assert_eq!(roots_from(found).unwrap().len(), 1);
    }

    #[test]
    fn server_names() {
        for (host, ip) in [
            ("127.0.0.1", true),
            ("[::1]", true),
            ("::1", true),
            ("example.com", false),
        ] {
            let name = server_name(host).unwrap_or_else(|e| panic!("{host}: {e}"));
            assert_eq!(matches!(name, ServerName::IpAddress(_)), ip, "{host}");
        }
        assert!(server_name("not a host").is_err());
        assert!(server_name("[::1").is_err());
    }
}
