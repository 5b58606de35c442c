//! Typed OData queries of the list operation: `$filter`, `$orderby`, `$select`, `$top`,
//! `$count`.
//!
//! ```
//! # extern crate referrals_model as referrals_client;
//! use referrals_client::query::{self, Query, OrderBy};
//! use referrals_client::types::{ReferralDirection, ReferralStatus};
//!
//! let filter = query::status()
//!     .eq(ReferralStatus::New)
//!     .and(query::direction().eq(ReferralDirection::Incoming))
//!     .and(query::team_email_any().eq("o'neil@contoso.com"));
//! assert_eq!(
//!     filter.to_string(),
//!     "status eq 'New' and direction eq 'Incoming' and team/any(t:t/email eq 'o''neil@contoso.com')"
//! );
//! let query = Query::new().filter(filter).order_by(OrderBy::newest_first()).top(50).count(true);
//! # let _ = query;
//! ```
//!
//! The members and their operators are those of the document's `x-filterable`, one function
//! each (generated): a member that it does not list has no function, and an operator that it
//! does not allow on a member does not compile:
//!
//! ```compile_fail
//! # extern crate referrals_model as referrals_client;
//! use referrals_client::query;
//! use referrals_client::types::ReferralStatus;
//! // `status` compares with eq and ne only.
//! let _ = query::status().gt(ReferralStatus::New);
//! ```
//!
//! Every value is written as a literal: a string goes in single quotes with `'` doubled, so no
//! value can change what the filter means. [`Filter::raw`] takes a filter text as it is.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, SecondsFormat, Utc};
use referrals_odata::{CompareOp, Expr, LambdaKind, Literal, Member, Operand};

use crate::facts::{Operators, Resource};

pub use crate::generated::filters::*;

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
        Literal::DateTime(self.to_rfc3339_opts(SecondsFormat::AutoSi, true))
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

/// `$orderby`: one or more keys, each ascending or descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy(Vec<(SortKey, bool)>);

impl OrderBy {
    /// Ascending by `key`.
    pub fn asc(key: SortKey) -> Self {
        Self(vec![(key, false)])
    }

    /// Descending by `key`.
    pub fn desc(key: SortKey) -> Self {
        Self(vec![(key, true)])
    }

    /// `createdDateTime desc`: the order of the documentation's examples.
    pub fn newest_first() -> Self {
        Self::desc(SortKey::CreatedDateTime)
    }

    /// The keys, each with whether it is descending.
    pub fn keys(&self) -> &[(SortKey, bool)] {
        &self.0
    }

    /// Then ascending by `key`.
    pub fn then_asc(mut self, key: SortKey) -> Self {
        self.0.push((key, false));
        self
    }

    /// Then descending by `key`.
    pub fn then_desc(mut self, key: SortKey) -> Self {
        self.0.push((key, true));
        self
    }
}

impl fmt::Display for OrderBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .0
            .iter()
            .map(|(key, descending)| {
                format!(
                    "{} {}",
                    key.member(),
                    if *descending { "desc" } else { "asc" }
                )
            })
            .collect();
        f.write_str(&keys.join(","))
    }
}

/// An `$orderby` text that does not parse, or names a member that is not a sort key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OrderByError(String);

/// Reads an `$orderby` text (`createdDateTime desc,updatedDateTime`): each key must be one of
/// the document's `x-sortable` members ([`SortKey::ALL`]).
impl std::str::FromStr for OrderBy {
    type Err = OrderByError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let items = referrals_odata::parse_orderby(text)
            .map_err(|error| OrderByError(format!("`{text}` is not an $orderby: {error}")))?;
        let keys = items
            .into_iter()
            .map(|item| {
                let path = item.member.path();
                SortKey::ALL
                    .iter()
                    .find(|key| key.member() == path)
                    .map(|key| (*key, item.descending))
                    .ok_or_else(|| {
                        let known: Vec<&str> =
                            SortKey::ALL.iter().map(|key| key.member()).collect();
                        OrderByError(format!(
                            "`{path}` is not a sort key; the sort keys are {}",
                            known.join(", ")
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(keys))
    }
}

/// `$select`: the members of the referral to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select(Vec<&'static str>);

/// A `$select` member that the referral does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a member of the referral; the members are listed in `types::Referral::MEMBERS`"
)]
pub struct UnknownMember(pub String);

impl Select {
    /// The members named, which must be members of the referral as written on the wire
    /// (`id`, `status`, `customerProfile`...).
    pub fn members<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, UnknownMember> {
        let members = names
            .into_iter()
            .map(|name| {
                Resource::MEMBERS
                    .iter()
                    .copied()
                    .find(|member| *member == name)
                    .ok_or_else(|| UnknownMember(name.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(members))
    }
}

/// Reads a `$select` text (`id,status,customerProfile`); see [`Select::members`].
impl std::str::FromStr for Select {
    type Err = UnknownMember;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::members(text.split(',').map(str::trim))
    }
}

impl Select {
    /// The members, as written on the wire.
    pub fn names(&self) -> &[&'static str] {
        &self.0
    }
}

impl fmt::Display for Select {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// The query of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// `$filter`
    pub filter: Option<Filter>,
    /// `$orderby`
    pub order_by: Option<OrderBy>,
    /// `$select`
    pub select: Option<Select>,
    /// `$top`: the most referrals to return in all, across pages.
    pub top: Option<u32>,
    /// `$skip`
    pub skip: Option<u32>,
    /// `$count`: ask for `@odata.count`.
    pub count: bool,
}

impl Query {
    /// Every referral, in the service's order.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only those that `filter` keeps.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// In this order.
    pub fn order_by(mut self, order: OrderBy) -> Self {
        self.order_by = Some(order);
        self
    }

    /// Only these members of each referral.
    pub fn select(mut self, select: Select) -> Self {
        self.select = Some(select);
        self
    }

    /// At most `top` referrals in all.
    pub fn top(mut self, top: u32) -> Self {
        self.top = Some(top);
        self
    }

    /// Pass over the first `skip` matches.
    pub fn skip(mut self, skip: u32) -> Self {
        self.skip = Some(skip);
        self
    }

    /// Ask for the number of matches in all (`@odata.count`).
    pub fn count(mut self, count: bool) -> Self {
        self.count = count;
        self
    }

    /// The query parameters, by their OData names, as the first request sends them.
    pub fn parameters(&self) -> Vec<(String, String)> {
        use crate::parameters::list_referrals as list;
        let mut parameters = Vec::new();
        let mut push = |name: &str, value: String| parameters.push((name.to_owned(), value));
        if let Some(filter) = &self.filter {
            push(list::FILTER, filter.to_string());
        }
        if let Some(order) = &self.order_by {
            push(list::ORDERBY, order.to_string());
        }
        if let Some(select) = &self.select {
            push(list::SELECT, select.to_string());
        }
        if let Some(top) = self.top {
            push(list::TOP, top.to_string());
        }
        if let Some(skip) = self.skip {
            push(list::SKIP, skip.to_string());
        }
        if self.count {
            push(list::COUNT, "true".to_owned());
        }
        parameters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ReferralDirection, ReferralStatus, ReferralType};

    #[test]
    fn the_documented_samples() {
        let filter = type_()
            .eq(ReferralType::Shared)
            .and(direction().eq(ReferralDirection::Incoming));
        assert_eq!(
            filter.to_string(),
            "type eq 'Shared' and direction eq 'Incoming'"
        );
        let filter = status()
            .eq(ReferralStatus::Active)
            .and(direction().eq(ReferralDirection::Outgoing))
            .and(type_().eq(ReferralType::Shared))
            .and(team_email_any().eq("r2d2@contoso.com"));
        assert_eq!(
            filter.to_string(),
            "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and team/any(t:t/email eq 'r2d2@contoso.com')"
        );
        assert_eq!(
            OrderBy::newest_first()
                .then_asc(SortKey::UpdatedDateTime)
                .to_string(),
            "createdDateTime desc,updatedDateTime asc"
        );
    }

    #[test]
    fn orderby_and_select_texts() {
        let order: OrderBy = "createdDateTime desc, updatedDateTime".parse().unwrap();
        assert_eq!(
            order.to_string(),
            "createdDateTime desc,updatedDateTime asc"
        );
        let error = "name desc".parse::<OrderBy>().unwrap_err().to_string();
        assert!(error.contains("`name` is not a sort key"), "{error}");
        assert!(error.contains("createdDateTime"), "{error}");
        assert!("createdDateTime sideways".parse::<OrderBy>().is_err());
        let select: Select = "id, status".parse().unwrap();
        assert_eq!(select.names(), ["id", "status"]);
        assert_eq!(
            "id,nope".parse::<Select>().unwrap_err(),
            UnknownMember("nope".into())
        );
    }

    #[test]
    fn grouping_and_negation() {
        let filter = status()
            .eq(ReferralStatus::New)
            .or(status().eq(ReferralStatus::Active))
            .and(!country().eq("US"));
        assert_eq!(
            filter.to_string(),
            "(status eq 'New' or status eq 'Active') and not (customerProfile/address/country eq 'US')"
        );
        let raw = Filter::raw("contains(name, 'x')").and(status().ne(ReferralStatus::Closed));
        assert_eq!(
            raw.to_string(),
            "(contains(name, 'x')) and (status ne 'Closed')"
        );
    }

    #[test]
    fn values_cannot_escape_their_literal() {
        let filter = engagement_id().eq("x' or 1 eq 1 or 'y");
        assert_eq!(filter.to_string(), "engagementId eq 'x'' or 1 eq 1 or ''y'");
        let parsed = referrals_odata::parse_filter(&filter.to_string()).unwrap();
        assert!(
            matches!(parsed, Expr::Compare { .. }),
            "one comparison, not three: {parsed:?}"
        );
    }

    #[test]
    fn dates_are_bare_literals() {
        let when = DateTime::parse_from_rfc3339("2020-10-30T21:03:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            updated_date_time().ge(when).to_string(),
            "updatedDateTime ge 2020-10-30T21:03:00.500Z"
        );
    }

    proptest::proptest! {
        /// Any string put into a filter comes back from the OData parser as the same literal,
        /// and the filter stays one comparison: no value can change its meaning.
        #[test]
        fn any_value_is_one_literal(value in "\\PC*|['()&+#%=, ]*") {
            let filter = engagement_id().eq(value.as_str()).and(country().ne(value.as_str()));
            let parsed = referrals_odata::parse_filter(&filter.to_string()).unwrap();
            let Expr::And(left, right) = parsed else { panic!("not an `and`: {filter}") };
            for side in [*left, *right] {
                let Expr::Compare { right: Operand::Literal(Literal::String(text)), .. } = side else {
                    panic!("not a comparison with a string: {filter}");
                };
                proptest::prop_assert_eq!(&text, &value);
            }
        }
    }

    #[test]
    fn select_takes_only_members() {
        assert_eq!(
            Select::members(["id", "status", "customerProfile"])
                .unwrap()
                .to_string(),
            "id,status,customerProfile"
        );
        assert_eq!(
            Select::members(["id", "nope"]).unwrap_err(),
            UnknownMember("nope".into())
        );
    }
}
