//! What every request goes through, whether it comes from a generated builder
//! (`client.get_referral().id(..).send()`) or from the methods of [`crate::calls`]: progenitor's
//! `ClientHooks`, implemented for the generated [`Client`] (`crate::Client`).
//!
//! Before a request ([`ClientHooks::pre`]):
//! - the `api-version` header that progenitor adds is removed: the Partner API has none;
//! - `MS-RequestId` (a fresh GUID, unless the caller set one) and the client's
//!   `MS-CorrelationId` are set;
//! - the query string is written again with `%20` for a space and `%2B` for `+`, as OData
//!   expects (reqwest's form encoding writes `+` for a space);
//! - the request must go to the configured service root, over https (or over http to a
//!   loopback address when the builder allows it), or it is refused and nothing is sent;
//! - the bearer token is asked of the [`TokenProvider`] and set, marked sensitive.
//!
//! Sending ([`ClientHooks::exec`]): the request is sent and retried by [`crate::retry`], in a
//! `tracing` span that records the operation, the request id, the attempt and the status, and
//! its answer's body is capped ([`crate::limits`]).

use std::sync::Arc;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::authorize;
use crate::builder::is_loopback;
use crate::context::{self, Refusal};
use crate::limits::capped;
use crate::wire::{ms_correlation_id, ms_request_id, same_origin, without_query};
use crate::{Client, Operation, Runtime};

const API_VERSION: HeaderName = HeaderName::from_static("api-version");

/// The hooks of a generated client whose inner value is the [`Runtime`]: the referrals client
/// and the webhooks client go through the same pipeline, each to its own service root.
macro_rules! hooks {
    ($client:ty) => {
        impl ClientHooks<Runtime> for $client {
            async fn pre<E>(
                &self,
                request: &mut reqwest::Request,
                info: &OperationInfo,
            ) -> Result<(), progenitor_client::Error<E>> {
                before(self.inner(), request, info).await
            }

            async fn exec(
                &self,
                request: reqwest::Request,
                info: &OperationInfo,
            ) -> reqwest::Result<reqwest::Response> {
                send(self.inner(), self.client(), request, info).await
            }
        }
    };
}

hooks!(Client);
hooks!(crate::webhooks::Client);

/// What every request goes through before it is sent ([`ClientHooks::pre`]).
async fn before<E>(
    runtime: &Runtime,
    request: &mut reqwest::Request,
    info: &OperationInfo,
) -> Result<(), progenitor_client::Error<E>> {
    let operation = Operation::from_name(info.operation_id);
    prepare(runtime, request, operation);
    let method = request.method().to_string();
    let url = without_query(request.url());
    let request_id = request
        .headers()
        .get(ms_request_id())
        .and_then(|value| value.to_str().ok())
        .and_then(|text| Uuid::parse_str(text).ok());
    context::record(|call| {
        call.operation = operation;
        call.method = Some(method);
        call.url = Some(url);
        call.request_id = request_id;
    });
    let checked = check_destination(runtime, request.url()).map_err(|refusal| {
        context::record(|call| call.refusal = Some(refusal.clone()));
        progenitor_client::Error::Custom(refusal.to_string())
    });
    checked?;
    authorize(runtime, request.headers_mut())
        .await
        .map_err(|error| {
            let error = Arc::new(error);
            let message = error.to_string();
            context::record(|call| call.refusal = Some(Refusal::Token(error)));
            progenitor_client::Error::Custom(message)
        })
}

/// Sends a request with its retries, in a span, and caps its answer ([`ClientHooks::exec`]).
async fn send(
    runtime: &Runtime,
    http: &reqwest::Client,
    request: reqwest::Request,
    info: &OperationInfo,
) -> reqwest::Result<reqwest::Response> {
    let request_id = request
        .headers()
        .get(ms_request_id())
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let correlation_id = request
        .headers()
        .get(ms_correlation_id())
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!(
        "referrals.request",
        operation = info.operation_id,
        request_id = %request_id,
        correlation_id = %correlation_id,
        method = %request.method(),
        attempt = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let response = crate::retry::run::execute(runtime, http, request, span.clone())
        .instrument(span)
        .await?;
    Ok(capped(response, runtime.max_response_body()))
}

/// The changes made to every request before it is sent.
fn prepare(runtime: &Runtime, request: &mut reqwest::Request, operation: Option<Operation>) {
    let headers = request.headers_mut();
    headers.remove(API_VERSION);
    if !headers.contains_key(ms_request_id()) {
        headers.insert(ms_request_id(), header_value(&Uuid::new_v4().to_string()));
    }
    if !headers.contains_key(ms_correlation_id()) {
        headers.insert(
            ms_correlation_id(),
            header_value(&runtime.correlation_id().to_string()),
        );
    }
    // An operation whose bodiless success the generated code cannot decode (the update, which
    // answers 204 without `Prefer`) asks for the representation. A header set by the caller
    // stays.
    if let Some((name, value)) = operation.and_then(Operation::representation)
        && let Ok(name) = HeaderName::from_bytes(name.as_bytes())
        && !headers.contains_key(&name)
    {
        headers.insert(name, HeaderValue::from_static(value));
    }
    reencode_query(request.url_mut());
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("a GUID is a valid header value")
}

/// Writes the query again: reqwest's form encoding (`+` for a space, `%24filter`) becomes
/// `$filter=status%20eq%20'New'`, which OData services read as intended.
fn reencode_query(url: &mut Url) {
    let Some(query) = url.query() else { return };
    let encoded = referrals_odata::wire::encode_query(form_urlencoded::parse(query.as_bytes()));
    url.set_query(if encoded.is_empty() {
        None
    } else {
        Some(&encoded)
    });
}

fn check_destination(runtime: &Runtime, url: &Url) -> Result<(), Refusal> {
    let root = runtime.root();
    if !same_origin(url, root) {
        return Err(Refusal::OtherOrigin {
            url: without_query(url),
            root: root.as_str().to_owned(),
        });
    }
    // The root was checked when the client was built; a plain http root is a loopback one
    // that the builder allowed.
    if url.scheme() != "https" && !is_loopback(url) {
        return Err(Refusal::PlainHttp {
            url: without_query(url),
        });
    }
    Ok(())
}
