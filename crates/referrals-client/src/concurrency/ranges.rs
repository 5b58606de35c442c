//! Cutting a listing into disjoint ranges of `createdDateTime`, to read them at once: the
//! span of creation instants ([`creation_span`], two requests of one referral each), how many
//! ranges a number of readers wants ([`range_count`]), and the ranges ([`ranges`]).

use chrono::{DateTime, Utc};

use crate::query::{OrderBy, Query, Select, SortKey};
use crate::{Client, Error, Page};

/// A range of instants: `from` included (`None`: from the earliest), `until` not (`None`: to
/// the latest).
pub type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Disjoint ranges of instants that cover every instant, for reading a listing in parts at
/// once: the span from `earliest` to `latest` cut in `count` ranges of equal length (to the
/// millisecond), each `(from, until)` with `from` included and `until` not; the first has no
/// `from` and the last no `until`, so that nothing before or after the span is left out.
pub fn ranges(earliest: DateTime<Utc>, latest: DateTime<Utc>, count: usize) -> Vec<Range> {
    let span = i128::from(latest.timestamp_millis()) - i128::from(earliest.timestamp_millis());
    let parts = i128::try_from(count).unwrap_or(1).max(1);
    let mut cuts: Vec<DateTime<Utc>> = Vec::new();
    for index in 1..parts {
        let cut = i64::try_from(span.saturating_mul(index) / parts)
            .ok()
            .and_then(|offset| earliest.checked_add_signed(chrono::Duration::milliseconds(offset)));
        if let Some(cut) = cut
            && cut > earliest
            && cuts.last().is_none_or(|last| *last < cut)
        {
            cuts.push(cut);
        }
    }
    let mut ranges = Vec::with_capacity(cuts.len() + 1);
    let mut from = None;
    for cut in cuts {
        ranges.push((from, Some(cut)));
        from = Some(cut);
    }
    ranges.push((from, None));
    ranges
}

/// The creation instants of a listing's referrals, found by two requests of one referral each.
#[derive(Debug)]
pub struct CreationSpan {
    /// The earliest `createdDateTime`.
    pub earliest: DateTime<Utc>,
    /// The latest `createdDateTime`.
    pub latest: DateTime<Utc>,
    /// The service's count of the listing, when it gives one.
    pub count: Option<i64>,
    /// The first answer (its `Date` is the service's clock).
    pub first: Page,
}

/// The span of creation instants of `query`'s referrals (its filter; its order and selection
/// are replaced), for cutting the listing into [`ranges`]; `None` when a referral without
/// `createdDateTime` or no referral at all answers.
pub async fn creation_span(client: &Client, query: &Query) -> Result<Option<CreationSpan>, Error> {
    span_of(client, query, None).await
}

/// [`creation_span`], each request sent under `concurrency` when there is one.
pub(super) async fn span_of(
    client: &Client,
    query: &Query,
    concurrency: Option<&super::Concurrency>,
) -> Result<Option<CreationSpan>, Error> {
    let ask = async |probe: Query| match concurrency {
        Some(concurrency) => concurrency.send(client.list_page(&probe, None)).await,
        None => client.list_page(&probe, None).await,
    };
    let probe = |order: OrderBy| {
        let mut probe = query.clone().order_by(order).top(1);
        probe.select = Select::members(["id", "createdDateTime"]).ok();
        probe
    };
    let first = ask(probe(OrderBy::asc(SortKey::CreatedDateTime)).count(true)).await?;
    let last = ask(probe(OrderBy::desc(SortKey::CreatedDateTime))).await?;
    let created = |page: &Page| page.items.first().and_then(|item| item.created_date_time);
    let (Some(earliest), Some(latest)) = (created(&first), created(&last)) else {
        return Ok(None);
    };
    Ok(Some(CreationSpan {
        earliest,
        latest,
        count: first.count,
        first,
    }))
}

/// How many ranges `tasks` requests at once read: a few for each (one that ends early leaves
/// the others to share), none with fewer than `least` of the `count` referrals.
pub fn range_count(tasks: usize, count: Option<i64>, least: i64) -> usize {
    let most = count.map_or(usize::MAX, |count| {
        usize::try_from(count / least.max(1)).unwrap_or(usize::MAX)
    });
    tasks.saturating_mul(4).min(most).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_instant_once_in_equal_spans() {
        let at = |seconds| DateTime::from_timestamp(seconds, 0).unwrap();
        assert_eq!(
            ranges(at(0), at(100), 4),
            vec![
                (None, Some(at(25))),
                (Some(at(25)), Some(at(50))),
                (Some(at(50)), Some(at(75))),
                (Some(at(75)), None)
            ]
        );
        assert_eq!(ranges(at(5), at(5), 8), vec![(None, None)]);
        assert_eq!(ranges(at(0), at(100), 0), vec![(None, None)]);
        let close = ranges(at(0), DateTime::from_timestamp_millis(3).unwrap(), 10);
        assert_eq!(close.len(), 3, "{close:?}");
        assert_eq!(
            ranges(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, 3).len(),
            3
        );
    }
}
