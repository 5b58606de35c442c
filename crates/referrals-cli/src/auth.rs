//! Where the bearer token comes from: `--token` / `PARTNER_TOKEN`, or (feature `azure`) the
//! Azure SDK's developer credentials, the account of `az login` or `azd auth login`, asked for
//! the scopes of the document's security scheme ([`referrals_client::security::SCOPES`]).

use referrals_client::{StaticToken, TokenFuture, TokenProvider};

/// A source of bearer tokens.
pub enum Tokens {
    /// The one token given.
    Given(StaticToken),
    /// The Azure developer tools' account (`az login`, `azd auth login`).
    #[cfg(feature = "azure")]
    Azure(referrals_client::AzureCredential),
}

impl TokenProvider for Tokens {
    fn token(&self) -> TokenFuture<'_> {
        match self {
            Tokens::Given(token) => token.token(),
            #[cfg(feature = "azure")]
            Tokens::Azure(credential) => {
                let token = credential.token();
                Box::pin(async move {
                    token.await.map_err(|error| {
                        referrals_client::TokenError::new(format!(
                            "no token from the Azure developer tools; sign in with `az login` \
                             (or `azd auth login`), or pass --token ({})",
                            std::error::Error::source(&error)
                                .map_or_else(|| error.to_string(), ToString::to_string)
                        ))
                    })
                })
            }
        }
    }
}

/// The token source: the token given, or else the Azure developer tools' account when the
/// build has them.
pub fn provider(token: Option<String>) -> Result<Tokens, String> {
    match token {
        Some(token) => referrals_client::env::token(&token)
            .map(Tokens::Given)
            .map_err(|error| format!("{error} (or --token)")),
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
    let credential = azure_identity::DeveloperToolsCredential::new(None)
        .map_err(|error| format!("the Azure developer credentials: {error}"))?;
    Ok(Tokens::Azure(referrals_client::AzureCredential::new(
        credential,
    )))
}
