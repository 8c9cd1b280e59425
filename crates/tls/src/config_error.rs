//! Why a TLS configuration could not be built, naming the file at fault.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A certificate, key or CA file that cannot be used, or a TLS setup that
/// failed. `Display` names the file and the cause, so an operator can act
/// on the message alone; the command line adds which flag named the file.
#[derive(Debug)]
pub struct ConfigError {
    path: Option<PathBuf>,
    cause: Cause,
}

/// What is wrong with the file (see [`ConfigError`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Cause {
    /// The file cannot be read: missing, not permitted, a directory.
    Read(io::Error),
    /// The file is not well-formed PEM.
    Pem(rustls::pki_types::pem::Error),
    /// No `CERTIFICATE` block; `holds_key` when it holds a private key
    /// instead (the two files swapped).
    NoCertificate { holds_key: bool },
    /// No private key block; `holds_certificate` when it holds a
    /// certificate instead (the two files swapped).
    NoKey { holds_certificate: bool },
    /// The private key is encrypted with a passphrase, which a server
    /// starting unattended cannot ask for.
    EncryptedKey,
    /// The key is well-formed PEM but the crypto provider cannot use it
    /// (an unsupported algorithm or curve, or corrupt DER).
    UnusableKey(rustls::Error),
    /// The key is not the one of the chain's first certificate.
    KeyMismatch { certificate: PathBuf },
    /// The certificate's DER cannot be parsed, or a CA file's
    /// certificate cannot be a trust anchor.
    BadCertificate(rustls::Error),
    /// No CA certificate could be loaded from the system's store.
    NoSystemRoots(String),
    /// rustls refused the configuration itself.
    Setup(rustls::Error),
}

impl ConfigError {
    pub(crate) fn file(path: &Path, cause: Cause) -> ConfigError {
        ConfigError {
            path: Some(path.to_path_buf()),
            cause,
        }
    }

    pub(crate) fn general(cause: Cause) -> ConfigError {
        ConfigError { path: None, cause }
    }

    /// The file at fault, if the error is about one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn cause(&self) -> &Cause {
        &self.cause
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.as_deref().unwrap_or(Path::new("KEY.pem"));
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        match &self.cause {
            Cause::Read(e) => write!(f, "cannot read: {e}"),
            Cause::Pem(e) => write!(f, "not a valid PEM file: {e}"),
            Cause::NoCertificate { holds_key } => {
                write!(
                    f,
                    "no certificate (a PEM \"BEGIN CERTIFICATE\" block) in the file"
                )?;
                if *holds_key {
                    write!(f, "; it holds a private key: is it the key file?")?;
                }
                Ok(())
            }
            Cause::NoKey { holds_certificate } => {
                write!(
                    f,
                    "no private key (a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" \
                     or \"BEGIN EC PRIVATE KEY\" block) in the file"
                )?;
                if *holds_certificate {
                    write!(f, "; it holds a certificate: is it the certificate file?")?;
                }
                Ok(())
            }
            Cause::EncryptedKey => write!(
                f,
                "the private key is encrypted; a server cannot ask for its passphrase, \
                 so decrypt it first, e.g. `openssl pkey -in {0} -out {0}.plain` \
                 (and keep the result readable by the server's user only)",
                path.display()
            ),
            Cause::UnusableKey(e) => write!(f, "unusable private key: {e}"),
            Cause::KeyMismatch { certificate } => write!(
                f,
                "the private key does not match the certificate in {} \
                 (the server's own certificate must come first in the chain file)",
                certificate.display()
            ),
            Cause::BadCertificate(e) => write!(f, "unusable certificate: {e}"),
            Cause::NoSystemRoots(why) => write!(
                f,
                "no trusted CA certificates in the system's store ({why}): \
                 pass --ca CA.pem, or --insecure to skip verification"
            ),
            Cause::Setup(e) => write!(f, "TLS setup failed: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Read(e) => Some(e),
            Cause::Pem(e) => Some(e),
            Cause::UnusableKey(e) | Cause::BadCertificate(e) | Cause::Setup(e) => Some(e),
            _ => None,
        }
    }
}
