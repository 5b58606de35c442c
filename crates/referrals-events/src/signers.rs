//! The signers already checked, by certificate URL: a callback whose URL names one costs its
//! signature's verification alone. The chain, the organization and the key's size are checked
//! once per certificate, and again when the check is [`RECHECK`] old (the file itself is
//! fetched again once its cache entry is that old: a signer rests on a file at most twice that
//! old) or when the leaf or an issuer fetched for it stops being valid, whichever comes first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls_pki_types::CertificateDer;
use url::Url;

use crate::Rejection;

/// How long a checked signer, and the chain fetched for it, is used before it is checked (and
/// fetched) again.
pub(crate) const RECHECK: Duration = Duration::from_secs(60 * 60);

/// The most signers kept: as many as the certificates cached.
const KEPT: usize = 64;

/// A signing key whose certificate passed every check.
pub(crate) struct Signer {
    /// The RSA public key (`RSAPublicKey`, DER), as ring reads it.
    key: Box<[u8]>,
    /// Checked again from then on: [`RECHECK`] after the check, or the earliest end of
    /// validity of the leaf and the issuers fetched for it.
    until: Instant,
    /// The earliest end of validity of the certificates of the chain.
    valid_until: SystemTime,
}

impl Signer {
    /// The signer of `chain`, fetched from `url`, once `check` (the chain, the organization,
    /// the key's size: `Certificates::check`) passed: its leaf's key, used until [`RECHECK`]
    /// after the check or the earliest end of validity of the chain, whichever comes first.
    /// No signer is made without a check.
    pub(crate) fn checked(
        url: &Url,
        chain: &[CertificateDer<'static>],
        check: impl FnOnce() -> Result<(), Rejection>,
    ) -> Result<Self, Rejection> {
        let checked_at = Instant::now();
        check()?;
        let leaf = chain
            .first()
            .ok_or_else(|| Rejection::Certificate(url.to_string(), "no certificate".to_owned()))?;
        let key = rsa_key(leaf)?;
        let valid_until = chain
            .iter()
            .filter_map(not_after)
            .min()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let left = valid_until
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Ok(Self {
            key,
            until: checked_at + RECHECK.min(left),
            valid_until,
        })
    }

    /// Whether the signer may still be used without a check.
    fn fresh(&self, now: Instant) -> bool {
        now < self.until && SystemTime::now() < self.valid_until
    }

    /// Verifies `signature` of `body` (RSA PKCS#1 v1.5, SHA-256, 2048 bits or more).
    pub(crate) fn verify(&self, body: &[u8], signature: &[u8]) -> Result<(), Rejection> {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &self.key,
        )
        .verify(body, signature)
        .map_err(|_| Rejection::Signature)
    }
}

/// The signers checked, by the certificate URL as the callbacks wrote it.
#[derive(Default)]
pub(crate) struct Signers {
    kept: Mutex<HashMap<String, Arc<Signer>>>,
}

impl Signers {
    /// The signer of `url` (the header's text), if it was checked and is still fresh.
    pub(crate) fn get(&self, url: &str) -> Option<Arc<Signer>> {
        let kept = self.lock();
        kept.get(url)
            .filter(|signer| signer.fresh(Instant::now()))
            .cloned()
    }

    /// Keeps `signer` for `url` (once a callback's signature verified with it): a full map
    /// first loses its stale entries, then one more.
    pub(crate) fn insert(&self, url: &str, signer: Arc<Signer>) {
        let mut kept = self.lock();
        if kept.len() >= KEPT && !kept.contains_key(url) {
            let now = Instant::now();
            kept.retain(|_, signer| signer.fresh(now));
            if kept.len() >= KEPT
                && let Some(oldest) = kept
                    .iter()
                    .min_by_key(|(_, signer)| signer.until)
                    .map(|(url, _)| url.clone())
            {
                kept.remove(&oldest);
            }
        }
        kept.insert(url.to_owned(), signer);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Signer>>> {
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The RSA public key of `leaf` (the content of its `subjectPublicKey`).
fn rsa_key(leaf: &CertificateDer<'_>) -> Result<Box<[u8]>, Rejection> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, certificate) = X509Certificate::from_der(leaf)
        .map_err(|error| Rejection::Key(format!("unreadable ({error})")))?;
    Ok(certificate
        .public_key()
        .subject_public_key
        .data
        .to_vec()
        .into_boxed_slice())
}

/// When `certificate` stops being valid; none for a file that is not a certificate.
fn not_after(certificate: &CertificateDer<'_>) -> Option<SystemTime> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(certificate).ok()?;
    let seconds = u64::try_from(parsed.validity().not_after.timestamp()).unwrap_or(0);
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(until: Duration, valid_for: Option<Duration>) -> Arc<Signer> {
        let valid_until = match valid_for {
            Some(left) => SystemTime::now() + left,
            None => SystemTime::now() - Duration::from_secs(1),
        };
        Arc::new(Signer {
            key: Box::new([]),
            until: Instant::now() + until,
            valid_until,
        })
    }

    #[test]
    fn a_signer_is_used_until_its_recheck_or_the_end_of_its_validity() {
        let signers = Signers::default();
        let hour = Duration::from_secs(3600);
        signers.insert("https://a/fresh.cer", signer(hour, Some(hour)));
        signers.insert("https://a/due.cer", signer(Duration::ZERO, Some(hour)));
        signers.insert("https://a/expired.cer", signer(hour, None));
        assert!(signers.get("https://a/fresh.cer").is_some());
        assert!(signers.get("https://a/due.cer").is_none());
        assert!(signers.get("https://a/expired.cer").is_none());
        assert!(signers.get("https://a/unknown.cer").is_none());
    }

    #[test]
    fn a_full_map_puts_out_the_stale_then_the_earliest_due() {
        let signers = Signers::default();
        let hour = Duration::from_secs(3600);
        signers.insert("stale", signer(Duration::ZERO, Some(hour)));
        for index in 1..KEPT {
            let until = hour + Duration::from_secs(u64::try_from(index).unwrap_or(0));
            signers.insert(&format!("u{index}"), signer(until, Some(hour * 2)));
        }
        signers.insert("new", signer(hour * 2, Some(hour * 2)));
        assert_eq!(signers.lock().len(), KEPT);
        assert!(!signers.lock().contains_key("stale"));
        signers.insert("newer", signer(hour * 2, Some(hour * 2)));
        assert_eq!(signers.lock().len(), KEPT);
        assert!(!signers.lock().contains_key("u1"));
        assert!(signers.lock().contains_key("new"));
    }
}
