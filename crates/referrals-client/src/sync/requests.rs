//! The requests of a run: the user's filter with the run's bounds on `updatedDateTime`, and
//! the run's reach, which its first answer sets (the service's clock when the run began).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::SyncState;
use crate::error::Error;
use crate::query::{self, Filter, Query};
use crate::{Client, Page};

/// What every phase of a run asks the service with.
pub(super) struct Requests {
    pub(super) client: Client,
    user_filter: Option<Filter>,
    skew: Duration,
    /// The run's reach: the service's clock when the run began. A run reads and delivers every
    /// change up to it.
    pub(super) horizon: Option<DateTime<Utc>>,
    /// The run's bound: the horizon less the skew. The saved watermark never passes it, so
    /// what lies between the bound and the horizon comes once more in the next run.
    pub(super) bound: Option<DateTime<Utc>>,
}

impl Requests {
    /// The requests of a run from `state` (whose bound, during a run, gives the reach).
    pub(super) fn new(
        client: Client,
        user_filter: Option<Filter>,
        skew: Duration,
        state: &SyncState,
    ) -> Self {
        let skew_delta = chrono::Duration::from_std(skew).unwrap_or(chrono::Duration::MAX);
        Self {
            client,
            user_filter,
            skew,
            horizon: state
                .bound
                .and_then(|bound| bound.checked_add_signed(skew_delta))
                .and_then(|now| now.checked_add_signed(chrono::Duration::seconds(1))),
            bound: state.bound,
        }
    }

    /// The filter of a request: the user's, and the bounds on `updatedDateTime`.
    pub(super) fn filter(
        &self,
        lower: Option<Filter>,
        upper: Option<DateTime<Utc>>,
    ) -> Option<Filter> {
        let bounds = [
            lower,
            upper.map(|bound| query::updated_date_time().le(bound)),
        ];
        self.user_filter
            .clone()
            .into_iter()
            .chain(bounds.into_iter().flatten())
            .reduce(Filter::and)
    }

    /// The first page of the answer to `query`.
    pub(super) async fn page(&self, query: &Query) -> Result<Page, Error> {
        self.client.list_page(query, None).await
    }

    /// The run's horizon, the end of the second of the service's clock in its first answer (a
    /// `Date` header counts whole seconds), and its bound, that clock less the skew.
    pub(super) fn reach(&self, page: &Page) -> (DateTime<Utc>, DateTime<Utc>) {
        let now: DateTime<Utc> = page
            .date
            .unwrap_or_else(|| self.client.runtime().clock().now())
            .into();
        let skew = chrono::Duration::from_std(self.skew).unwrap_or(chrono::Duration::MAX);
        let bound = now
            .checked_sub_signed(skew)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let horizon = now
            .checked_add_signed(chrono::Duration::seconds(1))
            .unwrap_or(now);
        (horizon, bound)
    }
}
