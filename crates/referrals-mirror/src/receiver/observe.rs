//! The receiver seen from outside: `/healthz` (the process answers), `/readyz` (the mirror
//! answers, and the last catch-up sync ended well within twice its interval) and `/metrics`
//! (the Prometheus text format; see [`super::metrics`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Shared;
pub(super) use super::sync_health::healthz;
use super::sync_health::{CONTENT_TYPE, ready_answer};

pub(super) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    ready_answer(readiness(&shared).await)
}

pub(super) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let gauges = shared.store.gauges().await.ok();
    let text = shared.metrics.text(gauges.as_ref());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// Whether the receiver is ready, or why not.
pub(super) async fn readiness(shared: &Shared) -> Result<(), String> {
    if let Err(error) = shared.store.event_counts().await {
        return Err(format!("the mirror does not answer: {error}"));
    }
    shared.metrics.sync.readiness()
}
