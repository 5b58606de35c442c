//! The signing certificate of a callback: where it may come from (no query), fetched within
//! bounds (one at a time, at most [`FETCHES_PER_MINUTE`]), cached by URL (the least recently
//! used put out), and checked (chain to a trusted root, validity, subject's organization, key size).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, UnixTime};
use url::Url;
use webpki::{EndEntityCert, KeyUsage};

use crate::Rejection;
use crate::signers::{RECHECK, Signer, Signers};

/// A host that certificates may be fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) scheme: &'static str,
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// Where certificates come from, and what they must be.
pub(crate) struct Certificates {
    pub(crate) origins: Vec<Origin>,
    pub(crate) roots: Vec<CertificateDer<'static>>,
    pub(crate) organization: String,
    pub(crate) max_bytes: usize,
    pub(crate) http: reqwest::Client,
    /// The intermediates that the verifier was given.
    pub(crate) intermediates: Vec<CertificateDer<'static>>,
    /// The hosts that the issuers of a chain may be fetched from ([`crate::aia`]).
    pub(crate) pki_hosts: Vec<String>,
    /// The certificates fetched, by URL: the end entity first.
    cache: Mutex<Cache>,
    /// Held while a certificate is fetched, so that one URL is fetched once however many
    /// callbacks name it at once; it holds the times of the fetches of the last minute.
    fetching: tokio::sync::Mutex<Vec<Instant>>,
    /// The URLs whose fetch failed in the last minute, and why: named again, they are refused
    /// without a fetch, so that one bad URL costs one fetch a minute however often it comes.
    failed: Mutex<HashMap<String, (Instant, Rejection)>>,
    /// The signers checked, by the URL that named them ([`crate::signers`]).
    pub(crate) signers: Signers,
}

/// The certificates fetched, by URL, each with when it was last used and when it was
/// fetched: an entry older than [`RECHECK`] is fetched again.
#[derive(Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    clock: u64,
}

/// The certificates of a URL, when they were last used (the cache's clock), and fetched.
struct Entry {
    chain: Arc<Vec<CertificateDer<'static>>>,
    used: u64,
    fetched: Instant,
}

impl Cache {
    fn get(&mut self, url: &str) -> Option<Arc<Vec<CertificateDer<'static>>>> {
        self.clock = self.clock.wrapping_add(1);
        let clock = self.clock;
        let entry = self.entries.get_mut(url)?;
        if entry.fetched.elapsed() >= RECHECK {
            self.entries.remove(url);
            return None;
        }
        entry.used = clock;
        Some(Arc::clone(&entry.chain))
    }

    /// Keeps `chain`, putting out the least recently used entry when full.
    fn insert(&mut self, url: &str, chain: Arc<Vec<CertificateDer<'static>>>) {
        if self.entries.len() >= CACHED && !self.entries.contains_key(url) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.used)
                .map(|(url, _)| url.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.clock = self.clock.wrapping_add(1);
        let entry = Entry {
            chain,
            used: self.clock,
            fetched: Instant::now(),
        };
        self.entries.insert(url.to_owned(), entry);
    }
}

/// The most URLs kept; more puts out the least recently used.
const CACHED: usize = 64;

/// The most certificates fetched in a minute: each fetch comes before any signature check, so
/// that a stranger naming new files cannot make the receiver fetch without end.
pub(crate) const FETCHES_PER_MINUTE: usize = 30;

/// The hosts of the certificate downloads of the authorities that Microsoft's services use.
pub(crate) const PKI_HOSTS: [&str; 5] = [
    "caissuers.microsoft.com",
    "www.microsoft.com",
    "cacerts.digicert.com",
    "cacerts.digicert.cn",
    "cacerts.geotrust.com",
];

/// `id-kp-codeSigning` (1.3.6.1.5.5.7.3.3), DER: a signing certificate may name it.
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

impl Certificates {
    /// The signer named by the header `text`, and whether it was kept already: checked before
    /// and still fresh, or its URL allowed, its chain cached or fetched, and checked now (the
    /// caller keeps it once a signature verified with it, so that no stranger fills the map).
    /// A chain that no longer passes is put out of the cache and its URL refused for a minute,
    /// then fetched again.
    pub(crate) async fn signer(&self, text: &str) -> Result<(Arc<Signer>, bool), Rejection> {
        if let Some(signer) = self.signers.get(text) {
            return Ok((signer, true));
        }
        let url = self.allowed(text)?;
        let chain = self.get(&url).await?;
        match Signer::checked(&url, &chain, || self.check(&url, &chain)) {
            Ok(signer) => Ok((Arc::new(signer), false)),
            Err(rejection) => {
                self.forget(url.as_str());
                self.remember_failure(url.as_str(), Instant::now(), &rejection);
                Err(rejection)
            }
        }
    }

    pub(crate) fn new(
        origins: Vec<Origin>,
        roots: Vec<CertificateDer<'static>>,
        organization: String,
        max_bytes: usize,
        http: reqwest::Client,
    ) -> Self {
        Self {
            origins,
            roots,
            organization,
            max_bytes,
            http,
            intermediates: Vec::new(),
            pki_hosts: PKI_HOSTS.map(str::to_owned).to_vec(),
            cache: Mutex::new(Cache::default()),
            fetching: tokio::sync::Mutex::new(Vec::new()),
            failed: Mutex::new(HashMap::new()),
            signers: Signers::default(),
        }
    }

    /// The URL `text`, if it is on an allowed origin: https on a host and port allowed, or
    /// http on a loopback host allowed so. A URL with a user name, a password or a fragment
    /// is refused.
    pub(crate) fn allowed(&self, text: &str) -> Result<Url, Rejection> {
        let refuse = |why: &str| Rejection::CertificateUrl(text.to_owned(), why.to_owned());
        let url = Url::parse(text).map_err(|error| refuse(&error.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(refuse("it carries a user name, a password or a fragment"));
        }
        // A certificate file is named by its path; a query would make one file many URLs.
        if url.query().is_some() {
            return Err(refuse("it carries a query"));
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(refuse("it names no host"));
        };
        let allowed = self.origins.iter().any(|origin| {
            origin.scheme == url.scheme()
                && origin.host.eq_ignore_ascii_case(host)
                && origin.port == port
                && (origin.scheme == "https" || is_loopback(&url))
        });
        if allowed {
            Ok(url)
        } else {
            Err(refuse("not an allowed host, port and scheme"))
        }
    }

    /// The certificates at `url` (the end entity first), from the cache or fetched: one fetch
    /// at a time (a URL that another callback is fetching is waited for, then found in the
    /// cache), and at most [`FETCHES_PER_MINUTE`].
    pub(crate) async fn get(
        &self,
        url: &Url,
    ) -> Result<Arc<Vec<CertificateDer<'static>>>, Rejection> {
        if let Some(known) = self.lock().get(url.as_str()) {
            return Ok(known);
        }
        let mut recent = self.fetching.lock().await;
        if let Some(known) = self.lock().get(url.as_str()) {
            return Ok(known);
        }
        let now = Instant::now();
        recent.retain(|at| now.duration_since(*at) < Duration::from_secs(60));
        if recent.len() >= FETCHES_PER_MINUTE {
            return Err(Rejection::CertificateBusy(
                FETCHES_PER_MINUTE,
                url.to_string(),
            ));
        }
        if let Some(rejection) = self.failed_lately(url.as_str(), now) {
            return Err(rejection);
        }
        recent.push(now);
        let fetched = match self.fetch(url).await {
            Ok(fetched) => fetched,
            Err(rejection) => {
                self.remember_failure(url.as_str(), now, &rejection);
                return Err(rejection);
            }
        };
        // The leaf alone, as Partner Center serves it: its issuers from its AIA.
        let chain = self.complete(fetched, &mut recent).await;
        // A chain that does not verify (an issuer that could not be fetched now, the fetches
        // of the minute spent) is not kept: it is refused for a minute, then fetched again.
        if let Err(why) = self.verify_chain(&chain) {
            let rejection = Rejection::Certificate(url.to_string(), why);
            self.remember_failure(url.as_str(), now, &rejection);
            return Err(rejection);
        }
        let chain = Arc::new(chain);
        self.lock().insert(url.as_str(), Arc::clone(&chain));
        Ok(chain)
    }

    /// Why `url` failed within the last minute, if it did.
    fn failed_lately(&self, url: &str, now: Instant) -> Option<Rejection> {
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failed
            .get(url)
            .filter(|(at, _)| now.duration_since(*at) < Duration::from_secs(60))
            .map(|(_, rejection)| rejection.clone())
    }

    /// Remembers that `url` failed, keeping the failures of the last minute (at most
    /// [`CACHED`] of them).
    pub(crate) fn remember_failure(&self, url: &str, now: Instant, rejection: &Rejection) {
        let mut failed = self
            .failed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failed.retain(|_, (at, _)| now.duration_since(*at) < Duration::from_secs(60));
        if failed.len() < CACHED {
            failed.insert(url.to_owned(), (now, rejection.clone()));
        }
    }

    /// The certificates cached for `url`.
    pub(crate) fn cached(&self, url: &str) -> Option<Arc<Vec<CertificateDer<'static>>>> {
        self.lock().get(url)
    }

    /// Caches `certificates` for `url`.
    pub(crate) fn keep(&self, url: &str, certificates: Vec<CertificateDer<'static>>) {
        self.lock().insert(url, Arc::new(certificates));
    }

    /// Puts the certificates of `url` out of the cache.
    pub(crate) fn forget(&self, url: &str) {
        self.lock().entries.remove(url);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fetches the certificate file: no redirect, status 200, at most `max_bytes`, within the
    /// client's timeout; DER, or PEM with the end entity first.
    pub(crate) async fn fetch(&self, url: &Url) -> Result<Vec<CertificateDer<'static>>, Rejection> {
        let failed = |why: String| Rejection::CertificateFetch(url.to_string(), why);
        let mut response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|error| failed(error.to_string()))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(failed(format!("the answer was {}", response.status())));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| failed(error.to_string()))?
        {
            if bytes.len() + chunk.len() > self.max_bytes {
                return Err(failed(format!(
                    "it is larger than {} bytes",
                    self.max_bytes
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        parse(&bytes).map_err(|why| Rejection::Certificate(url.to_string(), why))
    }

    /// Checks `chain` (the end entity first): it leads to a trusted root and is valid now, and
    /// the end entity was issued to the organization expected, with an RSA key of 2048 bits or
    /// more.
    pub(crate) fn check(
        &self,
        url: &Url,
        chain: &[CertificateDer<'static>],
    ) -> Result<(), Rejection> {
        let invalid = |why: String| Rejection::Certificate(url.to_string(), why);
        self.verify_chain(chain).map_err(invalid)?;
        if let Some(leaf) = chain.first() {
            self.check_subject(leaf)?;
        }
        Ok(())
    }

    /// Checks that `chain` (the end entity first, then intermediates) leads to a trusted root,
    /// with the intermediates given to the verifier, and is valid now; why not.
    pub(crate) fn verify_chain<'a>(
        &self,
        chain: &'a [CertificateDer<'static>],
    ) -> Result<EndEntityCert<'a>, String> {
        let (leaf, fetched) = chain.split_first().ok_or("no certificate")?;
        let anchors: Vec<_> = self
            .roots
            .iter()
            .filter_map(|root| webpki::anchor_from_trusted_cert(root).ok())
            .collect();
        let intermediates: Vec<CertificateDer<'static>> =
            fetched.iter().chain(&self.intermediates).cloned().collect();
        let end_entity = EndEntityCert::try_from(leaf).map_err(|error| error.to_string())?;
        let now = UnixTime::since_unix_epoch(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO),
        );
        let usages = [
            KeyUsage::required_if_present(EKU_CODE_SIGNING),
            KeyUsage::server_auth(),
            KeyUsage::client_auth(),
        ];
        let mut last = None;
        let verified = usages.into_iter().any(|usage| {
            let result = end_entity.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &intermediates,
                now,
                usage,
                None,
                None,
            );
            let ok = result.is_ok();
            last = result.err();
            ok
        });
        if !verified {
            return Err(
                last.map_or_else(|| "no trusted root".to_owned(), |error| error.to_string())
            );
        }
        Ok(end_entity)
    }

    /// The subject's organization and the key's size, from the parsed certificate.
    fn check_subject(&self, leaf: &CertificateDer<'_>) -> Result<(), Rejection> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        use x509_parser::public_key::PublicKey;
        let (_, certificate) = X509Certificate::from_der(leaf)
            .map_err(|error| Rejection::Key(format!("unreadable ({error})")))?;
        let found: Vec<String> = certificate
            .subject()
            .iter_organization()
            .filter_map(|attribute| attribute.as_str().ok().map(str::to_owned))
            .collect();
        if !found.contains(&self.organization) {
            return Err(Rejection::Organization {
                found,
                expected: self.organization.clone(),
            });
        }
        match certificate.public_key().parsed() {
            Ok(PublicKey::RSA(key)) if key.key_size() >= 2048 => Ok(()),
            Ok(PublicKey::RSA(key)) => {
                Err(Rejection::Key(format!("RSA of {} bits", key.key_size())))
            }
            Ok(_) => Err(Rejection::Key("not RSA".into())),
            Err(error) => Err(Rejection::Key(format!("unreadable ({error})"))),
        }
    }
}

/// The certificates of a file or an answer: PEM certificates (after any leading whitespace), or
/// one DER certificate. The one reader of both forms, for the issuers fetched and for the roots
/// and intermediates a builder is given.
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let text = bytes.trim_ascii_start();
    if !text.starts_with(b"-----BEGIN") {
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    let certificates: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(text).collect();
    let certificates = certificates.map_err(|error| format!("not PEM certificates: {error}"))?;
    if certificates.is_empty() {
        return Err("no CERTIFICATE section in the PEM text".into());
    }
    Ok(certificates)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}
