//! Reading requests strictly: query parameters, headers and JSON bodies, each failure a 4xx
//! with the error body.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use referrals_model::types::ErrorCode;

/// The query parameters of a request, decoded.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes a raw query string. `+` is a space, as in form encoding; percent-escapes must
    /// decode to UTF-8; a parameter may appear once.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in raw
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode_component(name)?;
            let value = decode_component(value)?;
            if params.iter().any(|(existing, _)| *existing == name) {
                return Err(ApiError::bad_request(format!(
                    "the query parameter `{name}` is given more than once"
                ))
                .target(name));
            }
            params.push((name, value));
        }
        Ok(Self(params))
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every parameter, in order.
    pub fn all(&self) -> &[(String, String)] {
        &self.0
    }

    /// Refuses OData options (`$...`) other than `known`: a misspelt option would otherwise be
    /// ignored without a word.
    pub fn only_options(&self, known: &[&str]) -> Result<(), ApiError> {
        for (name, _) in &self.0 {
            if name.starts_with('$') && !known.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "the query option `{name}` is not supported here; the supported ones are {}",
                    known.join(", ")
                ))
                .target(name.clone()));
            }
        }
        Ok(())
    }

    /// An integer parameter within `0..=2147483647` (an Edm.Int32 that cannot be negative).
    pub fn count(&self, name: &str) -> Result<Option<u32>, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match text.parse::<i64>() {
            Ok(value) if (0..=i64::from(i32::MAX)).contains(&value) => Ok(Some(value as u32)),
            _ => Err(ApiError::bad_request(format!(
                "`{name}` must be a whole number from 0 to 2147483647, not `{text}`"
            ))
            .target(name)),
        }
    }

    /// A boolean parameter: `true` or `false`.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::bad_request(format!(
                "`{name}` must be true or false, not `{other}`"
            ))
            .target(name)),
        }
    }
}

fn decode_component(text: &str) -> Result<String, ApiError> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| {
            ApiError::bad_request("the query string holds percent-escapes that are not UTF-8")
        })
}

/// The value of a header as text, if it is text.
pub fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            ApiError::bad_request(format!("the header `{name}` is not visible ASCII"))
                .target(name.to_owned())
        }),
    }
}

/// Reads a JSON body of at most `limit` bytes.
pub async fn body_bytes(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    let media = header_text(headers, header::CONTENT_TYPE.as_str())?.unwrap_or_default();
    let essence = media
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidRequest,
            format!(
                "the body must be application/json, not {}",
                if media.is_empty() {
                    "unlabelled".to_owned()
                } else {
                    format!("`{media}`")
                }
            ),
        )
        .target("Content-Type"));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidRequest,
            format!("the body is larger than the {limit} bytes that the sandbox accepts"),
        )
    })?;
    // Encoding and syntax first, so that a truncated or non-UTF-8 body is told apart from a
    // member of the wrong type.
    std::str::from_utf8(&bytes).map_err(|error| {
        ApiError::bad_request(format!(
            "the body is not UTF-8 (byte {} is invalid)",
            error.valid_up_to()
        ))
    })?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|error| ApiError::bad_request(format!("the body is not valid JSON: {error}")))?;
    Ok(bytes)
}

/// Decodes JSON text as `T` straight from its bytes (so amounts keep their digits), naming the
/// JSON path of a member of the wrong type.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        ApiError::bad_request(format!("at {path}: {}", error.into_inner())).target(path)
    })
}
