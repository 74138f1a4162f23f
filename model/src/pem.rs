//! Certificates, keys and CA bundles read from PEM files, for every TLS configuration
//! tracekeeper builds: its listeners' certificates and client CA, and the roots it
//! trusts as a client (CQL, the test stack). Errors name the file.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

/// A PEM file that could not be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct PemError {
    pub path: PathBuf,
    pub reason: String,
}

fn error(path: &Path, reason: impl std::fmt::Display) -> PemError {
    PemError { path: path.to_path_buf(), reason: reason.to_string() }
}

/// Every certificate in the file, in order (a chain: leaf first); at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| error(path, e))?;
    if certs.is_empty() {
        return Err(error(path, "holds no certificate"));
    }
    Ok(certs)
}

/// The file's private key (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| error(path, e))
}

/// A CA bundle: every certificate in the file, as the roots to trust.
pub fn root_store(path: &Path) -> Result<RootCertStore, PemError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| error(path, e))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_what_is_wrong() {
        let dir = std::env::temp_dir().join(format!("tk-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let missing = dir.join("missing.pem");
        for (result, says) in [
            (certificates(&empty).map(|_| ()), "holds no certificate"),
            (root_store(&empty).map(|_| ()), "holds no certificate"),
            (certificates(&missing).map(|_| ()), "missing.pem"),
            (private_key(&empty).map(|_| ()), "empty.pem"),
        ] {
            let message = result.unwrap_err().to_string();
            assert!(message.contains(says), "{message}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
