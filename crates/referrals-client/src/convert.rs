//! From what the generated code returns to the crate's [`Error`], with the facts of the call
//! that the request pipeline recorded (operation, method, URL, request ids, attempts, refusals).

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::context::{Call, Refusal};
use crate::error::{Error, ErrorKind};
use crate::limits::{BodyTooLarge, DEFAULT_MAX_ERROR_BODY, capped_text, read_capped, too_large};
use crate::wire::{header, request_id, without_query};
use crate::{Operation, Runtime, retry, security, types};

/// The error of the generated builders.
pub(crate) type GeneratedError = progenitor_client::Error<types::ErrorResponse>;

/// The body of a documented error answer, as the generated code decodes it: the referrals
/// API's `ErrorResponse`, or nothing for a document that names no error body.
pub(crate) trait ErrorBody {
    /// The service's error, when the body holds one.
    fn detail(self) -> Option<types::ErrorDetail>;
}

impl ErrorBody for types::ErrorResponse {
    fn detail(self) -> Option<types::ErrorDetail> {
        Some(self.error)
    }
}

impl ErrorBody for () {
    fn detail(self) -> Option<types::ErrorDetail> {
        None
    }
}

const CONNECT: &str = "the connection to the service failed";
const TIMEOUT: &str = "no answer in time";

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
    Error::new(kind, operation, message).with_status(status)
}

/// An answer with a status that the document does not list for the operation.
fn unexpected_status(
    operation: Option<Operation>,
    status: StatusCode,
    headers: &HeaderMap,
) -> Error {
    let message = if status.is_redirection() {
        let location = headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("nowhere");
        format!(
            "the service redirected to {location}; the client follows no redirect, which could \
             take the request and its token off the service root"
        )
    } else if status.is_success() || status.is_informational() {
        format!(
            "the service answered {status}, which the document does not list for this operation"
        )
    } else {
        return service_error(operation, status);
    };
    Error::new(ErrorKind::UnexpectedAnswer, operation, message).with_status(status)
}

/// An answer whose body does not match the document, with the JSON path where it leaves it.
fn undecodable<T: DeserializeOwned>(
    operation: Option<Operation>,
    bytes: &[u8],
    json_error: serde_json::Error,
    max_body: usize,
) -> Error {
    // Decoded again to name the JSON path where the answer leaves the document.
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let detail = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Err(error) => format!("at {}: {}", error.path(), error.inner()),
        Ok(_) => json_error.to_string(),
    };
    Error::new(
        ErrorKind::UnexpectedAnswer,
        operation,
        format!("the answer does not match the document: {detail}"),
    )
    .with_raw_body(capped_text(bytes, max_body))
    .with_source(json_error)
}

/// The crate's error for a failure of a generated call, with what the pipeline recorded of it.
/// An unexpected answer's body is read, at most `max_error_body` bytes of it.
pub(crate) async fn convert<T: DeserializeOwned, E: ErrorBody>(
    error: progenitor_client::Error<E>,
    call: Call,
    runtime: &Runtime,
) -> Error {
    let max_body = runtime.max_error_body();
    let operation = call.operation;
    use progenitor_client::Error as GeneratedError;
    let error = match error {
        GeneratedError::UnexpectedResponse(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_capped(response, max_body).await;
            let error = unexpected_status(operation, status, &headers)
                .with_service_request_id(header(&headers, &request_id()));
            match serde_json::from_str::<types::ErrorResponse>(&body) {
                Ok(parsed) => error.with_service_error(parsed.error),
                Err(_) if !body.is_empty() => error.with_raw_body(body),
                Err(_) => error,
            }
        }
        GeneratedError::InvalidResponsePayload(bytes, json_error) => match call.status {
            Some(status) if status.is_client_error() || status.is_server_error() => {
                service_error(operation, status).with_raw_body(capped_text(&bytes, max_body))
            }
            _ => undecodable::<T>(operation, &bytes, json_error, max_body),
        },
        GeneratedError::ResponseBodyError(source)
            if call.too_large.is_some() || too_large(&source) =>
        {
            let limit = call.too_large.unwrap_or_default();
            Error::new(
                ErrorKind::UnexpectedAnswer,
                operation,
                BodyTooLarge { limit }.to_string(),
            )
            .with_source(source)
        }
        GeneratedError::Custom(message) => match call.refusal.clone() {
            Some(Refusal::Token(source)) => {
                Error::new(ErrorKind::Token, operation, source.to_string())
                    .with_source(ArcError(source))
            }
            Some(refusal) => Error::new(ErrorKind::Refused, operation, refusal.to_string()),
            None => Error::new(ErrorKind::InvalidRequest, operation, message),
        },
        other => from_generated(other),
    };
    let error = error.with_call(&call, runtime.correlation_id());
    let retryable = retryable(&error, &method_of(&call), call.retry_after);
    error.with_retryable(retryable)
}

fn method_of(call: &Call) -> Method {
    call.method
        .as_deref()
        .or(call.operation.map(Operation::method))
        .and_then(|method| Method::from_bytes(method.as_bytes()).ok())
        .unwrap_or(Method::GET)
}

/// Whether the call may succeed later, by the same rules as the retries ([`retry`]).
fn retryable(error: &Error, method: &Method, retry_after: bool) -> bool {
    match (error.kind(), error.status()) {
        (ErrorKind::Transport, _) => std::error::Error::source(error)
            .and_then(|source| source.downcast_ref::<reqwest::Error>())
            .is_some_and(|source| {
                retry::retryable_failure(method, source.is_connect(), source.is_timeout())
            }),
        (ErrorKind::UnexpectedAnswer, _) | (_, None) => false,
        (_, Some(status)) => retry::retryable_status(method, status, retry_after),
    }
}

/// What the generated builders' errors become without the pipeline's records: the status, the
/// service's error body and `Request-ID`, and whether it is retryable by the status alone
/// (429, or 503 with `Retry-After`; the retries of other statuses depend on the method, which
/// this conversion does not know). Run a generated builder through [`crate::Client::run`] to
/// keep the operation, the URL, the request ids and the attempts as well.
impl From<GeneratedError> for Error {
    fn from(error: GeneratedError) -> Self {
        from_generated(error)
    }
}

/// [`From<GeneratedError>`], for the error of any generated client.
fn from_generated<E: ErrorBody>(error: progenitor_client::Error<E>) -> Error {
    use progenitor_client::Error as GeneratedError;
    match error {
        GeneratedError::ErrorResponse(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::SERVICE_UNAVAILABLE
                    && headers.contains_key(reqwest::header::RETRY_AFTER));
            let error = service_error(None, status)
                .with_service_request_id(header(&headers, &request_id()))
                .with_retryable(retryable);
            match answer.into_inner().detail() {
                Some(detail) => error.with_service_error(detail),
                None => error,
            }
        }
        GeneratedError::UnexpectedResponse(response) => {
            unexpected_status(None, response.status(), response.headers())
                .with_service_request_id(header(response.headers(), &request_id()))
                .with_url(Some(without_query(response.url())))
        }
        GeneratedError::InvalidResponsePayload(bytes, json_error) => Error::new(
            ErrorKind::UnexpectedAnswer,
            None,
            format!("the answer does not match the document: {json_error}"),
        )
        .with_raw_body(capped_text(&bytes, DEFAULT_MAX_ERROR_BODY))
        .with_source(json_error),
        GeneratedError::CommunicationError(source)
        | GeneratedError::ResponseBodyError(source)
        | GeneratedError::InvalidUpgrade(source) => transport(source),
        GeneratedError::Custom(message) | GeneratedError::InvalidRequest(message) => {
            Error::new(ErrorKind::InvalidRequest, None, message)
        }
    }
}

/// No answer came, or it broke off.
fn transport(source: reqwest::Error) -> Error {
    let message = if source.is_timeout() {
        TIMEOUT
    } else if source.is_connect() {
        CONNECT
    } else {
        "the exchange with the service failed"
    };
    let retryable = source.is_connect();
    Error::new(ErrorKind::Transport, None, message)
        .with_url(source.url().map(without_query))
        .with_retryable(retryable)
        .with_source(source)
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
