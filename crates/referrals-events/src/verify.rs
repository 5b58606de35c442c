//! The checks of one callback, in order, and the event it carries.

use base64::Engine;
use http::HeaderMap;
use referrals_client::webhooks::parameters::receive_webhook_event as documented;
use referrals_client::webhooks::security;
use referrals_client::webhooks::types::{WebhookEvent, WebhookEventName};

use crate::{Rejection, Verifier};

/// A verified callback: the event, and the referral it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event as Partner Center sent it.
    pub event: WebhookEvent,
    /// The referral's id: the last segment of `ResourceUri`.
    pub referral_id: Option<String>,
}

impl Event {
    /// The event's name.
    pub fn name(&self) -> &WebhookEventName {
        &self.event.event_name
    }

    /// The address of the change's audit record, whichever name it came under (`AuditUri` in
    /// the samples, `AuditUrl` in the event model's table).
    pub fn audit(&self) -> Option<&str> {
        self.event
            .audit_uri
            .as_deref()
            .or(self.event.audit_url.as_deref())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

impl Verifier {
    /// Verifies a callback from its headers and raw body (see the crate's documentation for
    /// the checks); nothing but the body's size is looked at before the signature headers, and
    /// the body is read as an event only once its signature verified.
    pub async fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Event, Rejection> {
        if body.len() > self.max_body {
            return Err(Rejection::BodyTooLarge(self.max_body));
        }
        let signature = signature_header(headers)?;
        let url = header(headers, documented::X_MS_CERTIFICATE_URL)
            .ok_or(Rejection::MissingHeader(documented::X_MS_CERTIFICATE_URL))?;
        let algorithm = header(headers, documented::X_MS_SIGNATURE_ALGORITHM).ok_or(
            Rejection::MissingHeader(documented::X_MS_SIGNATURE_ALGORITHM),
        )?;
        let known = documented::X_MS_SIGNATURE_ALGORITHM_VALUES;
        if !known
            .iter()
            .any(|value| value.eq_ignore_ascii_case(algorithm.trim()))
        {
            return Err(Rejection::Algorithm(algorithm.to_owned(), known.join(", ")));
        }
        let signature = decode_signature(signature)?;
        let (signer, kept) = self.certificates.signer(url).await?;
        signer.verify(body, &signature)?;
        if !kept {
            self.certificates.signers.insert(url, signer);
        }
        event(body)
    }
}

/// The signature header's value: `Authorization` when it holds a signature, else
/// `x-ms-signature`.
fn signature_header(headers: &HeaderMap) -> Result<&str, Rejection> {
    let signed =
        |name| header(headers, name).filter(|value| value.trim_start().starts_with("Signature"));
    signed(security::EVENT_SIGNATURE)
        .or_else(|| signed(security::EVENT_SIGNATURE_HEADER))
        .or_else(|| header(headers, security::EVENT_SIGNATURE))
        .ok_or(Rejection::MissingHeader(security::EVENT_SIGNATURE))
}

/// The signature's bytes, from `Signature <base64>`.
fn decode_signature(value: &str) -> Result<Vec<u8>, Rejection> {
    let (scheme, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or(Rejection::SignatureFormat)?;
    if !scheme.eq_ignore_ascii_case("Signature") {
        return Err(Rejection::SignatureFormat);
    }
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| Rejection::SignatureFormat)
}

/// The event of a verified body, read in one pass: an error of syntax says that it is not
/// JSON, an error of data that it is not an event.
fn event(body: &[u8]) -> Result<Event, Rejection> {
    let event: WebhookEvent = serde_json::from_slice(body).map_err(|error| {
        if error.is_data() {
            Rejection::NotAnEvent(error.to_string())
        } else {
            Rejection::NotJson(error.to_string())
        }
    })?;
    let referral_id = event.resource_uri.as_deref().and_then(|uri| {
        let path =
            url::Url::parse(uri).map_or_else(|_| uri.to_owned(), |url| url.path().to_owned());
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
    });
    Ok(Event { event, referral_id })
}
