//! From what the generated code returns to the crate's [`Error`], with the facts of the call
//! that the runtime's hooks gathered (operation, method, URL, request ids, attempts, refusals).

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind};
use crate::runtime::{BodyTooLarge, Refusal, context::Call, request_id};
use crate::{Operation, Runtime, retry, security, types};

/// The error of the generated builders.
pub(crate) type GeneratedError = progenitor_client::Error<types::ErrorResponse>;

/// The error of an answer with `status`: its kind and a sentence that says what to do.
pub(crate) fn service_error(operation: Option<Operation>, status: StatusCode) -> Error {
    let (kind, message) = match status {
        StatusCode::UNAUTHORIZED => (
            ErrorKind::Unauthorized,
            format!(
                "the service did not accept the bearer token: it may have expired, or be for \
                 another audience (ask for the scope {}), or be app-only (the API takes App+User \
                 tokens)",
                security::SCOPES.join(" or ")
            ),
        ),
        StatusCode::FORBIDDEN => (
            ErrorKind::Forbidden,
            format!(
                "the token's user may not do this: the API needs one of the roles {} in the \
                 partner's organization",
                security::ROLES.join(", ")
            ),
        ),
        StatusCode::PRECONDITION_FAILED => (
            ErrorKind::PreconditionFailed,
            "the referral changed since it was read (its eTag no longer matches); read it again \
             and retry the change"
                .to_owned(),
        ),
        _ => (
            ErrorKind::Service,
            "the service refused the request".to_owned(),
        ),
    };
    let mut error = Error::new(kind, operation, message);
    error.inner_mut().status = Some(status);
    error
}

fn method_of(call: &Call) -> Method {
    call.method
        .as_deref()
        .or(call.operation.map(Operation::method))
        .and_then(|method| Method::from_bytes(method.as_bytes()).ok())
        .unwrap_or(Method::GET)
}

/// An answer with a status that the document does not list for the operation.
fn unexpected_status(
    operation: Option<Operation>,
    status: StatusCode,
    headers: &HeaderMap,
) -> Error {
    if status.is_redirection() {
        let location = headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("nowhere");
        let mut error = Error::new(
            ErrorKind::UnexpectedAnswer,
            operation,
            format!(
                "the service redirected to {location}; the client follows no redirect, which could \
                 take the request and its token off the service root"
            ),
        );
        error.inner_mut().status = Some(status);
        return error;
    }
    if status.is_success() || status.is_informational() {
        let mut error = Error::new(
            ErrorKind::UnexpectedAnswer,
            operation,
            format!(
                "the service answered {status}, which the document does not list for this operation"
            ),
        );
        error.inner_mut().status = Some(status);
        return error;
    }
    service_error(operation, status)
}

/// The crate's error for a failure of a generated call, with what the hooks recorded of it.
/// An unexpected answer's body is read, at most `max_error_body` bytes of it.
pub(crate) async fn convert<T: DeserializeOwned>(
    error: GeneratedError,
    call: Call,
    runtime: &Runtime,
) -> Error {
    let max_body = runtime.max_error_body();
    let operation = call.operation;
    let mut out = match error {
        GeneratedError::UnexpectedResponse(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_capped(response, max_body).await;
            let mut error = unexpected_status(operation, status, &headers);
            let inner = error.inner_mut();
            inner.service_request_id = header(&headers, &request_id());
            match serde_json::from_str::<types::ErrorResponse>(&body) {
                Ok(parsed) => inner.service_error = Some(parsed.error),
                Err(_) if !body.is_empty() => inner.raw_body = Some(body),
                Err(_) => {}
            }
            error
        }
        GeneratedError::InvalidResponsePayload(bytes, json_error) => match call.status {
            Some(status) if status.is_client_error() || status.is_server_error() => {
                let mut error = service_error(operation, status);
                error.inner_mut().raw_body = Some(capped_text(&bytes, max_body));
                error
            }
            _ => {
                // Decoded again to name the JSON path where the answer leaves the document.
                let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
                let detail = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
                    Err(error) => format!("at {}: {}", error.path(), error.inner()),
                    Ok(_) => json_error.to_string(),
                };
                let mut error = Error::new(
                    ErrorKind::UnexpectedAnswer,
                    operation,
                    format!("the answer does not match the document: {detail}"),
                );
                error.inner_mut().raw_body = Some(capped_text(&bytes, max_body));
                error.inner_mut().source = Some(Box::new(json_error));
                error
            }
        },
        GeneratedError::ResponseBodyError(source)
            if call.too_large.is_some() || too_large(&source) =>
        {
            let limit = call.too_large.unwrap_or_default();
            let mut error = Error::new(
                ErrorKind::UnexpectedAnswer,
                operation,
                BodyTooLarge { limit }.to_string(),
            );
            error.inner_mut().source = Some(Box::new(source));
            error
        }
        GeneratedError::Custom(message) => match call.refusal.clone() {
            Some(Refusal::Token(source)) => {
                let mut error = Error::new(ErrorKind::Token, operation, source.to_string());
                error.inner_mut().source = Some(Box::new(ArcError(source)));
                error
            }
            Some(refusal) => Error::new(ErrorKind::Refused, operation, refusal.to_string()),
            None => Error::new(ErrorKind::InvalidRequest, operation, message),
        },
        other => Error::from(other),
    };
    let method = method_of(&call);
    let inner = out.inner_mut();
    inner.operation = inner.operation.or(operation);
    inner.method = call.method.clone().or(inner.method.take());
    inner.url = call.url.clone().or(inner.url.take());
    inner.request_id = call.request_id;
    inner.correlation_id = Some(runtime.correlation_id());
    inner.attempts = call.attempts;
    if inner.status.is_none() {
        inner.status = call.status;
    }
    if inner.service_request_id.is_none() {
        inner.service_request_id = call.service_request_id;
    }
    inner.retryable = match (inner.kind, inner.status) {
        (ErrorKind::Transport, _) => inner
            .source
            .as_deref()
            .and_then(|source| source.downcast_ref::<reqwest::Error>())
            .is_some_and(|source| {
                retry::retryable_failure(&method, source.is_connect(), source.is_timeout())
            }),
        (_, Some(status)) if inner.kind != ErrorKind::UnexpectedAnswer => {
            retry::retryable_status(&method, status, call.retry_after)
        }
        _ => false,
    };
    out
}

const CONNECT: &str = "the connection to the service failed";
const TIMEOUT: &str = "no answer in time";

fn too_large(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<BodyTooLarge>() {
            return true;
        }
        cause = current.source();
    }
    false
}

/// What the generated builders' errors become without the hooks' records: the status, the
/// service's error body and `Request-ID`, and whether it is retryable by the status alone
/// (429, or 503 with `Retry-After`; the retries of other statuses depend on the method, which
/// this conversion does not know). Run a generated builder through [`crate::Client::run`] to
/// keep the operation, the URL, the request ids and the attempts as well.
impl From<GeneratedError> for Error {
    fn from(error: GeneratedError) -> Self {
        match error {
            GeneratedError::ErrorResponse(answer) => {
                let status = answer.status();
                let headers = answer.headers().clone();
                let mut error = service_error(None, status);
                let inner = error.inner_mut();
                inner.service_request_id = header(&headers, &request_id());
                inner.service_error = Some(answer.into_inner().error);
                inner.retryable = status == StatusCode::TOO_MANY_REQUESTS
                    || (status == StatusCode::SERVICE_UNAVAILABLE
                        && headers.contains_key(reqwest::header::RETRY_AFTER));
                error
            }
            GeneratedError::UnexpectedResponse(response) => {
                let status = response.status();
                let mut error = unexpected_status(None, status, response.headers());
                let inner = error.inner_mut();
                inner.service_request_id = header(response.headers(), &request_id());
                inner.url = Some(crate::runtime::without_query(response.url()));
                error
            }
            GeneratedError::InvalidResponsePayload(bytes, json_error) => {
                let mut error = Error::new(
                    ErrorKind::UnexpectedAnswer,
                    None,
                    format!("the answer does not match the document: {json_error}"),
                );
                error.inner_mut().raw_body = Some(capped_text(&bytes, 64 * 1024));
                error.inner_mut().source = Some(Box::new(json_error));
                error
            }
            GeneratedError::CommunicationError(source)
            | GeneratedError::ResponseBodyError(source)
            | GeneratedError::InvalidUpgrade(source) => {
                let message = if source.is_timeout() {
                    TIMEOUT
                } else if source.is_connect() {
                    CONNECT
                } else {
                    "the exchange with the service failed"
                };
                let mut error = Error::new(ErrorKind::Transport, None, message);
                let inner = error.inner_mut();
                inner.url = source.url().map(crate::runtime::without_query);
                inner.retryable = source.is_connect();
                inner.source = Some(Box::new(source));
                error
            }
            GeneratedError::Custom(message) | GeneratedError::InvalidRequest(message) => {
                Error::new(ErrorKind::InvalidRequest, None, message)
            }
        }
    }
}

pub(crate) fn header(headers: &HeaderMap, name: &reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Reads at most `limit` bytes of a body, as text.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= limit {
            break;
        }
    }
    capped_text(&body, limit)
}

fn capped_text(bytes: &[u8], limit: usize) -> String {
    let kept = &bytes[..bytes.len().min(limit)];
    let mut text = String::from_utf8_lossy(kept).into_owned();
    if bytes.len() > limit {
        text.push('…');
    }
    text
}

/// A shared error as an owned one, to be a `source`.
#[derive(Debug)]
struct ArcError(std::sync::Arc<crate::TokenError>);

impl std::fmt::Display for ArcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ArcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}
