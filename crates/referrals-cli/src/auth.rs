//! Where the bearer token comes from: `--token` / `PARTNER_TOKEN`, or (feature `azure`) the
//! Azure SDK's developer credentials, the account of `az login` or `azd auth login`, asked for
//! the scopes of the document's security scheme ([`referrals_client::security::SCOPES`]).

use referrals_client::{StaticToken, TokenFuture, TokenProvider};

/// A source of bearer tokens.
pub enum Tokens {
    /// The one token given.
    Given(StaticToken),
    /// The Azure developer tools' account.
    #[cfg(feature = "azure")]
    Azure(azure::Developer),
}

impl TokenProvider for Tokens {
    fn token(&self) -> TokenFuture<'_> {
        match self {
            Tokens::Given(token) => token.token(),
            #[cfg(feature = "azure")]
            Tokens::Azure(developer) => developer.token(),
        }
    }
}

/// The token source: the token given, or else the Azure developer tools' account when the
/// build has them.
pub fn provider(token: Option<String>) -> Result<Tokens, String> {
    match token {
        Some(token) if token.trim().is_empty() => {
            Err("the token given by --token or PARTNER_TOKEN is empty".to_owned())
        }
        Some(token) => Ok(Tokens::Given(StaticToken::new(token))),
        None => azure_provider(),
    }
}

#[cfg(not(feature = "azure"))]
fn azure_provider() -> Result<Tokens, String> {
    Err(
        "no token: pass --token or set PARTNER_TOKEN (a build with `--features azure` takes the \
         account of `az login` instead)"
            .to_owned(),
    )
}

#[cfg(feature = "azure")]
fn azure_provider() -> Result<Tokens, String> {
    azure::Developer::new().map(Tokens::Azure)
}

#[cfg(feature = "azure")]
mod azure {
    use std::sync::Arc;

    use azure_core::credentials::TokenCredential;
    use azure_core::time::{Duration, OffsetDateTime};
    use azure_identity::DeveloperToolsCredential;
    use referrals_client::{AccessToken, TokenError, TokenFuture, TokenProvider, security};
    use tokio::sync::Mutex;

    /// A token is asked for again this long before it expires.
    const EARLY: Duration = Duration::minutes(5);

    /// Tokens of the developer tools' account, kept until shortly before they expire: the
    /// credential runs `az` for each token it gives, which takes about a second.
    pub struct Developer {
        credential: Arc<DeveloperToolsCredential>,
        cached: Mutex<Option<(AccessToken, OffsetDateTime)>>,
    }

    impl Developer {
        pub fn new() -> Result<Self, String> {
            let credential = DeveloperToolsCredential::new(None)
                .map_err(|error| format!("the Azure developer credentials: {error}"))?;
            Ok(Self {
                credential,
                cached: Mutex::new(None),
            })
        }
    }

    impl TokenProvider for Developer {
        fn token(&self) -> TokenFuture<'_> {
            Box::pin(async move {
                let mut cached = self.cached.lock().await;
                if let Some((token, expires)) = cached.as_ref() {
                    if OffsetDateTime::now_utc() + EARLY < *expires {
                        return Ok(token.clone());
                    }
                }
                let token = self
                    .credential
                    .get_token(security::SCOPES, None)
                    .await
                    .map_err(|error| {
                        TokenError::new(format!(
                            "no token from the Azure developer tools (run `az login` first): {error}"
                        ))
                    })?;
                let access = AccessToken::new(token.token.secret().to_owned());
                *cached = Some((access.clone(), token.expires_on));
                Ok(access)
            })
        }
    }
}
