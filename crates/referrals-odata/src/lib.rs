//! The OData v4 subset that the referrals API speaks: `$filter`, `$orderby` and `$select`.
//!
//! [`parse_filter`] turns a `$filter` text into an [`Expr`], and `Display` writes an [`Expr`]
//! back as text that parses to the same expression. The client builds its filters as [`Expr`]
//! and the sandbox parses and evaluates them, so both sides quote the same way.
//!
//! Supported: comparisons (`eq ne gt ge lt le`), `and`, `or`, `not`, parentheses, member paths
//! (`customerProfile/address/country`), lambdas over collections
//! (`team/any(t:t/email eq 'someone@contoso.com')`, `all` too), and literals: strings in single
//! quotes with `''` for a quote, numbers, `true`, `false`, `null`, date-times
//! (`2020-10-30T21:03:00Z`), dates and GUIDs written bare. Arithmetic and functions (`contains`,
//! `startswith`...) are not part of the API's documented surface and are refused.
//!
//! No crate on crates.io parses this subset with positions in its errors, which the sandbox
//! needs for its 400 answers; it is small enough to write here.

mod lexer;
mod parser;
mod print;
pub mod wire;

use std::fmt;

pub use parser::{parse_filter, parse_orderby, parse_select};

/// A boolean `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `left op right`.
    Compare {
        /// The left operand.
        left: Operand,
        /// The operator.
        op: CompareOp,
        /// The right operand.
        right: Operand,
    },
    /// Both hold.
    And(Box<Expr>, Box<Expr>),
    /// Either holds.
    Or(Box<Expr>, Box<Expr>),
    /// The operand does not hold.
    Not(Box<Expr>),
    /// `collection/any(v:predicate)` or `collection/all(v:predicate)`.
    Lambda {
        /// The collection, such as `team`.
        collection: Member,
        /// `any` or `all`.
        kind: LambdaKind,
        /// The name of the range variable, such as `t`.
        variable: String,
        /// The predicate, in which members start with the variable (`t/email`).
        predicate: Box<Expr>,
    },
}

impl Expr {
    /// `self and other`.
    pub fn and(self, other: Expr) -> Expr {
        Expr::And(Box::new(self), Box::new(other))
    }

    /// `self or other`.
    pub fn or(self, other: Expr) -> Expr {
        Expr::Or(Box::new(self), Box::new(other))
    }

    /// `not self`.
    pub fn negate(self) -> Expr {
        Expr::Not(Box::new(self))
    }

    /// `member op literal`.
    pub fn compare(member: &str, op: CompareOp, literal: Literal) -> Expr {
        Expr::Compare {
            left: Operand::Member(Member::new(member)),
            op,
            right: Operand::Literal(literal),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

impl CompareOp {
    /// The operator's keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

/// `any` or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LambdaKind {
    /// At least one item of the collection satisfies the predicate.
    Any,
    /// Every item does.
    All,
}

/// A side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A member of the resource, or of a lambda's range variable.
    Member(Member),
    /// A literal value.
    Literal(Literal),
}

/// A member path such as `customerProfile/address/country`, with where it was written.
#[derive(Debug, Clone, Eq)]
pub struct Member {
    /// The segments, such as `["customerProfile", "address", "country"]`.
    pub segments: Vec<String>,
    /// The 0-based character offset in the text it was parsed from (0 when built in code).
    pub position: usize,
}

impl Member {
    /// A member from its path, `/`-separated.
    pub fn new(path: &str) -> Self {
        Self {
            segments: path.split('/').map(str::to_owned).collect(),
            position: 0,
        }
    }

    /// The path, `/`-separated.
    pub fn path(&self) -> String {
        self.segments.join("/")
    }
}

/// Two members are the same when their paths are; where they were written does not count.
impl PartialEq for Member {
    fn eq(&self, other: &Self) -> bool {
        self.segments == other.segments
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Literal {
    /// A string, unquoted (`O'Neil`, written `'O''Neil'`).
    String(String),
    /// A number, as written.
    Number(String),
    /// `true` or `false`.
    Boolean(bool),
    /// `null`.
    Null,
    /// A date-time, as written (`2020-10-30T21:03:00Z`).
    DateTime(String),
    /// A date, as written (`2020-10-30`).
    Date(String),
    /// A GUID, as written.
    Guid(String),
}

/// One key of `$orderby`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    /// The member to sort by.
    pub member: Member,
    /// `desc` rather than `asc`.
    pub descending: bool,
}

/// One member of `$select`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectItem {
    /// The member's name.
    pub name: String,
    /// The 0-based character offset where it was written.
    pub position: usize,
}

/// A text that is not valid in the subset, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct ParseError {
    /// The 1-based character position of the problem.
    pub position: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        print::literal(self, f)
    }
}

/// Quotes `text` as an OData string literal: in single quotes, with each quote doubled, so that
/// no value can end the literal early and change what the filter means.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
