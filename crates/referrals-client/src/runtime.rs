//! What every request goes through, whether it comes from a generated builder
//! (`client.get_referral().id(..).send()`) or from the methods of [`crate::calls`]: progenitor's
//! `ClientHooks`, implemented for the generated [`Client`].
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
//! Sending ([`ClientHooks::exec`]): the request is sent, and retried as [`RetryPolicy`] says,
//! with the same `MS-RequestId` and a fresh token for each attempt, in a `tracing` span that
//! records the operation, the request id, the attempt and the status.

use std::cell::RefCell;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::{TokenError, TokenProvider};
use crate::retry::{self, Clock, RetryPolicy, SystemClock};
use crate::{Client, Operation, headers, parameters};

/// A header name of the document, as `HeaderName` (which writes names in lower case).
fn header_name(name: &'static str) -> HeaderName {
    HeaderName::from_bytes(name.as_bytes()).expect("the document's header names are valid")
}

/// The header that names one logical call; kept across its retries (`MS-RequestId`).
pub(crate) fn ms_request_id() -> HeaderName {
    header_name(parameters::list_referrals::MS_REQUEST_ID)
}

/// The header that names a session or job of many calls (`MS-CorrelationId`).
pub(crate) fn ms_correlation_id() -> HeaderName {
    header_name(parameters::list_referrals::MS_CORRELATION_ID)
}

/// The header in which the service names its handling of a request (`Request-ID`).
pub(crate) fn request_id() -> HeaderName {
    header_name(headers::REQUEST_ID)
}

const API_VERSION: HeaderName = HeaderName::from_static("api-version");

/// The client's runtime: its service root, token provider, request ids, retry policy and
/// clock. It is the `inner` value of the generated [`Client`]; make one with
/// [`Client::builder`].
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Settings>,
}

struct Settings {
    root: Url,
    tokens: Arc<dyn TokenProvider>,
    correlation_id: Uuid,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    max_pages: usize,
    max_error_body: usize,
    max_response_body: usize,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token provider is left out: it may hold a secret.
        f.debug_struct("Runtime")
            .field("root", &self.inner.root.as_str())
            .field("correlation_id", &self.inner.correlation_id)
            .field("retry", &self.inner.retry)
            .field("max_pages", &self.inner.max_pages)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// The service root that every request goes to.
    pub fn root(&self) -> &Url {
        &self.inner.root
    }

    /// The `MS-CorrelationId` sent with every request.
    pub fn correlation_id(&self) -> Uuid {
        self.inner.correlation_id
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    pub(crate) fn max_pages(&self) -> usize {
        self.inner.max_pages
    }

    pub(crate) fn max_error_body(&self) -> usize {
        self.inner.max_error_body
    }

    pub(crate) fn max_response_body(&self) -> usize {
        self.inner.max_response_body
    }
}

/// Why the client refused to send a request, or could not.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Refusal {
    #[error(
        "refused to send a request to {url}: only the service root {root} receives the bearer token"
    )]
    OtherOrigin { url: String, root: String },
    #[error("refused to send the bearer token over plain http to {url}")]
    PlainHttp { url: String },
    #[error("{0}")]
    Token(Arc<TokenError>),
}

/// Builds a [`Client`] with its [`Runtime`].
///
/// ```
/// use std::time::Duration;
/// use referrals_client::{Client, RetryPolicy, StaticToken};
///
/// let client = Client::builder("https://api.partner.microsoft.com", StaticToken::new("token"))
///     .correlation_id(uuid::Uuid::new_v4())
///     .retry(RetryPolicy { max_attempts: 6, ..RetryPolicy::default() })
///     .timeout(Duration::from_secs(30))
///     .build()
///     .unwrap();
/// assert_eq!(client.runtime().root().as_str(), "https://api.partner.microsoft.com/");
/// ```
pub struct ClientBuilder {
    root: String,
    tokens: Arc<dyn TokenProvider>,
    correlation_id: Uuid,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    connect_timeout: Duration,
    timeout: Duration,
    max_pages: usize,
    max_error_body: usize,
    max_response_body: usize,
    loopback_http: bool,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The service root is not an absolute http(s) URL.
    #[error("the service root `{root}` is not an absolute http(s) URL: {reason}")]
    Root {
        /// The root as given.
        root: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The service root is plain http to a host that is not a loopback address, or the builder
    /// was not told to allow http.
    #[error(
        "the service root `{root}` is plain http: the bearer token is sent only over https \
         (for a local sandbox, use `allow_http_to_loopback(true)`)"
    )]
    PlainHttp {
        /// The root as given.
        root: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// TLS could not be set up (or the client was built without it, for an https root).
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

impl ClientBuilder {
    pub(crate) fn new(root: &str, tokens: impl TokenProvider + 'static) -> Self {
        Self {
            root: root.to_owned(),
            tokens: Arc::new(tokens),
            correlation_id: Uuid::new_v4(),
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_pages: 100_000,
            max_error_body: 64 * 1024,
            max_response_body: 32 * 1024 * 1024,
            loopback_http: false,
        }
    }

    /// The `MS-CorrelationId` of every request (default: a fresh GUID per client).
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = id;
        self
    }

    /// How requests are retried (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long to wait for a connection (default: 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may take in all, answer included (default: 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most pages that one listing may follow before it fails rather than loop
    /// (default: 100,000, that is ten million referrals).
    pub fn max_pages(mut self, pages: usize) -> Self {
        self.max_pages = pages;
        self
    }

    /// How much of an error answer's body is kept when it is not the documented error body
    /// (default: 64 KiB).
    pub fn max_error_body(mut self, bytes: usize) -> Self {
        self.max_error_body = bytes;
        self
    }

    /// The largest answer body that the client reads, in bytes (default: 32 MiB; a page of 100
    /// referrals is well under 1 MiB). A larger body ends the call with
    /// [`ErrorKind::UnexpectedAnswer`](crate::ErrorKind::UnexpectedAnswer) once that much has
    /// arrived, rather than fill memory.
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = bytes;
        self
    }

    /// Allows a plain `http://` service root when its host is a loopback address (`127.0.0.1`,
    /// `::1`, `localhost`), as the local sandbox is. Off by default: the bearer token never
    /// travels over plain http otherwise.
    pub fn allow_http_to_loopback(mut self, allow: bool) -> Self {
        self.loopback_http = allow;
        self
    }

    /// The clock used for waits and for `Retry-After` dates (tests use a virtual one).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the client.
    ///
    /// The root is the service's address, as `https://api.partner.microsoft.com`. A root that
    /// ends in a path of the API, as copied from the documentation
    /// (`https://api.partner.microsoft.com/v1.0` or `.../v1.0/engagements/referrals`), is taken
    /// for the service root in front of it; any other path is kept, for a service behind a
    /// proxy that adds one.
    pub fn build(self) -> Result<Client, BuildError> {
        let root_error = |reason: &str| BuildError::Root {
            root: self.root.clone(),
            reason: reason.to_owned(),
        };
        let mut root = Url::parse(&self.root).map_err(|error| {
            root_error(&format!(
                "{error}; give the service's address, such as https://api.partner.microsoft.com"
            ))
        })?;
        if root.cannot_be_a_base() || root.host().is_none() {
            return Err(root_error(
                "it has no host; give the service's address, such as https://api.partner.microsoft.com",
            ));
        }
        if root.query().is_some() || root.fragment().is_some() {
            return Err(root_error(
                "it has a query or a fragment; give the service's address alone",
            ));
        }
        if !root.username().is_empty() || root.password().is_some() {
            return Err(root_error(
                "it holds a user name or password; the client authenticates with the token provider",
            ));
        }
        let path = service_path(root.path()).to_owned();
        root.set_path(&path);
        match root.scheme() {
            "https" => {}
            "http" if self.loopback_http && is_loopback(&root) => {}
            "http" => {
                return Err(BuildError::PlainHttp {
                    root: self.root.clone(),
                });
            }
            other => return Err(root_error(&format!("the scheme `{other}` is not http(s)"))),
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            // A redirect could take the request, and its token, off the service root; the
            // client follows none, and reports the redirect as an unexpected answer.
            .redirect(reqwest::redirect::Policy::none());
        let http = tls(http, &root)?.build()?;
        let baseurl = root.as_str().trim_end_matches('/').to_owned();
        let runtime = Runtime {
            inner: Arc::new(Settings {
                root,
                tokens: self.tokens,
                correlation_id: self.correlation_id,
                retry: self.retry,
                clock: self.clock,
                max_pages: self.max_pages,
                max_error_body: self.max_error_body,
                max_response_body: self.max_response_body,
            }),
        };
        Ok(Client::new_with_client(&baseurl, http, runtime))
    }
}

/// The TLS of the HTTP client: rustls with the `ring` provider (feature `rustls`, the
/// default), given to reqwest ready-made so that no process-wide provider is needed; the
/// platform's TLS (feature `native-tls`); or none, which only a plain-http loopback root can
/// use.
#[cfg(feature = "rustls")]
fn tls(http: reqwest::ClientBuilder, _root: &Url) -> Result<reqwest::ClientBuilder, BuildError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    // For the program's other reqwest clients, which find no provider of reqwest's own.
    crate::install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|error| BuildError::Tls(error.to_string()))?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(http.tls_backend_preconfigured(config))
}

#[cfg(all(feature = "native-tls", not(feature = "rustls")))]
fn tls(http: reqwest::ClientBuilder, _root: &Url) -> Result<reqwest::ClientBuilder, BuildError> {
    Ok(http)
}

#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
fn tls(http: reqwest::ClientBuilder, root: &Url) -> Result<reqwest::ClientBuilder, BuildError> {
    if root.scheme() == "https" {
        return Err(BuildError::Tls(
            "this client was built without TLS: enable the feature `rustls` (the default) or \
             `native-tls` of referrals-client"
                .into(),
        ));
    }
    Ok(http)
}

/// The path of the service root in `path`: without the part that is a path of the API (the
/// literal segments that start an operation's path, as `/v1.0` or `/v1.0/engagements/referrals`),
/// and without a trailing `/`.
fn service_path(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    let mut longest = "";
    for operation in Operation::ALL {
        let segments: Vec<&str> = operation
            .path()
            .split('/')
            .skip(1)
            .take_while(|segment| !segment.starts_with('{'))
            .collect();
        for count in 1..=segments.len() {
            let prefix = format!("/{}", segments[..count].join("/"));
            if path.ends_with(&prefix) && prefix.len() > longest.len() {
                longest = &operation.path()[..prefix.len()];
            }
        }
    }
    &path[..path.len() - longest.len()]
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Whether two URLs have the same scheme, host and port.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl ClientHooks<Runtime> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let runtime = self.inner();
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

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let request_id = request
            .headers()
            .get(ms_request_id())
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let span = tracing::info_span!(
            "referrals.request",
            operation = info.operation_id,
            request_id = %request_id,
            method = %request.method(),
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        let runtime = self.inner();
        let response = execute(runtime, self.client(), request, span.clone())
            .instrument(span)
            .await?;
        Ok(capped(response, runtime.max_response_body()))
    }
}

/// The error that ends the body of an answer larger than the client reads.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the answer's body is larger than the {limit} bytes that the client reads (`max_response_body`)"
)]
pub(crate) struct BodyTooLarge {
    pub(crate) limit: usize,
}

/// The same answer, whose body fails with [`BodyTooLarge`] once more than `limit` bytes have
/// arrived: generated code reads bodies whole, and a server must not be able to fill memory.
fn capped(response: reqwest::Response, limit: usize) -> reqwest::Response {
    use futures_util::StreamExt;
    use reqwest::ResponseBuilderExt;

    // Told in advance: fail on the first read, without reading the body.
    let known_too_large = response
        .content_length()
        .is_some_and(|length| length > limit as u64);
    if known_too_large {
        context::record(|call| call.too_large = Some(limit));
    }
    let mut builder = http::Response::builder()
        .status(response.status())
        .version(response.version())
        .url(response.url().clone());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let mut seen = 0usize;
    let mut failed = known_too_large;
    let stream = response.bytes_stream().map(move |chunk| {
        if failed {
            return Err(
                Box::new(BodyTooLarge { limit }) as Box<dyn std::error::Error + Send + Sync>
            );
        }
        let chunk =
            chunk.map_err(|error| Box::new(error) as Box<dyn std::error::Error + Send + Sync>)?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            failed = true;
            context::record(|call| call.too_large = Some(limit));
            return Err(Box::new(BodyTooLarge { limit }));
        }
        Ok(chunk)
    });
    // Stop at the first error, so that nothing more is read from the connection.
    let stream = stream.scan(false, |stopped, item| {
        if *stopped {
            return futures_util::future::ready(None);
        }
        *stopped = item.is_err();
        futures_util::future::ready(Some(item))
    });
    match builder.body(reqwest::Body::wrap_stream(stream)) {
        Ok(response) => reqwest::Response::from(response),
        // The parts came from a valid answer; this is not reached.
        Err(_) => reqwest::Response::from(http::Response::new(reqwest::Body::from(Vec::new()))),
    }
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

/// A URL without its query string and fragment, for messages: filter values may be personal
/// data, and a message goes to logs.
pub(crate) fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

async fn authorize(runtime: &Runtime, headers: &mut HeaderMap) -> Result<(), TokenError> {
    let token = runtime.inner.tokens.token().await?;
    if token.secret().trim().is_empty() {
        return Err(TokenError::new(
            "the token provider gave an empty token; nothing was sent (is the variable that \
             holds the token set?)",
        ));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
        .map_err(|_| TokenError::new("the token holds characters that a header cannot carry"))?;
    value.set_sensitive(true);
    headers.insert(AUTHORIZATION, value);
    Ok(())
}

/// Sends `request`, retrying as the policy says.
async fn execute(
    runtime: &Runtime,
    http: &reqwest::Client,
    request: reqwest::Request,
    span: tracing::Span,
) -> reqwest::Result<reqwest::Response> {
    let policy = runtime.retry_policy();
    let clock = runtime.clock();
    let started = clock.now();
    let method = request.method().clone();
    let mut request = request;
    let mut attempt = 1u32;
    loop {
        span.record("attempt", attempt);
        // A request whose body cannot be copied is sent once.
        let copy = request.try_clone();
        let result = http.execute(request).await;
        record_answer(&result, attempt);
        if let Ok(response) = &result {
            span.record("status", response.status().as_u16());
        }

        let wait = match &result {
            Ok(response) => {
                let after = retry::retry_after(response.headers(), clock.now());
                retry::retryable_status(&method, response.status(), after.is_some()).then(|| {
                    after
                        .unwrap_or_default()
                        .max(policy.backoff(attempt, fastrand::f64()))
                })
            }
            Err(error) => retry::retryable_failure(&method, error.is_connect(), error.is_timeout())
                .then(|| policy.backoff(attempt, fastrand::f64())),
        };
        let Some(wait) = wait else { return result };
        let Some(mut next) = copy else { return result };
        if attempt >= policy.max_attempts {
            return result;
        }
        let elapsed = clock.now().duration_since(started).unwrap_or_default();
        if !retry::fits_budget(elapsed, wait, policy.max_elapsed) {
            tracing::info!(
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "not retrying: the wait would pass the retry budget"
            );
            return result;
        }
        tracing::info!(
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            reason = %match &result {
                Ok(response) => response.status().to_string(),
                Err(error) => error.to_string(),
            },
            "retrying"
        );
        clock.sleep(wait).await;
        // A fresh token for the next attempt, asked for after the wait so that it is fresh; if
        // none comes, the caller gets the last answer.
        if let Err(error) = authorize(runtime, next.headers_mut()).await {
            context::record(|call| call.refusal = Some(Refusal::Token(Arc::new(error))));
            return result;
        }
        drop(result);
        request = next;
        attempt += 1;
    }
}

fn record_answer(result: &reqwest::Result<reqwest::Response>, attempt: u32) {
    let (status, service_request_id, retry_after) = match result {
        Ok(response) => (
            Some(response.status()),
            response
                .headers()
                .get(request_id())
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            response
                .headers()
                .contains_key(reqwest::header::RETRY_AFTER),
        ),
        Err(error) => (error.status(), None, false),
    };
    context::record(|call| {
        call.attempts = attempt;
        call.status = status;
        call.service_request_id = service_request_id;
        call.retry_after = retry_after;
    });
}

/// The facts of one call that the generated code does not hand back (which status answered a
/// body that did not decode, how many attempts it took, why a request was refused), gathered by
/// the hooks for the methods of [`crate::calls`]. Outside such a call, nothing is recorded.
pub(crate) mod context {
    use super::*;

    #[derive(Debug, Default, Clone)]
    pub(crate) struct Call {
        pub(crate) operation: Option<Operation>,
        pub(crate) method: Option<String>,
        pub(crate) url: Option<String>,
        pub(crate) request_id: Option<Uuid>,
        pub(crate) status: Option<reqwest::StatusCode>,
        pub(crate) service_request_id: Option<String>,
        pub(crate) retry_after: bool,
        pub(crate) attempts: u32,
        pub(crate) refusal: Option<Refusal>,
        pub(crate) too_large: Option<usize>,
    }

    tokio::task_local! {
        static CALL: RefCell<Call>;
    }

    /// Runs `future`, gathering what the hooks record.
    pub(crate) async fn gather<F: std::future::Future>(future: F) -> (F::Output, Call) {
        let cell = RefCell::new(Call::default());
        CALL.scope(cell, async move {
            let output = future.await;
            let call = CALL.with(|call| call.borrow().clone());
            (output, call)
        })
        .await
    }

    pub(crate) fn record(change: impl FnOnce(&mut Call)) {
        let _ = CALL.try_with(|call| change(&mut call.borrow_mut()));
    }
}
