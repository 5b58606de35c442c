//! One callback: verified, then stored, then acknowledged.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use referrals_client::webhooks::types::WebhookEventName;
use referrals_events::MAX_BODY;

use super::{Notice, Shared};
use crate::Stored;

/// Whether the event `name` is about a referral, whose id it carries: one of the document's
/// `referral-events` (`x-subsets`).
fn about_a_referral(name: &WebhookEventName) -> bool {
    WebhookEventName::REFERRAL_EVENTS.contains(name)
}

pub(super) async fn callback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> StatusCode {
    // The body within a deadline too, so that a client sending it a byte at a time cannot
    // hold a connection; at most one byte over what the verifier reads (it says why).
    let read = axum::body::to_bytes(body, MAX_BODY + 1);
    let body: Bytes = match tokio::time::timeout(super::http::BODY_TIMEOUT, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            shared.metrics.callback("too_large", "");
            return StatusCode::PAYLOAD_TOO_LARGE;
        }
        Err(_) => {
            shared.metrics.callback("timed_out", "");
            return StatusCode::REQUEST_TIMEOUT;
        }
    };
    let event = match shared.verifier.verify(&headers, &body).await {
        Ok(event) => event,
        Err(rejection) => {
            shared.metrics.callback("refused", rejection.check());
            shared.notice(&Notice::Refused {
                status: rejection.status(),
                check: rejection.check(),
                reason: rejection.to_string(),
            });
            return StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        }
    };
    let name = event.name().as_str().to_owned();
    if !about_a_referral(event.name()) {
        shared.metrics.callback("ignored", "");
        shared.notice(&Notice::Ignored { event: &name });
        return StatusCode::OK;
    }
    // The body verified as sent; an event is JSON, so this keeps it whole.
    let text = String::from_utf8_lossy(&body);
    let referral = event.referral_id.as_deref();
    let stored = shared
        .store
        .store_event(&name, referral, &text, shared.replays)
        .await;
    match stored {
        Ok(Stored::New(_)) => {
            shared.metrics.callback("accepted", "");
            shared.stored.notify_one();
            shared.notice(&Notice::Accepted {
                event: &name,
                referral,
            });
            StatusCode::OK
        }
        Ok(Stored::Replay(seq)) => {
            shared.metrics.callback("replayed", "");
            shared.notice(&Notice::Replayed { event: &name, seq });
            StatusCode::OK
        }
        Err(error) => {
            // Not stored: Partner Center delivers it again.
            shared.metrics.callback("unavailable", "");
            shared.notice(&Notice::Failed {
                doing: "store an event",
                error: super::with_causes(&error),
            });
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}
