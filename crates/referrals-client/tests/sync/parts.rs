//! A first run in parts (disjoint ranges of creation instants read at once) against the
//! sandbox, small enough to run on every change of the sync: when a run is read in parts, that
//! each referral comes once at the cost of one pass, that a run that stops goes on with the
//! parts not done, and that a part whose pass misses some of a tie is read again whole. The
//! contract tests add writers, crashes at every batch and every paging.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use referrals_client::Client;
use referrals_client::query::Query;
use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::types::Referral;
use referrals_sandbox::{Config, Paging, Sandbox};
use serde_json::Value;

/// Requests at once in the runs here.
const AT_ONCE: usize = 3;

async fn sandbox(seed_count: usize, page_size: usize, paging: Paging) -> (Sandbox, Client) {
    let sandbox = referrals_testkit::start(Config {
        seed_count,
        page_size,
        paging,
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    (sandbox, client)
}

/// A first run in parts. No skew: the sandbox's referrals are all in the past.
fn in_parts() -> SyncOptions {
    SyncOptions::new().skew(Duration::ZERO).concurrency(AT_ONCE)
}

/// Every referral the sandbox holds, by id.
async fn store(client: &Client) -> BTreeMap<String, Referral> {
    let all: Vec<Referral> = client.list_all(Query::new()).try_collect().await.unwrap();
    all.into_iter()
        .map(|referral| (referral.id.clone().unwrap(), referral))
        .collect()
}

/// The parts that a state records, as its JSON writes them; none outside a run in parts.
fn parts(state: &SyncState) -> Vec<Value> {
    let json: Value = serde_json::from_str(&state.to_json()).unwrap();
    json["snapshot"]["parts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A range of creation instants, `[from, until)`, open where a bound is `None`.
type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The creation range of a part.
fn range(part: &Value) -> Range {
    let instant = |key: &str| -> Option<DateTime<Utc>> {
        part[key].as_str().map(|text| text.parse().unwrap())
    };
    (instant("from"), instant("until"))
}

/// The creation range of a part that is done.
fn done_range(part: &Value) -> Option<Range> {
    (part["done"] == Value::Bool(true)).then(|| range(part))
}

/// Whether `range` holds the instant `created`.
fn holds((from, until): &Range, created: DateTime<Utc>) -> bool {
    from.is_none_or(|from| from <= created) && until.is_none_or(|until| created < until)
}

/// One process's run from `saved`: it takes each batch's referrals into `log` and commits,
/// to the end; or, with `stop`, takes that batch's referrals and dies before its commit.
/// Returns the state committed last and whether the run ended.
async fn run(
    client: &Client,
    saved: Option<SyncState>,
    log: &mut Vec<Referral>,
    stop: Option<usize>,
) -> (Option<SyncState>, bool) {
    let mut sync = client.sync(saved.clone(), in_parts()).unwrap();
    let (mut saved, mut batches) = (saved, 0);
    while let Some(mut batch) = sync.next().await.unwrap() {
        batches += 1;
        log.extend(batch.take_items());
        if Some(batches) == stop {
            return (saved, false);
        }
        saved = Some(batch.commit());
    }
    (saved, true)
}

fn ids(referrals: &[Referral]) -> BTreeSet<String> {
    referrals.iter().filter_map(|r| r.id.clone()).collect()
}

/// Each referral comes once, in as many requests as one pass over the pages and the plan's
/// probes; the state of the batches records the parts; the last leaves the watermark at the
/// run's bound, so a quiet run delivers nothing.
#[tokio::test]
async fn a_first_run_in_parts_gives_each_referral_once_at_the_cost_of_one_pass() {
    let (sandbox, client) = sandbox(600, 20, Paging::Keyset).await;
    let expected = store(&client).await;
    let before = sandbox.listings();
    let mut sync = client.sync(None, in_parts()).unwrap();
    let (mut log, mut recorded, mut last) = (Vec::new(), 0, None);
    while let Some(mut batch) = sync.next().await.unwrap() {
        log.extend(batch.take_items());
        let state = batch.commit();
        recorded = recorded.max(parts(&state).len());
        last = Some(state);
    }
    let requests = sandbox.listings() - before;
    assert_eq!(log.len(), expected.len(), "each referral once");
    assert_eq!(ids(&log), expected.keys().cloned().collect());
    // Ranges for the readers, and the rest of the second of the run's clock.
    assert!(recorded > AT_ONCE, "{recorded} parts");
    // A page after another, each part's pages rounded up, and the two probes of the plan.
    let pass = u64::try_from(expected.len().div_ceil(20) + recorded + 2).unwrap();
    assert!(requests <= pass, "{requests} requests, one pass is {pass}");

    let last = last.unwrap();
    let newest = expected.values().filter_map(|r| r.updated_date_time).max();
    assert!(!last.in_run() && last.watermark() >= newest, "{last:?}");
    let mut again = Vec::new();
    assert!(run(&client, Some(last), &mut again, None).await.1);
    assert!(again.is_empty(), "a quiet run delivered {}", again.len());
}

/// A first run reads in parts from a hundred referrals on; fewer are read a page after
/// another (as `SyncOptions::concurrency` says).
#[tokio::test]
async fn a_first_run_reads_in_parts_from_a_hundred_referrals_on() {
    let examples = store(&sandbox(0, 10, Paging::Keyset).await.1).await.len();
    for (total, in_parts_expected) in [(99, false), (100, true)] {
        let (_sandbox, client) = sandbox(total - examples, 10, Paging::Keyset).await;
        let mut sync = client.sync(None, in_parts()).unwrap();
        let first = sync.next().await.unwrap().unwrap().commit();
        assert_eq!(!parts(&first).is_empty(), in_parts_expected, "{total}");
    }
}

/// A process that dies in a run in parts leaves a state whose parts done the next process
/// does not read again; between them, every referral comes.
#[tokio::test]
async fn a_run_in_parts_that_stops_goes_on_with_the_parts_not_done() {
    let (_sandbox, client) = sandbox(600, 20, Paging::Keyset).await;
    let expected = store(&client).await;
    // Three readers of parts of two to four pages: after fifteen pages, a part is done.
    let mut first = Vec::new();
    let (saved, ended) = run(&client, None, &mut first, Some(16)).await;
    let saved = saved.unwrap();
    let done: Vec<_> = parts(&saved).iter().filter_map(done_range).collect();
    assert!(!ended && !done.is_empty(), "{saved:?}");
    assert!(done.len() < parts(&saved).len(), "{saved:?}");

    let mut second = Vec::new();
    assert!(run(&client, Some(saved), &mut second, None).await.1);
    let mut both = ids(&first);
    both.extend(ids(&second));
    assert_eq!(both, expected.keys().cloned().collect());
    for referral in &second {
        let created = referral.created_date_time.unwrap();
        let in_done = |range: &Range| holds(range, created);
        assert!(!done.iter().any(in_done), "{created} was read again");
    }
}

/// A service that gives ties in a new order on every request, in pages of two: a pass over
/// the part that holds the imports (referrals that share their creation instant) misses some
/// of them, and the part is read again as a sync of its own, which reads ties whole. Every
/// referral comes; those that come twice are of that part alone. (The sandbox's shuffle is
/// seeded: the same requests see the same orders.)
#[tokio::test]
async fn a_part_whose_pass_misses_some_of_a_tie_is_read_again_whole() {
    let (_sandbox, client) = sandbox(600, 2, Paging::Shuffled).await;
    let expected = store(&client).await;
    let mut sync = client.sync(None, in_parts()).unwrap();
    let (mut log, mut ranges) = (Vec::new(), Vec::new());
    while let Some(mut batch) = sync.next().await.unwrap() {
        log.extend(batch.take_items());
        let state = batch.commit();
        if ranges.is_empty() {
            ranges = parts(&state).iter().map(range).collect();
        }
    }
    assert_eq!(ids(&log), expected.keys().cloned().collect());
    let mut once = BTreeSet::new();
    let again: BTreeSet<usize> = log
        .iter()
        .filter(|referral| !once.insert(referral.id.clone()))
        .map(|referral| {
            let created = referral.created_date_time.unwrap();
            ranges
                .iter()
                .position(|range| holds(range, created))
                .unwrap()
        })
        .collect();
    assert_eq!(
        again.len(),
        1,
        "parts whose referrals came twice: {again:?}"
    );
}
