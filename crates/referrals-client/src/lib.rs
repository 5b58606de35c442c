#![deny(missing_docs)]
//! Rust client of the Partner API for referrals: leads and co-sell opportunities.
//!
//! The types and the [`Client`] are generated at build time from `openapi/referrals.yaml` by
//! progenitor (through `referrals-codegen`); a reviewable copy of that code is committed in
//! `crates/referrals-client/generated/`. Beside them, this crate writes by hand the few types
//! that the generator is told to use:
//!
//! - [`Amount`]: money, kept as exact decimal text;
//! - [`PatchValue`]: the value of a JSON Patch operation, kept as JSON text;
//! - the open value sets ([`types::ReferralStatus`] and the like) are generated too, by
//!   `referrals-codegen`: a value that the service adds later decodes into `Unrecognized` and
//!   is written back unchanged.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use referrals_client::Client;
//!
//! let client = Client::new("https://api.partner.microsoft.com");
//! let page = client
//!     .list_referrals()
//!     .filter("status eq 'New' and direction eq 'Incoming'")
//!     .orderby("createdDateTime desc")
//!     .top(10)
//!     .send()
//!     .await?;
//! for referral in page.value.iter().flatten() {
//!     println!("{:?} {:?}", referral.id, referral.status);
//! }
//! # Ok(())
//! # }
//! ```

mod amount;
mod patch_value;

pub use amount::{Amount, AmountError};
pub use patch_value::PatchValue;

include!(concat!(env!("OUT_DIR"), "/referrals.rs"));

/// The examples of README.md, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
