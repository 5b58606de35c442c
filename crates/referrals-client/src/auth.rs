//! Bearer tokens: where they come from, and how they are kept out of sight.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// An OAuth 2 access token for the Partner API.
///
/// Its `Debug` shows no part of it, and no `Display` exists, so that a token does not end up
/// in a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token, such as one from Azure AD for the resource
    /// `https://api.partner.microsoft.com`.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, to put in an `Authorization` header.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Why a [`TokenProvider`] could not give a token.
#[derive(Debug, thiserror::Error)]
#[error("the token provider failed: {source}")]
pub struct TokenError {
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl TokenError {
    /// Wraps the provider's own error.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

/// The future of a token.
pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AccessToken, TokenError>> + Send + 'a>>;

/// Gives the bearer token of a request. The client asks for one before every attempt of every
/// request, so a provider that caches and refreshes tokens keeps calls working across expiry.
pub trait TokenProvider: Send + Sync {
    /// The token to send now.
    fn token(&self) -> TokenFuture<'_>;
}

/// The same token for every request: for scripts, tests and the sandbox.
#[derive(Debug, Clone)]
pub struct StaticToken(AccessToken);

impl StaticToken {
    /// A provider that always gives `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self(AccessToken::new(token))
    }
}

impl TokenProvider for StaticToken {
    fn token(&self) -> TokenFuture<'_> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// A provider made of an async closure, such as one that asks an identity library for a
/// token it caches.
///
/// ```
/// use referrals_client::{AccessToken, TokenError, TokenFn};
///
/// let provider = TokenFn::new(|| async {
///     let token = std::env::var("PARTNER_TOKEN").map_err(TokenError::new)?;
///     Ok(AccessToken::new(token))
/// });
/// # let _ = provider;
/// ```
pub struct TokenFn<F>(F);

impl<F> TokenFn<F> {
    /// A provider that calls `function` for each token.
    pub fn new<Fut>(function: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<AccessToken, TokenError>> + Send + 'static,
    {
        Self(function)
    }
}

impl<F> fmt::Debug for TokenFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenFn")
    }
}

impl<F, Fut> TokenProvider for TokenFn<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<AccessToken, TokenError>> + Send + 'static,
{
    fn token(&self) -> TokenFuture<'_> {
        Box::pin((self.0)())
    }
}

/// Bearer tokens from a credential of the Azure SDK, for the scopes of the document's security
/// scheme ([`crate::security::SCOPES`]), kept until five minutes before they expire (feature
/// `azure`).
///
/// Any `azure_core::credentials::TokenCredential` works: `DeveloperToolsCredential` (the
/// account of `az login` or `azd auth login`, for a person at a terminal),
/// `ManagedIdentityCredential` (a job in Azure), `ClientSecretCredential`... The API takes
/// App+User tokens: a credential that gives app-only tokens is answered 401.
///
/// With `azure_identity = "1"` among the program's dependencies (the `referrals` CLI does this
/// with the feature `azure`; not compiled here, as this crate does not depend on
/// azure_identity):
///
/// ```ignore
/// let credential = azure_identity::DeveloperToolsCredential::new(None)?;
/// let client = referrals_client::Client::builder(
///     "https://api.partner.microsoft.com",
///     referrals_client::AzureCredential::new(credential),
/// )
/// .build()?;
/// ```
#[cfg(feature = "azure")]
pub struct AzureCredential {
    credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>,
    cached: std::sync::Mutex<Option<(AccessToken, azure_core::time::OffsetDateTime)>>,
}

#[cfg(feature = "azure")]
impl AzureCredential {
    /// How long before its expiry a token is asked for again.
    const EARLY: azure_core::time::Duration = azure_core::time::Duration::minutes(5);

    /// Tokens from `credential`.
    pub fn new(credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>) -> Self {
        Self {
            credential,
            cached: std::sync::Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<AccessToken> {
        let cached = self
            .cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = azure_core::time::OffsetDateTime::now_utc();
        cached
            .as_ref()
            .filter(|(_, expires)| now + Self::EARLY < *expires)
            .map(|(token, _)| token.clone())
    }
}

#[cfg(feature = "azure")]
impl fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureCredential")
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "azure")]
impl TokenProvider for AzureCredential {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            if let Some(token) = self.cached() {
                return Ok(token);
            }
            // Two requests that miss the cache together both ask; the later answer is kept.
            let token = self
                .credential
                .get_token(crate::security::SCOPES, None)
                .await
                .map_err(TokenError::new)?;
            let access = AccessToken::new(token.token.secret().to_owned());
            *self
                .cached
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) =
                Some((access.clone(), token.expires_on));
            Ok(access)
        })
    }
}

/// Sets the bearer token of `runtime`'s provider, marked sensitive.
pub(crate) async fn authorize(
    runtime: &crate::Runtime,
    headers: &mut reqwest::header::HeaderMap,
) -> Result<(), TokenError> {
    let token = runtime.tokens().token().await?;
    if token.secret().trim().is_empty() {
        return Err(TokenError::new(
            "the token provider gave an empty token; nothing was sent (is the variable that \
             holds the token set?)",
        ));
    }
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.secret()))
        .map_err(|_| {
        TokenError::new("the token holds characters that a header cannot carry")
    })?;
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(())
}

#[cfg(all(test, feature = "azure"))]
mod azure_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use azure_core::credentials::{self, TokenCredential, TokenRequestOptions};
    use azure_core::time::{Duration, OffsetDateTime};

    use super::*;

    /// A credential that counts its calls and gives tokens that expire after `lifetime`.
    #[derive(Debug)]
    struct Counting {
        calls: AtomicUsize,
        lifetime: Duration,
        scopes: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl TokenCredential for Counting {
        async fn get_token(
            &self,
            scopes: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<credentials::AccessToken> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            *self.scopes.lock().unwrap() = scopes.iter().map(|s| (*s).to_owned()).collect();
            Ok(credentials::AccessToken::new(
                format!("token-{call}"),
                OffsetDateTime::now_utc() + self.lifetime,
            ))
        }
    }

    fn counting(lifetime: Duration) -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicUsize::new(0),
            lifetime,
            scopes: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn tokens_are_kept_until_shortly_before_they_expire() {
        let credential = counting(Duration::hours(1));
        let provider = AzureCredential::new(credential.clone());
        let (first, second) = block_on(async {
            (
                provider.token().await.unwrap(),
                provider.token().await.unwrap(),
            )
        });
        assert_eq!(first.secret(), "token-0");
        assert_eq!(second.secret(), "token-0");
        assert_eq!(credential.calls.load(Ordering::SeqCst), 1);
        assert_eq!(*credential.scopes.lock().unwrap(), crate::security::SCOPES);

        let credential = counting(Duration::minutes(2));
        let provider = AzureCredential::new(credential.clone());
        block_on(async {
            provider.token().await.unwrap();
            provider.token().await.unwrap();
        });
        assert_eq!(
            credential.calls.load(Ordering::SeqCst),
            2,
            "a token that expires within five minutes is asked for again"
        );
    }
}
