//! The change log and the change feed of a PostgreSQL mirror (a server of the test's own):
//! writers racing on one referral each record the version they replaced, in the order of
//! their commits; consumers with positions, snapshots and wake-ups; one session per consumer;
//! pruning; and the upgrade of a database of the previous version.

use std::time::Duration;

use referrals_client::types::Referral;
use referrals_mirror::postgres::PgMirror;
use referrals_mirror::{ChangeKind, Error, Opened, Start};
use referrals_testkit::postgres::Server;

async fn database(server: &Server, name: &str) -> String {
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    server.database_url(name)
}

fn version(id: &str, second: u32) -> Referral {
    serde_json::from_str(&format!(
        r#"{{"id":"{id}","eTag":"{id}{second}","status":"New",
            "updatedDateTime":"2024-05-01T00:{:02}:{:02}Z",
            "details":{{"dealValue":12345678901234567890.{second:02}}}}}"#,
        second / 60,
        second % 60
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_record_each_version_over_the_one_it_replaced() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = database(&server, "race").await;
    let mirror = PgMirror::connect(&url).await.unwrap();
    assert_eq!(mirror.opened(), Opened::Created);
    let mut feed = mirror.feed("audit", Start::Now).await.unwrap();
    feed.hold().await.unwrap();
    // Eight writers, each with its own connection, write 40 versions of two referrals in
    // shuffled orders: older versions are kept out, newer ones recorded.
    let mut writers = Vec::new();
    for writer in 0..8u32 {
        let url = url.clone();
        writers.push(tokio::spawn(async move {
            let mut mirror = PgMirror::connect(&url).await.unwrap();
            let mut rng = fastrand::Rng::with_seed(u64::from(writer));
            let mut seconds: Vec<u32> = (1..=40).collect();
            rng.shuffle(&mut seconds);
            for second in seconds {
                let id = if second % 2 == 0 { "a" } else { "b" };
                mirror.apply(&version(id, second)).await.unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let changes = feed.changes(10_000).await.unwrap();
    let seqs: Vec<i64> = changes.iter().map(|change| change.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "no gaps");
    for id in ["a", "b"] {
        let mine: Vec<_> = changes.iter().filter(|change| change.id == id).collect();
        assert_eq!(mine[0].kind, ChangeKind::New);
        for pair in mine.windows(2) {
            // Each change replaced the version of the change before it, and was newer.
            let tag = pair[1].member("eTag").expect("the eTag changed");
            assert_eq!(tag.previous_str(), pair[0].e_tag, "{id}: {pair:?}");
            assert!(pair[1].updated_date_time > pair[0].updated_date_time);
        }
        let last = mine.last().unwrap();
        let newest = if id == "a" { "a40" } else { "b39" };
        assert_eq!(last.e_tag.as_deref(), Some(newest));
        let deal = last.member("details/dealValue").unwrap();
        assert!(
            deal.value.get().starts_with("12345678901234567890."),
            "{deal:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reading_during_the_writes_sees_every_change_once_in_order() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = database(&server, "live").await;
    let mirror = PgMirror::connect(&url).await.unwrap();
    let mut feed = mirror.feed("live", Start::Now).await.unwrap();
    feed.hold().await.unwrap();
    // Eight writers on twenty referrals: their transactions commit in any order.
    let writers: Vec<_> = (0..8u32)
        .map(|writer| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut mirror = PgMirror::connect(&url).await.unwrap();
                for round in 0..50u32 {
                    let id = format!("r{}", (round * 7 + writer) % 20);
                    mirror
                        .apply(&version(&id, round * 8 + writer))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    while !writers.iter().all(tokio::task::JoinHandle::is_finished) {
        seen.extend(feed.changes(50).await.unwrap().iter().map(|c| c.seq));
    }
    let last: i64 = mirror
        .client()
        .query_one("SELECT last FROM change_counter", &[])
        .await
        .unwrap()
        .get(0);
    while seen.last().is_none_or(|seq| *seq < last) {
        seen.extend(feed.changes(50).await.unwrap().iter().map(|c| c.seq));
    }
    assert_eq!(
        seen,
        (1..=last).collect::<Vec<_>>(),
        "every change once, in order"
    );
    assert!(last > 40, "{last} changes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_snapshots_wake_ups_and_one_session_per_consumer() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = database(&server, "feeds").await;
    let mut mirror = PgMirror::connect(&url).await.unwrap();
    mirror.apply(&version("a", 1)).await.unwrap();
    mirror.apply(&version("b", 1)).await.unwrap();
    let mut snapshot = mirror.feed("snap", Start::Snapshot).await.unwrap();
    let first = snapshot.changes(10).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|c| (c.id.as_str(), c.kind))
            .collect::<Vec<_>>(),
        [("a", ChangeKind::Snapshot), ("b", ChangeKind::Snapshot)]
    );
    assert_eq!(
        first[0].referral.as_ref().unwrap().e_tag.as_deref(),
        Some("a1")
    );
    snapshot.ack(first[1].seq).await.unwrap();

    // Waiting: woken by the commit of another connection.
    let mut now = mirror.feed("now", Start::Now).await.unwrap();
    now.hold().await.unwrap();
    let waiting = tokio::spawn(async move { now.next(10).await.map(|changes| (now, changes)) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    mirror.apply(&version("a", 2)).await.unwrap();
    let (now, woken) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken")
        .unwrap()
        .unwrap();
    assert_eq!(woken[0].kind, ChangeKind::Changed);
    assert_eq!(
        woken[0].member("eTag").unwrap().previous_str().as_deref(),
        Some("a1")
    );

    // A second session for "now" waits until the first ends, then goes on after its ack.
    let second = mirror.feed("now", Start::Now).await.unwrap();
    let taking = tokio::spawn(async move {
        let mut second = second;
        second.changes(10).await.map(|changes| changes.len())
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!taking.is_finished(), "the second session waits");
    drop(now);
    let taken = tokio::time::timeout(Duration::from_secs(10), taking)
        .await
        .expect("taken over")
        .unwrap()
        .unwrap();
    assert_eq!(taken, 1, "the change the first did not acknowledge");

    // Another consumer sees no snapshot rows of `snap`.
    let mut all = mirror.feed("all", Start::After(0)).await.unwrap();
    let kinds: Vec<ChangeKind> = all
        .changes(10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(
        kinds,
        [ChangeKind::New, ChangeKind::New, ChangeKind::Changed]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_and_the_upgrade_of_a_database_of_version_1() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = database(&server, "prune").await;
    let mut mirror = PgMirror::connect(&url).await.unwrap();
    for second in 1..=4 {
        mirror.apply(&version("a", second)).await.unwrap();
    }
    let mut slow = mirror.feed("slow", Start::After(0)).await.unwrap();
    assert_eq!(slow.changes(2).await.unwrap().len(), 2);
    slow.ack(2).await.unwrap();
    slow.rewind().await.unwrap();
    mirror.prune_changes().await.unwrap();
    assert_eq!(slow.changes(10).await.unwrap().len(), 2);
    mirror.set_change_retention(Duration::ZERO).await.unwrap();
    mirror.prune_changes().await.unwrap();
    drop(slow);
    let mut slow = mirror.feed("slow", Start::Now).await.unwrap();
    let error = slow.changes(10).await.unwrap_err();
    assert!(
        matches!(error, Error::Pruned { position: 2, .. }),
        "{error}"
    );
    slow.restart(Start::Snapshot).await.unwrap();
    assert_eq!(
        slow.changes(10).await.unwrap()[0].kind,
        ChangeKind::Snapshot
    );

    // A database of version 1: the log is added, empty.
    let old = database(&server, "old").await;
    let mirror = PgMirror::connect(&old).await.unwrap();
    mirror
        .client()
        .batch_execute(
            "DROP TABLE changes, change_counter, consumers, failed_changes;
             ALTER TABLE events DROP COLUMN digest, DROP COLUMN attempts, DROP COLUMN next_try,
                 DROP COLUMN aside, DROP COLUMN error, DROP COLUMN claimed_by,
                 DROP COLUMN announced;
             UPDATE referrals_mirror SET value = '1' WHERE key = 'version';",
        )
        .await
        .unwrap();
    let mut upgraded = PgMirror::connect(&old).await.unwrap();
    assert_eq!(
        upgraded.opened(),
        Opened::Upgraded {
            from: 1,
            log_started: true
        }
    );
    upgraded.apply(&version("a", 1)).await.unwrap();
    let mut feed = upgraded.feed("crm", Start::After(0)).await.unwrap();
    assert_eq!(feed.changes(10).await.unwrap().len(), 1);
}
