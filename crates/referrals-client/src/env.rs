//! A client from the environment, as the `referrals` command makes one: the service root from
//! `PARTNER_ROOT` (the document's first server when it is not set) and the bearer token from
//! `PARTNER_TOKEN`.

use crate::{BuildError, Client, ClientBuilder, StaticToken, TokenProvider, servers};

/// The variable that holds the service root.
pub const ROOT_VARIABLE: &str = "PARTNER_ROOT";
/// The variable that holds the bearer token.
pub const TOKEN_VARIABLE: &str = "PARTNER_TOKEN";

/// Why no client could be made from the environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// `PARTNER_TOKEN` is not set.
    #[error(
        "no token: set {TOKEN_VARIABLE} to a bearer token (App+User, for the scope {})",
        crate::security::SCOPES.join(" or ")
    )]
    NoToken,
    /// The token is empty or blank.
    #[error("the token of {TOKEN_VARIABLE} is empty")]
    EmptyToken,
    /// A variable is not Unicode.
    #[error("{0} is not Unicode text")]
    NotText(&'static str),
    /// The document names no server and `PARTNER_ROOT` is not set.
    #[error("the document names no server: set {ROOT_VARIABLE}")]
    NoRoot,
    /// The root is not one a client takes.
    #[error("{ROOT_VARIABLE}: {0}")]
    Root(#[from] BuildError),
}

/// The service root: `root` when given, else the document's first server.
pub fn root_or_default(root: Option<&str>) -> Result<&str, EnvError> {
    match root {
        Some(root) => Ok(root),
        None => servers::ALL.first().copied().ok_or(EnvError::NoRoot),
    }
}

/// The token `token`, refused when empty.
pub fn token(token: &str) -> Result<StaticToken, EnvError> {
    if token.trim().is_empty() {
        return Err(EnvError::EmptyToken);
    }
    Ok(StaticToken::new(token))
}

fn variable(name: &'static str) -> Result<Option<String>, EnvError> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(EnvError::NotText(name)),
    }
}

impl ClientBuilder {
    /// A builder of the root of `PARTNER_ROOT` (the document's first server when it is not
    /// set) with the tokens of `tokens`. A plain-http root is allowed only to a loopback
    /// address, such as a local sandbox.
    pub fn from_env_with(tokens: impl TokenProvider + 'static) -> Result<Self, EnvError> {
        let root = variable(ROOT_VARIABLE)?;
        let root = root_or_default(root.as_deref())?;
        Ok(Client::builder(root, tokens).allow_http_to_loopback(true))
    }
}

impl Client {
    /// A client of `PARTNER_ROOT` (the document's first server when it is not set) with the
    /// bearer token of `PARTNER_TOKEN`, as the `referrals` command makes it. For other
    /// settings, start from [`ClientBuilder::from_env_with`].
    ///
    /// ```no_run
    /// # fn run() -> Result<(), referrals_client::EnvError> {
    /// let client = referrals_client::Client::from_env()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env() -> Result<Client, EnvError> {
        let token = variable(TOKEN_VARIABLE)?.ok_or(EnvError::NoToken)?;
        Ok(ClientBuilder::from_env_with(self::token(&token)?)?.build()?)
    }
}
