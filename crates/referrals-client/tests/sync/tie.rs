//! One large tie: a sandbox whose every referral an import created and updated at one instant
//! (`imported`), more than a first pass through the service's pages may keep in the state. The
//! tie is read by cells, whose saved state holds the cells left rather than the ids delivered:
//! it stays near a page or two, each referral comes once, and a run that stops in the tie goes
//! on with the cells left, delivering again only the batch it had not committed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::TryStreamExt;
use referrals_client::Client;
use referrals_client::query::Query;
use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::types::Referral;
use referrals_sandbox::{Config, Paging, Sandbox};
use serde_json::Value;

/// The tie: more referrals than the largest tie read in one pass (a thousand).
const TIE: usize = 1_500;
const PAGE: usize = 25;

async fn sandbox(paging: Paging) -> (Sandbox, Client) {
    let sandbox = referrals_testkit::start(Config {
        seed_count: TIE,
        page_size: PAGE,
        paging,
        imported: true,
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    (sandbox, client)
}

/// The versions (id, eTag) of the sandbox's imported referrals: all but its examples.
async fn imported(client: &Client) -> BTreeSet<(String, String)> {
    let all: Vec<Referral> = client.list_all(Query::new()).try_collect().await.unwrap();
    let created = all.iter().filter_map(|r| r.created_date_time).max();
    let tie: BTreeSet<(String, String)> = all
        .iter()
        .filter(|r| r.created_date_time == created && r.updated_date_time == created)
        .map(version)
        .collect();
    assert_eq!(tie.len(), TIE, "the import is one tie");
    tie
}

fn version(referral: &Referral) -> (String, String) {
    let id = referral.id.clone().unwrap_or_default();
    (id, referral.e_tag.clone().unwrap_or_default())
}

/// How many referrals a saved state marks as delivered.
fn marks(state: &SyncState) -> usize {
    let json: Value = serde_json::from_str(&state.to_json()).unwrap();
    json["delivered"].as_object().map_or(0, |marks| marks.len())
}

/// What runs delivered: each version and how often, committed or not.
#[derive(Default)]
struct Log {
    committed: BTreeMap<(String, String), usize>,
    uncommitted: BTreeMap<(String, String), usize>,
    most_marks: usize,
}

/// One process's run from `saved` with the defaults and no skew, committing each batch; with
/// `stop`, it takes that batch and dies before its commit. The state committed last, and
/// whether the run ended.
async fn run(
    client: &Client,
    saved: Option<SyncState>,
    log: &mut Log,
    stop: Option<usize>,
) -> (Option<SyncState>, bool) {
    let options = SyncOptions::new().skew(Duration::ZERO);
    let mut sync = client.sync(saved.clone(), options).unwrap();
    let (mut saved, mut batches) = (saved, 0);
    while let Some(mut batch) = sync.next().await.unwrap() {
        batches += 1;
        let items = batch.take_items();
        let into = if Some(batches) == stop {
            &mut log.uncommitted
        } else {
            &mut log.committed
        };
        for referral in &items {
            *into.entry(version(referral)).or_default() += 1;
        }
        if Some(batches) == stop {
            return (saved, false);
        }
        let state = batch.commit();
        log.most_marks = log.most_marks.max(marks(&state));
        saved = Some(state);
    }
    (saved, true)
}

/// The tie comes whole and once, in requests that grow with it (a few a page), with a state
/// that never marks more than two pages of it, whether the service keeps the tie's order or
/// gives it in a new order on every request.
#[tokio::test]
async fn a_large_tie_comes_once_with_a_state_of_two_pages() {
    for paging in [Paging::Keyset, Paging::Shuffled] {
        let (sandbox, client) = sandbox(paging).await;
        let tie = imported(&client).await;
        let before = sandbox.listings();
        let mut log = Log::default();
        assert!(run(&client, None, &mut log, None).await.1);
        let requests = sandbox.listings() - before;
        let delivered: BTreeSet<_> = log.committed.keys().cloned().collect();
        assert!(delivered.is_superset(&tie), "{paging:?}: the whole tie");
        let twice: Vec<_> = log.committed.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{paging:?}: came twice: {twice:?}");
        assert!(
            log.most_marks <= 2 * PAGE,
            "{paging:?}: a state marked {} referrals of the tie",
            log.most_marks
        );
        let pages = u64::try_from(TIE.div_ceil(PAGE)).unwrap();
        assert!(requests <= 5 * pages, "{paging:?}: {requests} requests");
    }
}

/// Runs that stop in the tie, each after a few batches, go on with the cells left: together
/// they deliver the whole tie, and only what a run took without committing comes again.
#[tokio::test]
async fn a_run_stopped_in_a_tie_goes_on_with_the_cells_left() {
    for paging in [Paging::Keyset, Paging::Shuffled] {
        let (_sandbox, client) = sandbox(paging).await;
        let tie = imported(&client).await;
        let (mut log, mut saved, mut runs) = (Log::default(), None, 0);
        for stop in (2..).step_by(3) {
            runs += 1;
            assert!(runs < 100, "{paging:?}: the runs do not end");
            let (state, ended) = run(&client, saved.take(), &mut log, Some(stop)).await;
            if ended {
                break;
            }
            assert!(state.is_some(), "{paging:?}: a run committed nothing");
            saved = state;
        }
        assert!(runs > 3, "{paging:?}: the tie was read in {runs} runs");
        let delivered: BTreeSet<_> = log.committed.keys().cloned().collect();
        assert!(delivered.is_superset(&tie), "{paging:?}: the whole tie");
        let twice: Vec<_> = log.committed.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{paging:?}: committed twice: {twice:?}");
        let lost: Vec<_> = (log.uncommitted.keys())
            .filter(|version| !log.committed.contains_key(*version))
            .collect();
        assert!(lost.is_empty(), "{paging:?}: never committed: {lost:?}");
        assert!(log.most_marks <= 2 * PAGE, "{paging:?}: {}", log.most_marks);
    }
}
