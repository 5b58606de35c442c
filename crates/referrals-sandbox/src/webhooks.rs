//! The webhook registration API of the document `openapi/webhooks/webhooks.yaml`, served beside
//! the referrals API, and the sandbox's own paths of its events: its signing certificate (no
//! token needed, as a receiver fetches it) and its offline queue.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use referrals_model::types::ErrorCode;
use referrals_model::webhooks::Operation;
use referrals_model::webhooks::types::{ValidationEvent, WebhookEventName, WebhookRegistration};

use crate::App;
use crate::error::ApiError;

/// The handler of `operation`; `None` for the callback, which Partner Center sends rather than
/// serves. A new operation of the document is a compile error here.
fn handler(operation: Operation) -> Option<MethodRouter<Arc<App>>> {
    Some(match operation {
        Operation::ListWebhookEvents => get(list_events),
        Operation::GetWebhookRegistration => get(registration),
        Operation::RegisterWebhook => post(register),
        Operation::ReplaceWebhookRegistration => put(replace),
        Operation::SendValidationEvent => post(send_validation),
        Operation::GetValidationEventDeliveries => get(deliveries),
        Operation::ReceiveWebhookEvent => return None,
    })
}

/// The routes of the registration API, by path.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Arc<App>>)> {
    let mut routes: Vec<(&str, MethodRouter<Arc<App>>)> = Vec::new();
    for operation in Operation::ALL {
        let Some(methods) = handler(*operation) else {
            continue;
        };
        match routes
            .iter_mut()
            .find(|(path, _)| *path == operation.path())
        {
            Some((_, known)) => *known = std::mem::take(known).merge(methods),
            None => routes.push((operation.path(), methods)),
        }
    }
    routes
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn list_events() -> Response {
    json(StatusCode::OK, &WebhookEventName::KNOWN)
}

fn none_registered() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::ItemNotFound,
        "No webhook is registered; register one first.",
    )
}

async fn registration(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let registration = app
        .events
        .registration
        .lock()
        .map_err(|_| none_registered())?
        .clone();
    let registration = registration.ok_or_else(none_registered)?;
    Ok(json(StatusCode::OK, &registration))
}

/// The registration of a request body: JSON of the document's schema, with an http(s) URL.
fn read_registration(body: &[u8]) -> Result<WebhookRegistration, ApiError> {
    let registration: WebhookRegistration = serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(format!("the body is not a registration: {error}"))
    })?;
    let url = registration.webhook_url.as_str();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::bad_request(format!(
            "`{url}` is not an http(s) URL"
        )));
    }
    Ok(registration)
}

async fn register(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, ApiError> {
    let mut registration = read_registration(&body)?;
    // The signer is made before the first event needs it.
    app.events.signer().map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::GeneralException,
            error,
        )
    })?;
    let mut stored = app
        .events
        .registration
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if stored.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidRequest,
            "A webhook is registered already; replace it instead.",
        ));
    }
    registration.subscriber_id = Some(uuid::Uuid::new_v4().to_string());
    *stored = Some(registration.clone());
    Ok(json(StatusCode::OK, &registration))
}

async fn replace(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, ApiError> {
    let mut registration = read_registration(&body)?;
    let mut stored = app
        .events
        .registration
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(current) = stored.as_ref() else {
        return Err(none_registered());
    };
    registration
        .subscriber_id
        .clone_from(&current.subscriber_id);
    *stored = Some(registration.clone());
    Ok(json(StatusCode::OK, &registration))
}

async fn send_validation(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let Some(attempts) = app
        .events
        .send(&app.base, WebhookEventName::TestCreated, None, None)
    else {
        return Err(ApiError::bad_request(format!(
            "the registration does not include `{}`",
            WebhookEventName::TestCreated
        )));
    };
    let correlation_id = uuid::Uuid::new_v4().to_string();
    app.events
        .validations
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(correlation_id.clone(), attempts);
    let event = ValidationEvent {
        correlation_id: Some(correlation_id),
        ..ValidationEvent::default()
    };
    Ok(json(StatusCode::OK, &event))
}

async fn deliveries(
    State(app): State<Arc<App>>,
    Path(correlation_id): Path<String>,
) -> Result<Response, ApiError> {
    let attempts = app
        .events
        .validations
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&correlation_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&correlation_id))?;
    let attempts = attempts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    Ok(json(StatusCode::OK, &attempts))
}

/// The signing certificate, DER, for receivers (no token needed).
pub(crate) async fn certificate(State(app): State<Arc<App>>) -> Response {
    der(&app, |signer| Some(signer.certificate_der().to_vec()))
}

/// `GET /sandbox/certificates/intermediate.cer`: the authority that issued the signing
/// certificate (404 when the root issued it).
pub(crate) async fn intermediate(State(app): State<Arc<App>>) -> Response {
    der(&app, |signer| signer.intermediate_der().map(<[u8]>::to_vec))
}

/// A certificate of the signer, as `application/pkix-cert`.
fn der(app: &App, pick: impl Fn(&crate::signer::Signer) -> Option<Vec<u8>>) -> Response {
    match app.events.signer() {
        Ok(signer) => match pick(&signer) {
            Some(der) => {
                let mut response = der.into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/pkix-cert"),
                );
                response
            }
            None => StatusCode::NOT_FOUND.into_response(),
        },
        Err(error) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::GeneralException,
            error,
        )
        .into_response(),
    }
}

/// The offline queue: the events that were dropped or not delivered in every attempt.
pub(crate) async fn offline(State(app): State<Arc<App>>) -> Response {
    let events = app
        .events
        .offline
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    json(StatusCode::OK, &events)
}
