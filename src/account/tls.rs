//! The TLS client configuration: the platform's roots, or only the CA file the user named. Never
//! "accept any certificate".

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::LoginError;

/// A rustls client config trusting the certificates in `ca_file`, or the system's roots if none.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, LoginError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect())
                .map_err(|e| {
                    LoginError::Config(format!("cannot read the CA file {}: {e}", path.display()))
                })?;
            if certs.is_empty() {
                return Err(LoginError::Config(format!(
                    "the CA file {} holds no certificate",
                    path.display()
                )));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    LoginError::Config(format!("bad certificate in {}: {e}", path.display()))
                })?;
            }
        }
        None => {
            for path in [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
            ] {
                if let Ok(it) = CertificateDer::pem_file_iter(path) {
                    for c in it.flatten() {
                        let _ = roots.add(c);
                    }
                    break;
                }
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LoginError::Config(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
