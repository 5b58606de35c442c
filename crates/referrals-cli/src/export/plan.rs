//! The parts of an export: disjoint ranges of `createdDateTime`, an instant that never
//! changes, so that a referral updated during the export stays in its part, and the parts
//! written one after the other are the listing in the order of creation.

use chrono::{DateTime, Utc};
use referrals_client::concurrency::{self, Concurrency};
use referrals_client::query::{self, Filter, OrderBy, Query, SortKey};
use referrals_client::{Client, Error};

use super::checkpoint::Part;

/// The fewest referrals worth a part of their own: two pages of the service.
const REFERRALS_PER_PART: i64 = 200;

/// The parts of an export, in the order of its file.
pub(super) struct Plan {
    pub(super) parts: Vec<Part>,
    /// The earliest and the latest creation instants.
    pub(super) span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The service's count of the referrals, when it gave one.
    pub(super) total: Option<i64>,
}

/// Whether an export in `query`'s order can be read in parts: `Some(descending)` when it is
/// in the order of creation (or in none).
pub(super) fn creation_order(query: &Query) -> Option<bool> {
    match &query.order_by {
        None => Some(false),
        Some(order) => match order.keys() {
            [(SortKey::CreatedDateTime, descending)] => Some(*descending),
            _ => None,
        },
    }
}

/// The parts of an export of `query` read by `tasks` requests at once, the earliest and latest
/// creation instants, and the service's count of the referrals. Two requests of one referral
/// each find the first and the last creation instants; the span between is cut in equal ranges,
/// a few for each request at once. One part, read as the listing comes, when `tasks` is 1, when
/// the order is another, or when the referrals are few.
pub(super) async fn plan(
    client: &Client,
    query: &Query,
    (concurrency, tasks): (&Concurrency, usize),
) -> Result<Plan, Error> {
    let whole = Plan {
        parts: vec![Part::default()],
        span: None,
        total: None,
    };
    let Some(descending) = creation_order(query).filter(|_| tasks > 1) else {
        return Ok(whole);
    };
    let Some(span) = concurrency.creation_span(client, query).await? else {
        return Ok(whole);
    };
    let (earliest, latest, total) = (span.earliest, span.latest, span.count);
    let count = concurrency::range_count(tasks, total, REFERRALS_PER_PART);
    let mut parts: Vec<Part> = concurrency::ranges(earliest, latest, count)
        .into_iter()
        .map(|(from, until)| Part {
            from,
            until,
            ..Part::default()
        })
        .collect();
    if descending {
        parts.reverse();
    }
    Ok(Plan {
        parts,
        span: Some((earliest, latest)),
        total,
    })
}

/// The query of `part` of an export of `query`: the export's own for a part of everything,
/// else in the order of creation with the part's range added to the filter.
pub(super) fn part_query(query: &Query, part: &Part) -> Query {
    if part.from.is_none() && part.until.is_none() {
        return query.clone();
    }
    let order = if creation_order(query) == Some(true) {
        OrderBy::desc(SortKey::CreatedDateTime)
    } else {
        OrderBy::asc(SortKey::CreatedDateTime)
    };
    let bounds = [
        part.from.map(|from| query::created_date_time().ge(from)),
        part.until.map(|until| query::created_date_time().lt(until)),
    ];
    let filter = query
        .filter
        .clone()
        .into_iter()
        .chain(bounds.into_iter().flatten())
        .reduce(Filter::and);
    let mut part_query = query.clone().order_by(order);
    part_query.filter = filter;
    part_query
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn a_part_asks_for_its_range_in_the_order_of_creation() {
        let query = Query::new()
            .filter(query::status().eq(referrals_client::types::ReferralStatus::New))
            .order_by(OrderBy::desc(SortKey::CreatedDateTime));
        let part = Part {
            from: Some(at(10)),
            until: Some(at(20)),
            ..Part::default()
        };
        let asked = part_query(&query, &part).parameters();
        assert_eq!(
            asked[0].1,
            "status eq 'New' and createdDateTime ge 1970-01-01T00:00:10Z and createdDateTime lt \
             1970-01-01T00:00:20Z"
        );
        assert_eq!(asked[1].1, "createdDateTime desc");
        assert_eq!(part_query(&query, &Part::default()), query);
        let other = Query::new().order_by(OrderBy::asc(SortKey::UpdatedDateTime));
        assert_eq!(creation_order(&other), None);
        assert_eq!(creation_order(&Query::new()), Some(false));
    }
}
