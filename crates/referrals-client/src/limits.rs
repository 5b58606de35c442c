//! How much of an answer the client reads: the whole body up to `max_response_body`, and the
//! body of an unexpected error answer up to `max_error_body`. A server must not be able to fill
//! the client's memory.

use reqwest::ResponseBuilderExt;

use crate::context;

/// The default of `ClientBuilder::max_error_body`: how much of an error answer's body is kept
/// when it is not the documented error body.
pub(crate) const DEFAULT_MAX_ERROR_BODY: usize = 64 * 1024;

/// The default of `ClientBuilder::max_response_body` (a page of 100 referrals is well under
/// 1 MiB).
pub(crate) const DEFAULT_MAX_RESPONSE_BODY: usize = 32 * 1024 * 1024;

/// The most that a body's announced length makes the client reserve before it arrives.
const PREALLOCATED: usize = 1024 * 1024;

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
///
/// The body of a success is gathered here into one buffer of its announced length and handed
/// on as one chunk, each chunk from the connection copied and let go at once. Handed on as they came,
/// the chunks would keep the connection's whole read buffers alive (hyper cuts them out of
/// it, and grows it to 400 KiB on a fast link) until the page was read, for every request
/// in flight. The body of an error is passed on as it comes, so that only as much of it as is
/// kept (`max_error_body`) is read.
pub(crate) fn capped(response: reqwest::Response, limit: usize) -> reqwest::Response {
    let mut builder = http::Response::builder()
        .status(response.status())
        .version(response.version())
        .url(response.url().clone());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let body = if response.status().is_success() {
        reqwest::Body::wrap_stream(futures_util::stream::once(gathered(response, limit)))
    } else {
        streamed(response, limit)
    };
    match builder.body(body) {
        Ok(response) => reqwest::Response::from(response),
        // The parts came from a valid answer; this is not reached.
        Err(_) => reqwest::Response::from(http::Response::new(reqwest::Body::from(Vec::new()))),
    }
}

/// The body of `response` as it comes, failing with [`BodyTooLarge`] past `limit` (told in
/// advance: on the first read) and ending at the first error.
fn streamed(response: reqwest::Response, limit: usize) -> reqwest::Body {
    use futures_util::StreamExt;
    let mut failed = response
        .content_length()
        .is_some_and(|length| length > limit as u64);
    if failed {
        context::record(|call| call.too_large = Some(limit));
    }
    let mut seen = 0usize;
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
    let stream = stream.scan(false, |stopped, item| {
        if *stopped {
            return futures_util::future::ready(None);
        }
        *stopped = item.is_err();
        futures_util::future::ready(Some(item))
    });
    reqwest::Body::wrap_stream(stream)
}

/// The whole body of `response` in one buffer, or [`BodyTooLarge`] as soon as it is known to
/// be larger than `limit` (told in advance: before any of it is read).
async fn gathered(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BoxError> {
    let too_large = || {
        context::record(|call| call.too_large = Some(limit));
        Box::new(BodyTooLarge { limit }) as BoxError
    };
    let announced = response.content_length();
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let capacity = announced.map_or(0, |length| usize::try_from(length).unwrap_or(limit));
    // The announced length sizes the buffer up to a page's worth: a server that announces
    // much and sends little makes the client reserve no more than this.
    let mut body = Vec::with_capacity(capacity.min(limit).min(PREALLOCATED));
    while let Some(chunk) = response.chunk().await.map_err(Box::new)? {
        if chunk.len() > limit - body.len() {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
