#![deny(missing_docs)]
//! Rust client of the Partner API for referrals: leads and co-sell opportunities.
//!
//! The [`Client`] and its operation builders are generated at build time from
//! `openapi/referrals.yaml` by progenitor (through `referrals-codegen`), on the types of
//! `referrals-model`, which this crate re-exports ([`types`], [`query`], [`patch`], [`facts`]...).
//! Reviewable copies of the generated code are committed in the crates' `generated/` folders.
//! Around them, this crate writes by hand:
//!
//! - the calls, one per operation, with one error type ([`Error`]): [`Client::referral`],
//!   [`Client::create`], [`Client::update`], the status changes that follow the document's rules
//!   ([`Client::accept`], [`Client::decline`], [`Client::close_won`], [`Client::close_lost`]),
//!   and listings ([`Client::list_all`], [`Client::pages`], [`Client::list_page`] with a typed
//!   [`Continuation`]);
//! - the runtime that every request goes through ([`Runtime`], made by [`Client::builder`]):
//!   bearer tokens from a [`TokenProvider`], `MS-RequestId` and `MS-CorrelationId`, retries
//!   ([`RetryPolicy`]), timeouts, bounded answers, no redirects, `tracing` spans;
//! - an incremental sync of a local copy ([`sync`]).
//!
//! The generated builders (`client.list_referrals_legacy()`, ...) are on the extension traits of
//! [`generated`], for what the calls do not cover; [`Client::run`] gives their errors the same
//! form.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use futures_util::TryStreamExt;
//! use referrals_client::query::{self, OrderBy, Query};
//! use referrals_client::types::{ReferralDirection, ReferralSubstatus};
//! use referrals_client::{Client, StaticToken};
//!
//! let client = Client::builder("https://api.partner.microsoft.com", StaticToken::new("<token>")).build()?;
//! let pending = Query::new()
//!     .filter(query::direction().eq(ReferralDirection::Incoming).and(query::substatus().eq(ReferralSubstatus::Pending)))
//!     .order_by(OrderBy::newest_first());
//! let mut leads = std::pin::pin!(client.list_all(pending));
//! while let Some(lead) = leads.try_next().await? {
//!     let accepted = client.accept(&lead).await?;
//!     println!("accepted {:?}", accepted.id);
//! }
//! # Ok(())
//! # }
//! ```

mod auth;
mod builder;
pub(crate) mod calls;
pub mod concurrency;
mod context;
mod convert;
pub mod env;
mod error;
pub mod flat;
mod limits;
mod pace;
mod paging;
mod pipeline;
mod raw;
pub mod retry;
mod runtime;
mod status_change;
pub mod sync;
mod versioned;
pub mod webhooks;
mod wire;

pub use referrals_model::{
    Amount, AmountError, Operation, OptionalText, PatchValue, facts, headers, instant_text, odata,
    parameters, patch, query, security, servers, transitions, types,
};

#[cfg(feature = "azure")]
pub use auth::AzureCredential;
pub use auth::{AccessToken, StaticToken, TokenError, TokenFn, TokenFuture, TokenProvider};
pub use builder::{BuildError, ClientBuilder, http_client};
pub use env::EnvError;
pub use error::{Error, ErrorKind};
pub use paging::{Continuation, Page, Trail};
pub use raw::RawAnswer;
pub use retry::{Clock, RetryPolicy, SystemClock};
pub use runtime::Runtime;
pub use status_change::{DECIDE_ATTEMPTS, Decided, Decision, StatusChange};

/// progenitor's error of the generated builders; `From` and [`Client::run`] turn it into
/// [`Error`].
pub use progenitor_client::Error as GeneratedError;

/// The code that progenitor generates from the document (see `generated/client.rs` for the
/// reviewable copy): the [`Client`] and, on its extension traits
/// (`ClientReferralsExt`, `ClientLegacyExt`), one builder per operation.
pub mod generated {
    #![allow(missing_docs, clippy::too_many_lines)]
    #[cfg(feature = "codegen")]
    include!(concat!(env!("OUT_DIR"), "/client.rs"));
    #[cfg(not(feature = "codegen"))]
    include!("../generated/client.rs");
}

pub use generated::{ByteStream, Client, ClientInfo, ResponseValue};

/// Makes rustls's `aws-lc-rs` provider the process's default crypto provider, unless one is
/// set already; building a [`Client`] does it too.
///
/// With the feature `rustls` (the default), reqwest is built without a TLS feature of its own:
/// the client is given its rustls configuration ready-made. Another `reqwest::Client` of the
/// same program, whose reqwest has no TLS feature that brings a provider, then needs one to be
/// installed before it is built: call this first.
#[cfg(feature = "rustls")]
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have installed one meanwhile; either is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}
