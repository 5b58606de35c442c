//! The one error type of the client's calls.

use std::fmt;

use reqwest::StatusCode;
use uuid::Uuid;

use crate::types::ErrorDetail;

/// What went wrong, broadly. Match on it to decide what to do; the [`Error`] has the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The service answered with an error status (see [`Error::status`] and
    /// [`Error::service_error`]).
    Service,
    /// 412: the referral changed since it was read (its eTag no longer matches). Nothing was
    /// applied: read the referral again and retry the change on the new version.
    PreconditionFailed,
    /// No answer came: the connection failed, or an attempt timed out.
    Transport,
    /// An answer came that does not match the document (its body did not decode, or its status
    /// is not one the document lists); [`Error::message`] names the JSON path when there is one.
    UnexpectedAnswer,
    /// The client refused to send the request: it would have taken the bearer token to another
    /// origin than the service root, or over plain http.
    Refused,
    /// The token provider could not give a token.
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
}

/// An error of a call of the client, with what a support request needs: the HTTP status, the
/// service's error body (or the raw body, capped), the request ids, and whether it is worth
/// retrying.
///
/// It never holds the bearer token.
pub struct Error {
    inner: Box<Inner>,
}

pub(crate) struct Inner {
    pub(crate) kind: ErrorKind,
    pub(crate) operation: &'static str,
    pub(crate) message: String,
    pub(crate) status: Option<StatusCode>,
    pub(crate) service_error: Option<ErrorDetail>,
    pub(crate) raw_body: Option<String>,
    pub(crate) request_id: Option<Uuid>,
    pub(crate) correlation_id: Option<Uuid>,
    pub(crate) service_request_id: Option<String>,
    pub(crate) attempts: u32,
    pub(crate) retryable: bool,
    pub(crate) source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(
        kind: ErrorKind,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                operation,
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

    pub(crate) fn inner_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The operation that failed, as its operation id (`get_referral`, `list_referrals`...).
    pub fn operation(&self) -> &str {
        self.inner.operation
    }

    /// A sentence that says what went wrong.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The HTTP status of the service's answer, when one came.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
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

    /// Whether the same call may succeed later: the service was busy or unavailable, or no
    /// answer came. The client has already retried as its [`RetryPolicy`](crate::RetryPolicy)
    /// allows.
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        write!(f, "{} failed: ", inner.operation)?;
        if let Some(status) = inner.status {
            write!(f, "{status}: ")?;
        }
        f.write_str(&inner.message)?;
        if let Some(detail) = &inner.service_error {
            write!(f, " ({}", detail.code)?;
            if let Some(message) = &detail.message {
                write!(f, ": {message}")?;
            }
            if let Some(target) = &detail.target {
                write!(f, "; target {target}")?;
            }
            f.write_str(")")?;
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
            .field("message", &inner.message)
            .field("status", &inner.status)
            .field("service_error", &inner.service_error)
            .field("raw_body", &inner.raw_body)
            .field("request_id", &inner.request_id)
            .field("correlation_id", &inner.correlation_id)
            .field("service_request_id", &inner.service_request_id)
            .field("attempts", &inner.attempts)
            .field("retryable", &inner.retryable)
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
