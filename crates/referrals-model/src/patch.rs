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

pub use crate::generated::patching::{PatchPath, apply, from_of, operation, value_of};

/// A JSON Patch document under construction: one typed method per path and op of
/// `x-patchable` (`set_<member>` for `replace` or `add`, `append_<array>` for an item added at
/// `/-`, `remove_<member>`, `test_<member>`, `move_<member>_from`, `copy_<member>_from`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    operations: Vec<JsonPatchOperation>,
    /// The first operation that could not be written (a value that is not JSON).
    error: Option<PatchError>,
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
            Some(error) => Err(error),
            None => Ok(JsonPatch(self.operations)),
        }
    }

    /// Adds an operation with a value; used by the generated methods, which fix `op` and
    /// `path` from the document.
    pub(crate) fn push_value(self, op: JsonPatchOp, path: &str, value: &impl Serialize) -> Self {
        match encode(path, value) {
            Ok(value) => self.push(op, path, Some(value), None),
            Err(error) => self.fail(error),
        }
    }

    /// Adds an operation without a value (`remove`, or `move` and `copy` with their `from`).
    #[allow(dead_code, reason = "used when the document declares one of these ops")]
    pub(crate) fn push_bare(self, op: JsonPatchOp, path: &str, from: Option<PatchPath>) -> Self {
        self.push(op, path, None, from.map(|from| from.pointer().to_owned()))
    }

    fn push(
        mut self,
        op: JsonPatchOp,
        path: &str,
        value: Option<PatchValue>,
        from: Option<String>,
    ) -> Self {
        match operation(op, path.to_owned(), value, from) {
            Some(operation) => {
                self.operations.push(operation);
                self
            }
            // The codegen refuses an op whose members the schema cannot hold.
            None => self.fail(PatchError::Value {
                path: path.to_owned(),
                message: format!("the document's `JsonPatchOperation` cannot hold a `{op}`"),
            }),
        }
    }

    fn fail(mut self, error: PatchError) -> Self {
        self.error.get_or_insert(error);
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
    /// The value does not have the member's type, or is missing.
    #[error("the value does not fit {path}: {message}")]
    Value {
        /// The path.
        path: String,
        /// Why.
        message: String,
    },
    /// The `from` of a `move` or `copy` is missing or names no member that it may take.
    #[error("the `from` of the `{op}` at {path}: {message}")]
    From {
        /// The path.
        path: String,
        /// The op.
        op: String,
        /// Why.
        message: String,
    },
    /// The member that a `remove`, `move` or `copy` reads is absent.
    #[error("the `{op}` at {path} needs a value at {absent}, and there is none")]
    Absent {
        /// The path.
        path: String,
        /// The op.
        op: String,
        /// The pointer that holds nothing.
        absent: String,
    },
    /// A `test` found another value than the expected one.
    #[error("the test of {path} failed: it holds {found}, not {expected}")]
    Test {
        /// The path.
        path: String,
        /// The value expected, as JSON.
        expected: String,
        /// The value found, as JSON (`null` when absent).
        found: String,
    },
}

impl PatchError {
    /// The path that the error is about.
    pub fn path(&self) -> &str {
        match self {
            PatchError::UnknownPath { path, .. }
            | PatchError::Op { path, .. }
            | PatchError::Value { path, .. }
            | PatchError::From { path, .. }
            | PatchError::Absent { path, .. }
            | PatchError::Test { path, .. } => path,
        }
    }

    pub(crate) fn unknown_path(operation: &JsonPatchOperation) -> Self {
        PatchError::UnknownPath {
            path: operation.path.clone(),
            known: PATCHABLE.iter().map(|entry| entry.pointer).collect(),
        }
    }

    pub(crate) fn absent(operation: &JsonPatchOperation, absent: &str) -> Self {
        PatchError::Absent {
            path: operation.path.clone(),
            op: operation.op.to_string(),
            absent: absent.to_owned(),
        }
    }

    #[allow(dead_code, reason = "used when a patchable member is required")]
    pub(crate) fn required(path: &str) -> Self {
        PatchError::Value {
            path: path.to_owned(),
            message: "the member is required and cannot be removed".into(),
        }
    }

    pub(crate) fn not_at_append(operation: &JsonPatchOperation) -> Self {
        PatchError::Op {
            path: operation.path.clone(),
            op: operation.op.to_string(),
            allowed: vec!["add".into()],
        }
    }

    fn from(operation: &JsonPatchOperation, message: String) -> Self {
        PatchError::From {
            path: operation.path.clone(),
            op: operation.op.to_string(),
            message,
        }
    }
}

/// What one operation does, as RFC 6902 defines its op, with the member it takes.
///
/// The resource is typed, which departs from the RFC's JSON document in four ways, as a service
/// that patches a typed model does: `add` and `replace` are alike (a `replace` of an absent
/// member sets it), and both make the objects on the way that do not exist yet; a member that
/// is `null` and an absent one are the same (a `test` of `null` passes on an absent member);
/// and a `test` compares typed values, so that members that the model does not name are not
/// compared.
#[derive(Debug)]
pub enum Step<'a> {
    /// `add` or `replace`: the member takes the value (an item is appended at `/-`).
    Set(&'a PatchValue),
    /// `remove`: the member must be present, and is then absent.
    Remove,
    /// `test`: the member must hold the value (absent when the value is `null`).
    Test(&'a PatchValue),
    /// `move`: the member at `from` must be present; it is taken away and set here.
    Move(PatchPath),
    /// `copy`: the member at `from` must be present; its value is set here.
    Copy(PatchPath),
}

impl<'a> Step<'a> {
    /// The step of `operation`, with its `value` or `from` checked to be there.
    pub fn of(operation: &'a JsonPatchOperation) -> Result<Self, PatchError> {
        let op = operation.op.to_string();
        let value = || {
            value_of(operation).ok_or_else(|| PatchError::Value {
                path: operation.path.clone(),
                message: format!("`{op}` takes a `value`, and there is none"),
            })
        };
        match op.as_str() {
            "add" | "replace" => Ok(Step::Set(value()?)),
            "test" => Ok(Step::Test(value()?)),
            "remove" => Ok(Step::Remove),
            "move" => from_path(operation, true).map(Step::Move),
            "copy" => from_path(operation, false).map(Step::Copy),
            _ => Err(PatchError::Op {
                path: operation.path.clone(),
                op,
                allowed: allowed_at(&operation.path),
            }),
        }
    }
}

/// The `from` of a `move` (which removes it: its path must take `remove`) or a `copy`.
fn from_path(operation: &JsonPatchOperation, moves: bool) -> Result<PatchPath, PatchError> {
    let Some(pointer) = from_of(operation) else {
        return Err(PatchError::from(operation, "it is missing".into()));
    };
    let Some(from) = PatchPath::from_pointer(pointer) else {
        let known: Vec<&str> = PatchPath::ALL.iter().map(|path| path.pointer()).collect();
        return Err(PatchError::from(
            operation,
            format!("`{pointer}` is not one of {}", known.join(", ")),
        ));
    };
    let removable = allowed_at(pointer).iter().any(|op| op == "remove");
    if moves && !removable {
        return Err(PatchError::from(
            operation,
            format!("a move removes {pointer}, which does not take `remove`"),
        ));
    }
    let inside = operation
        .path
        .strip_prefix(pointer)
        .is_some_and(|rest| rest.starts_with('/'));
    if moves && inside {
        return Err(PatchError::from(
            operation,
            format!("{pointer} cannot move into itself"),
        ));
    }
    Ok(from)
}

/// The ops that `path` takes.
fn allowed_at(path: &str) -> Vec<String> {
    PATCHABLE
        .iter()
        .filter(|entry| entry.pointer == path)
        .flat_map(|entry| entry.ops.iter().map(ToString::to_string))
        .collect()
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

/// `value` as the member's type, decoded from its text (so money keeps its digits).
pub(crate) fn decode<T: DeserializeOwned>(
    operation: &JsonPatchOperation,
    value: &PatchValue,
) -> Result<T, PatchError> {
    value.to_value().map_err(|error| PatchError::Value {
        path: operation.path.clone(),
        message: format!("{} is not one: {error}", value.json()),
    })
}

/// The JSON text of a member's value.
pub(crate) fn encode<T: Serialize + ?Sized>(
    path: &str,
    value: &T,
) -> Result<PatchValue, PatchError> {
    PatchValue::from_serialize(value).map_err(|error| PatchError::Value {
        path: path.to_owned(),
        message: error.to_string(),
    })
}

/// A `test`: `found` (the member) must equal `expected` (`None` for `null`).
pub(crate) fn test<T: PartialEq + Serialize>(
    operation: &JsonPatchOperation,
    found: Option<&T>,
    expected: Option<&T>,
) -> Result<(), PatchError> {
    if found == expected {
        return Ok(());
    }
    let json = |value: Option<&T>| {
        encode(&operation.path, &value).map_or_else(|_| "?".to_owned(), |value| value.to_string())
    };
    Err(PatchError::Test {
        path: operation.path.clone(),
        expected: json(expected),
        found: json(found),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Member, Referral, ReferralStatus};

    fn operation(op: JsonPatchOp, path: &str, json: &str) -> JsonPatchOperation {
        let value = PatchValue::from_json(json).unwrap();
        super::operation(op, path.into(), Some(value), None).unwrap()
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
