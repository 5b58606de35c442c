//! `--drift`: the listing answered as a service that drifted from the document answers it, so
//! that a check of drift (`referrals drift`) can be shown each kind: a member the document does
//! not declare, a value outside a known set, a member of another JSON type, a status and a
//! header that the document does not list.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use referrals_model::Operation;
use serde_json::Value;

use crate::App;

/// The most bytes of an answer that the switch rewrites.
const MOST: usize = 16 << 20;

/// Rewrites the answers of the listing when the switch is on.
pub(crate) async fn drift(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let listing =
        request.method() == Method::GET && request.uri().path() == Operation::ListReferrals.path();
    let response = next.run(request).await;
    if !app.drift || !listing || response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MOST).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(mut page) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(items) = page.get_mut("value").and_then(Value::as_array_mut) {
        drift_items(items);
    }
    parts.status = StatusCode::NON_AUTHORITATIVE_INFORMATION;
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts
        .headers
        .insert("x-sandbox-drift", HeaderValue::from_static("on"));
    Response::from_parts(parts, Body::from(page.to_string()))
}

/// The first referrals of a page, each with one kind of drift.
fn drift_items(items: &mut [Value]) {
    if let Some(Value::Object(first)) = items.first_mut() {
        first.insert("sandboxUndeclared".to_owned(), Value::from(1));
    }
    if let Some(Value::Object(second)) = items.get_mut(1) {
        second.insert("status".to_owned(), Value::from("SandboxUnknown"));
    }
    if let Some(Value::Object(third)) = items.get_mut(2) {
        third.insert("name".to_owned(), Value::from(42));
    }
}
