//! The signer's chain completed as the platforms' verifiers complete it: the `.cer` at
//! `X-MS-Certificate-Url` is the leaf alone, and a public authority issues leaves from a
//! subordinate authority, not from its root. The issuer is fetched from the URL of the
//! certificate's Authority Information Access (`caIssuers`), only from an allowed PKI host
//! (by default those that Microsoft's "Azure Certificate Authority details" lists for
//! certificate downloads), with the bounds of a certificate's fetch (no redirect, its size,
//! its deadline, the fetches a minute) and cached by URL; or taken from the intermediates
//! that the verifier was given. An AIA or CRL URL anywhere else is never fetched.

use std::time::Instant;

use rustls_pki_types::CertificateDer;
use url::Url;

use crate::certificates::{Certificates, FETCHES_PER_MINUTE};

/// How many issuers are fetched for one chain at most.
const DEPTH: usize = 3;

/// `id-ad-caIssuers`, 1.3.6.1.5.5.7.48.2.
const CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";

/// The `caIssuers` URLs of `certificate`'s Authority Information Access.
pub(crate) fn ca_issuers(certificate: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::{FromDer, X509Certificate};
    let Ok((_, parsed)) = X509Certificate::from_der(certificate) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for extension in parsed.extensions() {
        let ParsedExtension::AuthorityInfoAccess(access) = extension.parsed_extension() else {
            continue;
        };
        for description in &access.accessdescs {
            if description.access_method.to_id_string() == CA_ISSUERS
                && let GeneralName::URI(uri) = &description.access_location
            {
                urls.push((*uri).to_owned());
            }
        }
    }
    urls
}

impl Certificates {
    /// The URL `text` of an issuer, if it may be fetched: http or https on an allowed PKI
    /// host's default port, or on an origin allowed for certificates (the sandbox's loopback);
    /// never with a user name, a query or a fragment.
    fn issuer_url(&self, text: &str) -> Option<Url> {
        let url = Url::parse(text).ok()?;
        let plain = url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none();
        let (host, port) = (url.host_str()?, url.port_or_known_default()?);
        let web = matches!(url.scheme(), "http" | "https");
        let pki = web
            && url.port().is_none()
            && self
                .pki_hosts
                .iter()
                .any(|pki| pki.eq_ignore_ascii_case(host));
        let origin = self.origins.iter().any(|origin| {
            origin.scheme == url.scheme()
                && origin.host.eq_ignore_ascii_case(host)
                && origin.port == port
        });
        (plain && (pki || origin)).then_some(url)
    }

    /// `chain` with the issuers that its verification lacks, fetched through the AIA of its
    /// last certificate (each fetch counted in `recent`, the fetches of the last minute); as
    /// far as it could be completed.
    pub(crate) async fn complete(
        &self,
        mut chain: Vec<CertificateDer<'static>>,
        recent: &mut Vec<Instant>,
    ) -> Vec<CertificateDer<'static>> {
        for _ in 0..DEPTH {
            if self.verify_chain(&chain).is_ok() {
                break;
            }
            let Some(last) = chain.last() else { break };
            let Some(url) = ca_issuers(last)
                .iter()
                .find_map(|text| self.issuer_url(text))
            else {
                break;
            };
            let issuers = match self.cached(url.as_str()) {
                Some(known) => known.as_ref().clone(),
                None if recent.len() >= FETCHES_PER_MINUTE => break,
                None => {
                    recent.push(Instant::now());
                    match self.fetch(&url).await {
                        Ok(fetched) => {
                            self.keep(url.as_str(), fetched.clone());
                            fetched
                        }
                        Err(_) => break,
                    }
                }
            };
            // An issuer that is already there would loop.
            if issuers.iter().all(|issuer| chain.contains(issuer)) {
                break;
            }
            chain.extend(issuers);
        }
        chain
    }
}
