//! The sandbox's test certificate authority and the certificate that signs its events, made at
//! start: a root (ECDSA P-256) that a receiver is told to trust, an intermediate authority of it
//! (unless asked to sign directly), and an RSA 2048 certificate issued to the organization of
//! the document (`x-signer-organization`), whose Authority Information Access names where the
//! intermediate is served, and whose key signs each event's body with RSA SHA-256, as Partner
//! Center does.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use referrals_model::webhooks::parameters::receive_webhook_event as headers;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::EncodePrivateKey;

/// A certificate authority and a signing certificate of it.
pub struct Signer {
    root_der: Vec<u8>,
    root_pem: String,
    /// The authority that issued the signing certificate when it is not the root.
    intermediate_der: Option<Vec<u8>>,
    certificate_der: Vec<u8>,
    key: RsaKeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

/// What the signing certificate is, for tests of receivers that must refuse it.
#[derive(Debug, Clone)]
pub struct SigningCertificate {
    /// The subject's organization (`O=`).
    pub organization: String,
    /// The size of the RSA key, in bits.
    pub key_bits: usize,
    /// How long before now it became valid, and how long after now it stays valid, in days
    /// (negative: in the past).
    pub valid_from_days: i64,
    /// See [`Self::valid_from_days`].
    pub valid_to_days: i64,
    /// When set, the certificate is issued by an intermediate authority of the root (as a
    /// public authority issues leaves), and its Authority Information Access names this URL
    /// for the intermediate (`caIssuers`); when `None`, by the root itself.
    pub issuer_url: Option<String>,
}

impl Default for SigningCertificate {
    fn default() -> Self {
        Self {
            organization: headers::X_MS_CERTIFICATE_URL_SIGNER_ORGANIZATION.to_owned(),
            key_bits: 2048,
            valid_from_days: -1,
            valid_to_days: 365,
            issuer_url: None,
        }
    }
}

/// Why the signer could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make the sandbox's event signer: {0}")]
pub struct SignerError(String);

fn fail(error: impl std::fmt::Display) -> SignerError {
    SignerError(error.to_string())
}

impl Signer {
    /// A new authority and a signing certificate as `wanted` says.
    pub fn new(wanted: &SigningCertificate) -> Result<Self, SignerError> {
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(fail)?;
        let mut root = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.distinguished_name = name("Referrals sandbox test root", "Referrals sandbox");
        let root_certificate = root.self_signed(&root_key).map_err(fail)?;
        let root_issuer = Issuer::new(root, root_key);
        let (issuer, intermediate_der) = match &wanted.issuer_url {
            None => (root_issuer, None),
            Some(_) => {
                let (issuer, der) = intermediate(&root_issuer)?;
                (issuer, Some(der))
            }
        };

        let rsa = rsa_key(wanted.key_bits)?;
        let pkcs8 = rsa.to_pkcs8_der().map_err(fail)?;
        let public = RsaPublic(
            rsa.to_public_key()
                .to_pkcs1_der()
                .map_err(fail)?
                .as_bytes()
                .to_vec(),
        );
        let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        leaf.distinguished_name = name("Referrals sandbox event signer", &wanted.organization);
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time::OffsetDateTime::now_utc();
        leaf.not_before = now + time::Duration::days(wanted.valid_from_days);
        leaf.not_after = now + time::Duration::days(wanted.valid_to_days);
        if let Some(url) = &wanted.issuer_url {
            leaf.custom_extensions
                .push(authority_information_access(url));
        }
        let certificate = leaf.signed_by(&public, &issuer).map_err(fail)?;
        // ring signs with keys of 2048 bits and more; a smaller one only shows a receiver's
        // refusal, and never signs.
        let key = match RsaKeyPair::from_pkcs8(pkcs8.as_bytes()) {
            Ok(key) => key,
            Err(_) => RsaKeyPair::from_pkcs8(&placeholder_key()?).map_err(fail)?,
        };
        Ok(Self {
            root_der: root_certificate.der().to_vec(),
            root_pem: root_certificate.pem(),
            intermediate_der,
            certificate_der: certificate.der().to_vec(),
            key,
        })
    }

    /// The root that a receiver trusts, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The root that a receiver trusts, PEM.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The intermediate authority that issued the signing certificate, DER, when
    /// [`SigningCertificate::issuer_url`] asked for one.
    pub fn intermediate_der(&self) -> Option<&[u8]> {
        self.intermediate_der.as_deref()
    }

    /// The signing certificate, DER, as the sandbox serves it.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The signing key's public half, `RSAPublicKey` DER (as ring verifies with it).
    pub fn public_key_der(&self) -> &[u8] {
        self.key.public().as_ref()
    }

    /// `Signature <base64>` of `body`: RSA PKCS#1 v1.5 with SHA-256.
    pub fn sign(&self, body: &[u8]) -> Result<String, SignerError> {
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                body,
                &mut signature,
            )
            .map_err(fail)?;
        Ok(format!(
            "Signature {}",
            base64::engine::general_purpose::STANDARD.encode(signature)
        ))
    }
}

/// An RSA key of `bits`, made once for the process: making one takes a while (seconds in a
/// debug build), and every sandbox of a test process signs with it under certificates of its
/// own.
fn rsa_key(bits: usize) -> Result<rsa::RsaPrivateKey, SignerError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static KEYS: OnceLock<Mutex<HashMap<usize, rsa::RsaPrivateKey>>> = OnceLock::new();
    let keys = KEYS.get_or_init(Mutex::default);
    let mut keys = keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(key) = keys.get(&bits) {
        return Ok(key.clone());
    }
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(fail)?;
    keys.insert(bits, key.clone());
    Ok(key)
}

/// An intermediate authority issued by `root`: its issuer and its certificate, DER.
fn intermediate(
    root: &Issuer<'_, KeyPair>,
) -> Result<(Issuer<'static, KeyPair>, Vec<u8>), SignerError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name = name("Referrals sandbox test intermediate", "Referrals sandbox");
    let certificate = params.signed_by(&key, root).map_err(fail)?;
    Ok((Issuer::new(params, key), certificate.der().to_vec()))
}

/// The Authority Information Access extension (RFC 5280, 4.2.2.1) with one `caIssuers` URL.
fn authority_information_access(url: &str) -> rcgen::CustomExtension {
    // id-pe-authorityInfoAccess, and id-ad-caIssuers.
    const AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
    const CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];
    let content = yasna::construct_der(|writer| {
        writer.write_sequence(|writer| {
            writer.next().write_sequence(|writer| {
                writer
                    .next()
                    .write_oid(&yasna::models::ObjectIdentifier::from_slice(CA_ISSUERS));
                // GeneralName's uniformResourceIdentifier: [6] IMPLICIT IA5String.
                writer
                    .next()
                    .write_tagged_implicit(yasna::Tag::context(6), |writer| {
                        writer.write_ia5_string(url);
                    });
            });
        });
    });
    rcgen::CustomExtension::from_oid_content(AIA, content)
}

fn name(common_name: &str, organization: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, organization);
    name
}

/// An RSA public key (PKCS#1 DER) for rcgen, which asks ring for a key pair otherwise, and
/// ring refuses keys under 2048 bits, which a test of a receiver's refusal needs.
struct RsaPublic(Vec<u8>);

impl rcgen::PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

/// A 2048-bit key for a signer whose certificate has a smaller one (which ring cannot use).
fn placeholder_key() -> Result<Vec<u8>, SignerError> {
    let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(fail)?;
    Ok(rsa.to_pkcs8_der().map_err(fail)?.as_bytes().to_vec())
}
