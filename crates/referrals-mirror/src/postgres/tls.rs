//! TLS to a PostgreSQL server, with rustls (as the client uses), as libpq's `sslmode` asks:
//!
//! - `disable`: plain TCP;
//! - `allow`, `prefer` (the default, as libpq's): TLS when the server offers it, plain
//!   otherwise, the certificate not checked;
//! - `require`: TLS, the certificate not checked (encrypted, not authenticated: as libpq),
//!   unless `sslrootcert` names a file: then as `verify-ca`, as libpq;
//! - `verify-ca`: TLS, the certificate chains to `sslrootcert`;
//! - `verify-full`: `verify-ca`, and the certificate names the host connected to.
//!
//! `sslrootcert` is a file of PEM certificates, or `system` for the platform's roots
//! (`verify-full` only). Without it, `verify-ca` and `verify-full` are refused with a message:
//! libpq's default file (`~/.postgresql/root.crt`) is not read.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What `sslmode` asks of the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Not checked (`allow`, `prefer`, `require`): the handshake's signature only.
    Nothing,
    /// Chains to the roots (`verify-ca`).
    Chain,
    /// Chains to the roots and names the host (`verify-full`).
    Full,
}

/// Where the roots come from (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// None given.
    None,
    /// `system`: the platform's.
    System,
    /// A file of PEM certificates.
    File(std::path::PathBuf),
}

/// The rustls configuration for `check` against `roots`; an error says what is wrong.
pub(crate) fn client_config(check: Check, roots: &Roots) -> Result<rustls::ClientConfig, String> {
    referrals_client::install_crypto_provider();
    let provider = CryptoProvider::get_default()
        .cloned()
        .ok_or("no TLS crypto provider is installed")?;
    let verifier: Arc<dyn ServerCertVerifier> = match (check, roots) {
        (Check::Nothing, _) => Arc::new(Unchecked(Arc::clone(&provider))),
        (_, Roots::None) => {
            return Err(
                "sslmode=verify-ca and verify-full need sslrootcert (a file of PEM \
                        certificates, or `system`)"
                    .to_owned(),
            );
        }
        (Check::Chain, Roots::System) => {
            return Err(
                "sslmode=verify-ca needs a file in sslrootcert; with the platform's \
                        roots, use verify-full"
                    .to_owned(),
            );
        }
        (Check::Full, Roots::System) => Arc::new(
            rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
                .map_err(|error| format!("the platform's roots: {error}"))?,
        ),
        (check, Roots::File(path)) => {
            let store = root_store(path)?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(&provider))
                    .build()
                    .map_err(|error| format!("sslrootcert {}: {error}", path.display()))?;
            match check {
                Check::Chain => Arc::new(AnyName(webpki)),
                _ => webpki,
            }
        }
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// The certificates of a PEM file.
fn root_store(path: &std::path::Path) -> Result<RootCertStore, String> {
    let named = |error: &dyn std::fmt::Display| format!("sslrootcert {}: {error}", path.display());
    let mut store = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(path).map_err(|error| named(&error))? {
        let certificate = certificate.map_err(|error| named(&error))?;
        store.add(certificate).map_err(|error| named(&error))?;
    }
    if store.is_empty() {
        return Err(named(&"holds no PEM certificate"));
    }
    Ok(store)
}

/// The handshake's signatures checked by the provider; the certificate itself not (what
/// libpq's `require` does).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// webpki's checks but for the name (what libpq's `verify-ca` does).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let checked =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match checked {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
