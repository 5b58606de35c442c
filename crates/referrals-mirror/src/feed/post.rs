//! Delivering changes to an HTTP endpoint of the partner's own (a CRM's inbound webhook, Power
//! Automate, a queue's gateway), signed as the Standard Webhooks specification says, so that
//! any of its libraries verifies them: `webhook-id` (the change's sequence number, the same on
//! every attempt), `webhook-timestamp` (seconds since the epoch) and `webhook-signature`
//! (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` with the secret's key). The body is
//! [`Change::payload`]. Redirects are not followed (a 3xx is a failure, tried again); a 429 or
//! 503 with `Retry-After` is tried again after it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;

use super::Failure;
use crate::{Change, Error};

/// The prefix of a Standard Webhooks secret; the rest is its key in base64.
const SECRET_PREFIX: &str = "whsec_";
/// The longest part of an endpoint's answer kept for a failure's message.
const MAX_ANSWER: usize = 512;

/// An endpoint that changes are posted to.
#[derive(Clone)]
pub struct Endpoint {
    http: reqwest::Client,
    url: reqwest::Url,
    key: ring::hmac::Key,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a token in its query; the key is never shown.
        f.debug_struct("Endpoint")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

/// The key of a Standard Webhooks secret: `whsec_` and base64, or base64 alone.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, Error> {
    let encoded = secret.trim();
    let encoded = encoded.strip_prefix(SECRET_PREFIX).unwrap_or(encoded);
    match STANDARD.decode(encoded) {
        Ok(key) if key.len() >= 16 => Ok(key),
        Ok(_) => Err(Error::Endpoint(
            "the secret's key is shorter than 16 bytes".to_owned(),
        )),
        Err(_) => Err(Error::Endpoint(
            "the secret is not `whsec_` followed by base64".to_owned(),
        )),
    }
}

/// The `webhook-signature` of a delivery: `v1,` and the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` with `key`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    sign(&key, id, timestamp, body)
}

fn sign(key: &ring::hmac::Key, id: &str, timestamp: i64, body: &str) -> String {
    let mut context = ring::hmac::Context::with_key(key);
    context.update(id.as_bytes());
    context.update(format!(".{timestamp}.").as_bytes());
    context.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
}

impl Endpoint {
    /// The endpoint at `url` (http or https), signing with `secret` (`whsec_...`); an attempt
    /// waits `timeout` at most for the answer.
    pub fn new(url: &str, secret: &str, timeout: Duration) -> Result<Self, Error> {
        // The URL is not repeated: it may hold a secret in its query.
        let url = reqwest::Url::parse(url)
            .map_err(|error| Error::Endpoint(format!("the URL does not parse: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Endpoint(format!(
                "`{}` is not an http or https URL",
                url.scheme()
            )));
        }
        let key = secret_key(secret)?;
        let http = referrals_client::http_client(&url, timeout, timeout)
            .map_err(|error| Error::Endpoint(format!("cannot make the HTTP client: {error}")))?;
        Ok(Self {
            http,
            url,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        })
    }

    /// Posts `change`: `Ok` for a 2xx answer, else a [`Failure`] that says what came back.
    pub async fn send(&self, change: &Change) -> Result<(), Failure> {
        let body = change.payload().map_err(Failure::new)?;
        let id = change.seq.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let answer = self
            .http
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sign(&self.key, &id, timestamp, &body))
            .body(body)
            .send()
            .await
            // Without the URL: an endpoint's URL often holds a secret in its query (`sig=`).
            .map_err(|error| {
                Failure::new(format!(
                    "cannot post: {}",
                    crate::error::with_causes(&error.without_url())
                ))
            })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = retry_after(&answer);
        let text = first_bytes(answer).await;
        let mut failure = Failure::new(format!("the endpoint answered {status}: {text}"));
        if let (Some(wait), StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) =
            (retry_after, status)
        {
            failure = failure.retry_after(wait);
        }
        Err(failure)
    }
}

/// `Retry-After` in seconds or as an HTTP date, at most an hour.
fn retry_after(answer: &reqwest::Response) -> Option<Duration> {
    let text = answer.headers().get("retry-after")?.to_str().ok()?.trim();
    let wait = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(text).ok()?;
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
        }
    };
    Some(wait.min(Duration::from_secs(3600)))
}

/// The first bytes of an answer's body, as text, for a message.
async fn first_bytes(mut answer: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ANSWER {
        match answer.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(MAX_ANSWER);
    let text = String::from_utf8_lossy(&bytes);
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.is_empty() {
        "(no body)".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_libraries_test_vector_signs_alike() {
        let key = secret_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let signed = signature(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(signed, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn secrets_that_are_not_base64_or_too_short_are_refused() {
        assert!(secret_key("whsec_not base64!").is_err());
        assert!(secret_key("whsec_c2hvcnQ=").is_err());
        assert!(secret_key("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_ok());
    }
}
