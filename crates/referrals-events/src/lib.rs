#![deny(missing_docs)]
//! Verifies Partner Center's webhook callbacks, to put in front of any Rust web server: given
//! a request's headers and its raw body, [`Verifier::verify`] gives the typed event, or the
//! [`Rejection`] that says which check failed and which status to answer (400 or 401).
//!
//! ```no_run
//! # async fn handle(headers: http::HeaderMap, body: &[u8]) -> u16 {
//! use referrals_events::Verifier;
//!
//! let verifier = Verifier::builder().build().expect("the platform's roots load");
//! match verifier.verify(&headers, body).await {
//!     Ok(event) => {
//!         println!("{} for {:?}", event.name(), event.referral_id);
//!         200
//!     }
//!     Err(rejection) => {
//!         eprintln!("refused ({}): {rejection}", rejection.check());
//!         rejection.status()
//!     }
//! }
//! # }
//! ```
//!
//! What it checks, in this order, before it reads the body as anything but bytes: the body's
//! size; the signature headers (`Authorization: Signature <base64>`, or `x-ms-signature`),
//! `X-MS-Certificate-Url` and `X-MS-Signature-Algorithm` (only `rsa-sha256`); that the
//! certificate URL is https on an allowed host and port (by default the documented storage host,
//! `x-allowed-hosts` of the document), without user name, query or fragment, so that a URL a
//! stranger chose is never fetched; the certificate, fetched without redirects, within a size
//! and a time, one fetch at a time and at most 30 a minute (more is answered 503), and cached by
//! URL (the 64 last used); its chain to a trusted root (the platform's, and any added), its validity
//! now, its subject's organization (by default Microsoft Corporation, the document's
//! `x-signer-organization`) and an RSA key of 2048 bits or more; the RSA SHA-256 (PKCS#1 v1.5)
//! signature of the exact body bytes. Then the body is read as the document's `WebhookEvent`;
//! the referral's id is the last segment of `ResourceUri`.
//!
//! A certificate that passed its checks is not checked again for each callback: the callbacks
//! that name its URL cost the verification of their signature alone, until an hour has passed
//! (the file is then fetched and checked again) or a certificate of its chain stops being
//! valid, whichever comes first. A certificate that then fails is put out of the cache.
//!
//! The cryptography is rustls-webpki's and ring's; the certificate is read with x509-parser.
//! Nothing in a callback prevents a replay of a genuine one: a receiver that writes only newer
//! versions, as `referrals-mirror` does, is not harmed by one.

mod aia;
mod certificates;
mod rejection;
mod signers;
mod verify;

use std::time::Duration;

use referrals_client::webhooks::parameters::receive_webhook_event as documented;
use rustls_pki_types::CertificateDer;

use crate::certificates::{Certificates, Origin};
pub use crate::rejection::Rejection;
pub use crate::verify::Event;

/// The largest body read (1 MiB): an event is a few hundred bytes.
pub const MAX_BODY: usize = 1024 * 1024;

/// A verifier of callbacks; cheap to clone and share between requests.
#[derive(Clone)]
pub struct Verifier {
    certificates: std::sync::Arc<Certificates>,
    max_body: usize,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("origins", &self.certificates.origins)
            .field("organization", &self.certificates.organization)
            .finish_non_exhaustive()
    }
}

/// How a [`Verifier`] is made.
#[derive(Debug, Clone)]
pub struct VerifierBuilder {
    origins: Vec<Origin>,
    /// The roots added, each DER or PEM.
    roots: Vec<Vec<u8>>,
    platform_roots: bool,
    organization: String,
    max_certificate: usize,
    fetch_timeout: Duration,
    max_body: usize,
    /// The intermediates added, each DER or PEM.
    intermediates: Vec<Vec<u8>>,
    /// The hosts that issuers may be fetched from.
    pki_hosts: Vec<String>,
}

/// Why a verifier could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Plain http was asked for a host that is not a loopback address (or an origin that is
    /// not `HOST:PORT`).
    #[error("plain http is allowed only to a loopback HOST:PORT, not `{0}`")]
    NotLoopback(String),
    /// No trusted root: the platform's could not be read and none was added.
    #[error("no trusted root: the platform's could not be read ({0}) and none was added")]
    NoRoots(String),
    /// A root added is PEM that holds no certificate.
    #[error("a trusted root given as PEM holds no certificate: {0}")]
    TrustRoot(String),
    /// The HTTP client could not be made.
    #[error("cannot make the HTTP client: {0}")]
    Http(#[from] referrals_client::BuildError),
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        Self {
            origins: documented::X_MS_CERTIFICATE_URL_ALLOWED_HOSTS
                .iter()
                .map(|host| Origin {
                    scheme: "https",
                    host: (*host).to_owned(),
                    port: 443,
                })
                .collect(),
            roots: Vec::new(),
            platform_roots: true,
            organization: documented::X_MS_CERTIFICATE_URL_SIGNER_ORGANIZATION.to_owned(),
            max_certificate: 64 * 1024,
            fetch_timeout: Duration::from_secs(5),
            max_body: MAX_BODY,
            intermediates: Vec::new(),
            pki_hosts: certificates::PKI_HOSTS.map(str::to_owned).to_vec(),
        }
    }
}

/// The certificates of `bytes`: those of a PEM text, or the one DER certificate.
fn certificates_of(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    certificates::parse(bytes).map_err(BuildError::TrustRoot)
}

impl Verifier {
    /// A builder with the document's defaults: the documented certificate host, the platform's
    /// roots, the documented organization.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// A verifier of a local sandbox's events only: its root `root` (PEM or DER, the file that
    /// the sandbox writes), and its certificates over plain http from `origin` (its loopback
    /// `HOST:PORT`).
    pub fn for_sandbox(origin: &str, root: impl AsRef<[u8]>) -> Result<Self, BuildError> {
        let (host, port) = origin
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .ok_or_else(|| BuildError::NotLoopback(origin.to_owned()))?;
        Self::builder()
            .only_hosts_added()
            .platform_roots(false)
            .trust_root(root)
            .allow_http_loopback(host, port)?
            .build()
    }
}

impl VerifierBuilder {
    /// Allows certificates from `host` over https on `port` (443 for the default), besides the
    /// others allowed.
    pub fn allow_host(mut self, host: &str, port: u16) -> Self {
        self.origins.push(Origin {
            scheme: "https",
            host: host.to_owned(),
            port,
        });
        self
    }

    /// Allows certificates over plain http from `host` on `port`, which must be a loopback
    /// address (`127.0.0.1`, `::1`, `localhost`), as the sandbox serves its own.
    pub fn allow_http_loopback(mut self, host: &str, port: u16) -> Result<Self, BuildError> {
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(BuildError::NotLoopback(host.to_owned()));
        }
        self.origins.push(Origin {
            scheme: "http",
            host: host.to_owned(),
            port,
        });
        Ok(self)
    }

    /// Only the hosts allowed by this builder's calls, not the documented one.
    pub fn only_hosts_added(mut self) -> Self {
        self.origins.clear();
        self
    }

    /// Trusts `root` besides the platform's roots: a certificate in DER, or a PEM file's text
    /// (each of its certificates; [`VerifierBuilder::build`] fails when it has none).
    pub fn trust_root(mut self, root: impl AsRef<[u8]>) -> Self {
        self.roots.push(root.as_ref().to_vec());
        self
    }

    /// Whether to trust the platform's roots (default: yes).
    pub fn platform_roots(mut self, trust: bool) -> Self {
        self.platform_roots = trust;
        self
    }

    /// The organization (`O=`) that the signing certificate's subject must name.
    pub fn organization(mut self, organization: &str) -> Self {
        self.organization = organization.to_owned();
        self
    }

    /// How long a certificate download may take (default: 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The largest certificate file read (default: 64 KiB).
    pub fn max_certificate(mut self, bytes: usize) -> Self {
        self.max_certificate = bytes;
        self
    }

    /// Adds intermediates for the signer's chain: a certificate in DER, or a PEM file's text
    /// (each of its certificates). Without them, an issuer that the certificate file lacks is
    /// fetched from its AIA `caIssuers` on an allowed PKI host.
    pub fn intermediate(mut self, intermediate: impl AsRef<[u8]>) -> Self {
        self.intermediates.push(intermediate.as_ref().to_vec());
        self
    }

    /// Allows the issuers of a chain to be fetched from `host` too (http or https on the
    /// default port), besides the hosts of the certificate downloads of the authorities that
    /// Microsoft's services use (`caissuers.microsoft.com`, `www.microsoft.com`,
    /// `cacerts.digicert.com`, `cacerts.digicert.cn`, `cacerts.geotrust.com`).
    pub fn allow_pki_host(mut self, host: &str) -> Self {
        self.pki_hosts.push(host.to_owned());
        self
    }

    /// Fetches no issuer from a PKI host (only from the origins allowed for certificates, and
    /// the intermediates given).
    pub fn no_pki_hosts(mut self) -> Self {
        self.pki_hosts.clear();
        self
    }

    /// Makes the verifier.
    pub fn build(self) -> Result<Verifier, BuildError> {
        let mut roots = Vec::new();
        for root in &self.roots {
            roots.extend(certificates_of(root)?);
        }
        if self.platform_roots {
            let found = rustls_native_certs::load_native_certs();
            if roots.is_empty() && found.certs.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "none found".to_owned(), ToString::to_string);
                return Err(BuildError::NoRoots(why));
            }
            roots.extend(found.certs);
        }
        let any = url::Url::parse("https://localhost").expect("a URL");
        let http = referrals_client::http_client(&any, self.fetch_timeout, self.fetch_timeout)?;
        let mut certificates = Certificates::new(
            self.origins,
            roots,
            self.organization,
            self.max_certificate,
            http,
        );
        for intermediate in &self.intermediates {
            certificates
                .intermediates
                .extend(certificates_of(intermediate)?);
        }
        certificates.pki_hosts = self.pki_hosts;
        Ok(Verifier {
            certificates: std::sync::Arc::new(certificates),
            max_body: self.max_body,
        })
    }
}
