#![deny(missing_docs)]
//! Rust client of the Partner API for referrals: leads and co-sell opportunities.
//!
//! The types and the [`Client`] are generated at build time from `openapi/referrals.yaml` by
//! progenitor (through `referrals-codegen`); a reviewable copy of that code is committed in
//! `crates/referrals-client/generated/`. Around them, this crate writes by hand:
//!
//! - the runtime that every request goes through ([`Runtime`], made by [`Client::builder`]):
//!   bearer tokens from a [`TokenProvider`], `MS-RequestId` and `MS-CorrelationId`, retries
//!   ([`RetryPolicy`]), timeouts, `tracing` spans;
//! - calls with one error type ([`Error`]), safe paging ([`Client::list_all`],
//!   [`Client::list_page`]) and update helpers that follow the status rules
//!   ([`Client::accept`], [`Client::decline`], [`Client::close_won`], [`Client::close_lost`]);
//! - typed OData queries ([`query`]);
//! - the types that the generator is told to use: [`Amount`] (money as exact decimal text) and
//!   [`PatchValue`]. The open value sets ([`types::ReferralStatus`] and the like) are generated
//!   by `referrals-codegen`: a value that the service adds later decodes into `Unrecognized` and
//!   is written back unchanged.
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
mod calls;
mod error;
pub mod retry;
mod runtime;

pub use referrals_model::{
    Amount, AmountError, Operation, PatchValue, facts, parameters, patch, query, transitions, types,
};

pub use auth::{AccessToken, StaticToken, TokenError, TokenFn, TokenFuture, TokenProvider};
pub use calls::{Continuation, Page};
pub use error::{Error, ErrorKind};
pub use retry::{Clock, RetryPolicy, SystemClock};
pub use runtime::{
    BuildError, ClientBuilder, MS_CORRELATION_ID, MS_REQUEST_ID, REQUEST_ID, Runtime,
};

/// progenitor's error of the generated builders, which the methods of this crate turn into
/// [`Error`].
pub use progenitor_client::Error as GeneratedError;

/// The code that progenitor generates from the document (see `generated/client.rs` for the
/// reviewable copy). Its items are re-exported at the crate root, where its own references to
/// hand-written types (`crate::Runtime`, `crate::Amount`, `crate::types::...`) point.
mod generated {
    include!(concat!(env!("OUT_DIR"), "/client.rs"));
}

pub use generated::{ByteStream, Client, ClientInfo, ResponseValue, builder, prelude};

/// The examples of README.md, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
