//! The sandbox's router: a route for each operation of the document, and the layers every
//! request passes (its request id and log line, the faults asked for, the bearer token, the
//! checks of its headers), in that order.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, patch, post, put};
use referrals_model::types::ErrorCode;
use referrals_model::{Operation, headers};

use crate::error::ApiError;
use crate::{App, api, drift, events, pace, webhooks};

/// The handler of `operation`. A new operation of the document is a compile error here until
/// the sandbox implements it.
fn handler(operation: Operation) -> MethodRouter<Arc<App>> {
    match operation {
        Operation::ListReferrals => get(api::list),
        Operation::CreateReferral => post(api::create),
        Operation::GetReferral => get(api::get),
        Operation::UpdateReferral => patch(api::update),
        Operation::ReplaceReferral => put(api::replace),
        Operation::ListReferralsLegacy => get(api::legacy_list),
    }
}

/// The methods served at `path`, for `Allow`.
fn allowed(path: &str) -> Option<String> {
    let methods: Vec<&str> = Operation::ALL
        .iter()
        .filter(|operation| route_matches(operation.path(), path))
        .map(|operation| operation.method())
        .collect();
    (!methods.is_empty()).then(|| methods.join(", "))
}

/// Whether a path of the document (`/x/{id}`) matches a request's path.
fn route_matches(template: &str, path: &str) -> bool {
    let (mut template, mut path) = (template.split('/'), path.split('/'));
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(expected), Some(found)) => {
                let parameter = expected.starts_with('{') && expected.ends_with('}');
                if !(parameter && !found.is_empty() || expected == found) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The routes of the document (its paths, as `referrals_model::Operation` lists them), behind
/// the checks that every request goes through.
pub fn router(app: Arc<App>) -> Router {
    let mut routes: Vec<(&str, MethodRouter<Arc<App>>)> = Vec::new();
    for operation in Operation::ALL {
        match routes
            .iter_mut()
            .find(|(path, _)| *path == operation.path())
        {
            Some((_, methods)) => *methods = std::mem::take(methods).merge(handler(*operation)),
            None => routes.push((operation.path(), handler(*operation))),
        }
    }
    routes.extend(webhooks::routes());
    routes.push((events::OFFLINE_PATH, get(webhooks::offline)));
    let router = routes
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        });
    let api = router
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::ItemNotFound,
                "No resource of the API has this path.",
            )
        })
        .method_not_allowed_fallback(|uri: axum::http::Uri| async move {
            let mut response = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::InvalidRequest,
                "This method is not served at this path.",
            )
            .into_response();
            if let Some(value) =
                allowed(uri.path()).and_then(|text| HeaderValue::from_str(&text).ok())
            {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        })
        .layer(middleware::from_fn_with_state(app.clone(), checks))
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .layer(middleware::from_fn_with_state(app.clone(), faults))
        .layer(middleware::from_fn_with_state(app.clone(), pace::pace))
        .layer(middleware::from_fn_with_state(app.clone(), drift::drift))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            request_id_and_log,
        ))
        .with_state(app.clone());
    // The signing certificate is fetched by receivers, without a token.
    Router::new()
        .route(events::CERTIFICATE_PATH, get(webhooks::certificate))
        .route(events::INTERMEDIATE_PATH, get(webhooks::intermediate))
        .with_state(app)
        .merge(api)
}

/// Gives every answer a `Request-ID`, and logs one line per request.
async fn request_id_and_log(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_owned(), ToString::to_string);
    let mut response = next.run(request).await;
    let id = uuid::Uuid::new_v4().to_string();
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(headers::REQUEST_ID.as_bytes()),
        HeaderValue::from_str(&id),
    ) {
        response.headers_mut().insert(name, value);
    }
    // The service's clock, which a client may take as the upper bound of a sync.
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now()))
    {
        response.headers_mut().insert(header::DATE, value);
    }
    if app.log {
        eprintln!(
            "{method} {path} {} {:.1}ms",
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    response
}

/// Answers a share of requests with 429 or 503, when asked to.
async fn faults(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if app.fault_429 > 0.0 || app.fault_503 > 0.0 {
        let roll = app
            .faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .f64();
        let fault = if roll < app.fault_429 {
            Some(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::ServiceNotAvailable,
                "Too many requests; retry after a second.",
            ))
        } else if roll < app.fault_429 + app.fault_503 {
            Some(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceNotAvailable,
                "The service is unavailable for now; retry after a second.",
            ))
        } else {
            None
        };
        if let Some(fault) = fault {
            let mut response = fault.into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    }
    next.run(request).await
}

/// Requires `Authorization: Bearer <token>`: the configured token, or any non-empty one.
async fn authenticate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty());
    let accepted = match (given, &app.token) {
        (None, _) => false,
        (Some(given), Some(expected)) => given == expected,
        (Some(_), None) => true,
    };
    if !accepted {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "The request carries no valid bearer token (Authorization: Bearer <token>).",
        )
        .into_response();
    }
    next.run(request).await
}

/// The header checks of every operation: `Accept`, and the GUIDs of the request-id headers.
async fn checks(request: Request, next: Next) -> Response {
    let headers = request.headers();
    use referrals_model::parameters::list_referrals as names;
    for name in [names::MS_REQUEST_ID, names::MS_CORRELATION_ID] {
        if let Some(value) = headers.get(name) {
            let valid = value
                .to_str()
                .ok()
                .is_some_and(|text| uuid::Uuid::parse_str(text).is_ok());
            if !valid {
                return ApiError::bad_request(format!("the header `{name}` must be a GUID"))
                    .target(name)
                    .into_response();
            }
        }
    }
    if let Some(accept) = headers.get(header::ACCEPT) {
        let acceptable = accept.to_str().ok().is_some_and(|text| {
            text.split(',').any(|range| {
                let essence = range
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                matches!(
                    essence.as_str(),
                    "*/*" | "application/*" | "application/json"
                ) || essence.ends_with("+json")
            })
        });
        if !acceptable {
            return ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                ErrorCode::InvalidRequest,
                "The answers are application/json.",
            )
            .target("Accept")
            .into_response();
        }
    }
    next.run(request).await
}
