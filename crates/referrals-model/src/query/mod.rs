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

use crate::facts::Resource;

pub use crate::generated::filters::*;

mod filter;

pub use filter::{Field, Filter, FilterValue, LambdaField};

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
    use chrono::{DateTime, Utc};
    use referrals_odata::{Expr, Literal, Operand};

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
