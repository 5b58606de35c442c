//! Why a callback was refused, with the status that the documentation asks for.

/// Why a callback was refused: the check that failed. [`Self::status`] is the answer to give:
/// 400 for a request that is not an event (a missing header, a body that is not one), 401 for
/// one whose signature does not verify, 503 when the verifier has fetched as many
/// certificates as it does in a minute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// A header that every callback carries is missing.
    #[error("the header `{0}` is missing")]
    MissingHeader(&'static str),
    /// The body is larger than the verifier reads.
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The signature algorithm is not one that the document lists.
    #[error("the signature algorithm `{0}` is not {1}")]
    Algorithm(String, String),
    /// The signature header is not `Signature <base64>`.
    #[error("the signature header is not `Signature <base64>`")]
    SignatureFormat,
    /// The certificate URL is not on an allowed host, port and scheme; it was not fetched.
    #[error("the certificate URL `{0}` is not allowed ({1}); it was not fetched")]
    CertificateUrl(String, String),
    /// The certificate could not be fetched: an error, a redirect, a status other than 200, too
    /// slow, or too large.
    #[error("the certificate at {0} could not be fetched: {1}")]
    CertificateFetch(String, String),
    /// More certificates were fetched in the last minute than the verifier fetches: the
    /// callback is answered 503 (try later), and nothing was fetched for it.
    #[error("more than {0} certificates were fetched in the last minute; {1} was not fetched")]
    CertificateBusy(usize, String),
    /// The file is not a certificate, or its chain does not lead to a trusted root, or it is
    /// not valid now.
    #[error("the certificate at {0} does not verify: {1}")]
    Certificate(String, String),
    /// The signing certificate was issued to another organization.
    #[error("the signing certificate names the organization {found:?}, not `{expected}`")]
    Organization {
        /// The organizations of its subject.
        found: Vec<String>,
        /// The one expected.
        expected: String,
    },
    /// The signing key is smaller than 2048 bits, or not RSA.
    #[error("the signing key is {0}, not RSA of 2048 bits or more")]
    Key(String),
    /// The signature is not the certificate's of this body.
    #[error("the signature does not match the body")]
    Signature,
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an event (no `EventName`, or a member of the wrong type).
    #[error("the body is not an event: {0}")]
    NotAnEvent(String),
}

impl Rejection {
    /// The status to answer with: 400 when the request is not an event, 401 when it is not
    /// Partner Center's.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingHeader(_)
            | Self::BodyTooLarge(_)
            | Self::NotJson(_)
            | Self::NotAnEvent(_) => 400,
            Self::CertificateBusy(..) => 503,
            _ => 401,
        }
    }

    /// A short name of the check that failed, for logs and metrics.
    pub fn check(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "headers",
            Self::BodyTooLarge(_) => "body size",
            Self::Algorithm(..) => "algorithm",
            Self::SignatureFormat => "signature format",
            Self::CertificateUrl(..) => "certificate url",
            Self::CertificateFetch(..) => "certificate fetch",
            Self::CertificateBusy(..) => "certificate fetches",
            Self::Certificate(..) => "certificate chain",
            Self::Organization { .. } => "organization",
            Self::Key(_) => "key size",
            Self::Signature => "signature",
            Self::NotJson(_) => "json",
            Self::NotAnEvent(_) => "event",
        }
    }
}
