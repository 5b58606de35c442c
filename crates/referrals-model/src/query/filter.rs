//! The `$filter` of a query: [`Filter`], built from the typed functions of the document's
//! filterable members ([`Field`], [`LambdaField`]) and the values they compare with
//! ([`FilterValue`]), each written as a literal.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use referrals_odata::{CompareOp, Expr, LambdaKind, Literal, Member, Operand};

use crate::facts::Operators;

/// A `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Inner);

#[derive(Debug, Clone, PartialEq)]
enum Inner {
    Expr(Expr),
    Raw(String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Group(Box<Filter>),
}

impl Filter {
    /// A filter written by hand, sent as it is (grouped in parentheses when combined).
    pub fn raw(text: impl Into<String>) -> Self {
        Self(Inner::Raw(text.into()))
    }

    /// A filter from an expression of the `referrals-odata` crate.
    pub fn expr(expr: Expr) -> Self {
        Self(Inner::Expr(expr))
    }

    /// Both hold.
    pub fn and(self, other: Filter) -> Self {
        match (self.0, other.0) {
            (Inner::Expr(a), Inner::Expr(b)) => Self(Inner::Expr(a.and(b))),
            (a, b) => Self(Inner::And(Box::new(Self(a)), Box::new(Self(b)))),
        }
    }

    /// Either holds.
    pub fn or(self, other: Filter) -> Self {
        match (self.0, other.0) {
            (Inner::Expr(a), Inner::Expr(b)) => Self(Inner::Expr(a.or(b))),
            (a, b) => Self(Inner::Or(Box::new(Self(a)), Box::new(Self(b)))),
        }
    }

    /// The same filter in parentheses, as some published examples write it
    /// (`(type eq 'Shared' and direction eq 'Incoming')`); it means the same.
    pub fn grouped(self) -> Self {
        Self(Inner::Group(Box::new(self)))
    }

    /// Does not hold. Written `not (...)`: OData's `not` binds tighter than a comparison.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Self {
        match self.0 {
            Inner::Expr(expr) => Self(Inner::Expr(expr.negate())),
            other => Self(Inner::Not(Box::new(Self(other)))),
        }
    }
}

impl std::ops::Not for Filter {
    type Output = Filter;
    fn not(self) -> Filter {
        Filter::not(self)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Expr(expr) => expr.fmt(f),
            Inner::Raw(text) => f.write_str(text),
            Inner::And(a, b) => write!(f, "({a}) and ({b})"),
            Inner::Or(a, b) => write!(f, "({a}) or ({b})"),
            Inner::Not(a) => write!(f, "not ({a})"),
            Inner::Group(a) => write!(f, "({a})"),
        }
    }
}

/// A value that can be compared with a filterable member of type `T`.
pub trait FilterValue<T> {
    /// The value as an OData literal.
    fn literal(self) -> Literal;
}

impl<T: AsRef<str>> FilterValue<String> for T {
    fn literal(self) -> Literal {
        Literal::String(self.as_ref().to_owned())
    }
}

impl FilterValue<DateTime<Utc>> for DateTime<Utc> {
    fn literal(self) -> Literal {
        Literal::DateTime(crate::instant_text(&self))
    }
}

impl FilterValue<crate::Amount> for crate::Amount {
    fn literal(self) -> Literal {
        Literal::Number(self.as_str().to_owned())
    }
}

impl FilterValue<crate::Amount> for &crate::Amount {
    fn literal(self) -> Literal {
        Literal::Number(self.as_str().to_owned())
    }
}

impl FilterValue<bool> for bool {
    fn literal(self) -> Literal {
        Literal::Boolean(self)
    }
}

impl FilterValue<chrono::NaiveDate> for chrono::NaiveDate {
    fn literal(self) -> Literal {
        Literal::Date(self.to_string())
    }
}

impl FilterValue<uuid::Uuid> for uuid::Uuid {
    fn literal(self) -> Literal {
        Literal::Guid(self.to_string())
    }
}

impl FilterValue<i64> for i64 {
    fn literal(self) -> Literal {
        Literal::Number(self.to_string())
    }
}

impl FilterValue<i64> for i32 {
    fn literal(self) -> Literal {
        Literal::Number(self.to_string())
    }
}

/// A number compares with a finite value; a NaN or an infinity (which OData cannot write) is
/// written `null`, which compares with no number.
impl FilterValue<f64> for f64 {
    fn literal(self) -> Literal {
        if self.is_finite() {
            Literal::Number(self.to_string())
        } else {
            Literal::Null
        }
    }
}

/// Fails the build when a comparison is not among a member's operators (`OPS`, the bits of
/// [`Operators`]); evaluated where the comparison is written.
struct Allowed<const OPS: u8, const OP: u8>;

impl<const OPS: u8, const OP: u8> Allowed<OPS, OP> {
    const CHECK: () = assert!(
        OPS & OP != 0,
        "the document's x-filterable does not allow this operator on this member"
    );
}

macro_rules! comparisons {
    ($($(#[$doc:meta])* $name:ident => $op:ident, $bit:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(self, value: impl FilterValue<T>) -> Filter {
            #[allow(clippy::let_unit_value)]
            let () = Allowed::<OPS, { Operators::$bit }>::CHECK;
            self.compare(CompareOp::$op, value)
        }
    )*};
}

/// A filterable member whose values are of type `T` and whose operators are the bits `OPS`
/// (see [`Operators`]). Made by the generated functions of this module (`status()`...).
#[derive(Debug, Clone, Copy)]
pub struct Field<T, const OPS: u8> {
    path: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T, const OPS: u8> Field<T, OPS> {
    /// The member at `path`; the generated functions call it with the document's paths.
    pub const fn new(path: &'static str) -> Self {
        Self {
            path,
            _type: PhantomData,
        }
    }

    /// The member's path.
    pub fn path(&self) -> &'static str {
        self.path
    }

    fn compare(self, op: CompareOp, value: impl FilterValue<T>) -> Filter {
        Filter(Inner::Expr(Expr::compare(self.path, op, value.literal())))
    }

    comparisons! {
        /// `member eq value`
        eq => Eq, EQ;
        /// `member ne value`
        ne => Ne, NE;
        /// `member gt value`
        gt => Gt, GT;
        /// `member ge value`
        ge => Ge, GE;
        /// `member lt value`
        lt => Lt, LT;
        /// `member le value`
        le => Le, LE;
    }
}

/// A member of the items of an array, compared in a lambda
/// (`team/any(t:t/email eq 'someone@contoso.com')`). Made by the generated functions of this
/// module (`team_email_any()`).
#[derive(Debug, Clone, Copy)]
pub struct LambdaField<T, const OPS: u8> {
    collection: &'static str,
    kind: LambdaKind,
    member: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T, const OPS: u8> LambdaField<T, OPS> {
    /// The member `member` of the items of `collection`, under the lambda `kind`.
    pub const fn new(collection: &'static str, kind: LambdaKind, member: &'static str) -> Self {
        Self {
            collection,
            kind,
            member,
            _type: PhantomData,
        }
    }

    fn compare(self, op: CompareOp, value: impl FilterValue<T>) -> Filter {
        let variable = crate::facts::variable(self.collection);
        Filter(Inner::Expr(Expr::Lambda {
            collection: Member::new(self.collection),
            kind: self.kind,
            predicate: Box::new(Expr::Compare {
                left: Operand::Member(Member::new(&format!("{variable}/{}", self.member))),
                op,
                right: Operand::Literal(value.literal()),
            }),
            variable,
        }))
    }

    comparisons! {
        /// `collection/any(x:x/member eq value)`
        eq => Eq, EQ;
        /// `collection/any(x:x/member ne value)`
        ne => Ne, NE;
        /// `collection/any(x:x/member gt value)`
        gt => Gt, GT;
        /// `collection/any(x:x/member ge value)`
        ge => Ge, GE;
        /// `collection/any(x:x/member lt value)`
        lt => Lt, LT;
        /// `collection/any(x:x/member le value)`
        le => Le, LE;
    }
}
