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
