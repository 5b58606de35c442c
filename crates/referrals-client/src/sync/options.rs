//! How a sync runs: its filter, its skew and how many requests a first run sends at once.

use std::time::Duration;

use crate::query::Filter;

/// How a sync runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub(super) filter: Option<Filter>,
    pub(super) skew: Duration,
    pub(super) concurrency: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl SyncOptions {
    /// Every referral, with a skew of two minutes.
    pub fn new() -> Self {
        Self {
            filter: None,
            skew: Duration::from_secs(120),
            concurrency: 1,
        }
    }

    /// How many requests a first run (from no state, without a filter) keeps in flight at
    /// most (default 1: a page after another). Above 1, the first run reads disjoint ranges of
    /// `createdDateTime` at once, fewer while the service answers 429, and its batches come
    /// in the order that pages arrive; the state records which ranges are done, so a run that
    /// stops goes on with the others. A service that does not count (`$count`), a filter, or
    /// fewer than a hundred referrals are read a page after another.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Only the referrals that `filter` keeps (such as `direction eq 'Incoming'`). A state is
    /// tied to its filter: another filter starts from scratch.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// How far behind the service's clock a run stops (default: two minutes). A change that the
    /// service stamps later than it makes it visible, by up to this much, is still delivered;
    /// every change arrives this much later.
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query;

    #[test]
    fn options_keep_what_they_are_given() {
        let defaults = SyncOptions::new();
        assert_eq!(
            (
                defaults.skew,
                defaults.concurrency,
                defaults.filter.is_none()
            ),
            (Duration::from_secs(120), 1, true)
        );
        let filter = query::status().eq(crate::types::ReferralStatus::New);
        let options = SyncOptions::new()
            .skew(Duration::from_secs(5))
            .concurrency(6)
            .filter(filter.clone());
        assert_eq!(options.skew, Duration::from_secs(5));
        assert_eq!(options.concurrency, 6);
        assert_eq!(
            options.filter.map(|f| f.to_string()),
            Some(filter.to_string())
        );
        assert_eq!(
            SyncOptions::new().concurrency(0).concurrency,
            1,
            "at least one"
        );
    }
}
