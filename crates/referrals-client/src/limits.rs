//! How much of an answer the client reads: the whole body up to `max_response_body`, and the
//! body of an unexpected error answer up to `max_error_body`. A server must not be able to fill
//! the client's memory.

use futures_util::StreamExt;
use reqwest::ResponseBuilderExt;

use crate::context;

/// The default of `ClientBuilder::max_error_body`: how much of an error answer's body is kept
/// when it is not the documented error body.
pub(crate) const DEFAULT_MAX_ERROR_BODY: usize = 64 * 1024;

/// The default of `ClientBuilder::max_response_body` (a page of 100 referrals is well under
/// 1 MiB).
pub(crate) const DEFAULT_MAX_RESPONSE_BODY: usize = 32 * 1024 * 1024;

/// The error that ends the body of an answer larger than the client reads.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the answer's body is larger than the {limit} bytes that the client reads (`max_response_body`)"
)]
pub(crate) struct BodyTooLarge {
    pub(crate) limit: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The same answer, whose body fails with [`BodyTooLarge`] once more than `limit` bytes have
/// arrived: generated code reads bodies whole.
pub(crate) fn capped(response: reqwest::Response, limit: usize) -> reqwest::Response {
    // Told in advance: fail on the first read, without reading the body.
    let known_too_large = response
        .content_length()
        .is_some_and(|length| length > limit as u64);
    if known_too_large {
        context::record(|call| call.too_large = Some(limit));
    }
    let mut builder = http::Response::builder()
        .status(response.status())
        .version(response.version())
        .url(response.url().clone());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let mut seen = 0usize;
    let mut failed = known_too_large;
    let stream = response.bytes_stream().map(move |chunk| {
        if failed {
            return Err(Box::new(BodyTooLarge { limit }) as BoxError);
        }
        let chunk = chunk.map_err(|error| Box::new(error) as BoxError)?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            failed = true;
            context::record(|call| call.too_large = Some(limit));
            return Err(Box::new(BodyTooLarge { limit }));
        }
        Ok(chunk)
    });
    // Stop at the first error, so that nothing more is read from the connection.
    let stream = stream.scan(false, |stopped, item| {
        if *stopped {
            return futures_util::future::ready(None);
        }
        *stopped = item.is_err();
        futures_util::future::ready(Some(item))
    });
    match builder.body(reqwest::Body::wrap_stream(stream)) {
        Ok(response) => reqwest::Response::from(response),
        // The parts came from a valid answer; this is not reached.
        Err(_) => reqwest::Response::from(http::Response::new(reqwest::Body::from(Vec::new()))),
    }
}

/// Whether `error`, or one of its causes, is [`BodyTooLarge`].
pub(crate) fn too_large(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<BodyTooLarge>() {
            return true;
        }
        cause = current.source();
    }
    false
}

/// Reads at most `limit` bytes of a body, as text.
pub(crate) async fn read_capped(mut response: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= limit {
            break;
        }
    }
    capped_text(&body, limit)
}

/// At most `limit` bytes of `bytes`, as text, with `…` when some were left out.
pub(crate) fn capped_text(bytes: &[u8], limit: usize) -> String {
    let kept = &bytes[..bytes.len().min(limit)];
    let mut text = String::from_utf8_lossy(kept).into_owned();
    if bytes.len() > limit {
        text.push('…');
    }
    text
}
