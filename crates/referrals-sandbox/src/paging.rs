//! The paging engine of the list operation: the referrals of one page, in order, from a filter,
//! an order, `$skip`, `$top` and a `$skiptoken`, read from the store's indexes where they help.

use std::sync::Arc;

use referrals_model::facts;
use referrals_model::types::Referral;

use crate::filter::{Compiled, Order};
use crate::skiptoken::SkipToken;
use crate::store::{From, Store};
use crate::{App, Paging};
use referrals_model::facts::Value;

/// What a page of a listing is asked for.
pub(crate) struct Listing<'a> {
    pub(crate) filter: Option<&'a Compiled>,
    pub(crate) order: &'a Order,
    pub(crate) skip: usize,
    pub(crate) top: Option<u32>,
    pub(crate) count: bool,
    pub(crate) token: Option<&'a SkipToken>,
    /// The query's fingerprint: what its count is known by.
    pub(crate) query: &'a str,
}

/// A page, what remains of the listing after it, and the count when asked.
pub(crate) struct Page {
    pub(crate) items: Vec<Arc<Referral>>,
    pub(crate) total: Option<u64>,
    pub(crate) next: Option<SkipToken>,
}

/// The referrals of the page that `listing` asks for, read from `store`.
pub(crate) fn read_page(app: &App, store: &Store, listing: &Listing<'_>) -> Page {
    let remaining = listing
        .token
        .map_or(listing.top.map(u64::from), |token| token.remaining);
    let room = remaining.map_or(usize::MAX, |left| {
        usize::try_from(left).unwrap_or(usize::MAX)
    });
    // Offset paging reads the store as it is now, at each page: what a service whose skiptoken
    // is an offset does. Keyset paging reads the snapshot that the listing started from.
    let version = match (app.paging, listing.token) {
        (Paging::Keyset, Some(token)) => token.version,
        _ => store.version(),
    };
    let read = Read {
        app,
        store,
        listing,
        version,
        wanted: app.page_size.min(room),
    };
    let (mut found, total) = match read.index() {
        Some((index, descending, path)) => read.by_index(index, descending, path),
        None => read.by_sorting(),
    };
    // More follows when the walk found one past the page and `$top` leaves room for it.
    let more = found.len() > read.wanted && room > read.wanted;
    found.truncate(read.wanted);
    let next = found
        .last()
        .filter(|_| more)
        .map(|last| read.next_token(last, found.len(), remaining, total));
    Page {
        items: found,
        total,
        next,
    }
}

/// One page being read.
struct Read<'a> {
    app: &'a App,
    store: &'a Store,
    listing: &'a Listing<'a>,
    /// The version of the store that the page reads.
    version: u64,
    /// How many referrals the page holds at most.
    wanted: usize,
}

/// The matching referrals from where the page starts (one more than the page, to tell whether
/// more follow), and the count when asked.
type Found = (Vec<Arc<Referral>>, Option<u64>);

impl Read<'_> {
    fn passes(&self, referral: &&Arc<Referral>) -> bool {
        self.listing
            .filter
            .is_none_or(|filter| filter.matches(referral))
    }

    /// A filter that pins a sortable member to one instant (`updatedDateTime eq ...`) is read
    /// from that instant's entries of the member's index, whatever the order: they are few.
    fn pinned(&self) -> Option<(usize, Value)> {
        let filter = self.listing.filter?;
        facts::SORTABLE
            .iter()
            .enumerate()
            .find_map(|(index, member)| match filter.time_range(member.path)? {
                (std::ops::Bound::Included(low), std::ops::Bound::Included(high))
                    if low == high =>
                {
                    Some((index, Value::Time(low)))
                }
                _ => None,
            })
    }

    /// Otherwise an order by one sortable member walks that member's index.
    fn index(&self) -> Option<(usize, bool, &'static str)> {
        if self.app.paging == Paging::Shuffled {
            return None;
        }
        match self.listing.order.keys.as_slice() {
            [(member, descending)] if self.pinned().is_none() => facts::SORTABLE
                .iter()
                .position(|sortable| sortable.path == member.path)
                .map(|position| (position, *descending, member.path)),
            _ => None,
        }
    }

    /// The count of the query, from the token, the cache or `count`.
    fn total(&self, count: impl FnOnce() -> u64) -> Option<u64> {
        let listing = self.listing;
        listing.count.then(|| {
            listing
                .token
                .and_then(|token| token.total)
                .unwrap_or_else(|| self.app.count(self.version, listing.query, count))
        })
    }

    /// The page read from the index of the sortable member `index`, only in the range that a
    /// date-time filter on the member allows.
    fn by_index(&self, index: usize, descending: bool, path: &str) -> Found {
        let (app, store, listing, version) = (self.app, self.store, self.listing, self.version);
        let range = listing.filter.and_then(|filter| filter.time_range(path));
        let (low, high) = range.map_or((None, None), |(low, high)| {
            (bound_value(low), bound_value(high))
        });
        let (start, end) = if descending { (high, low) } else { (low, high) };
        let start_at = start.map_or(From::Start, |(value, included)| {
            From::Value(value, included)
        });
        let total = self.total(|| {
            let walk = store.walk(index, version, descending, start_at.clone(), end.clone());
            walk.filter(|referral| self.passes(referral)).count() as u64
        });
        let (from, offset) = match (app.paging, listing.token) {
            (Paging::Keyset, Some(token)) => match token.key.as_slice() {
                [value, Value::Text(id)] => (From::After(value.clone(), id.clone()), 0),
                _ => (start_at, 0),
            },
            (Paging::Offset | Paging::Shuffled, Some(token)) => (start_at, token.offset),
            (_, None) => (start_at, listing.skip),
        };
        let found = store
            .walk(index, version, descending, from, end)
            .filter(|referral| self.passes(referral))
            .skip(offset)
            .take(self.wanted.saturating_add(1))
            .cloned()
            .collect();
        (found, total)
    }

    /// The page read by sorting every match (or the entries of a pinned instant).
    fn by_sorting(&self) -> Found {
        let (app, store, listing, version) = (self.app, self.store, self.listing, self.version);
        let source: Box<dyn Iterator<Item = &Arc<Referral>>> = match self.pinned() {
            Some((index, at)) => store.walk(
                index,
                version,
                false,
                From::Value(at.clone(), true),
                Some((at, true)),
            ),
            None => Box::new(store.snapshot(version)),
        };
        // Each key once, not once a comparison.
        let mut matching: Vec<(Vec<_>, &Arc<Referral>)> = source
            .filter(|referral| self.passes(referral))
            .map(|referral| (listing.order.key(referral), referral))
            .collect();
        let all = matching.len();
        matching.sort_by(|(a, _), (b, _)| listing.order.compare(a, b));
        if app.paging == Paging::Shuffled {
            self.shuffle_ties(&mut matching);
        }
        let start = match (app.paging, listing.token) {
            (Paging::Keyset, Some(token)) => {
                let after: Vec<_> = token.key.iter().map(Value::scalar).collect();
                matching.partition_point(|(key, _)| {
                    listing.order.compare(key, &after) != std::cmp::Ordering::Greater
                })
            }
            (Paging::Offset | Paging::Shuffled, Some(token)) => token.offset.min(all),
            (_, None) => listing.skip.min(all),
        };
        let found = matching[start..]
            .iter()
            .take(self.wanted.saturating_add(1))
            .map(|(_, referral)| Arc::clone(referral))
            .collect();
        (found, self.total(|| all as u64))
    }

    /// Puts each run of referrals that tie on the order's keys (all but the id that ends a
    /// key) in a new order, when the request gave the order: the sandbox's own order stays
    /// total, so that a test can read what it holds.
    fn shuffle_ties<T>(&self, sorted: &mut [(Vec<facts::Scalar<'_>>, T)]) {
        if !self.listing.order.asked {
            return;
        }
        let keys = self.listing.order.keys.len();
        let mut rng = self
            .app
            .ties
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut start = 0;
        while start < sorted.len() {
            let key = &sorted[start].0[..keys];
            let run = sorted[start..]
                .iter()
                .take_while(|(other, _)| {
                    self.listing.order.compare(&other[..keys], key) == std::cmp::Ordering::Equal
                })
                .count();
            rng.shuffle(&mut sorted[start..start + run]);
            start += run;
        }
    }

    /// The token of the page after this one, whose last referral is `last`.
    fn next_token(
        &self,
        last: &Referral,
        read: usize,
        remaining: Option<u64>,
        total: Option<u64>,
    ) -> SkipToken {
        let (listing, order) = (self.listing, self.listing.order);
        let offset = match (self.app.paging, listing.token) {
            (Paging::Offset | Paging::Shuffled, Some(token)) => token.offset + read,
            _ => listing.skip + read,
        };
        SkipToken {
            version: self.version,
            key: order
                .key(last)
                .iter()
                .zip(order.kinds())
                .map(|(scalar, kind)| {
                    Value::from_json(kind, &scalar.to_json()).unwrap_or(Value::Null)
                })
                .collect(),
            offset,
            remaining: remaining.map(|left| left.saturating_sub(read as u64)),
            total,
            query: String::new(),
        }
    }
}

/// A bound of a range as a value and whether it is included.
fn bound_value(bound: crate::filter::Bound) -> Option<(Value, bool)> {
    match bound {
        std::ops::Bound::Included(time) => Some((Value::Time(time), true)),
        std::ops::Bound::Excluded(time) => Some((Value::Time(time), false)),
        std::ops::Bound::Unbounded => None,
    }
}
