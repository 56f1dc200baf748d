//! TLS client configuration for HTTP hooks: the platform roots by default, or the CPA's
//! `caCert` / `clientCert` / `clientKey` PEM files.
//!
//! The crypto provider is passed explicitly (ring, which kube already uses) rather than read
//! from rustls' process-wide default, so this crate neither depends on nor changes it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use rustls_platform_verifier::BuilderVerifierExt;

use crate::spec::TlsFiles;

/// Why the TLS options of an HTTP hook could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("could not read tls file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("invalid pem in {path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Only one of `clientCert` and `clientKey` is set.
    #[error("clientCert and clientKey must be set together")]
    IncompleteClientAuth,
    /// rustls rejected the material (e.g. a key that does not match the certificate).
    #[error("invalid tls configuration: {0}")]
    Config(#[source] rustls::Error),
    /// The HTTP client could not be built.
    #[error("could not build the http client: {0}")]
    Client(#[source] reqwest::Error),
}

/// An HTTP client with these TLS files (all empty: the platform's roots) and an optional
/// timeout per request: what `kubectl scalehub` talks to the hub with.
pub async fn http_client(files: &TlsFiles, timeout: Option<std::time::Duration>) -> Result<reqwest::Client, TlsError> {
    let config = client_config(files).await?;
    let mut builder = reqwest::Client::builder().tls_backend_preconfigured(config);
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder.build().map_err(TlsError::Client)
}

/// Builds the rustls configuration for a set of TLS files (all empty: platform roots).
pub(crate) async fn client_config(files: &TlsFiles) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match &files.ca_cert {
        // Like the CPA, a configured CA replaces the system roots rather than adding to them.
        Some(path) => builder.with_root_certificates(load_roots(path).await?),
        None => builder.with_platform_verifier().map_err(TlsError::Config)?,
    };
    match (&files.client_cert, &files.client_key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert).await?;
            let key = load_key(key).await?;
            builder.with_client_auth_cert(chain, key).map_err(TlsError::Config)
        }
        _ => Err(TlsError::IncompleteClientAuth),
    }
}

/// Reads a PEM CA bundle into a root store.
async fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path).await? {
        roots.add(cert).map_err(|e| pem_error(path, e))?;
    }
    Ok(roots)
}

/// Reads every certificate of a PEM file; none is an error.
async fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path).await?;
    let certs =
        CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>().map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Pem { path: path.to_owned(), reason: "no certificate found".into() });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
async fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path).await?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| pem_error(path, e))
}

/// Reads a whole file.
async fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path).await.map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// A PEM error for `path`; never includes key material, only the parser's message.
fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem { path: path.to_owned(), reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_files_means_the_platform_roots() {
        let config = client_config(&TlsFiles::default()).await;
        assert!(config.is_ok(), "{:?}", config.err());
    }

    #[tokio::test]
    async fn a_missing_ca_file_is_a_read_error_naming_it() {
        let files = TlsFiles { ca_cert: Some("/nonexistent/ca.pem".into()), ..TlsFiles::default() };
        let err = client_config(&files).await.unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }));
        assert!(err.to_string().starts_with("could not read tls file /nonexistent/ca.pem"), "{err}");
    }

    #[tokio::test]
    async fn a_file_without_certificates_is_rejected() {
        let dir = std::env::temp_dir().join(format!("scalehub-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let files = TlsFiles { ca_cert: Some(path.clone()), ..TlsFiles::default() };
        let err = client_config(&files).await.unwrap_err();
        assert_eq!(err.to_string(), format!("invalid pem in {}: no certificate found", path.display()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_client_cert_without_a_key_is_rejected() {
        let files = TlsFiles { client_cert: Some("/x/cert.pem".into()), ..TlsFiles::default() };
        let err = client_config(&files).await.unwrap_err();
        assert!(matches!(err, TlsError::IncompleteClientAuth));
    }
}
