//! The retry loop: each attempt of a request, and the wait before the next, as the decisions
//! of [`super`] say, with the same `MS-RequestId` and a fresh token for each attempt. A 429
//! is waited out through [`crate::concurrency`], which holds back the other requests of a
//! reader that sends through [`crate::concurrency::Concurrency::send`].

use std::sync::Arc;

use crate::Runtime;
use crate::auth::authorize;
use crate::context::{self, Refusal};
use crate::retry;
use crate::wire::request_id;

/// Sends `request`, retrying as the policy says.
pub(crate) async fn execute(
    runtime: &Runtime,
    http: &reqwest::Client,
    request: reqwest::Request,
    span: tracing::Span,
) -> reqwest::Result<reqwest::Response> {
    let policy = runtime.retry_policy();
    let clock = runtime.clock();
    let started = clock.now();
    let method = request.method().clone();
    let mut request = request;
    let mut attempt = 1u32;
    loop {
        span.record("attempt", attempt);
        // A request whose body cannot be copied is sent once.
        let copy = request.try_clone();
        let result = http.execute(request).await;
        let throttled = record_answer(&result, attempt);
        if let Ok(response) = &result {
            span.record("status", response.status().as_u16());
        }

        let wait = match &result {
            Ok(response) => {
                let after = retry::retry_after(response.headers(), clock.now());
                retry::retryable_status(&method, response.status(), after.is_some()).then(|| {
                    after
                        .unwrap_or_default()
                        .max(policy.backoff(attempt, fastrand::f64()))
                })
            }
            Err(error) => retry::retryable_failure(&method, error.is_connect(), error.is_timeout())
                .then(|| policy.backoff(attempt, fastrand::f64())),
        };
        let Some(wait) = wait else { return result };
        let Some(mut next) = copy else { return result };
        if attempt >= policy.max_attempts {
            return result;
        }
        let elapsed = clock.now().duration_since(started).unwrap_or_default();
        if !retry::fits_budget(elapsed, wait, policy.max_elapsed) {
            tracing::info!(
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "not retrying: the wait would pass the retry budget"
            );
            return result;
        }
        tracing::info!(
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            reason = %match &result {
                Ok(response) => response.status().to_string(),
                Err(error) => error.to_string(),
            },
            "retrying"
        );
        if throttled {
            crate::concurrency::wait_out(wait, clock.sleep(wait)).await;
        } else {
            clock.sleep(wait).await;
        }
        // A fresh token for the next attempt, asked for after the wait so that it is fresh; if
        // none comes, the caller gets the last answer.
        if let Err(error) = authorize(runtime, next.headers_mut()).await {
            context::record(|call| call.refusal = Some(Refusal::Token(Arc::new(error))));
            return result;
        }
        drop(result);
        request = next;
        attempt += 1;
    }
}

/// Records an answer in the call under way; whether it was 429 Too Many Requests.
fn record_answer(result: &reqwest::Result<reqwest::Response>, attempt: u32) -> bool {
    let (status, service_request_id, retry_after) = match result {
        Ok(response) => (
            Some(response.status()),
            response
                .headers()
                .get(request_id())
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            response
                .headers()
                .contains_key(reqwest::header::RETRY_AFTER),
        ),
        Err(error) => (error.status(), None, false),
    };
    let throttled = status == Some(reqwest::StatusCode::TOO_MANY_REQUESTS);
    crate::concurrency::answer(throttled);
    context::record(|call| {
        call.attempts = attempt;
        call.status = status;
        call.service_request_id = service_request_id;
        call.retry_after = retry_after;
        if throttled {
            call.throttled = call.throttled.saturating_add(1);
        }
    });
    throttled
}
