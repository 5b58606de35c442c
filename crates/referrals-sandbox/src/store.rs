//! The in-memory store, with versions, so that a listing reads one consistent snapshot.
//!
//! Every write makes a new version of the store. A listing pins the version it started at (the
//! `$skiptoken` carries it), and every page of it reads each referral as it was at that
//! version: referrals created later are not seen, and a referral updated meanwhile keeps the
//! place it had. So a listing returns every referral exactly once, whatever is written while
//! it runs, even when it is ordered by `updatedDateTime`.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use referrals_client::types::Referral;

/// How many versions of one referral are kept. A listing that pins an older version than
/// this sees the oldest kept one.
const KEPT_VERSIONS: usize = 64;

#[derive(Debug)]
struct Item {
    /// The version at which the referral was created.
    created: u64,
    /// Its recent versions, oldest first.
    versions: Vec<(u64, Arc<Referral>)>,
}

/// The referrals, with their recent versions.
#[derive(Debug, Default)]
pub struct Store {
    version: u64,
    items: HashMap<String, Item>,
    /// Ids in order of creation, so that listing order does not depend on hashing.
    order: Vec<String>,
    /// Every referral by `(createdDateTime, id)`: the index of the default order and of
    /// `$orderby=createdDateTime`. A referral's creation time never changes, so one entry per
    /// referral serves every snapshot.
    by_created: BTreeSet<(DateTime<Utc>, String)>,
}

impl Store {
    /// The current version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The current version of a referral.
    pub fn get(&self, id: &str) -> Option<&Arc<Referral>> {
        self.items
            .get(id)
            .and_then(|item| item.versions.last())
            .map(|(_, referral)| referral)
    }

    /// Whether some referral belongs to the engagement `id`.
    pub fn has_engagement(&self, id: &str) -> bool {
        self.items
            .values()
            .filter_map(|item| item.versions.last())
            .any(|(_, referral)| referral.engagement_id.as_deref() == Some(id))
    }

    /// Adds or replaces a referral (its `id` must be set); returns the new version.
    pub fn put(&mut self, referral: Referral) -> u64 {
        let id = referral.id.clone().expect("a stored referral has an id");
        self.version += 1;
        let version = self.version;
        let created_at = referral
            .created_date_time
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let item = self.items.entry(id.clone()).or_insert_with(|| {
            self.by_created.insert((created_at, id.clone()));
            self.order.push(id);
            Item {
                created: version,
                versions: Vec::new(),
            }
        });
        item.versions.push((version, Arc::new(referral)));
        if item.versions.len() > KEPT_VERSIONS {
            item.versions.remove(0);
        }
        version
    }

    /// Every referral as it was at `version`, in order of creation.
    pub fn snapshot(&self, version: u64) -> impl Iterator<Item = &Arc<Referral>> {
        self.order.iter().filter_map(move |id| self.at(id, version))
    }

    /// The referral `id` as it was at `version`; `None` if it did not exist yet.
    pub fn at(&self, id: &str, version: u64) -> Option<&Arc<Referral>> {
        let item = self.items.get(id)?;
        if item.created > version {
            return None;
        }
        item.versions
            .iter()
            .rev()
            .find(|(at, _)| *at <= version)
            .or(item.versions.first())
            .map(|(_, referral)| referral)
    }

    /// The referrals at `version` by `(createdDateTime, id)`, ascending or descending, starting
    /// after the key `after`: a page in this order reads as many referrals as it keeps, not the
    /// whole store.
    pub fn by_created(
        &self,
        version: u64,
        descending: bool,
        after: Option<(DateTime<Utc>, String)>,
    ) -> Box<dyn Iterator<Item = &Arc<Referral>> + '_> {
        let ids: Box<dyn Iterator<Item = &(DateTime<Utc>, String)>> = match (descending, after) {
            (false, None) => Box::new(self.by_created.iter()),
            (false, Some(after)) => Box::new(
                self.by_created
                    .range((Bound::Excluded(after), Bound::Unbounded)),
            ),
            (true, None) => Box::new(self.by_created.iter().rev()),
            (true, Some(after)) => Box::new(
                self.by_created
                    .range((Bound::Unbounded, Bound::Excluded(after)))
                    .rev(),
            ),
        };
        Box::new(ids.filter_map(move |(_, id)| self.at(id, version)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referral(id: &str, name: &str) -> Referral {
        Referral {
            id: Some(id.into()),
            name: Some(name.into()),
            ..Referral::default()
        }
    }

    #[test]
    fn snapshots_see_the_past() {
        let mut store = Store::default();
        store.put(referral("a", "a1"));
        let before = store.version();
        store.put(referral("a", "a2"));
        store.put(referral("b", "b1"));
        let names = |version| {
            store
                .snapshot(version)
                .map(|r| r.name.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(before), ["a1"]);
        assert_eq!(names(store.version()), ["a2", "b1"]);
        assert_eq!(store.get("a").unwrap().name.as_deref(), Some("a2"));
    }

    #[test]
    fn the_creation_index_walks_both_ways_from_a_key() {
        let mut store = Store::default();
        for (id, second) in [("b", 2), ("a", 1), ("c", 2)] {
            let mut item = referral(id, id);
            item.created_date_time = Some(DateTime::from_timestamp(second, 0).unwrap());
            store.put(item);
        }
        let ids = |items: Box<dyn Iterator<Item = &Arc<Referral>> + '_>| {
            items.map(|r| r.id.clone().unwrap()).collect::<Vec<_>>()
        };
        let version = store.version();
        assert_eq!(ids(store.by_created(version, false, None)), ["a", "b", "c"]);
        assert_eq!(ids(store.by_created(version, true, None)), ["c", "b", "a"]);
        let key = (DateTime::from_timestamp(2, 0).unwrap(), "b".to_owned());
        assert_eq!(
            ids(store.by_created(version, false, Some(key.clone()))),
            ["c"]
        );
        assert_eq!(ids(store.by_created(version, true, Some(key))), ["a"]);
        assert_eq!(
            ids(store.by_created(1, false, None)),
            ["b"],
            "a snapshot sees only what existed"
        );
    }
}
