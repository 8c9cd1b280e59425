//! A test CA and a server certificate signed by it, written as PEM files
//! to a fresh temporary directory: no key material is committed, and no
//! network is needed.
//!
//! The server certificate names `127.0.0.1`, `::1` (IP SANs) and
//! `localhost`, so clients that verify (curl, Python's `ssl`, `tenk load
//! --ca`) accept it on loopback. The CA is ECDSA P-256; the server key is
//! P-256 too, or RSA 2048 for PKCS#1, in the format asked for.
//!
//! This file is also compiled into the unit tests of `crates/tls` (by a
//! `#[path]` module there), so it depends on nothing but std, `rcgen` and
//! `tempfile`. SEC1 and PKCS#1 files, and encrypted keys, come from the
//! `openssl` command line: rcgen writes PKCS#8 only.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};

/// How the server's private key is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// ECDSA P-256 in PKCS#8 (`BEGIN PRIVATE KEY`), as rcgen writes it.
    Pkcs8,
    /// RSA 2048 in PKCS#1 (`BEGIN RSA PRIVATE KEY`), by `openssl rsa -traditional`.
    Pkcs1Rsa,
    /// ECDSA P-256 in SEC1 (`BEGIN EC PRIVATE KEY`), by `openssl ec`, as
    /// `openssl ecparam -genkey` writes it.
    Sec1Ec,
}

impl KeyFormat {
    pub const ALL: [KeyFormat; 3] = [KeyFormat::Pkcs8, KeyFormat::Pkcs1Rsa, KeyFormat::Sec1Ec];

    /// The PEM label the key file carries.
    pub fn pem_label(self) -> &'static str {
        match self {
            KeyFormat::Pkcs8 => "-----BEGIN PRIVATE KEY-----",
            KeyFormat::Pkcs1Rsa => "-----BEGIN RSA PRIVATE KEY-----",
            KeyFormat::Sec1Ec => "-----BEGIN EC PRIVATE KEY-----",
        }
    }

    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyFormat::Pkcs8 | KeyFormat::Sec1Ec => &PKCS_ECDSA_P256_SHA256,
            KeyFormat::Pkcs1Rsa => &PKCS_RSA_SHA256,
        }
    }
}

/// The files of a test PKI, in a temporary directory removed on drop.
pub struct TestPki {
    dir: tempfile::TempDir,
    /// The CA certificate (`--ca`, curl's `--cacert`).
    pub ca: PathBuf,
    /// The server's certificate chain (`--tls-cert`): its own certificate.
    pub cert: PathBuf,
    /// The server's private key (`--tls-key`), in the format asked for.
    pub key: PathBuf,
}

/// Certificate lifetimes: valid now, or expired yesterday.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    Current,
    Expired,
}

impl TestPki {
    /// A CA and a currently valid server certificate whose key is in `format`.
    pub fn new(format: KeyFormat) -> TestPki {
        TestPki::with(format, Validity::Current)
    }

    /// A CA and a server certificate of the given validity.
    pub fn with(format: KeyFormat, validity: Validity) -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("tenk-pki-")
            .tempdir()
            .expect("temporary directory");

        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, unique_name("tenk test CA"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate_for(format.algorithm()).expect("server key");
        let mut params = CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "::1".to_string(),
            "localhost".to_string(),
        ])
        .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "tenk test server");
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");

        let pki = TestPki {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            dir,
        };
        write(&pki.ca, &ca_cert.pem());
        write(&pki.cert, &server_cert.pem());
        let pkcs8 = pki.path("key.pkcs8.pem");
        write(&pkcs8, &server_key.serialize_pem());
        match format {
            KeyFormat::Pkcs8 => std::fs::rename(&pkcs8, &pki.key).expect("rename key"),
            KeyFormat::Pkcs1Rsa => openssl(&["rsa", "-traditional", "-in"], &pkcs8, &pki.key),
            KeyFormat::Sec1Ec => openssl(&["ec", "-in"], &pkcs8, &pki.key),
        }
        let written = std::fs::read_to_string(&pki.key).expect("read key back");
        assert!(
            written.starts_with(format.pem_label()),
            "{format:?} key file starts {:?}",
            written.lines().next()
        );
        pki
    }

    /// A path in the PKI's temporary directory (for other files a test writes).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` in the temporary directory; its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        write(&path, contents);
        path
    }

    /// The server key encrypted with a passphrase (`BEGIN ENCRYPTED PRIVATE
    /// KEY`, PKCS#8 with AES-256), as `openssl pkcs8 -topk8 -v2 aes256` writes.
    pub fn encrypted_key(&self) -> PathBuf {
        let out = self.path("key.encrypted.pem");
        openssl(
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes256",
                "-passout",
                "pass:tenk",
                "-in",
            ],
            &self.key,
            &out,
        );
        out
    }
}

/// `what` with this process's id and a counter: two CAs of one name would
/// make a verifier try the wrong one's key (a bad signature, where a
/// client trusting another CA should see an unknown issuer).
fn unique_name(what: &str) -> String {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    format!("{what} {}-{n}", std::process::id())
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Runs `openssl <args> <input> -out <output>`; panics with its stderr.
fn openssl(args: &[&str], input: &Path, output: &Path) {
    let result = Command::new("openssl")
        .args(args)
        .arg(input)
        .arg("-out")
        .arg(output)
        .output()
        .expect("run openssl (the test PKI needs the openssl command line)");
    assert!(
        result.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
}
