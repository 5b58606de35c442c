//! The receiver seen from outside: `/healthz` (the process answers), `/readyz` (the mirror
//! answers, and the last catch-up sync ended well within twice its interval) and `/metrics`
//! (the Prometheus text format; see [`super::metrics`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

pub(super) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match readiness(&shared).await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

pub(super) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let gauges = shared.store.gauges().await.ok();
    let text = shared.metrics.text(gauges.as_ref());
    ([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], text).into_response()
}

/// Whether the receiver is ready, or why not.
pub(super) async fn readiness(shared: &Shared) -> Result<(), String> {
    if let Err(error) = shared.store.event_counts().await {
        return Err(format!("the mirror does not answer: {error}"));
    }
    let limit = shared.every.saturating_mul(2);
    let (since, what) = match shared.last_synced() {
        Some(at) => (at.elapsed(), "the last catch-up sync that ended well"),
        None => (
            shared.began.elapsed(),
            "the start, and no catch-up sync ended well since",
        ),
    };
    if since > limit {
        return Err(format!(
            "{what} was {} s ago, more than twice the interval ({} s)",
            since.as_secs(),
            limit.as_secs()
        ));
    }
    Ok(())
}
