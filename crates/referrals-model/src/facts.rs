//! The API's facts as tables, generated from the document's vendor extensions
//! (`x-filterable`, `x-sortable`, `x-patchable`, `x-status-rules`; see the document's
//! description), and the types of their entries.
//!
//! ```
//! # extern crate referrals_model as referrals_client;
//! use referrals_client::facts::{self, Operators};
//! use referrals_client::odata::CompareOp;
//!
//! let updated = facts::filterable("updatedDateTime").unwrap();
//! assert!(updated.operators.contains(CompareOp::Ge));
//! assert!(!facts::filterable("status").unwrap().operators.contains(CompareOp::Gt));
//! assert!(facts::filterable("organizationName").is_none(), "not documented as filterable");
//! ```
//!
//! Each entry carries a function that reads its member from a resource, so that a server (the
//! sandbox) evaluates filters and orders from the tables alone: a member added to the document
//! is filterable everywhere after `cargo xtask codegen`, with no other edit.

use std::fmt;

use referrals_odata::{CompareOp, LambdaKind};

use crate::types::JsonPatchOp;

pub use crate::generated::tables::*;

pub use crate::kind::{AsScalar, Kind, Scalar, SqliteValue, Value, scalar};

/// A set of comparison operators.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operators(u8);

impl Operators {
    /// `eq`
    pub const EQ: u8 = 1;
    /// `ne`
    pub const NE: u8 = 1 << 1;
    /// `gt`
    pub const GT: u8 = 1 << 2;
    /// `ge`
    pub const GE: u8 = 1 << 3;
    /// `lt`
    pub const LT: u8 = 1 << 4;
    /// `le`
    pub const LE: u8 = 1 << 5;

    /// The set of the bits `bits` (`Operators::EQ | Operators::NE`).
    pub const fn new(bits: u8) -> Self {
        Self(bits)
    }

    /// The bit of one operator.
    pub const fn bit(op: CompareOp) -> u8 {
        match op {
            CompareOp::Eq => Self::EQ,
            CompareOp::Ne => Self::NE,
            CompareOp::Gt => Self::GT,
            CompareOp::Ge => Self::GE,
            CompareOp::Lt => Self::LT,
            CompareOp::Le => Self::LE,
        }
    }

    /// The bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether `op` is in the set.
    pub const fn contains(self, op: CompareOp) -> bool {
        self.0 & Self::bit(op) != 0
    }

    /// The operators in the set, by their keywords.
    pub fn keywords(self) -> Vec<&'static str> {
        [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ]
        .into_iter()
        .filter(|op| self.contains(*op))
        .map(CompareOp::keyword)
        .collect()
    }
}

impl fmt::Debug for Operators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keywords()).finish()
    }
}

/// How a table reads a member of the resource.
pub type Getter = for<'a> fn(&'a Resource) -> Scalar<'a>;

/// A member that `$filter` may name (outside a lambda).
pub struct Filterable {
    /// Its path, as a filter writes it (`customerProfile/address/country`).
    pub path: &'static str,
    /// Its name, for its typed filter and its flag: the `x-accessors` name of its path where
    /// there is one (`customerSize`), else its last segment (or its path, when two members
    /// share one).
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// The comparison operators that it takes.
    pub operators: Operators,
    /// For a member of an open value set ([`Kind::Set`]), the values known today, in the
    /// document's order (others may come); empty otherwise.
    pub known: &'static [&'static str],
    /// Reads it from a resource.
    pub get: Getter,
}

/// The members of the items of an array that `$filter` may compare in a lambda
/// (`team/any(t:t/email eq '...')`).
pub struct Lambda {
    /// The array, as a filter writes it (`team`).
    pub collection: &'static str,
    /// The lambda that the document names (`any`).
    pub lambda: LambdaKind,
    /// The members of the items that may be compared.
    pub members: &'static [LambdaMember],
    /// Reads, for each item of the array, the values of [`Self::members`] in their order.
    pub rows: for<'a> fn(&'a Resource) -> Vec<Vec<Scalar<'a>>>,
}

impl Lambda {
    /// The range variable that filters name an item with: the array's initial, as in the
    /// documentation's `team/any(t:t/email eq ...)`.
    pub fn variable(&self) -> String {
        variable(self.collection)
    }
}

/// The range variable for the array `collection`: its initial (`x` when it has none).
pub fn variable(collection: &str) -> String {
    collection
        .rsplit('/')
        .next()
        .and_then(|name| name.chars().next())
        .filter(char::is_ascii_alphabetic)
        .map_or_else(
            || "x".to_owned(),
            |first| first.to_ascii_lowercase().to_string(),
        )
}

/// A member of the items of a [`Lambda`]'s array.
pub struct LambdaMember {
    /// Its path within an item (`email`).
    pub path: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// The comparison operators that it takes.
    pub operators: Operators,
}

/// A member that `$orderby` may name.
pub struct Sortable {
    /// Its path.
    pub path: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// Reads it from a resource.
    pub get: Getter,
}

/// A JSON Pointer that a JSON Patch may change.
pub struct Patchable {
    /// The pointer (`/details/dealValue`, `/team/-`).
    pub pointer: &'static str,
    /// The operations accepted on it.
    pub ops: &'static [JsonPatchOp],
}

/// The changes allowed from one status.
pub struct StatusRule {
    /// The status.
    pub from: Status,
    /// The statuses that a referral in it may move to.
    pub to: &'static [Status],
    /// The substatuses that go with it; the first is the one given to a referral that enters
    /// the status without one.
    pub substatus: &'static [Substatus],
}

/// The filterable member (outside lambdas) whose path is `path`.
pub fn filterable(path: &str) -> Option<&'static Filterable> {
    FILTERABLE.iter().find(|member| member.path == path)
}

/// The lambda over the array `collection`.
pub fn lambda(collection: &str) -> Option<&'static Lambda> {
    LAMBDAS
        .iter()
        .find(|lambda| lambda.collection == collection)
}

/// The sortable member whose path is `path`.
pub fn sortable(path: &str) -> Option<&'static Sortable> {
    SORTABLE.iter().find(|member| member.path == path)
}

/// Every filterable path, lambdas written as OData writes them (`team/any(t:t/email)`), for
/// messages that say what is accepted.
pub fn filterable_paths() -> Vec<String> {
    FILTERABLE
        .iter()
        .map(|member| member.path.to_owned())
        .chain(LAMBDAS.iter().flat_map(|lambda| {
            let kind = match lambda.lambda {
                LambdaKind::Any => "any",
                LambdaKind::All => "all",
            };
            let variable = lambda.variable();
            lambda.members.iter().map(move |member| {
                format!(
                    "{}/{kind}({variable}:{variable}/{})",
                    lambda.collection, member.path
                )
            })
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Amount;
    use std::cmp::Ordering;

    #[test]
    fn operator_sets() {
        let set = Operators::new(Operators::EQ | Operators::GE);
        assert!(set.contains(CompareOp::Eq) && set.contains(CompareOp::Ge));
        assert!(!set.contains(CompareOp::Ne) && !set.contains(CompareOp::Le));
        assert_eq!(set.keywords(), ["eq", "ge"]);
        assert_eq!(format!("{set:?}"), r#"["eq", "ge"]"#);
    }

    #[test]
    fn scalars_order_with_null_first() {
        let a: Amount = "10".parse().unwrap();
        let b: Amount = "9.99".parse().unwrap();
        assert_eq!(
            Scalar::Money(&a).compare(&Scalar::Money(&b)),
            Ordering::Greater
        );
        assert_eq!(Scalar::Null.compare(&Scalar::Text("a")), Ordering::Less);
        assert_eq!(Scalar::Text("a").compare(&Scalar::Null), Ordering::Greater);
        assert_eq!(
            Scalar::Bool(false).compare(&Scalar::Bool(true)),
            Ordering::Less
        );
    }
}
