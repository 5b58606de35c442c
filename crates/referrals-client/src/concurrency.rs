//! How many requests a reader of many pages keeps in flight at once: up to a ceiling, halved
//! when the service throttles, grown back by one after a long stretch of calm answers (as TCP
//! does with its window), so that a reader finds the pace the service allows by itself.
//!
//! ```
//! # async fn run() {
//! use referrals_client::concurrency::Concurrency;
//!
//! let concurrency = Concurrency::new(8);
//! let permit = concurrency.permit().await;
//! // ... send a request; `page.throttled` says how many 429s it met ...
//! permit.answered(1);
//! assert_eq!(concurrency.limit(), 4);
//! # }
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::query::{OrderBy, Query, Select, SortKey};
use crate::{Client, Error, Page};

/// How many calm answers in a row, per request allowed at once, before one more is allowed.
const CALM_PER_STEP: usize = 4;

/// A shared limit of requests in flight; clones share it.
#[derive(Debug, Clone)]
pub struct Concurrency {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    released: Notify,
}

#[derive(Debug)]
struct State {
    ceiling: usize,
    limit: usize,
    active: usize,
    /// Calm answers since the limit last changed.
    calm: usize,
    /// Bumped each time the limit is halved: an answer to a request sent before then does not
    /// halve it again.
    generation: u64,
    answers: u64,
    throttled: u64,
}

/// The right to send one request; dropping it gives the right back.
#[derive(Debug)]
#[must_use = "a permit is given back when it is dropped"]
pub struct Permit {
    shared: Arc<Shared>,
    generation: u64,
}

impl Concurrency {
    /// At most `ceiling` requests at once (at least one).
    pub fn new(ceiling: usize) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    ceiling,
                    limit: ceiling,
                    active: 0,
                    calm: 0,
                    generation: 0,
                    answers: 0,
                    throttled: 0,
                }),
                released: Notify::new(),
            }),
        }
    }

    /// Waits until one more request is allowed.
    pub async fn permit(&self) -> Permit {
        loop {
            let released = self.shared.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut state = self.shared.lock();
                if state.active < state.limit {
                    state.active += 1;
                    return Permit {
                        shared: Arc::clone(&self.shared),
                        generation: state.generation,
                    };
                }
            }
            released.await;
        }
    }

    /// How many requests are allowed at once now.
    pub fn limit(&self) -> usize {
        self.shared.lock().limit
    }

    /// The answers recorded, and how many 429s they met.
    pub fn answers(&self) -> (u64, u64) {
        let state = self.shared.lock();
        (state.answers, state.throttled)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Permit {
    /// Records the answer of the request, which met `throttled` answers of 429 Too Many
    /// Requests on its way ([`crate::Page::throttled`], or 1 for a request that failed with
    /// 429), and gives the permit back.
    pub fn answered(self, throttled: u32) {
        let mut state = self.shared.lock();
        state.answers = state.answers.saturating_add(1);
        state.throttled = state.throttled.saturating_add(u64::from(throttled));
        if throttled > 0 {
            if self.generation == state.generation {
                state.limit = (state.limit / 2).max(1);
                state.generation = state.generation.wrapping_add(1);
            }
            state.calm = 0;
        } else {
            state.calm = state.calm.saturating_add(1);
            if state.limit < state.ceiling && state.calm >= state.limit * CALM_PER_STEP {
                state.limit += 1;
                state.calm = 0;
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.active = state.active.saturating_sub(1);
        drop(state);
        self.shared.released.notify_waiters();
    }
}

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
    let probe = |order: OrderBy| {
        let mut probe = query.clone().order_by(order).top(1);
        probe.select = Select::members(["id", "createdDateTime"]).ok();
        probe
    };
    let first = client
        .list_page(
            &probe(OrderBy::asc(SortKey::CreatedDateTime)).count(true),
            None,
        )
        .await?;
    let last = client
        .list_page(&probe(OrderBy::desc(SortKey::CreatedDateTime)), None)
        .await?;
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

    #[tokio::test]
    async fn throttling_halves_once_per_stretch_and_calm_grows_back_by_one() {
        let concurrency = Concurrency::new(8);
        let permits: Vec<Permit> = futures_permits(&concurrency, 8).await;
        // Eight requests sent at the same limit: the first 429 halves it, the others do not.
        for permit in permits {
            permit.answered(1);
        }
        assert_eq!(concurrency.limit(), 4);
        // A request sent after the halving may halve again.
        concurrency.permit().await.answered(2);
        assert_eq!(concurrency.limit(), 2);
        for _ in 0..2 * CALM_PER_STEP - 1 {
            concurrency.permit().await.answered(0);
        }
        assert_eq!(concurrency.limit(), 2);
        concurrency.permit().await.answered(0);
        assert_eq!(concurrency.limit(), 3);
        assert_eq!(concurrency.answers(), (17, 10));
        for _ in 0..1000 {
            concurrency.permit().await.answered(0);
        }
        assert_eq!(concurrency.limit(), 8, "never past the ceiling");
        for _ in 0..10 {
            concurrency.permit().await.answered(1);
        }
        assert_eq!(concurrency.limit(), 1, "never under one");
    }

    async fn futures_permits(concurrency: &Concurrency, count: usize) -> Vec<Permit> {
        let mut permits = Vec::new();
        for _ in 0..count {
            permits.push(concurrency.permit().await);
        }
        permits
    }

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

    #[tokio::test]
    async fn a_waiter_goes_on_when_a_permit_is_given_back() {
        let concurrency = Concurrency::new(1);
        let held = concurrency.permit().await;
        let waiter = tokio::spawn({
            let concurrency = concurrency.clone();
            async move { concurrency.permit().await.answered(0) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        waiter.await.unwrap();
        assert_eq!(concurrency.answers(), (1, 0));
    }
}
