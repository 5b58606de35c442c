//! The operations of the document: the reads (`read`), the writes (`write`), and what both
//! answer with.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use referrals_model::facts::{self, STATUS_RULES};
use referrals_model::parameters::{
    list_referrals as list_params, list_referrals_legacy, update_referral,
};
use referrals_model::types::{
    ErrorCode, JsonPatch, NewReferral, PreferReturn, Referral, ReferralDirection, ReferralList,
    ReferralStatus, ReferralSubstatus, ReferralType, Target,
};
use referrals_model::{Operation, patch, transitions};
use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::filter::{Compiled, Order, compile};
use crate::paging::{Listing, read_page};
use crate::request::{Params, body_bytes, decode, header_text};
use crate::seed::{ORGANIZATION_ID, ORGANIZATION_NAME, etag, links};
use crate::skiptoken::{SkipToken, next_link, query_fingerprint};
use crate::store::Store;
use crate::{App, Paging};

mod read;
mod write;

pub use read::{get, legacy_list, list};
pub use write::{create, replace, update};

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::GeneralException,
        format!("the sandbox could not write its answer: {error}"),
    )
}

fn parse<T>(
    result: Result<T, referrals_odata::ParseError>,
    parameter: &str,
) -> Result<T, ApiError> {
    result.map_err(|error| ApiError::bad_request(format!("{parameter}: {error}")).target(parameter))
}

/// A referral as a single-entity answer: `@odata.context`, the body, and the `ETag` header.
fn entity(app: &App, referral: &Referral, status: StatusCode) -> Result<Response, ApiError> {
    let mut body = referral.clone();
    body.odata_context = Some(format!(
        "{}{}/$metadata#Referrals/$entity",
        app.base,
        Operation::ListReferrals.path()
    ));
    let mut response = json_response(status, &body);
    set_etag(&mut response, referral);
    Ok(response)
}

fn set_etag(response: &mut Response, referral: &Referral) {
    if let Some(tag) = referral
        .e_tag
        .as_deref()
        .and_then(|tag| HeaderValue::from_str(tag).ok())
    {
        response.headers_mut().insert(header::ETAG, tag);
    }
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(text) => {
            let mut response = (status, text).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            response
        }
        Err(error) => internal(error).into_response(),
    }
}

/// The `{id}` of a path, percent-decoded.
fn path_id(path: &str) -> Result<String, ApiError> {
    let raw = path.rsplit('/').next().unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|id| id.into_owned())
        .map_err(|_| {
            ApiError::bad_request("the referral id is not valid UTF-8")
                .target(referrals_model::parameters::get_referral::ID)
        })
}
