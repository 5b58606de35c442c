//! A service's pace, to measure a client against: a latency added to every answer, and a rate
//! above which requests are answered 429 with `Retry-After`, as a throttled service does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use referrals_model::types::ErrorCode;

use crate::App;
use crate::error::ApiError;

/// The requests admitted in the current second, for `rate_limit`.
#[derive(Debug)]
pub(crate) struct Window {
    started: Instant,
    admitted: u32,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            admitted: 0,
        }
    }
}

/// Whether one more request fits `limit` a second.
fn admit(window: &Mutex<Window>, limit: u32) -> bool {
    let mut window = window
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if window.started.elapsed() >= Duration::from_secs(1) {
        *window = Window::default();
    }
    if window.admitted >= limit {
        return false;
    }
    window.admitted += 1;
    true
}

/// Answers 429 above the rate limit; delays every answer by the latency.
pub(crate) async fn pace(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if let Some(limit) = app.rate_limit
        && !admit(&app.window, limit)
    {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ServiceNotAvailable,
            format!("More than {limit} requests a second; retry after a second."),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    let response = next.run(request).await;
    if !app.latency.is_zero() {
        tokio::time::sleep(app.latency).await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_the_limit_and_no_more() {
        let window = Mutex::new(Window::default());
        assert!((0..5).all(|_| admit(&window, 5)));
        assert!(!admit(&window, 5));
    }
}
