//! The incremental sync against the sandbox: every referral, in its last version, reaches the
//! consumer's mirror, with writers changing referrals during the sync, crashes between a
//! delivery and its commit at any page boundary, groups of referrals that share one
//! `updatedDateTime` and do not fit a page, and a sandbox whose `$skiptoken` is an offset that
//! shifts when referrals change, whose ties come in a new order on every request, or that does
//! not count.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::TryStreamExt;
use proptest::prelude::*;
use referrals_client::patch::Patch;
use referrals_client::query::{self, Query};
use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::types::{Referral, ReferralDirection, ReferralStatus};
use referrals_client::{Client, ErrorKind};
use referrals_sandbox::{Config, Paging, Sandbox};

async fn sandbox(seed_count: usize, page_size: usize, paging: Paging) -> Sandbox {
    counting(seed_count, page_size, paging, true).await
}

/// A sandbox that answers `$count` or not.
async fn counting(seed_count: usize, page_size: usize, paging: Paging, count: bool) -> Sandbox {
    referrals_testkit::start(Config {
        seed_count,
        page_size,
        paging,
        answer_count: count,
        ..referrals_testkit::config()
    })
    .await
}

fn client(sandbox: &Sandbox) -> Client {
    referrals_testkit::client(&sandbox.url())
}

/// The consumer's copy: the last version delivered of each referral, by id.
type Mirror = BTreeMap<String, Referral>;

/// One run of the sync from `saved`; crashes (drops a batch without its commit, and starts
/// again from the saved state, as a new process would) before the commit of the batches whose
/// numbers `crash` holds. Returns the state saved last and how many batches came.
async fn run(
    client: &Client,
    saved: Option<String>,
    options: &SyncOptions,
    mirror: &mut Mirror,
    crash: &[usize],
) -> (Option<String>, usize) {
    run_logged(client, saved, options, mirror, crash, &mut Vec::new()).await
}

/// [`run`], with every referral delivered, in order, pushed onto `log`.
async fn run_logged(
    client: &Client,
    saved: Option<String>,
    options: &SyncOptions,
    mirror: &mut Mirror,
    crash: &[usize],
    log: &mut Vec<Referral>,
) -> (Option<String>, usize) {
    let mut saved = saved;
    let mut batches = 0usize;
    'process: loop {
        let state = saved
            .as_deref()
            .map(|text| SyncState::from_json(text).unwrap());
        let mut sync = client.sync(state, options.clone()).unwrap();
        while let Some(mut batch) = sync.next().await.unwrap() {
            batches += usize::from(!batch.items().is_empty());
            for referral in batch.take_items() {
                log.push(referral.clone());
                mirror.insert(referral.id.clone().unwrap(), referral);
            }
            if crash.contains(&batches) {
                // Delivered, not committed: the process dies here.
                continue 'process;
            }
            saved = Some(batch.commit().to_json());
        }
        return (saved, batches);
    }
}

/// What the service holds that the filter keeps, by id.
async fn store(client: &Client, filter: Option<query::Filter>) -> Mirror {
    let query = match filter {
        Some(filter) => Query::new().filter(filter),
        None => Query::new(),
    };
    let all: Vec<Referral> = client.list_all(query).try_collect().await.unwrap();
    all.into_iter()
        .map(|referral| (referral.id.clone().unwrap(), referral))
        .collect()
}

/// Waits past the second in which the last write happened: a run's bound is the service's
/// `Date`, which counts whole seconds.
async fn past_this_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

fn options() -> SyncOptions {
    SyncOptions::new().skew(Duration::ZERO)
}

#[tokio::test]
async fn a_referral_created_just_before_a_run_is_in_the_copy_after_it() {
    let sandbox = sandbox(50, 100, Paging::Keyset).await;
    let client = client(&sandbox);
    let options = SyncOptions::new(); // the default skew of two minutes
    let mut mirror = Mirror::new();
    let (saved, _) = run(&client, None, &options, &mut mirror, &[]).await;
    let new: referrals_client::types::NewReferral = serde_json::from_str(include_str!(
        "../../openapi/examples/ours-create-request.json"
    ))
    .unwrap();
    let created = client.create(&new).await.unwrap();
    let (saved, _) = run(&client, saved, &options, &mut mirror, &[]).await;
    let id = created.id.clone().unwrap();
    assert_eq!(
        mirror.get(&id).and_then(|r| r.e_tag.clone()),
        created.e_tag,
        "held back"
    );
    // The watermark trails by the skew: the next run delivers it once more, the same version.
    let mut again = Mirror::new();
    run(&client, saved.clone(), &options, &mut again, &[]).await;
    assert_eq!(again.get(&id).and_then(|r| r.e_tag.clone()), created.e_tag);
    let state = SyncState::from_json(saved.as_deref().unwrap()).unwrap();
    assert!(state.watermark() < created.updated_date_time, "{state:?}");
}

#[tokio::test]
async fn a_first_run_delivers_everything_once_and_a_quiet_run_nothing() {
    // Pages of 7: the groups of referrals that share an instant (about a fifth of the data is
    // updated by a batch job at 8 instants) do not fit a page.
    let sandbox = sandbox(400, 7, Paging::Keyset).await;
    let client = client(&sandbox);
    past_this_second().await;
    let mut mirror = Mirror::new();
    let (saved, batches) = run(&client, None, &options(), &mut mirror, &[]).await;
    assert!(batches > 10, "{batches} batches");
    assert_eq!(mirror, store(&client, None).await);

    let state = SyncState::from_json(saved.as_deref().unwrap()).unwrap();
    assert!(state.watermark().is_some());
    let mut again = Mirror::new();
    let (_, batches) = run(&client, saved, &options(), &mut again, &[]).await;
    assert_eq!(
        batches,
        0,
        "a quiet run delivers nothing: {:?}",
        again.keys()
    );
}

/// A first run in parts, whose every batch is dropped once before its commit on the same
/// run (its referrals taken or only looked at), then delivered: each comes again whole, and the
/// copy is the service's, each referral once.
#[tokio::test]
async fn a_batch_of_a_run_in_parts_dropped_without_its_commit_comes_again() {
    let sandbox = sandbox(400, 25, Paging::Keyset).await;
    let client = client(&sandbox);
    past_this_second().await;
    let mut run = client.sync(None, options().concurrency(4)).unwrap();
    let mut mirror = Mirror::new();
    let (mut batches, mut in_parts) = (0, false);
    while let Some(mut batch) = run.next().await.unwrap() {
        let ids = |items: &[Referral]| -> Vec<String> {
            items.iter().filter_map(|r| r.id.clone()).collect()
        };
        let first = if batches % 2 == 0 {
            ids(&batch.take_items())
        } else {
            ids(batch.items())
        };
        drop(batch);
        let again = run.next().await.unwrap().expect("the batch again");
        let (items, state) = again.deliver();
        assert_eq!(ids(&items), first, "batch {batches}");
        in_parts |= state.to_json().contains("\"snapshot\":{");
        for referral in items {
            let id = referral.id.clone().unwrap();
            assert!(mirror.insert(id, referral).is_none(), "delivered twice");
        }
        batches += 1;
    }
    assert!(
        in_parts && batches > 4,
        "{batches} batches, in parts: {in_parts}"
    );
    assert_eq!(mirror, store(&client, None).await);
}

#[tokio::test]
async fn the_seed_data_has_groups_larger_than_a_page() {
    let sandbox = sandbox(400, 7, Paging::Keyset).await;
    let client = client(&sandbox);
    let all = store(&client, None).await;
    let mut by_instant: BTreeMap<_, usize> = BTreeMap::new();
    for referral in all.values() {
        *by_instant.entry(referral.updated_date_time).or_default() += 1;
    }
    let largest = by_instant.values().max().copied().unwrap_or_default();
    assert!(largest > 7, "the largest group is {largest}");
    // And groups that share their creation instant too, larger than a page of 5 from 2,000 on.
    let larger = self::sandbox(2000, 5, Paging::Keyset).await;
    let all = store(&self::client(&larger), None).await;
    let mut by_both: BTreeMap<_, usize> = BTreeMap::new();
    for referral in all.values() {
        *by_both
            .entry((referral.updated_date_time, referral.created_date_time))
            .or_default() += 1;
    }
    let largest = by_both.values().max().copied().unwrap_or_default();
    assert!(
        largest > 5,
        "the largest group of both instants is {largest}"
    );
}

/// A group far larger than a page (a batch job stamped a fifth of the data with one of eight
/// instants) costs a state near a page and the group's largest tie, not the group: a group
/// read by `createdDateTime` keeps the creation instant it passed, not every id delivered. A
/// process that dies in the middle of a group goes on from there: nothing is missed, and what
/// comes twice is only what each crash left uncommitted.
#[tokio::test]
async fn the_state_stays_near_a_page_however_large_the_group() {
    let sandbox = sandbox(4000, 5, Paging::Keyset).await;
    let client = client(&sandbox);
    past_this_second().await;
    let expected = store(&client, None).await;
    let (mut groups, mut ties) = (BTreeMap::new(), BTreeMap::new());
    for referral in expected.values() {
        let both = (referral.updated_date_time, referral.created_date_time);
        *groups.entry(both.0).or_insert(0usize) += 1;
        *ties.entry(both).or_insert(0usize) += 1;
    }
    let group = groups.values().copied().max().unwrap();
    let tie = ties.values().copied().max().unwrap();
    let (mut mirror, mut delivered, mut largest) = (Mirror::new(), 0usize, 0usize);
    let (mut saved, mut batches): (Option<String>, usize) = (None, 0);
    let crashes = [30, 45, 300, 301];
    'process: loop {
        let state = saved.as_deref().map(|t| SyncState::from_json(t).unwrap());
        let mut sync = client.sync(state, options()).unwrap();
        while let Some(mut batch) = sync.next().await.unwrap() {
            batches += usize::from(!batch.items().is_empty());
            for referral in batch.take_items() {
                delivered += 1;
                mirror.insert(referral.id.clone().unwrap(), referral);
            }
            if crashes.contains(&batches) {
                continue 'process;
            }
            let text = batch.commit().to_json();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            largest = largest.max(json["delivered"].as_object().unwrap().len());
            saved = Some(text);
        }
        break;
    }
    assert_eq!(mirror, expected);
    assert!(group > 3 * (tie + 5), "a group of {group}, ties of {tie}");
    assert!(
        largest <= tie + 5,
        "{largest} ids in a state; ties of {tie}"
    );
    let again = delivered - expected.len();
    assert!(again <= crashes.len() * 5, "{again} delivered again");
}

/// A sandbox whose referrals a migration stamped with one instant (`migrated`) is one group of
/// the whole data; a sync with crashes reads it whole, by creation.
#[tokio::test]
async fn a_migration_that_stamped_every_referral_at_once_is_read_whole() {
    let sandbox = referrals_testkit::start(Config {
        seed_count: 600,
        page_size: 5,
        migrated: true,
        ..referrals_testkit::config()
    })
    .await;
    let client = client(&sandbox);
    past_this_second().await;
    let expected = store(&client, None).await;
    let stamped = expected
        .values()
        .filter(|r| r.updated_date_time == Some(referrals_sandbox::seed::MIGRATION))
        .count();
    assert_eq!(
        stamped, 600,
        "the synthetic referrals, not the two examples"
    );
    let mut mirror = Mirror::new();
    let (saved, _) = run(&client, None, &options(), &mut mirror, &[3, 50, 51]).await;
    assert_eq!(mirror, expected);
    let (_, batches) = run(&client, saved, &options(), &mut Mirror::new(), &[]).await;
    assert_eq!(batches, 0);
}

/// Groups that share both instants and do not fit a page are read through the service's pages,
/// with passes checked against its count: under either paging of the sandbox.
#[tokio::test]
async fn groups_of_both_instants_larger_than_a_page_are_read_whole() {
    for paging in [Paging::Keyset, Paging::Offset] {
        let sandbox = sandbox(2000, 5, paging).await;
        let client = client(&sandbox);
        past_this_second().await;
        let mut mirror = Mirror::new();
        run(&client, None, &options(), &mut mirror, &[]).await;
        assert_eq!(mirror, store(&client, None).await, "{paging:?}");
    }
}

/// A service that gives referrals of equal keys in a new order on every request (a pass over
/// a group then sees some twice and others never), with and without `$count`; and offset pages
/// without `$count`.
#[tokio::test]
async fn groups_are_read_whole_when_ties_come_in_any_order_and_without_a_count() {
    let cases = [
        (Paging::Shuffled, true),
        (Paging::Shuffled, false),
        (Paging::Offset, false),
    ];
    for (paging, answer_count) in cases {
        let sandbox = counting(2000, 5, paging, answer_count).await;
        let client = client(&sandbox);
        past_this_second().await;
        let mut mirror = Mirror::new();
        let (saved, _) = run(&client, None, &options(), &mut mirror, &[]).await;
        let expected = store(&client, None).await;
        assert_eq!(
            mirror.len(),
            expected.len(),
            "{paging:?}, count {answer_count}"
        );
        assert_eq!(mirror, expected, "{paging:?}, count {answer_count}");
        let (_, batches) = run(&client, saved, &options(), &mut Mirror::new(), &[]).await;
        assert_eq!(batches, 0, "{paging:?}, count {answer_count}");
        sandbox.shutdown().await;
    }
}

/// Requests grow with the size of a tie, not with passes times the tie. The sync reads only
/// the referrals that the sandbox's batch job imported (created and updated at one of its
/// instants: eight groups that share both instants, each ten pages long); whatever the order
/// of ties and whether the service counts, it costs a few requests a page of them, the same
/// few whatever the size of the tie.
#[tokio::test]
async fn ties_in_any_order_cost_requests_in_proportion_to_their_size() {
    let imports = imports();
    let cases = [
        (Paging::Keyset, true),
        (Paging::Shuffled, true),
        (Paging::Shuffled, false),
    ];
    for (paging, answer_count) in cases {
        let sandbox = counting(10_000, 5, paging, answer_count).await;
        let client = client(&sandbox);
        past_this_second().await;
        let mut mirror = Mirror::new();
        let options = options().filter(imports.clone());
        run(&client, None, &options, &mut mirror, &[]).await;
        let requests = sandbox.listings();
        assert_eq!(mirror, store(&client, Some(imports.clone())).await);
        let pages = u64::try_from(mirror.len().div_ceil(5)).unwrap();
        eprintln!(
            "{paging:?}, count {answer_count}: {} referrals, {pages} pages, {requests} requests",
            mirror.len()
        );
        assert!(mirror.len() > 300, "{}", mirror.len());
        // A service whose pages keep their order reads a tie in one pass; one that shuffles
        // ties costs its cells, a few requests a page; passes over the whole tie cost six.
        let bound = if paging == Paging::Keyset { 2 } else { 4 };
        assert!(
            requests <= bound * pages,
            "{paging:?}, count {answer_count}: {requests} requests for {pages} pages"
        );
        sandbox.shutdown().await;
    }
}

/// The referrals that the sandbox's batch job imported: eight groups that share both instants.
fn imports() -> query::Filter {
    use chrono::TimeZone;
    query::created_date_time().ge(chrono::Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap())
}

/// Ties read by cells while writers move their referrals out of them (and create others), with
/// crashes between deliveries and commits, with and without a count: nothing is missed.
#[tokio::test]
async fn ties_read_by_cells_lose_nothing_with_writers_and_crashes() {
    for answer_count in [true, false] {
        let sandbox = counting(4_000, 3, Paging::Shuffled, answer_count).await;
        let client = client(&sandbox);
        let ids: Vec<String> = store(&client, Some(imports())).await.into_keys().collect();
        past_this_second().await;
        let options = options().filter(imports());
        let writing = tokio::spawn(writers(client.clone(), ids, 80, 7));
        let mut mirror = Mirror::new();
        let (saved, _) = run(&client, None, &options, &mut mirror, &[2, 5, 9, 14]).await;
        writing.await.unwrap();
        past_this_second().await;
        run(&client, saved, &options, &mut mirror, &[]).await;
        let expected = store(&client, Some(imports())).await;
        assert_eq!(mirror.len(), expected.len(), "count {answer_count}");
        assert!(
            mirror == expected,
            "count {answer_count}: a version differs"
        );
        sandbox.shutdown().await;
    }
}

/// The sandbox's shuffled paging does what the test above needs: a plain walk over a group of
/// ties through its pages misses some of them.
#[tokio::test]
async fn the_shuffled_sandbox_makes_a_plain_walk_miss_ties() {
    let sandbox = sandbox(2000, 5, Paging::Shuffled).await;
    let client = client(&sandbox);
    let all = store(&client, None).await;
    let mut by_instant: BTreeMap<_, Vec<&Referral>> = BTreeMap::new();
    for referral in all.values() {
        by_instant
            .entry(referral.updated_date_time)
            .or_default()
            .push(referral);
    }
    let (instant, group) = by_instant
        .iter()
        .max_by_key(|(_, group)| group.len())
        .unwrap();
    let walked: Vec<Referral> = client
        .list_all(
            Query::new()
                .filter(query::updated_date_time().eq(instant.unwrap()))
                .order_by(query::OrderBy::asc(query::SortKey::UpdatedDateTime)),
        )
        .try_collect()
        .await
        .unwrap();
    let distinct: std::collections::BTreeSet<_> = walked.iter().map(|r| r.id.clone()).collect();
    assert_eq!(walked.len(), group.len());
    assert!(
        distinct.len() < group.len(),
        "{} of {}",
        distinct.len(),
        group.len()
    );
}

#[tokio::test]
async fn a_filtered_sync_delivers_only_what_the_filter_keeps() {
    let sandbox = sandbox(200, 10, Paging::Offset).await;
    let client = client(&sandbox);
    past_this_second().await;
    let incoming = query::direction().eq(ReferralDirection::Incoming);
    let options = options().filter(incoming.clone());
    let mut mirror = Mirror::new();
    let (saved, _) = run(&client, None, &options, &mut mirror, &[]).await;
    assert_eq!(mirror, store(&client, Some(incoming.clone())).await);

    // The state belongs to its filter.
    let state = SyncState::from_json(saved.as_deref().unwrap()).unwrap();
    let error = client.sync(Some(state), SyncOptions::new()).err().unwrap();
    assert_eq!(error.kind(), ErrorKind::InvalidContinuation);
    assert!(
        error.to_string().contains("direction eq 'Incoming'"),
        "{error}"
    );
}

/// Writes while a sync runs: updates of existing referrals (which move them to later
/// instants, out of the pages that a sync reads) and creates.
/// Writes `writes` times (a creation now and then, else an update of one of `ids`), and
/// returns every version it made.
async fn writers(client: Client, ids: Vec<String>, writes: usize, seed: u64) -> Vec<Referral> {
    let mut made = Vec::new();
    let mut rng = fastrand::Rng::with_seed(seed);
    for index in 0..writes {
        if rng.u8(..4) == 0 {
            let mut new: referrals_client::types::NewReferral =
                serde_json::from_value(serde_json::json!({
                    "type": "Independent",
                    "customerProfile": { "name": format!("Written {index}") },
                    "consent": {}, "details": {}
                }))
                .unwrap();
            new.name = Some(format!("created during the sync {index}"));
            made.push(client.create(&new).await.unwrap());
        } else {
            let id = &ids[rng.usize(..ids.len())];
            let Ok(current) = client.referral(id).await else {
                continue;
            };
            let patch = Patch::new().set_status_reason(format!("write {index}"));
            // A lost race with another writer is fine: the next write tries another.
            if let Ok(written) = client.update(&current, patch).await {
                made.push(written);
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(0..3))).await;
    }
    made
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// One case: a sandbox, writers during a first sync that crashes at `crash`, then a final run
/// once the writers stopped; the mirror must equal the store, version for version. The
/// sandbox holds 150 referrals, in pages of `page_size`.
async fn case(server: Config, crash: Vec<usize>, writes: usize, seed: u64, concurrency: usize) {
    let (paging, page_size, counts) = (server.paging, server.page_size, server.answer_count);
    let sandbox = referrals_testkit::start(Config {
        seed_count: 150,
        ..server
    })
    .await;
    let client = client(&sandbox);
    let ids: Vec<String> = store(&client, None).await.into_keys().collect();
    past_this_second().await;

    let at_start = store(&client, None).await;
    let writing = tokio::spawn(writers(client.clone(), ids, writes, seed));
    let mut mirror = Mirror::new();
    let first = options().concurrency(concurrency);
    let mut log = Vec::new();
    let (saved, _) = run_logged(&client, None, &first, &mut mirror, &crash, &mut log).await;
    let written = writing.await.unwrap();
    model::check(&at_start, &written, &log);

    // The writers stopped: the next runs catch up, and then a quiet one delivers nothing.
    past_this_second().await;
    let (saved, _) = run(&client, saved, &options(), &mut mirror, &[]).await;
    let expected = store(&client, None).await;
    let differing: Vec<&String> = expected
        .iter()
        .filter(|(id, referral)| mirror.get(*id) != Some(referral))
        .map(|(id, _)| id)
        .collect();
    assert!(
        differing.is_empty() && mirror.len() == expected.len(),
        "{paging:?} (counts: {counts}), pages of {page_size}, {concurrency} at once, crashes at {crash:?}: {} of {} differ (mirror has {}): {differing:?}",
        differing.len(),
        expected.len(),
        mirror.len()
    );
    let (_, batches) = run(&client, saved, &options(), &mut Mirror::new(), &[]).await;
    assert_eq!(batches, 0);
    sandbox.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(12),
        ..ProptestConfig::default()
    })]

    /// Crashes at any page boundaries, writers during the sync, any paging of the sandbox, with
    /// and without `$count`.
    #[test]
    fn nothing_is_missed_with_writers_and_crashes(
        paging in prop::sample::select(vec![Paging::Keyset, Paging::Offset, Paging::Shuffled]),
        page_size in 2usize..25,
        crash in prop::collection::vec(1usize..40, 0..6),
        answer_count in any::<bool>(),
        writes in 0usize..60,
        seed in any::<u64>(),
        concurrency in prop::sample::select(vec![1usize, 4]),
    ) {
        let server = Config { paging, page_size, answer_count, ..referrals_testkit::config() };
        runtime().block_on(case(server, crash, writes, seed, concurrency));
    }
}

/// A first run in parts (several requests at once over ranges of creation instants) gives
/// every referral, whatever the paging, and crashes at every batch lose nothing: the state
/// records the parts done, and the next process reads the others.
#[test]
fn a_first_run_in_parts_delivers_everything_and_survives_crashes() {
    runtime().block_on(async {
        for paging in [Paging::Keyset, Paging::Offset, Paging::Shuffled] {
            let sandbox = sandbox(600, 7, paging).await;
            let client = client(&sandbox);
            past_this_second().await;
            let expected = store(&client, None).await;
            let parts = options().concurrency(4);
            // The first batch's state records the parts: the run is in parts.
            let mut sync = client.sync(None, parts.clone()).unwrap();
            let first = sync.next().await.unwrap().unwrap().commit().to_json();
            assert!(first.contains("\"snapshot\""), "{paging:?}: {first}");
            drop(sync);
            let mut mirror = Mirror::new();
            let (saved, batches) = run(&client, None, &parts, &mut mirror, &[]).await;
            assert_eq!(mirror, expected, "{paging:?}");
            // More batches than a page after another: the parts came at once.
            assert!(batches >= expected.len() / 7, "{paging:?}: {batches}");
            let state = SyncState::from_json(saved.as_deref().unwrap()).unwrap();
            assert!(!state.in_run() && state.watermark().is_some(), "{paging:?}");
            let (_, after) = run(&client, saved, &options(), &mut Mirror::new(), &[]).await;
            assert_eq!(
                after, 0,
                "{paging:?}: a quiet run after the first delivers nothing"
            );
            for crash in [1, batches / 3, batches / 2, batches - 1] {
                let mut crashed = Mirror::new();
                run(&client, None, &parts, &mut crashed, &[crash, crash + 2]).await;
                assert_eq!(crashed, expected, "{paging:?}: crashes at {crash}");
            }
            sandbox.shutdown().await;
        }
    });
}

/// A first run in parts over a service that shuffles ties: a part whose pass misses some of a
/// tie (the eight groups of the batch job's imports) is read again as a sync of its own, which
/// reads the tie by cells; nothing is missed, and the cost stays within half as much again as
/// a faithful service's (about a quarter more here).
#[test]
fn a_first_run_in_parts_reads_shuffled_ties_whole_at_a_cost_near_one_pass() {
    runtime().block_on(async {
        let mut requests = Vec::new();
        for paging in [Paging::Keyset, Paging::Shuffled] {
            let sandbox = sandbox(4_000, 5, paging).await;
            let client = client(&sandbox);
            past_this_second().await;
            let mut mirror = Mirror::new();
            run(&client, None, &options().concurrency(4), &mut mirror, &[]).await;
            requests.push(sandbox.listings());
            assert_eq!(mirror, store(&client, None).await, "{paging:?}");
            sandbox.shutdown().await;
        }
        eprintln!("requests, faithful then shuffled: {requests:?}");
        assert!(
            requests[1] * 2 <= requests[0] * 3,
            "shuffled ties cost {requests:?}"
        );
    });
}

/// Every page boundary of one sync, one crash at a time.
#[test]
fn a_crash_at_every_page_boundary_loses_nothing() {
    runtime().block_on(async {
        let sandbox = sandbox(60, 6, Paging::Offset).await;
        let client = client(&sandbox);
        past_this_second().await;
        let mut clean = Mirror::new();
        let (_, batches) = run(&client, None, &options(), &mut clean, &[]).await;
        for crash in 1..=batches {
            let mut mirror = Mirror::new();
            run(&client, None, &options(), &mut mirror, &[crash]).await;
            assert_eq!(mirror, clean, "a crash before the commit of batch {crash}");
        }
    });
}

#[tokio::test]
async fn a_closed_referral_comes_again_in_its_new_version() {
    let sandbox = sandbox(30, 100, Paging::Keyset).await;
    let client = client(&sandbox);
    past_this_second().await;
    let mut mirror = Mirror::new();
    let (saved, _) = run(&client, None, &options(), &mut mirror, &[]).await;
    let lead = mirror
        .values()
        .find(|referral| referral.status == Some(ReferralStatus::New))
        .unwrap()
        .clone();
    let declined = client.decline(&lead, "Not our market.").await.unwrap();
    past_this_second().await;
    let mut changes = Mirror::new();
    let (_, batches) = run(&client, saved, &options(), &mut changes, &[]).await;
    assert_eq!(batches, 1);
    assert_eq!(changes.len(), 1);
    let delivered = &changes[lead.id.as_ref().unwrap()];
    assert_eq!(delivered.e_tag, declined.e_tag);
    assert_eq!(delivered.status, Some(ReferralStatus::Closed));
}

/// A deliberately simple model of what a run promises (the sync's module docs), checked against
/// what it delivered: every referral that the service held when the run began is delivered in
/// that version or a later one, unless a writer changed it during the run (it may then have
/// left the run's reach, and comes in the next run: the final run checks it); and nothing is
/// delivered that never existed (every version delivered is one the service held at the start
/// or one a writer made).
mod model {
    use std::collections::{BTreeMap, BTreeSet};

    use super::{Mirror, Referral};

    pub fn check(at_start: &Mirror, written: &[Referral], delivered: &[Referral]) {
        let existed: BTreeSet<(String, Option<String>)> = at_start
            .values()
            .chain(written)
            .map(|referral| (referral.id.clone().unwrap(), referral.e_tag.clone()))
            .collect();
        let mut newest: BTreeMap<&str, &Referral> = BTreeMap::new();
        for referral in delivered {
            let id = referral.id.as_deref().unwrap();
            let version = (id.to_owned(), referral.e_tag.clone());
            assert!(existed.contains(&version), "never existed: {version:?}");
            let known = newest.entry(id).or_insert(referral);
            if referral.updated_date_time > known.updated_date_time {
                *known = referral;
            }
        }
        let changed: BTreeSet<&str> = written.iter().filter_map(|r| r.id.as_deref()).collect();
        for (id, then) in at_start {
            if changed.contains(id.as_str()) {
                continue;
            }
            let got = newest.get(id.as_str()).map(|r| r.updated_date_time);
            assert!(
                got.is_some_and(|got| got >= then.updated_date_time),
                "{id}: held at {:?} when the run began, delivered {got:?}",
                then.updated_date_time
            );
        }
    }
}
