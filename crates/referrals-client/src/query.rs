//! Typed OData queries of the list operation: `$filter`, `$orderby`, `$select`, `$top`,
//! `$count`.
//!
//! ```
//! use referrals_client::query::{self, Query, OrderBy};
//! use referrals_client::types::{ReferralDirection, ReferralStatus};
//!
//! let filter = query::status()
//!     .eq(ReferralStatus::New)
//!     .and(query::direction().eq(ReferralDirection::Incoming))
//!     .and(query::team_email_any("o'neil@contoso.com"));
//! assert_eq!(
//!     filter.to_string(),
//!     "status eq 'New' and direction eq 'Incoming' and team/any(t:t/email eq 'o''neil@contoso.com')"
//! );
//! let query = Query::new().filter(filter).order_by(OrderBy::newest_first()).top(50).count(true);
//! # let _ = query;
//! ```
//!
//! Every value is written as a literal: a string goes in single quotes with `'` doubled, so no
//! value can change what the filter means. [`Filter::raw`] takes a filter text as it is, for
//! what the builders lack (functions such as `contains`, other members).

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, SecondsFormat, Utc};
use referrals_odata::{CompareOp, Expr, LambdaKind, Literal, Member, Operand};

use crate::types;

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

    /// Does not hold.
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

macro_rules! value_sets {
    ($($set:ident),*) => {$(
        impl FilterValue<types::$set> for types::$set {
            fn literal(self) -> Literal {
                Literal::String(self.as_str().to_owned())
            }
        }
        impl FilterValue<types::$set> for &types::$set {
            fn literal(self) -> Literal {
                Literal::String(self.as_str().to_owned())
            }
        }
    )*};
}
value_sets!(
    ReferralStatus,
    ReferralSubstatus,
    ReferralType,
    ReferralQualification,
    ReferralDirection
);

/// A filterable member whose values are of type `T`.
#[derive(Debug, Clone, Copy)]
pub struct Field<T> {
    path: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T> Field<T> {
    const fn new(path: &'static str) -> Self {
        Self {
            path,
            _type: PhantomData,
        }
    }

    fn compare(self, op: CompareOp, value: impl FilterValue<T>) -> Filter {
        Filter(Inner::Expr(Expr::compare(self.path, op, value.literal())))
    }

    /// `member eq value`
    pub fn eq(self, value: impl FilterValue<T>) -> Filter {
        self.compare(CompareOp::Eq, value)
    }

    /// `member ne value`
    pub fn ne(self, value: impl FilterValue<T>) -> Filter {
        self.compare(CompareOp::Ne, value)
    }

    /// `member gt value`
    pub fn gt(self, value: impl FilterValue<T>) -> Filter {
        self.compare(CompareOp::Gt, value)
    }

    /// `member ge value`
    pub fn ge(self, value: impl FilterValue<T>) -> Filter {
        self.compare(CompareOp::Ge, value)
    }

    /// `member lt value`
    pub fn lt(self, value: impl FilterValue<T>) -> Filter {
        self.compare(CompareOp::Lt, value)
    }

    /// `member le value`
    pub fn le(self, value: impl FilterValue<T>) -> Filter {
        self.compare(CompareOp::Le, value)
    }
}

/// `id`
pub fn id() -> Field<String> {
    Field::new("id")
}
/// `engagementId`
pub fn engagement_id() -> Field<String> {
    Field::new("engagementId")
}
/// `status`
pub fn status() -> Field<types::ReferralStatus> {
    Field::new("status")
}
/// `substatus`
pub fn substatus() -> Field<types::ReferralSubstatus> {
    Field::new("substatus")
}
/// `qualification`
pub fn qualification() -> Field<types::ReferralQualification> {
    Field::new("qualification")
}
/// `type`
pub fn referral_type() -> Field<types::ReferralType> {
    Field::new("type")
}
/// `direction`
pub fn direction() -> Field<types::ReferralDirection> {
    Field::new("direction")
}
/// `customerProfile/address/country`
pub fn country() -> Field<String> {
    Field::new("customerProfile/address/country")
}
/// `createdDateTime`
pub fn created_date_time() -> Field<DateTime<Utc>> {
    Field::new("createdDateTime")
}
/// `updatedDateTime`
pub fn updated_date_time() -> Field<DateTime<Utc>> {
    Field::new("updatedDateTime")
}

/// `team/any(t:t/email eq 'email')`: someone on the referral's team has this e-mail address.
pub fn team_email_any(email: impl AsRef<str>) -> Filter {
    Filter(Inner::Expr(Expr::Lambda {
        collection: Member::new("team"),
        kind: LambdaKind::Any,
        variable: "t".into(),
        predicate: Box::new(Expr::Compare {
            left: Operand::Member(Member::new("t/email")),
            op: CompareOp::Eq,
            right: Operand::Literal(Literal::String(email.as_ref().to_owned())),
        }),
    }))
}

/// A key of `$orderby`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// `createdDateTime`
    CreatedDateTime,
    /// `updatedDateTime`
    UpdatedDateTime,
}

impl SortKey {
    fn member(self) -> &'static str {
        match self {
            SortKey::CreatedDateTime => "createdDateTime",
            SortKey::UpdatedDateTime => "updatedDateTime",
        }
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

    /// `createdDateTime desc`.
    pub fn newest_first() -> Self {
        Self::desc(SortKey::CreatedDateTime)
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
    /// The members named, which must be members of [`types::Referral`] as written on the wire
    /// (`id`, `status`, `customerProfile`...).
    pub fn members<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, UnknownMember> {
        let members = names
            .into_iter()
            .map(|name| {
                types::Referral::MEMBERS
                    .iter()
                    .copied()
                    .find(|member| *member == name)
                    .ok_or_else(|| UnknownMember(name.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(members))
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
        let mut parameters = Vec::new();
        if let Some(filter) = &self.filter {
            parameters.push(("$filter".to_owned(), filter.to_string()));
        }
        if let Some(order) = &self.order_by {
            parameters.push(("$orderby".to_owned(), order.to_string()));
        }
        if let Some(select) = &self.select {
            parameters.push(("$select".to_owned(), select.to_string()));
        }
        if let Some(top) = self.top {
            parameters.push(("$top".to_owned(), top.to_string()));
        }
        if let Some(skip) = self.skip {
            parameters.push(("$skip".to_owned(), skip.to_string()));
        }
        if self.count {
            parameters.push(("$count".to_owned(), "true".to_owned()));
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
        let filter = referral_type()
            .eq(ReferralType::Shared)
            .and(direction().eq(ReferralDirection::Incoming));
        assert_eq!(
            filter.to_string(),
            "type eq 'Shared' and direction eq 'Incoming'"
        );
        let filter = status()
            .eq(ReferralStatus::Active)
            .and(direction().eq(ReferralDirection::Outgoing))
            .and(referral_type().eq(ReferralType::Shared))
            .and(team_email_any("r2d2@contoso.com"));
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
    fn grouping_and_negation() {
        let filter = status()
            .eq(ReferralStatus::New)
            .or(status().eq(ReferralStatus::Active))
            .and(!country().eq("US"));
        assert_eq!(
            filter.to_string(),
            "(status eq 'New' or status eq 'Active') and not customerProfile/address/country eq 'US'"
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
