//! Partner Center webhooks for referrals: the registration API's client, generated from
//! `openapi/webhooks/webhooks.yaml` (reviewable copy in `generated/webhooks.rs`) on the types of
//! `referrals_model::webhooks`, which it re-exports, and the calls of this crate around them.
//!
//! The registration API lives on its own host; its client has its own service root (the
//! document's server, `https://api.partnercenter.microsoft.com`, by default) and goes through
//! the same runtime as the referrals client: bearer token, request ids, retries, bounded
//! answers. The callback that Partner Center POSTs to a registered URL is described in the same
//! document: its body is [`types::WebhookEvent`], its headers are the constants of
//! [`parameters::receive_webhook_event`] and [`security`]; `referrals-events` verifies it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use referrals_client::webhooks::{self, types::{WebhookEventName, WebhookRegistration}};
//!
//! let client = webhooks::Client::from_env()?; // PARTNER_WEBHOOKS_ROOT, PARTNER_TOKEN
//! let registration = WebhookRegistration::new(
//!     "https://crm.contoso.com/partner-center/events".into(),
//!     vec![WebhookEventName::ReferralCreated, WebhookEventName::ReferralUpdated],
//! );
//! let registered = client.register(&registration).await?;
//! println!("registered as {:?}", registered.subscriber_id);
//! # Ok(())
//! # }
//! ```

#![allow(missing_docs, clippy::too_many_lines)]

#[cfg(feature = "codegen")]
include!(concat!(env!("OUT_DIR"), "/webhooks.rs"));
#[cfg(not(feature = "codegen"))]
include!("../generated/webhooks.rs");

mod calls;

pub use calls::ROOT_VARIABLE;
pub use referrals_model::webhooks::{Operation, headers, parameters, security, servers};
