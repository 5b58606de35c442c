//! The facts of one call that the generated code does not hand back (which status answered a
//! body that did not decode, how many attempts it took, why a request was refused), recorded by
//! the request pipeline for the methods of [`crate::calls`]. Outside such a call, nothing is
//! recorded.

use std::cell::RefCell;
use std::sync::Arc;

use uuid::Uuid;

use crate::Operation;
use crate::auth::TokenError;

/// Why the client refused to send a request, or could not.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Refusal {
    #[error(
        "refused to send a request to {url}: only the service root {root} receives the bearer token"
    )]
    OtherOrigin { url: String, root: String },
    #[error("refused to send the bearer token over plain http to {url}")]
    PlainHttp { url: String },
    #[error("{0}")]
    Token(Arc<TokenError>),
}

/// What the pipeline recorded of one call.
#[derive(Debug, Default, Clone)]
pub(crate) struct Call {
    pub(crate) operation: Option<Operation>,
    pub(crate) method: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) request_id: Option<Uuid>,
    pub(crate) status: Option<reqwest::StatusCode>,
    pub(crate) service_request_id: Option<String>,
    pub(crate) retry_after: bool,
    pub(crate) attempts: u32,
    /// How many of the attempts the service answered 429 Too Many Requests.
    pub(crate) throttled: u32,
    pub(crate) refusal: Option<Refusal>,
    pub(crate) too_large: Option<usize>,
}

// A task-local rather than an argument: the generated client (progenitor) hands the pipeline
// the request alone, and its methods take no value of ours to pass down; the call's scope is
// the one place that both the method of `crate::calls` and the pipeline see.
tokio::task_local! {
    static CALL: RefCell<Call>;
}

/// Runs `future`, gathering what the pipeline records.
pub(crate) async fn gather<F: std::future::Future>(future: F) -> (F::Output, Call) {
    let cell = RefCell::new(Call::default());
    CALL.scope(cell, async move {
        let output = future.await;
        let call = CALL.with(|call| call.borrow().clone());
        (output, call)
    })
    .await
}

/// Records `change` in the call under way, if any.
pub(crate) fn record(change: impl FnOnce(&mut Call)) {
    let _ = CALL.try_with(|call| change(&mut call.borrow_mut()));
}
