//! TLS with rustls and the `ring` provider: a private CA, optional client
//! certificates (mutual TLS), as a rumqttc [`Transport`].
//!
//! ```no_run
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mqseal_rumqttc::{MqttOptions, tls};
//! let ca = std::fs::read("ca.crt")?;
//! let cert = std::fs::read("robot-1.crt")?;
//! let key = std::fs::read("robot-1.key")?;
//! let mut options = MqttOptions::new("robot-1", "broker.example", 8883);
//! options.set_transport(tls::transport(&ca, Some((&cert, &key)))?);
//! options.set_credentials("robot-1", "password");
//! # Ok(()) }
//! ```

use std::sync::Arc;

use rumqttc::{TlsConfiguration, Transport};
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input held no certificate or key, or could not be parsed.
    #[error("{what}: {reason}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn pem_err(what: &'static str, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        what,
        reason: reason.to_string(),
    }
}

/// A rustls client configuration trusting only `ca_pem` (one or more PEM
/// certificates), presenting `client` (certificate chain PEM, private key PEM)
/// when given. Uses the ring provider and rustls's safe default versions.
pub fn client_config(
    ca_pem: &[u8],
    client: Option<(&[u8], &[u8])>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| pem_err("CA certificate", e))?;
        roots.add(cert)?;
        n += 1;
    }
    if n == 0 {
        return Err(pem_err("CA certificate", "no certificate in the PEM input"));
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| pem_err("client certificate", e))?;
            if chain.is_empty() {
                return Err(pem_err(
                    "client certificate",
                    "no certificate in the PEM input",
                ));
            }
            let key =
                PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| pem_err("client key", e))?;
            builder.with_client_auth_cert(chain, key)?
        }
    };
    Ok(Arc::new(config))
}

/// The rumqttc transport for [`client_config`].
pub fn transport(ca_pem: &[u8], client: Option<(&[u8], &[u8])>) -> Result<Transport, TlsError> {
    Ok(Transport::Tls(TlsConfiguration::Rustls(client_config(
        ca_pem, client,
    )?)))
}
