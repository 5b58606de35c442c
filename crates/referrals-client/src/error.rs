//! The one error type of the client.

use std::fmt;

use reqwest::StatusCode;
use uuid::Uuid;

use crate::Operation;
use crate::context::Call;
use crate::types::ErrorDetail;

/// What went wrong, broadly. Match on it to decide what to do; the [`Error`] has the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The service answered with an error status that has no kind of its own (see
    /// [`Error::status`] and [`Error::service_error`]).
    Service,
    /// 401: the service did not accept the bearer token. It may have expired, or be for another
    /// audience than the Partner API, or be an app-only token where App+User is needed.
    Unauthorized,
    /// 403: the token is good, but its user lacks a role that may do this (see
    /// [`crate::security::ROLES`]).
    Forbidden,
    /// 412: the referral changed since it was read (its eTag no longer matches). Nothing was
    /// applied: read the referral again and retry the change on the new version.
    PreconditionFailed,
    /// No answer came: the connection failed, or an attempt timed out.
    Transport,
    /// An answer came that does not match the document: its body did not decode (the message
    /// names the JSON path), was larger than the client accepts, or its status is not one the
    /// document lists (a redirect among them: the client follows none).
    UnexpectedAnswer,
    /// The client refused to send the request: it would have taken the bearer token to another
    /// origin than the service root, or over plain http.
    Refused,
    /// The token provider gave no token, or an empty one; nothing was sent.
    Token,
    /// The request could not be made from what was given (a value that is not valid for its
    /// parameter, a referral without `id` or `eTag`).
    InvalidRequest,
    /// An update helper refused a status change that the API does not allow; nothing was sent.
    InvalidTransition,
    /// A list page pointed to a next page on another host; the listing stopped there.
    UntrustedNextLink,
    /// A listing went in a circle (a next link seen twice) or past the page limit.
    PagingLoop,
    /// A continuation was resumed under another query than the listing it came from, or was
    /// written by another version of this client.
    InvalidContinuation,
}

/// An error of a call of the client, with what a support request needs: the operation, its
/// method and URL, the HTTP status, the service's error body (or the raw body, capped), the
/// request ids, the attempts, and whether it is worth retrying.
///
/// Its `Display` says all of that on one line, the cause of a failed connection included. It
/// never holds the bearer token, and its URL has no query string.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    operation: Option<Operation>,
    method: Option<String>,
    url: Option<String>,
    message: String,
    status: Option<StatusCode>,
    service_error: Option<ErrorDetail>,
    raw_body: Option<String>,
    request_id: Option<Uuid>,
    correlation_id: Option<Uuid>,
    service_request_id: Option<String>,
    attempts: u32,
    retryable: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(
        kind: ErrorKind,
        operation: Option<Operation>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                operation,
                method: operation.map(|operation| operation.method().to_owned()),
                url: None,
                message: message.into(),
                status: None,
                service_error: None,
                raw_body: None,
                request_id: None,
                correlation_id: None,
                service_request_id: None,
                attempts: 0,
                retryable: false,
                source: None,
            }),
        }
    }

    /// With the HTTP status of the answer.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// With the error that caused it.
    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// With the answer's body, when it was not the documented error body.
    pub(crate) fn with_raw_body(mut self, body: String) -> Self {
        self.inner.raw_body = Some(body);
        self
    }

    /// With the service's error body.
    pub(crate) fn with_service_error(mut self, detail: ErrorDetail) -> Self {
        self.inner.service_error = Some(detail);
        self
    }

    /// With the service's `Request-ID`, when it sent one.
    pub(crate) fn with_service_request_id(mut self, id: Option<String>) -> Self {
        self.inner.service_request_id = id;
        self
    }

    /// With the URL of the request (without its query).
    pub(crate) fn with_url(mut self, url: Option<String>) -> Self {
        self.inner.url = url;
        self
    }

    /// With the ids of the request that failed: `MS-RequestId` and `MS-CorrelationId`.
    pub(crate) fn with_request_ids(
        mut self,
        request_id: Option<Uuid>,
        correlation_id: Option<Uuid>,
    ) -> Self {
        self.inner.request_id = request_id;
        self.inner.correlation_id = correlation_id;
        self
    }

    /// Whether the same call may succeed later (see [`Self::is_retryable`]).
    pub(crate) fn with_retryable(mut self, retryable: bool) -> Self {
        self.inner.retryable = retryable;
        self
    }

    /// With what the request pipeline recorded of the call: what the error does not say yet
    /// of the operation, method, URL, status and `Request-ID`, and the request ids and attempts.
    pub(crate) fn with_call(mut self, call: &Call, correlation_id: Uuid) -> Self {
        let inner = &mut *self.inner;
        inner.operation = inner.operation.or(call.operation);
        inner.method = call.method.clone().or(inner.method.take());
        inner.url = call.url.clone().or(inner.url.take());
        inner.request_id = call.request_id;
        inner.correlation_id = Some(correlation_id);
        inner.attempts = call.attempts;
        inner.status = inner.status.or(call.status);
        if inner.service_request_id.is_none() {
            inner.service_request_id = call.service_request_id.clone();
        }
        self
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The operation that failed, when the error is about one.
    pub fn operation(&self) -> Option<Operation> {
        self.inner.operation
    }

    /// The HTTP method of the request, when one was made or about to be.
    pub fn method(&self) -> Option<&str> {
        self.inner.method.as_deref()
    }

    /// The URL of the request, without its query string.
    pub fn url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }

    /// A sentence that says what went wrong and, where it can, what to do.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The HTTP status of the service's answer, when one came.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// Whether the service answered 429 Too Many Requests (after the client's retries): a
    /// sign to ask less at once.
    pub fn is_throttled(&self) -> bool {
        self.inner.status == Some(StatusCode::TOO_MANY_REQUESTS)
    }

    /// The service's error body (`code`, `message`, `target`, `innerError`), when the answer
    /// had one.
    pub fn service_error(&self) -> Option<&ErrorDetail> {
        self.inner.service_error.as_ref()
    }

    /// The answer's body, as text, when it was not the documented error body (cut at the
    /// client's `max_error_body`).
    pub fn raw_body(&self) -> Option<&str> {
        self.inner.raw_body.as_deref()
    }

    /// The `MS-RequestId` that the client sent with the call (the same on every attempt).
    pub fn request_id(&self) -> Option<Uuid> {
        self.inner.request_id
    }

    /// The client's `MS-CorrelationId`.
    pub fn correlation_id(&self) -> Option<Uuid> {
        self.inner.correlation_id
    }

    /// The service's `Request-ID` of the last answer, when it sent one.
    pub fn service_request_id(&self) -> Option<&str> {
        self.inner.service_request_id.as_deref()
    }

    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Whether the same call may succeed later, by the same rules as the client's retries
    /// ([`crate::RetryPolicy`]): the service was busy or unavailable, or no answer came, and the
    /// request cannot have been applied (a write is retryable only when the service said it
    /// did not act on it). The client has already retried as far as its policy allows.
    pub fn is_retryable(&self) -> bool {
        self.inner.retryable
    }

    /// Whether this is a 412: the referral changed since it was read.
    pub fn is_precondition_failed(&self) -> bool {
        self.inner.kind == ErrorKind::PreconditionFailed
    }

    /// Whether the service answered 404.
    pub fn is_not_found(&self) -> bool {
        self.inner.status == Some(StatusCode::NOT_FOUND)
    }

    /// The deepest cause of the error, such as the operating system's reason for a failed
    /// connection (`Connection refused (os error 111)`).
    pub fn root_cause(&self) -> Option<String> {
        let mut cause: &(dyn std::error::Error + 'static) = self.inner.source.as_deref()?;
        while let Some(deeper) = cause.source() {
            cause = deeper;
        }
        Some(cause.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        match (&inner.operation, &inner.method, &inner.url) {
            (Some(operation), Some(method), Some(url)) => {
                write!(f, "{operation} ({method} {url}) failed: ")?
            }
            (Some(operation), _, _) => write!(f, "{operation} failed: ")?,
            (None, Some(method), Some(url)) => write!(f, "{method} {url} failed: ")?,
            _ => {}
        }
        if let Some(status) = inner.status {
            write!(f, "{status}: ")?;
        }
        f.write_str(&inner.message)?;
        if let Some(detail) = &inner.service_error {
            write!(f, " (service: {}", detail.code)?;
            if let Some(message) = &detail.message {
                write!(f, ": {message}")?;
            }
            if let Some(target) = &detail.target {
                write!(f, "; target {target}")?;
            }
            f.write_str(")")?;
        }
        // The reason underneath, when the message does not hold it already: the operating
        // system's for a failed connection, the credential's for a token that was not got.
        if matches!(inner.kind, ErrorKind::Transport | ErrorKind::Token)
            && let Some(cause) = self.root_cause()
            && !inner.message.contains(&cause)
        {
            write!(f, ": {cause}")?;
        }
        let mut ids = Vec::new();
        if let Some(id) = inner.request_id {
            ids.push(format!("MS-RequestId {id}"));
        }
        if let Some(id) = inner.correlation_id {
            ids.push(format!("MS-CorrelationId {id}"));
        }
        if let Some(id) = &inner.service_request_id {
            ids.push(format!("Request-ID {id}"));
        }
        if inner.attempts > 1 {
            ids.push(format!("{} attempts", inner.attempts));
        }
        if !ids.is_empty() {
            write!(f, " [{}]", ids.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Error")
            .field("kind", &inner.kind)
            .field("operation", &inner.operation)
            .field("method", &inner.method)
            .field("url", &inner.url)
            .field("message", &inner.message)
            .field("status", &inner.status)
            .field("service_error", &inner.service_error)
            .field("raw_body", &inner.raw_body)
            .field("request_id", &inner.request_id)
            .field("correlation_id", &inner.correlation_id)
            .field("service_request_id", &inner.service_request_id)
            .field("attempts", &inner.attempts)
            .field("retryable", &inner.retryable)
            .field("source", &inner.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}
