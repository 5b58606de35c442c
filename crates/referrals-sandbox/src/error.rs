//! Error answers, always with the document's error body (`ErrorResponse`) and one of its codes
//! (`ErrorCode`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use referrals_model::types::{ErrorCode, ErrorDetail, ErrorResponse};

/// The most characters of an error's message; the service caps messages at 1,024.
const MESSAGE_LIMIT: usize = 1024;

/// An error answer: a status and the `{"error": {...}}` body of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error code.
    pub code: ErrorCode,
    /// A sentence for people.
    pub message: String,
    /// The parameter or member at fault.
    pub target: Option<String>,
}

impl ApiError {
    /// 400 `invalidRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }

    /// An error of any status.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            target: None,
        }
    }

    /// Names the parameter or member at fault.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// 404 `itemNotFound`.
    pub fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ItemNotFound,
            format!("No referral has the id `{id}`."),
        )
        .target(referrals_model::parameters::get_referral::ID)
    }

    /// The body, as the document's `ErrorResponse`.
    pub fn body(&self) -> ErrorResponse {
        let mut detail = ErrorDetail::new(self.code.clone());
        detail.message = Some(self.message.chars().take(MESSAGE_LIMIT).collect());
        detail.target.clone_from(&self.target);
        ErrorResponse::new(detail)
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
