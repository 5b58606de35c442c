//! Error answers, always with the documented error body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer: a status and the `{"error": {...}}` body of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error code (`invalidRequest`, `itemNotFound`, ...).
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The parameter or member at fault.
    pub target: Option<String>,
    /// A more specific code, as `innerError.code`.
    pub inner: Option<&'static str>,
}

impl ApiError {
    /// 400 `invalidRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalidRequest", message)
    }

    /// An error of any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            target: None,
            inner: None,
        }
    }

    /// Names the parameter or member at fault.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Adds a more specific code.
    pub fn inner(mut self, code: &'static str) -> Self {
        self.inner = Some(code);
        self
    }

    /// 404 `itemNotFound`.
    pub fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            format!("No referral has the id `{id}`."),
        )
        .target("id")
    }

    /// The body, as the document's `ErrorResponse`.
    pub fn body(&self) -> serde_json::Value {
        // The service caps messages at 1,024 characters.
        let message: String = self.message.chars().take(1024).collect();
        let mut error = json!({ "code": self.code, "message": message });
        if let Some(target) = &self.target {
            error["target"] = json!(target);
        }
        if let Some(inner) = self.inner {
            error["innerError"] = json!({ "code": inner });
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
