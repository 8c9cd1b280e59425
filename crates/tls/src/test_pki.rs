//! For tests (feature `test-pki`): a throwaway self-signed ECDSA P-256
//! certificate for 127.0.0.1, made at run time (no key material is
//! committed), with a server config and a client config that trusts it.
//! One `Loopback` per test: its client config's session cache is what a
//! second connection resumes from.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A certificate for 127.0.0.1 and configs for both sides.
pub struct Loopback {
    /// The server's config (TLS 1.3 and 1.2, the default session cache).
    pub server: Arc<ServerConfig>,
    /// A client config trusting the certificate alone.
    pub client: Arc<ClientConfig>,
    /// The certificate, for a client built some other way.
    pub cert: CertificateDer<'static>,
}

/// A fresh loopback certificate and its configs.
///
/// # Panics
/// If rcgen or rustls refuse what they are given (a broken build).
pub fn loopback() -> Loopback {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    let cert_der: CertificateDer<'static> = cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .expect("server config");
    let mut roots = RootCertStore::empty();
    roots.add(cert_der.clone()).expect("root");
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Loopback {
        server: Arc::new(server),
        client: Arc::new(client),
        cert: cert_der,
    }
}
