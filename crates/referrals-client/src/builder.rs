//! Building a [`Client`]: its service root (checked, and trimmed of a path of the API), its
//! HTTP client (timeouts, no redirects, TLS) and its [`Runtime`].

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use uuid::Uuid;

use crate::auth::TokenProvider;
use crate::limits::{DEFAULT_MAX_ERROR_BODY, DEFAULT_MAX_RESPONSE_BODY};
use crate::retry::{Clock, RetryPolicy, SystemClock};
use crate::runtime::{Runtime, Settings};
use crate::{Client, Operation};

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
            max_error_body: DEFAULT_MAX_ERROR_BODY,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
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
        let (baseurl, http, runtime) = self.parts()?;
        Ok(Client::new_with_client(&baseurl, http, runtime))
    }

    /// Builds a client of the webhook registration API ([`crate::webhooks`]) of the root given
    /// (such as `https://api.partnercenter.microsoft.com`, `webhooks::servers::ALL[0]`).
    pub fn build_webhooks(self) -> Result<crate::webhooks::Client, BuildError> {
        let (baseurl, http, runtime) = self.parts()?;
        Ok(crate::webhooks::Client::new_with_client(
            &baseurl, http, runtime,
        ))
    }

    /// The base URL, the HTTP client and the runtime of a client.
    fn parts(self) -> Result<(String, reqwest::Client, Runtime), BuildError> {
        let root = self.checked_root()?;
        // A redirect could take the request, and its token, off the service root; the client
        // follows none, and reports the redirect as an unexpected answer.
        let http = http_client(&root, self.connect_timeout, self.timeout)?;
        let baseurl = root.as_str().trim_end_matches('/').to_owned();
        let runtime = Runtime::new(Settings {
            root,
            tokens: self.tokens,
            correlation_id: self.correlation_id,
            retry: self.retry,
            clock: self.clock,
            max_pages: self.max_pages,
            max_error_body: self.max_error_body,
            max_response_body: self.max_response_body,
        });
        Ok((baseurl, http, runtime))
    }

    /// The service root: an absolute http(s) URL without query, fragment or credentials,
    /// trimmed of a path of the API; plain http only to a loopback host that the builder allows.
    fn checked_root(&self) -> Result<Url, BuildError> {
        const EXAMPLE: &str =
            "give the service's address, such as https://api.partner.microsoft.com";
        let root_error = |reason: &str| BuildError::Root {
            root: self.root.clone(),
            reason: reason.to_owned(),
        };
        let mut root =
            Url::parse(&self.root).map_err(|error| root_error(&format!("{error}; {EXAMPLE}")))?;
        if root.cannot_be_a_base() || root.host().is_none() {
            return Err(root_error(&format!("it has no host; {EXAMPLE}")));
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
            "https" => Ok(root),
            "http" if self.loopback_http && is_loopback(&root) => Ok(root),
            "http" => Err(BuildError::PlainHttp {
                root: self.root.clone(),
            }),
            other => Err(root_error(&format!("the scheme `{other}` is not http(s)"))),
        }
    }
}

/// An HTTP client for requests to `root` with this crate's TLS, that follows no redirect and
/// gives up after `connect_timeout` to connect and `timeout` in all. Other parts of the
/// workspace that fetch over https (the event verifier's certificate download) use it too.
pub fn http_client(
    root: &Url,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, BuildError> {
    let http = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    Ok(tls(http, root)?.build()?)
}

/// The TLS of the HTTP client: rustls with the `aws-lc-rs` provider (feature `rustls`, the
/// default), given to reqwest ready-made so that no process-wide provider is needed; the
/// platform's TLS (feature `native-tls`); or none, which only a plain-http loopback root can
/// use.
#[cfg(feature = "rustls")]
fn tls(http: reqwest::ClientBuilder, _root: &Url) -> Result<reqwest::ClientBuilder, BuildError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    // For the program's other reqwest clients, which find no provider of reqwest's own.
    crate::install_crypto_provider();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
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

/// Whether the URL's host is a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}
