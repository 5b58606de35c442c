//! The in-memory store, with versions, so that a listing reads one consistent snapshot, and an
//! index per sortable member, so that an ordered page reads as many referrals as it returns.
//!
//! Every write makes a new version of the store. A listing pins the version it started at (the
//! `$skiptoken` carries it), and every page of it reads each referral as it was at that
//! version: referrals created later are not seen, and a referral updated meanwhile keeps the
//! place it had. So a listing returns every referral exactly once, whatever is written while
//! it runs, even when it is ordered by `updatedDateTime`.
//!
//! The indexes hold one entry per kept version of each referral: `(value, id, version)`. An
//! entry counts for a snapshot when the version it was made from is the one that the snapshot
//! sees; the others are passed over. A member whose value never changes (`createdDateTime`)
//! has one entry per referral; one that changes with every write (`updatedDateTime`) gains one
//! per write, which always lands after the entries of earlier writes.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use referrals_model::facts::{Resource, SORTABLE};
use referrals_model::types::Referral;

use referrals_model::facts::Value;

/// How many versions of one referral are kept. A listing that pins an older version than
/// this sees the oldest kept one.
const KEPT_VERSIONS: usize = 64;

#[derive(Debug)]
struct Item {
    /// The version at which the referral was created.
    created: u64,
    /// Its recent versions, oldest first, each with the version that wrote it.
    versions: Vec<(u64, Arc<Referral>)>,
}

/// A key of an index: the member's value, ordered as the member's kind orders, then the id,
/// then the version that the entry was made from.
#[derive(Debug, Clone)]
pub struct IndexKey {
    value: Value,
    id: String,
    version: u64,
}

impl Ord for IndexKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value
            .scalar()
            .compare(&other.value.scalar())
            .then_with(|| self.id.cmp(&other.id))
            .then_with(|| self.version.cmp(&other.version))
    }
}

impl PartialEq for IndexKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for IndexKey {}

impl PartialOrd for IndexKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where an index walk starts: after (or before, walking down) the key `(value, id)`, or from
/// a value on, included or not.
#[derive(Debug, Clone)]
pub enum From {
    /// From the first entry (the last, walking down).
    Start,
    /// Strictly past the entries of `(value, id)`.
    After(Value, String),
    /// From the entries of `value` on, with them or without them.
    Value(Value, bool),
}

/// The referrals, with their recent versions and their indexes.
#[derive(Debug, Default)]
pub struct Store {
    version: u64,
    items: HashMap<String, Item>,
    /// Ids in order of creation, so that listing order does not depend on hashing.
    order: Vec<String>,
    /// One index per sortable member, in the order of `facts::SORTABLE`.
    indexes: Vec<BTreeSet<IndexKey>>,
}

fn owned(scalar: referrals_model::facts::Scalar<'_>) -> Value {
    scalar.to_value()
}

impl Store {
    /// The current version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many referrals there are now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
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

    /// The ids of the referrals of the engagement `id`.
    pub fn engagement(&self, id: &str) -> Vec<String> {
        self.items
            .iter()
            .filter_map(|(key, item)| Some((key, item.versions.last()?)))
            .filter(|(_, (_, referral))| referral.engagement_id.as_deref() == Some(id))
            .map(|(key, _)| key.clone())
            .collect()
    }

    fn index_keys(referral: &Resource, id: &str, version: u64) -> Vec<IndexKey> {
        SORTABLE
            .iter()
            .map(|member| IndexKey {
                value: owned((member.get)(referral)),
                id: id.to_owned(),
                version,
            })
            .collect()
    }

    /// Adds or replaces a referral (its `id` must be set); returns the new version.
    pub fn put(&mut self, referral: Referral) -> u64 {
        let id = referral.id.clone().expect("a stored referral has an id");
        self.version += 1;
        let version = self.version;
        if self.indexes.len() != SORTABLE.len() {
            self.indexes = vec![BTreeSet::new(); SORTABLE.len()];
        }
        for (index, key) in self
            .indexes
            .iter_mut()
            .zip(Self::index_keys(&referral, &id, version))
        {
            index.insert(key);
        }
        let item = self.items.entry(id.clone()).or_insert_with(|| {
            self.order.push(id.clone());
            Item {
                created: version,
                versions: Vec::new(),
            }
        });
        item.versions.push((version, Arc::new(referral)));
        if item.versions.len() > KEPT_VERSIONS {
            let (gone, old) = item.versions.remove(0);
            for (index, key) in self
                .indexes
                .iter_mut()
                .zip(Self::index_keys(&old, &id, gone))
            {
                index.remove(&key);
            }
        }
        version
    }

    /// Every referral as it was at `version`, in order of creation.
    pub fn snapshot(&self, version: u64) -> impl Iterator<Item = &Arc<Referral>> {
        self.order.iter().filter_map(move |id| self.at(id, version))
    }

    /// The referral `id` as it was at `version`, and the version that wrote it; `None` if it
    /// did not exist yet.
    fn entry_at(&self, id: &str, version: u64) -> Option<&(u64, Arc<Referral>)> {
        let item = self.items.get(id)?;
        if item.created > version {
            return None;
        }
        item.versions
            .iter()
            .rev()
            .find(|(at, _)| *at <= version)
            .or(item.versions.first())
    }

    /// The referral `id` as it was at `version`; `None` if it did not exist yet.
    pub fn at(&self, id: &str, version: u64) -> Option<&Arc<Referral>> {
        self.entry_at(id, version).map(|(_, referral)| referral)
    }

    /// The referrals at `version` in the order of the sortable member number `member` (then
    /// the id), ascending or descending, starting at `from` and ending at `to` (a value, with
    /// it or without it): a page in this order reads as many referrals as it keeps, not the
    /// whole store.
    pub fn walk(
        &self,
        member: usize,
        version: u64,
        descending: bool,
        from: From,
        to: Option<(Value, bool)>,
    ) -> Box<dyn Iterator<Item = &Arc<Referral>> + '_> {
        let Some(index) = self.indexes.get(member) else {
            return Box::new(std::iter::empty());
        };
        // Keys that sort before and after every key of a value: the id and version bounds.
        let low = |value: Value| IndexKey {
            value,
            id: String::new(),
            version: 0,
        };
        let high = |value: Value, id: String| IndexKey {
            value,
            id,
            version: u64::MAX,
        };
        let past = |value: Value| IndexKey {
            value,
            // No id sorts after this one: ids are printable text.
            id: "\u{10FFFF}".to_owned(),
            version: u64::MAX,
        };
        let (start, end): (Bound<IndexKey>, Bound<IndexKey>) = if descending {
            let start = match from {
                From::Start => Bound::Unbounded,
                From::After(value, id) => Bound::Excluded(low_id(value, id)),
                From::Value(value, true) => Bound::Included(past(value)),
                From::Value(value, false) => Bound::Excluded(low(value)),
            };
            let end = match to {
                None => Bound::Unbounded,
                Some((value, true)) => Bound::Included(low(value)),
                Some((value, false)) => Bound::Excluded(past(value)),
            };
            (end, start)
        } else {
            let start = match from {
                From::Start => Bound::Unbounded,
                From::After(value, id) => Bound::Excluded(high(value, id)),
                From::Value(value, true) => Bound::Included(low(value)),
                From::Value(value, false) => Bound::Excluded(past(value)),
            };
            let end = match to {
                None => Bound::Unbounded,
                Some((value, true)) => Bound::Included(past(value)),
                Some((value, false)) => Bound::Excluded(low(value)),
            };
            (start, end)
        };
        if !range_is_valid(&start, &end) {
            return Box::new(std::iter::empty());
        }
        let range = index.range((start, end));
        let entries: Box<dyn Iterator<Item = &IndexKey>> = if descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        Box::new(entries.filter_map(move |key| {
            let (written, referral) = self.entry_at(&key.id, version)?;
            (*written == key.version).then_some(referral)
        }))
    }
}

/// The key just before every entry of `(value, id)`.
fn low_id(value: Value, id: String) -> IndexKey {
    IndexKey {
        value,
        id,
        version: 0,
    }
}

/// `BTreeSet::range` panics on a start past the end; such a range is empty.
fn range_is_valid(start: &Bound<IndexKey>, end: &Bound<IndexKey>) -> bool {
    match (start, end) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a < b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn referral(id: &str, created: i64, updated: i64) -> Referral {
        Referral {
            id: Some(id.into()),
            name: Some(format!("{id}@{updated}")),
            created_date_time: DateTime::from_timestamp(created, 0),
            updated_date_time: DateTime::from_timestamp(updated, 0),
            ..Referral::default()
        }
    }

    fn position(path: &str) -> usize {
        SORTABLE
            .iter()
            .position(|member| member.path == path)
            .unwrap()
    }

    fn ids<'a>(items: impl Iterator<Item = &'a Arc<Referral>>) -> Vec<String> {
        items.map(|r| r.name.clone().unwrap()).collect()
    }

    fn time(seconds: i64) -> Value {
        Value::Time(DateTime::<Utc>::from_timestamp(seconds, 0).unwrap())
    }

    #[test]
    fn snapshots_see_the_past() {
        let mut store = Store::default();
        store.put(referral("a", 1, 1));
        let before = store.version();
        store.put(referral("a", 1, 2));
        store.put(referral("b", 2, 2));
        assert_eq!(ids(store.snapshot(before)), ["a@1"]);
        assert_eq!(ids(store.snapshot(store.version())), ["a@2", "b@2"]);
        assert_eq!(store.get("a").unwrap().name.as_deref(), Some("a@2"));
    }

    #[test]
    fn an_index_walks_both_ways_from_a_key_and_within_a_range() {
        let mut store = Store::default();
        for (id, created) in [("b", 2), ("a", 1), ("c", 2)] {
            store.put(referral(id, created, created));
        }
        let created = position("createdDateTime");
        let version = store.version();
        let walk = |descending, from, to| ids(store.walk(created, version, descending, from, to));
        assert_eq!(walk(false, From::Start, None), ["a@1", "b@2", "c@2"]);
        assert_eq!(walk(true, From::Start, None), ["c@2", "b@2", "a@1"]);
        assert_eq!(walk(false, From::After(time(2), "b".into()), None), ["c@2"]);
        assert_eq!(walk(true, From::After(time(2), "b".into()), None), ["a@1"]);
        assert_eq!(
            walk(false, From::Value(time(2), true), None),
            ["b@2", "c@2"]
        );
        assert_eq!(
            walk(false, From::Value(time(1), false), None),
            ["b@2", "c@2"]
        );
        assert_eq!(walk(false, From::Start, Some((time(1), true))), ["a@1"]);
        assert_eq!(walk(false, From::Start, Some((time(2), false))), ["a@1"]);
        assert_eq!(walk(true, From::Value(time(2), false), None), ["a@1"]);
        assert_eq!(
            walk(true, From::Start, Some((time(2), true))),
            ["c@2", "b@2"]
        );
        assert!(walk(false, From::Value(time(3), true), Some((time(1), true))).is_empty());
        assert_eq!(
            ids(store.walk(created, 1, false, From::Start, None)),
            ["b@2"],
            "a snapshot sees only what existed"
        );
    }

    #[test]
    fn an_updated_member_moves_in_new_snapshots_and_stays_in_old_ones() {
        let mut store = Store::default();
        store.put(referral("a", 1, 10));
        store.put(referral("b", 1, 20));
        let before = store.version();
        store.put(referral("a", 1, 30));
        let updated = position("updatedDateTime");
        let walk = |version| ids(store.walk(updated, version, false, From::Start, None));
        assert_eq!(walk(before), ["a@10", "b@20"]);
        assert_eq!(walk(store.version()), ["b@20", "a@30"]);
    }

    #[test]
    fn pruned_versions_leave_the_indexes() {
        let mut store = Store::default();
        for second in 0..(KEPT_VERSIONS as i64 + 10) {
            store.put(referral("a", 1, second));
        }
        let updated = position("updatedDateTime");
        assert_eq!(store.indexes[updated].len(), KEPT_VERSIONS);
        assert_eq!(
            ids(store.walk(updated, store.version(), false, From::Start, None)).len(),
            1
        );
        // A snapshot older than every kept version sees the oldest kept one, in the index too.
        assert_eq!(
            ids(store.walk(updated, 1, false, From::Start, None)),
            ["a@10"]
        );
    }
}
