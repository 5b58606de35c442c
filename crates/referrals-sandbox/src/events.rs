//! The sandbox publishes events like Partner Center: on every create and update, the matching
//! signed events (and a related-referral event to each other referral of the same engagement)
//! are POSTed to the registered URL, up to 10 attempts with backoff, after which an event goes
//! to an offline queue that the sandbox lists. A share of events can be dropped on purpose.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use referrals_model::types::Referral;
use referrals_model::webhooks::parameters::receive_webhook_event as headers;
use referrals_model::webhooks::security;
use referrals_model::webhooks::types::{
    ValidationEventDelivery, WebhookEvent, WebhookEventName, WebhookRegistration,
};
use tokio::sync::Semaphore;

use crate::signer::{Signer, SigningCertificate};
use crate::store::Store;

/// Attempts of one delivery, as Partner Center makes them.
pub const ATTEMPTS: u32 = 10;
/// The path where the sandbox serves its signing certificate (no token needed).
pub const CERTIFICATE_PATH: &str = "/sandbox/certificates/signer.cer";
/// Where the intermediate authority that issued it is served (its AIA `caIssuers`).
pub const INTERMEDIATE_PATH: &str = "/sandbox/certificates/intermediate.cer";
/// The path of the offline queue: the events that were not delivered.
pub const OFFLINE_PATH: &str = "/sandbox/events/offline";

/// The state of the sandbox's events.
pub struct Events {
    pub(crate) registration: Mutex<Option<WebhookRegistration>>,
    signing: SigningCertificate,
    signer: OnceLock<Result<Arc<Signer>, String>>,
    drop_share: f64,
    drops: Mutex<fastrand::Rng>,
    /// Deliveries under way, at most.
    slots: Arc<Semaphore>,
    pub(crate) offline: Arc<Mutex<Vec<WebhookEvent>>>,
    /// The attempts of each validation event, by correlation id.
    pub(crate) validations: Mutex<std::collections::HashMap<String, Attempts>>,
    /// The first delay between attempts; each next one doubles, up to 30 s.
    backoff: Duration,
}

/// The delivery attempts of one event, filled as they are made.
pub(crate) type Attempts = Arc<Mutex<Vec<ValidationEventDelivery>>>;

impl Events {
    /// The events of the sandbox at `base`: signed as `signing` says, or by a good certificate
    /// issued by an intermediate that the sandbox serves at [`INTERMEDIATE_PATH`] (by the root
    /// itself when `direct`).
    pub(crate) fn new(
        signing: Option<SigningCertificate>,
        direct: bool,
        base: &str,
        drop_share: f64,
        seed: u64,
        backoff: Duration,
    ) -> Self {
        let signing = signing.unwrap_or_else(|| SigningCertificate {
            issuer_url: (!direct).then(|| format!("{base}{INTERMEDIATE_PATH}")),
            ..SigningCertificate::default()
        });
        Self {
            registration: Mutex::new(None),
            signing,
            signer: OnceLock::new(),
            drop_share,
            drops: Mutex::new(fastrand::Rng::with_seed(seed)),
            slots: Arc::new(Semaphore::new(32)),
            offline: Arc::new(Mutex::new(Vec::new())),
            validations: Mutex::new(std::collections::HashMap::new()),
            backoff,
        }
    }

    /// The signer of the events, made on first use.
    pub fn signer(&self) -> Result<Arc<Signer>, String> {
        let make = |wanted: &SigningCertificate| {
            Signer::new(wanted)
                .map(Arc::new)
                .map_err(|error| error.to_string())
        };
        self.signer.get_or_init(|| make(&self.signing)).clone()
    }

    fn registered(&self, name: &WebhookEventName) -> Option<WebhookRegistration> {
        let registration = lock(&self.registration).clone()?;
        registration
            .webhook_events
            .contains(name)
            .then_some(registration)
    }

    /// Publishes the events of `referral`, just written to `store` (`created` or updated), and
    /// of the others of its engagement.
    pub(crate) fn publish(&self, base: &str, store: &Store, referral: &Referral, created: bool) {
        if lock(&self.registration).is_none() {
            return;
        }
        let related = referral
            .engagement_id
            .as_deref()
            .map(|engagement| store.engagement(engagement))
            .unwrap_or_default();
        let (own, other) = if created {
            (
                WebhookEventName::ReferralCreated,
                WebhookEventName::RelatedReferralCreated,
            )
        } else {
            (
                WebhookEventName::ReferralUpdated,
                WebhookEventName::RelatedReferralUpdated,
            )
        };
        let id = referral.id.clone().unwrap_or_default();
        let changed = referral.updated_date_time;
        self.send(base, own, Some(&id), changed);
        for related in related.iter().filter(|related| **related != id) {
            self.send(base, other.clone(), Some(related), changed);
        }
    }

    /// Sends one event, unless nothing is registered for it; a share is dropped on purpose.
    pub(crate) fn send(
        &self,
        base: &str,
        name: WebhookEventName,
        id: Option<&str>,
        changed: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Option<Attempts> {
        let registration = self.registered(&name)?;
        let mut event = WebhookEvent::new(name);
        event.resource_uri = id.map(|id| format!("{base}/engagements/v1/referrals/{id}"));
        event.resource_name = id.map(|_| "referral".to_owned());
        event.resource_change_utc_date = changed;
        if self.drop_share > 0.0 && lock(&self.drops).f64() < self.drop_share {
            lock(&self.offline).push(event);
            return None;
        }
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let delivery = Delivery {
            url: registration.webhook_url.clone(),
            in_ms_header: registration.signature_token_to_ms_signature_header == Some(true),
            certificate_url: format!("{base}{CERTIFICATE_PATH}"),
            event,
            signer: self.signer().ok()?,
            attempts: Arc::clone(&attempts),
            offline: Arc::clone(&self.offline),
            backoff: self.backoff,
        };
        let slots = Arc::clone(&self.slots);
        tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            delivery.run().await;
        });
        Some(attempts)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One event on its way to the registered URL.
struct Delivery {
    url: String,
    in_ms_header: bool,
    certificate_url: String,
    event: WebhookEvent,
    signer: Arc<Signer>,
    attempts: Arc<Mutex<Vec<ValidationEventDelivery>>>,
    offline: Arc<Mutex<Vec<WebhookEvent>>>,
    backoff: Duration,
}

impl Delivery {
    /// Up to [`ATTEMPTS`] attempts with a doubling wait; then the offline queue.
    async fn run(self) {
        let Ok(body) = serde_json::to_vec(&self.event) else {
            return;
        };
        let Ok(signature) = self.signer.sign(&body) else {
            return;
        };
        let mut wait = self.backoff;
        for attempt in 1..=ATTEMPTS {
            let result = self.post(&body, &signature).await;
            let mut record = ValidationEventDelivery {
                date_time_utc: Some(chrono::Utc::now()),
                ..ValidationEventDelivery::default()
            };
            match &result {
                Ok(status) => {
                    record.response_code = Some(i32::from(*status));
                    record.response_message = Some(status.to_string());
                }
                Err(error) => record.system_error = Some(error.clone()),
            }
            lock(&self.attempts).push(record);
            if matches!(result, Ok(status) if (200..300).contains(&status)) {
                return;
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
        lock(&self.offline).push(self.event);
    }

    /// One POST of the signed body; the status of the answer, or why none came.
    async fn post(&self, body: &[u8], signature: &str) -> Result<u16, String> {
        let url = url_parts(&self.url)?;
        let stream = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((url.0.as_str(), url.1)),
        )
        .await
        .map_err(|_| "no connection in time".to_owned())?
        .map_err(|error| error.to_string())?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|error| error.to_string())?;
        tokio::spawn(connection);
        let signature_header = if self.in_ms_header {
            security::EVENT_SIGNATURE_HEADER
        } else {
            security::EVENT_SIGNATURE
        };
        let algorithm = headers::X_MS_SIGNATURE_ALGORITHM_VALUES
            .first()
            .copied()
            .unwrap_or_default();
        let request = hyper::Request::post(url.2.as_str())
            .header(hyper::header::HOST, format!("{}:{}", url.0, url.1))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(signature_header, signature)
            .header(headers::X_MS_CERTIFICATE_URL, &self.certificate_url)
            .header(headers::X_MS_SIGNATURE_ALGORITHM, algorithm)
            .body(Full::new(Bytes::from(body.to_vec())))
            .map_err(|error| error.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
            .await
            .map_err(|_| "no answer in time".to_owned())?
            .map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        Ok(status)
    }
}

/// The host, port and path (with query) of an `http://` URL; the sandbox delivers over plain
/// http only, to receivers on this machine.
fn url_parts(url: &str) -> Result<(String, u16, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|error| format!("`{url}`: {error}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "the sandbox delivers over plain http only, not to `{url}`"
        ));
    }
    let host = uri.host().ok_or_else(|| format!("`{url}` has no host"))?;
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    Ok((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        uri.port_u16().unwrap_or(80),
        path.to_owned(),
    ))
}
