//! JSON Patch documents over the paths that the document's `x-patchable` lists: built with
//! typed values on the client ([`Patch`]), applied and checked on the server ([`apply`]).
//!
//! ```
//! # extern crate referrals_model as referrals_client;
//! use referrals_client::patch::Patch;
//! use referrals_client::types::{ReferralStatus, ReferralSubstatus};
//!
//! let amount: referrals_client::Amount = "12345678901234.56".parse().unwrap();
//! let patch = Patch::new()
//!     .set_status(ReferralStatus::Closed)
//!     .set_substatus(ReferralSubstatus::Won)
//!     .set_details_deal_value(amount)
//!     .set_status_reason("Signed on Friday.")
//!     .into_json_patch()
//!     .unwrap();
//! assert_eq!(
//!     serde_json::to_string(&patch).unwrap(),
//!     r#"[{"op":"replace","path":"/status","value":"Closed"},{"op":"replace","path":"/substatus","value":"Won"},{"op":"replace","path":"/details/dealValue","value":12345678901234.56},{"op":"replace","path":"/statusReason","value":"Signed on Friday."}]"#
//! );
//! ```
//!
//! A path that the document does not list has no method, and a value of the wrong type does
//! not compile: `Patch::new().set_status("Won")` is an error, as is a method for `/id`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::PatchValue;
use crate::facts::PATCHABLE;
use crate::types::{JsonPatch, JsonPatchOp, JsonPatchOperation};

pub use crate::generated::patching::apply;

/// A JSON Patch document under construction: one typed method per path of `x-patchable`
/// (`set_<member>` for a member, `append_<array>` for an item added at `/-`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    operations: Vec<JsonPatchOperation>,
    /// The first value that could not be written as JSON (none of the generated types fails).
    error: Option<String>,
}

impl Patch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no operation was added.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The operations so far.
    pub fn operations(&self) -> &[JsonPatchOperation] {
        &self.operations
    }

    /// This patch, then the operations of `other`.
    pub fn and(mut self, other: Patch) -> Self {
        self.operations.extend(other.operations);
        if self.error.is_none() {
            self.error = other.error;
        }
        self
    }

    /// The JSON Patch document, in the order the operations were added.
    pub fn into_json_patch(self) -> Result<JsonPatch, PatchError> {
        match self.error {
            Some(message) => Err(PatchError::Value {
                path: String::new(),
                message,
            }),
            None => Ok(JsonPatch(self.operations)),
        }
    }

    /// Adds an operation; used by the generated methods, which fix `op` and `path` from the
    /// document.
    pub(crate) fn push(mut self, op: JsonPatchOp, path: &str, value: &impl Serialize) -> Self {
        match PatchValue::from_serialize(value) {
            Ok(value) => self
                .operations
                .push(JsonPatchOperation::new(op, path.to_owned(), value)),
            Err(error) => {
                self.error
                    .get_or_insert_with(|| format!("the value for {path}: {error}"));
            }
        }
        self
    }
}

impl TryFrom<Patch> for JsonPatch {
    type Error = PatchError;

    fn try_from(patch: Patch) -> Result<Self, PatchError> {
        patch.into_json_patch()
    }
}

/// Why a JSON Patch operation cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The path is not one that the document lets a patch change.
    #[error("`{path}` is not a member that can be changed; the patchable paths are {}", known.join(", "))]
    UnknownPath {
        /// The path as sent.
        path: String,
        /// The paths that can be changed.
        known: Vec<&'static str>,
    },
    /// The op is not accepted on this path.
    #[error("the op `{op}` is not accepted on {path}; it takes {}", allowed.join(" or "))]
    Op {
        /// The path.
        path: String,
        /// The op as sent.
        op: String,
        /// The ops that the path takes.
        allowed: Vec<String>,
    },
    /// The value does not have the member's type.
    #[error("the value does not fit {path}: {message}")]
    Value {
        /// The path.
        path: String,
        /// Why.
        message: String,
    },
}

impl PatchError {
    /// The path that the error is about.
    pub fn path(&self) -> &str {
        match self {
            PatchError::UnknownPath { path, .. }
            | PatchError::Op { path, .. }
            | PatchError::Value { path, .. } => path,
        }
    }

    pub(crate) fn unknown_path(operation: &JsonPatchOperation) -> Self {
        PatchError::UnknownPath {
            path: operation.path.clone(),
            known: PATCHABLE.iter().map(|entry| entry.pointer).collect(),
        }
    }
}

/// Refuses an op that the path does not take.
pub(crate) fn allow(operation: &JsonPatchOperation, ops: &[JsonPatchOp]) -> Result<(), PatchError> {
    if ops.contains(&operation.op) {
        Ok(())
    } else {
        Err(PatchError::Op {
            path: operation.path.clone(),
            op: operation.op.to_string(),
            allowed: ops.iter().map(ToString::to_string).collect(),
        })
    }
}

/// The operation's value as the member's type, decoded from its text (so money keeps its
/// digits).
pub(crate) fn decode<T: DeserializeOwned>(operation: &JsonPatchOperation) -> Result<T, PatchError> {
    operation
        .value
        .to_value()
        .map_err(|error| PatchError::Value {
            path: operation.path.clone(),
            message: format!("{} is not one: {error}", operation.value.json()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Member, Referral, ReferralStatus};

    fn operation(op: JsonPatchOp, path: &str, json: &str) -> JsonPatchOperation {
        JsonPatchOperation::new(op, path.into(), PatchValue::from_json(json).unwrap())
    }

    #[test]
    fn apply_follows_the_table() {
        let mut referral = Referral::default();
        apply(
            &mut referral,
            &operation(JsonPatchOp::Replace, "/status", r#""Active""#),
        )
        .unwrap();
        assert_eq!(referral.status, Some(ReferralStatus::Active));
        apply(
            &mut referral,
            &operation(
                JsonPatchOp::Add,
                "/details/dealValue",
                "98765432109876543.21",
            ),
        )
        .unwrap();
        let value = referral.details.as_ref().unwrap().deal_value.as_ref();
        assert_eq!(value.unwrap().as_str(), "98765432109876543.21");
        apply(
            &mut referral,
            &operation(JsonPatchOp::Add, "/team/-", r#"{"email":"a@contoso.com"}"#),
        )
        .unwrap();
        assert_eq!(
            referral.team.as_deref().unwrap()[0].email.as_deref(),
            Some("a@contoso.com")
        );

        let unknown = apply(
            &mut referral,
            &operation(JsonPatchOp::Replace, "/id", r#""x""#),
        );
        assert!(
            matches!(&unknown, Err(PatchError::UnknownPath { known, .. }) if known.contains(&"/status")),
            "{unknown:?}"
        );
        let op = apply(
            &mut referral,
            &operation(JsonPatchOp::Replace, "/team/-", "{}"),
        )
        .unwrap_err();
        assert_eq!(
            op.to_string(),
            "the op `replace` is not accepted on /team/-; it takes add"
        );
        let value = apply(
            &mut referral,
            &operation(JsonPatchOp::Replace, "/details/dealValue", r#""ten""#),
        )
        .unwrap_err();
        assert!(
            value
                .to_string()
                .starts_with("the value does not fit /details/dealValue")
        );
    }

    #[test]
    fn the_builder_writes_the_table_s_paths() {
        let member = Member {
            email: Some("o'neil@contoso.com".into()),
            ..Member::default()
        };
        let patch = Patch::new()
            .append_team(member.clone())
            .set_status_reason("x")
            .into_json_patch()
            .unwrap();
        let mut referral = Referral::default();
        for operation in patch.iter() {
            apply(&mut referral, operation).unwrap();
        }
        assert_eq!(referral.team, Some(vec![member]));
        assert_eq!(referral.status_reason.as_deref(), Some("x"));
    }
}
