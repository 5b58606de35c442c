#![deny(missing_docs)]
//! The model of the Partner API for referrals (leads and co-sell opportunities), generated at
//! build time from `openapi/referrals.yaml`, and shared by the client (`referrals-client`) and
//! the local sandbox (`referrals-sandbox`).
//!
//! - [`types`]: every schema of the document as a Rust type (by progenitor and typify). Value
//!   sets are open: a value that the service adds later decodes into `Unrecognized` and is
//!   written back unchanged; every object keeps the members that the document does not name
//!   in `extra`. Object types say what the document requires (`NewReferral::new(...)` takes
//!   the required members, `REQUIRED`) and which members the service sets (`READ_ONLY`).
//! - [`facts`]: the API's facts as tables: which members `$filter` and `$orderby` accept, which
//!   paths a JSON Patch may change, the status rules.
//! - [`query`]: typed `$filter`, `$orderby`, `$select` from those tables.
//! - [`patch`]: typed JSON Patch documents from those tables, and their application.
//! - [`transitions`]: the status rules, checked.
//! - [`Operation`] and [`parameters`]: the operations of the document and their parameter
//!   names; [`headers`]: the names of the headers of the answers; [`security`]: the scopes
//!   and roles that a token needs; [`servers`]: the service roots.
//! - [`Amount`] (money as exact decimal text) and [`PatchValue`] (a patch value as JSON text).
//!
//! A reviewable copy of the generated code is committed in `crates/referrals-model/generated/`.

mod amount;
pub mod facts;
mod kind;
pub mod patch;
mod patch_value;
pub mod query;
pub mod transitions;

pub use amount::{Amount, AmountError};

/// A date-time as the generated types write it in JSON: RFC 3339 in UTC with `Z`, the digits
/// of its fraction as it has them (`2024-05-01T00:00:00Z`, `2024-05-01T00:00:00.120Z`). The
/// mirrors, the sync's state and the filters write instants this way, so that each compares
/// with what the JSON holds.
pub fn instant_text(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
pub use patch_value::PatchValue;
/// The OData subset of the API (`$filter`, `$orderby`, `$select`), which the typed queries write.
pub use referrals_odata as odata;

/// The code that the generator makes of the document at build time (feature `codegen`), or its
/// committed copy `generated/model.rs`, which is the same text. Its functions are as long as the
/// document makes them.
#[allow(clippy::too_many_lines)]
mod generated {
    #[cfg(feature = "codegen")]
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
    #[cfg(not(feature = "codegen"))]
    include!("../generated/model.rs");
}

pub use generated::{Operation, headers, parameters, security, servers, types};

/// Partner Center webhooks: the types of the registration API and of the callback that it
/// sends, and the tables of `openapi/webhooks/webhooks.yaml` (its operations, the callback's
/// header names in [`webhooks::parameters::receive_webhook_event`] and [`webhooks::security`],
/// its server). A reviewable copy is committed in `generated/webhooks.rs`.
#[allow(clippy::too_many_lines, missing_docs)]
pub mod webhooks {
    #[cfg(feature = "codegen")]
    include!(concat!(env!("OUT_DIR"), "/webhooks.rs"));
    #[cfg(not(feature = "codegen"))]
    include!("../generated/webhooks.rs");
}

impl Operation {
    /// The operation's path with its parameters (`{id}`...) filled by `values`, in order, each
    /// percent-encoded as a path segment.
    ///
    /// ```
    /// # extern crate referrals_model as referrals_client;
    /// use referrals_client::Operation;
    ///
    /// assert_eq!(
    ///     Operation::GetReferral.path_with(&["a b/c"]),
    ///     "/v1.0/engagements/referrals/a%20b%2Fc"
    /// );
    /// ```
    pub fn path_with(self, values: &[&str]) -> String {
        let mut values = values.iter();
        self.path()
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') && segment.ends_with('}') {
                    values
                        .next()
                        .map(|value| referrals_odata::wire::encode_segment(value))
                        .unwrap_or_else(|| segment.to_owned())
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

impl Operation {
    /// The names of the operation's query parameters, in the document's order.
    pub fn query_parameters(self) -> impl Iterator<Item = &'static str> {
        self.parameters()
            .iter()
            .filter(|(_, location)| *location == "query")
            .map(|(name, _)| *name)
    }
}

/// An optional string, as the builders of the generated types take it: `"text"`, a `String`,
/// or an `Option` of either (`None::<String>` leaves the member out).
///
/// ```
/// # extern crate referrals_model as referrals_client;
/// use referrals_client::types::CustomerProfile;
///
/// let profile: CustomerProfile = CustomerProfile::builder().name("Contoso").try_into().unwrap();
/// assert_eq!(profile.name.as_deref(), Some("Contoso"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionalText(Option<String>);

impl OptionalText {
    /// The text, if any.
    pub fn into_option(self) -> Option<String> {
        self.0
    }
}

impl From<&str> for OptionalText {
    fn from(text: &str) -> Self {
        Self(Some(text.to_owned()))
    }
}

impl From<String> for OptionalText {
    fn from(text: String) -> Self {
        Self(Some(text))
    }
}

impl From<&String> for OptionalText {
    fn from(text: &String) -> Self {
        Self(Some(text.clone()))
    }
}

impl From<Option<String>> for OptionalText {
    fn from(text: Option<String>) -> Self {
        Self(text)
    }
}

impl From<Option<&str>> for OptionalText {
    fn from(text: Option<&str>) -> Self {
        Self(text.map(str::to_owned))
    }
}
