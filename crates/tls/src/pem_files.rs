//! Reading certificates and private keys from PEM files, with an error
//! for each way a file can be wrong. The PEM parsing is rustls-pki-types'
//! [`PemObject`]; this file only tells the failures apart.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config_error::{Cause, ConfigError};

/// Every certificate in `path`, in file order (a chain: the server's own
/// first, then its intermediates).
///
/// # Errors
/// The file cannot be read, is not PEM, or holds no certificate.
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::file(path, Cause::Pem(e)))?;
    if certs.is_empty() {
        let holds_key = PrivateKeyDer::from_pem_slice(&pem).is_ok() || encrypted(&pem);
        return Err(ConfigError::file(path, Cause::NoCertificate { holds_key }));
    }
    Ok(certs)
}

/// The first private key in `path`: PKCS#8 (`PRIVATE KEY`), PKCS#1
/// (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
///
/// # Errors
/// The file cannot be read, is not PEM, holds no key, or holds an
/// encrypted one.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read(path)?;
    // Checked first: a legacy encrypted key (`Proc-Type: 4,ENCRYPTED`
    // headers inside `RSA PRIVATE KEY`) would otherwise fail as bad base64,
    // and a PKCS#8 one (`ENCRYPTED PRIVATE KEY`, a label rustls skips) as
    // no key at all; neither says what to do.
    if encrypted(&pem) {
        return Err(ConfigError::file(path, Cause::EncryptedKey));
    }
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let holds_certificate = CertificateDer::pem_slice_iter(&pem).any(|c| c.is_ok());
            Err(ConfigError::file(path, Cause::NoKey { holds_certificate }))
        }
        Err(e) => Err(ConfigError::file(path, Cause::Pem(e))),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::file(path, Cause::Read(e)))
}

/// Whether the PEM text holds an encrypted private key, in either of the
/// two forms OpenSSL writes.
fn encrypted(pem: &[u8]) -> bool {
    const MARKERS: [&[u8]; 2] = [
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----",
        b"Proc-Type: 4,ENCRYPTED",
    ];
    MARKERS
        .iter()
        .any(|marker| pem.windows(marker.len()).any(|w| w == *marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_markers() {
        assert!(encrypted(b"x\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nabc"));
        assert!(encrypted(
            b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n"
        ));
        assert!(!encrypted(b"-----BEGIN PRIVATE KEY-----\nabc\n"));
    }
}
