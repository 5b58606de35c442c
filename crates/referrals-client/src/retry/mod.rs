//! When and how long to wait before trying a request again ([`RetryPolicy`] and the decisions
//! below), and the loop that does it (`run`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};

pub(crate) mod run;

/// How the client retries a request that failed for a passing reason.
///
/// Retried:
/// - for every method: 429 Too Many Requests, and a connection that could not be made (nothing
///   was sent);
/// - for GET: 408, 502, 503 and 504 too, and a timeout;
/// - for POST, PATCH and PUT: 503 only when it carries `Retry-After`, the service's statement
///   that it did not act on the request. Other failures of those may have been applied, and a
///   retry could apply them twice.
///
/// The wait before retry *n* is an exponential backoff, `initial_backoff × 2ⁿ⁻¹` capped at
/// `max_backoff`, with jitter (a random share of up to half of it is taken off, so that clients
/// do not retry in step), or the `Retry-After` that the service sent (seconds or an HTTP date),
/// whichever is longer. The client stops after `max_attempts` attempts, or when the next wait
/// would end after `max_elapsed` from the first attempt; the caller then gets the last answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The backoff before the first retry.
    pub initial_backoff: Duration,
    /// The longest backoff (a longer `Retry-After` is still honoured).
    pub max_backoff: Duration,
    /// The longest time from the first attempt to the start of the last one.
    pub max_elapsed: Duration,
    /// Whether to take a random share off each backoff.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(120),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// No retries: every request is sent once.
    pub fn disabled() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff before retry number `retry` (1 for the first retry); `random` in `[0, 1)`
    /// picks the jitter.
    pub fn backoff(&self, retry: u32, random: f64) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let backoff = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        if self.jitter {
            backoff.mul_f64(1.0 - random.clamp(0.0, 1.0) / 2.0)
        } else {
            backoff
        }
    }
}

/// Whether an answer with `status` to a request of `method` may be retried.
pub(crate) fn retryable_status(method: &Method, status: StatusCode, has_retry_after: bool) -> bool {
    match status {
        StatusCode::TOO_MANY_REQUESTS => true,
        StatusCode::SERVICE_UNAVAILABLE if *method != Method::GET => has_retry_after,
        StatusCode::REQUEST_TIMEOUT
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => *method == Method::GET,
        _ => false,
    }
}

/// Whether a failure to get any answer may be retried: a connection that could not be made
/// (nothing was sent), or a timeout of a read.
pub(crate) fn retryable_failure(method: &Method, connect: bool, timeout: bool) -> bool {
    connect || (timeout && *method == Method::GET)
}

/// The wait that `Retry-After` asks for, read as seconds or as an HTTP date. A value of any
/// size is read (`u64::MAX` seconds is a wait that no retry budget allows, not an overflow);
/// one that is neither is ignored.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // More seconds than a u64 holds.
        return Some(Duration::MAX);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether a wait of `wait` after `elapsed` fits the budget `budget`, without overflow.
pub(crate) fn fits_budget(elapsed: Duration, wait: Duration, budget: Duration) -> bool {
    elapsed.checked_add(wait).is_some_and(|end| end <= budget)
}

/// Time as the client sees it: the wall clock for `Retry-After` dates and for the retry budget,
/// and a way to wait. Tests give the client a clock that records waits instead of sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The system clock and tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn which_answers_are_retried() {
        let cases = [
            (Method::GET, 429, false, true),
            (Method::POST, 429, false, true),
            (Method::PATCH, 429, false, true),
            (Method::GET, 503, false, true),
            (Method::POST, 503, false, false),
            (Method::POST, 503, true, true),
            (Method::PATCH, 503, true, true),
            (Method::GET, 408, false, true),
            (Method::GET, 502, false, true),
            (Method::GET, 504, false, true),
            (Method::PATCH, 502, false, false),
            (Method::POST, 504, true, false),
            (Method::GET, 500, false, false),
            (Method::GET, 412, false, false),
            (Method::GET, 404, false, false),
        ];
        for (method, status, retry_after, expected) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                retryable_status(&method, status, retry_after),
                expected,
                "{method} {status} {retry_after}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_takes_at_most_half() {
        let policy = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        let waits: Vec<_> = (1..=8)
            .map(|retry| policy.backoff(retry, 0.0).as_millis())
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(2, 0.0), Duration::from_millis(1000));
        let jittered = policy.backoff(2, 0.999_999);
        assert!(
            jittered >= Duration::from_millis(500) && jittered < Duration::from_millis(501),
            "{jittered:?}"
        );
    }

    #[test]
    fn retry_after_as_seconds_or_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&past).unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("99999999999999999999999999999"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::MAX));
        assert!(!fits_budget(
            Duration::from_secs(5),
            Duration::MAX,
            Duration::from_secs(120)
        ));
        assert!(fits_budget(
            Duration::from_secs(5),
            Duration::from_secs(115),
            Duration::from_secs(120)
        ));
    }
}
