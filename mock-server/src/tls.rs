//! TLS (rustls): `serve --tls` with a certificate made at start for the mock's names, or
//! `--tls-cert`/`--tls-key`. The mock then speaks `https://` and `wss://`, and hands out
//! `wss://` websocket URLs.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Identity {
    /// The certificate chain.
    pub cert_pem: String,
    /// The private key (never logged, never shown).
    key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("cert_pem", &self.cert_pem).field("key_pem", &"[redacted]").finish()
    }
}

impl Identity {
    /// A self-signed certificate for `names` (host names or IP addresses), made now.
    pub fn generate(names: &[String]) -> anyhow::Result<Identity> {
        let made = rcgen::generate_simple_self_signed(names.to_vec())?;
        Ok(Identity { cert_pem: made.cert.pem(), key_pem: made.signing_key.serialize_pem() })
    }

    /// A certificate chain and key from PEM files.
    pub fn from_files(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<Identity> {
        use anyhow::Context;
        let cert_pem =
            std::fs::read_to_string(cert).with_context(|| format!("reading --tls-cert {}", cert.display()))?;
        let key_pem = std::fs::read_to_string(key).with_context(|| format!("reading --tls-key {}", key.display()))?;
        let identity = Identity { cert_pem, key_pem };
        identity
            .acceptor()
            .with_context(|| format!("--tls-cert {} and --tls-key {}", cert.display(), key.display()))?;
        Ok(identity)
    }

    /// The acceptor that serves it (HTTP/1.1 only).
    pub fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert_pem.as_bytes()).collect::<Result<_, _>>()?;
        if certs.is_empty() {
            anyhow::bail!("no certificate in the PEM");
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// A client configuration that trusts exactly the certificates in `pem` (for `listen --ca-cert`
/// and tests).
pub fn client_config(pem: &str) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An HTTP client and a websocket connector that trust `pem` besides the usual roots (`None`:
/// the usual roots only), for `listen --ca-cert` and `wxcc-contract verify --ca-cert`.
pub fn clients_trusting(pem: Option<&str>) -> anyhow::Result<(reqwest::Client, Option<tokio_tungstenite::Connector>)> {
    let Some(pem) = pem else { return Ok((reqwest::Client::new(), None)) };
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())?;
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(client_config(pem)?));
    Ok((reqwest::Client::builder().tls_certs_merge(certs).build()?, Some(connector)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_serves_and_never_shows_its_key() {
        let identity = Identity::generate(&["localhost".into(), "127.0.0.1".into()]).expect("made");
        assert!(identity.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        identity.acceptor().expect("an acceptor");
        assert!(client_config(&identity.cert_pem).is_ok());
        assert!(!format!("{identity:?}").contains("PRIVATE KEY"));
    }
}
