//! The change log and the change feed of a SQLite mirror: what each write records, consumers
//! with their own positions, snapshots, one process per consumer, retention, the upgrade of an
//! older mirror, and deliveries with failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use referrals_client::sync::SyncState;
use referrals_client::types::Referral;
use referrals_mirror::feed::{DEFAULT_RETENTION, Delivery, Failure, OnFailure};
use referrals_mirror::{Applied, ChangeKind, Error, Mirror, Opened, Start};
use rusqlite::Connection;

fn referral(json: &str) -> Referral {
    serde_json::from_str(json).unwrap()
}

fn version(id: &str, second: u32, status: &str) -> Referral {
    referral(&format!(
        r#"{{"id":"{id}","eTag":"{id}{second}","status":"{status}",
            "updatedDateTime":"2024-05-01T00:00:{second:02}Z",
            "details":{{"dealValue":12345678901234.5{second}}}}}"#
    ))
}

const EMPTY_STATE: &str =
    r#"{"version":1,"filter":null,"watermark":null,"delivered":{},"complete":false,"bound":null}"#;

fn mirror() -> (tempfile::TempDir, Mirror) {
    let dir = tempfile::tempdir().unwrap();
    let mirror = Mirror::open(dir.path().join("mirror.sqlite")).unwrap();
    (dir, mirror)
}

#[tokio::test]
async fn every_write_that_changes_a_row_is_recorded_with_what_changed() {
    let (_dir, mut mirror) = mirror();
    assert_eq!(mirror.opened(), Opened::Created);
    let mut feed = mirror.feed("crm", Start::Now).unwrap();
    assert_eq!(feed.hold().await.unwrap().position, 0);
    let state = SyncState::from_json(EMPTY_STATE).unwrap();
    mirror
        .write(&[version("a", 1, "New"), version("b", 1, "New")], &state)
        .unwrap();
    assert_eq!(
        mirror.apply(&version("a", 2, "Active")).unwrap(),
        Applied::Updated
    );
    // The same version again, and an older one: nothing is written, nothing recorded.
    assert_eq!(
        mirror.apply(&version("a", 2, "Active")).unwrap(),
        Applied::Kept
    );
    assert_eq!(
        mirror.apply(&version("b", 0, "Closed")).unwrap(),
        Applied::Kept
    );

    let changes = feed.changes(100).await.unwrap();
    let seen: Vec<(i64, &str, ChangeKind)> = changes
        .iter()
        .map(|change| (change.seq, change.id.as_str(), change.kind))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "a", ChangeKind::New),
            (2, "b", ChangeKind::New),
            (3, "a", ChangeKind::Changed)
        ]
    );
    let changed = &changes[2];
    assert_eq!(changed.e_tag.as_deref(), Some("a2"));
    let status = changed.member("status").unwrap();
    assert_eq!(status.previous_str().as_deref(), Some("New"));
    assert_eq!(status.value_str().as_deref(), Some("Active"));
    let deal = changed.member("details/dealValue").unwrap();
    assert_eq!(
        deal.previous.get(),
        "12345678901234.51",
        "money keeps its digits"
    );
    assert_eq!(deal.value.get(), "12345678901234.52");
    assert!(changes[0].members.is_empty());
    // Each change comes with the referral as the mirror holds it.
    assert_eq!(
        changes[0].referral.as_ref().unwrap().e_tag.as_deref(),
        Some("a2")
    );
    assert!(feed.changes(100).await.unwrap().is_empty());
}

#[tokio::test]
async fn consumers_keep_their_own_positions_and_start_again_after_their_last_ack() {
    let (_dir, mirror) = mirror();
    let mut mirror = mirror;
    for second in 1..=5 {
        mirror.apply(&version("a", second, "New")).unwrap();
    }
    let mut crm = mirror.feed("crm", Start::After(0)).unwrap();
    let mut queue = mirror.feed("queue", Start::Now).unwrap();
    let first = crm.changes(2).await.unwrap();
    assert_eq!(first.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
    crm.ack(2).await.unwrap();
    let unacknowledged = crm.changes(10).await.unwrap();
    assert_eq!(unacknowledged.len(), 3);
    assert!(
        queue.changes(10).await.unwrap().is_empty(),
        "queue started now"
    );
    // Killed before it acknowledged 3 to 5: the next process gets them again.
    drop(crm);
    let mut crm = mirror.feed("crm", Start::Now).unwrap();
    let again = crm.changes(10).await.unwrap();
    assert_eq!(again.iter().map(|c| c.seq).collect::<Vec<_>>(), [3, 4, 5]);
    crm.ack(5).await.unwrap();
    crm.ack(4).await.unwrap();
    drop(crm);
    let mut crm = mirror.feed("crm", Start::Now).unwrap();
    assert_eq!(
        crm.hold().await.unwrap().position,
        5,
        "a position never moves back"
    );

    mirror.apply(&version("a", 6, "Active")).unwrap();
    assert_eq!(queue.changes(10).await.unwrap()[0].seq, 6);
    assert_eq!(crm.changes(10).await.unwrap()[0].seq, 6);
}

#[tokio::test]
async fn a_snapshot_delivers_every_row_to_its_consumer_alone_then_the_changes() {
    let (_dir, mut mirror) = mirror();
    mirror.apply(&version("a", 1, "New")).unwrap();
    mirror.apply(&version("b", 1, "New")).unwrap();
    mirror.apply(&version("a", 2, "Active")).unwrap();
    let mut late = mirror.feed("late", Start::Snapshot).unwrap();
    let mut other = mirror.feed("other", Start::Now).unwrap();
    other.hold().await.unwrap();
    let snapshot = late.changes(10).await.unwrap();
    let seen: Vec<(&str, ChangeKind, Option<&str>)> = snapshot
        .iter()
        .map(|c| (c.id.as_str(), c.kind, c.e_tag.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("a", ChangeKind::Snapshot, Some("a2")),
            ("b", ChangeKind::Snapshot, Some("b1"))
        ]
    );
    mirror.apply(&version("b", 2, "Active")).unwrap();
    let next = late.changes(10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].kind, ChangeKind::Changed);
    let others = other.changes(10).await.unwrap();
    assert_eq!(others.len(), 1, "another consumer gets no snapshot rows");
    assert_eq!(others[0].seq, next[0].seq);
}

#[tokio::test]
async fn a_second_process_for_a_consumer_waits_and_takes_over() {
    let (dir, mut mirror) = mirror();
    mirror.apply(&version("a", 1, "New")).unwrap();
    let mut first = mirror.feed("crm", Start::After(0)).unwrap();
    first.hold().await.unwrap();
    let path = dir.path().join("mirror.sqlite");
    let second = tokio::spawn(async move {
        let mirror = Mirror::open(&path).unwrap();
        let mut feed = mirror.feed("crm", Start::Now).unwrap();
        feed.changes(10).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !second.is_finished(),
        "the second waits while the first holds it"
    );
    assert_eq!(first.changes(10).await.unwrap().len(), 1);
    drop(first);
    let taken = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the second takes over")
        .unwrap();
    assert_eq!(taken.len(), 1, "the change the first did not acknowledge");
}

#[tokio::test]
async fn a_waiting_consumer_wakes_on_a_write() {
    let (dir, mirror) = mirror();
    let mut feed = mirror.feed("crm", Start::Now).unwrap();
    feed.hold().await.unwrap();
    let path = dir.path().join("mirror.sqlite");
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut mirror = Mirror::open(&path).unwrap();
        mirror.apply(&version("a", 1, "New")).unwrap();
    });
    let changes = tokio::time::timeout(Duration::from_secs(5), feed.next(10))
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(changes[0].id, "a");
    writer.await.unwrap();
}

#[tokio::test]
async fn pruning_passes_the_slowest_consumer_and_an_old_position_is_an_error() {
    let (_dir, mut mirror) = mirror();
    for second in 1..=4 {
        mirror.apply(&version("a", second, "New")).unwrap();
    }
    let mut slow = mirror.feed("slow", Start::After(0)).unwrap();
    let mut fast = mirror.feed("fast", Start::After(0)).unwrap();
    assert_eq!(slow.changes(2).await.unwrap().len(), 2);
    assert_eq!(fast.changes(10).await.unwrap().len(), 4);
    slow.ack(2).await.unwrap();
    fast.ack(4).await.unwrap();
    mirror.prune_changes().unwrap();
    let kept: i64 = mirror
        .connection()
        .query_row("SELECT count(*) FROM changes", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, 2, "the changes after the slowest consumer stay");
    slow.rewind().await.unwrap();
    assert_eq!(slow.changes(10).await.unwrap().len(), 2);
    let error = mirror
        .feed("new", Start::After(1))
        .unwrap()
        .hold()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Pruned { .. }), "{error}");

    // Older than the retention: pruned even though `slow` has not read them.
    mirror.set_change_retention(Duration::ZERO).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    mirror.prune_changes().unwrap();
    drop(slow);
    let mut slow = mirror.feed("slow", Start::Now).unwrap();
    let error = slow.changes(10).await.unwrap_err();
    assert!(
        matches!(error, Error::Pruned { position: 2, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("from a snapshot"), "{error}");
    let position = slow.restart(Start::Snapshot).await.unwrap();
    assert_eq!(position, 4);
    assert_eq!(
        slow.changes(10).await.unwrap()[0].kind,
        ChangeKind::Snapshot
    );

    // Forgotten, a consumer holds nothing back, and its name starts anew.
    mirror.set_change_retention(DEFAULT_RETENTION).unwrap();
    mirror.apply(&version("a", 5, "New")).unwrap();
    let last = fast.changes(10).await.unwrap().last().unwrap().seq;
    fast.ack(last).await.unwrap();
    let count = |mirror: &Mirror| -> i64 {
        mirror
            .connection()
            .query_row("SELECT count(*) FROM changes", [], |row| row.get(0))
            .unwrap()
    };
    mirror.prune_changes().unwrap();
    assert_eq!(
        count(&mirror),
        2,
        "slow's snapshot row and the change it has not read"
    );
    slow.forget().await.unwrap();
    mirror.prune_changes().unwrap();
    assert_eq!(count(&mirror), 0, "fast read them all");
    let mut again = mirror.feed("slow", Start::Now).unwrap();
    assert!(again.hold().await.unwrap().new);
}

#[test]
fn names_that_would_need_quoting_are_refused() {
    let (_dir, mirror) = mirror();
    for name in ["", "a b", "crm;drop", "../x", "-x", "é", &"x".repeat(65)] {
        let error = mirror.feed(name, Start::Now).unwrap_err();
        assert!(
            matches!(error, Error::ConsumerName { .. }),
            "{name}: {error}"
        );
    }
    assert!(mirror.feed("crm-leads_2", Start::Now).is_ok());
}

#[tokio::test]
async fn a_start_after_a_change_not_written_yet_is_refused() {
    let (_dir, mirror) = mirror();
    let error = mirror
        .feed("crm", Start::After(9))
        .unwrap()
        .hold()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Start { last: 0, .. }), "{error}");
}

#[tokio::test]
async fn a_mirror_of_version_2_gets_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.sqlite");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE referrals (id TEXT PRIMARY KEY NOT NULL, eTag TEXT, status TEXT,
                 substatus TEXT, updatedDateTime TEXT, json TEXT NOT NULL);
             CREATE TABLE sync_state (one INTEGER PRIMARY KEY CHECK (one = 1),
                 state TEXT NOT NULL, written TEXT NOT NULL);
             CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, received TEXT NOT NULL,
                 name TEXT NOT NULL, referral_id TEXT, body TEXT NOT NULL,
                 done INTEGER NOT NULL DEFAULT 0);
             INSERT INTO referrals VALUES ('a', '1', 'New', NULL, NULL, '{\"id\":\"a\",\"eTag\":\"1\"}');
             PRAGMA application_id = 1380340300; PRAGMA user_version = 2;",
        )
        .unwrap();
    let mirror = Mirror::open(&path).unwrap();
    assert_eq!(
        mirror.opened(),
        Opened::Upgraded {
            from: 2,
            log_started: true
        }
    );
    let mut now = mirror.feed("now", Start::Now).unwrap();
    assert!(
        now.changes(10).await.unwrap().is_empty(),
        "the log starts empty"
    );
    let mut all = mirror.feed("all", Start::Snapshot).unwrap();
    assert_eq!(all.changes(10).await.unwrap()[0].id, "a");
}

/// A handler that records what it handled, failing the changes of `failing` every time.
#[derive(Clone, Default)]
struct Recorder {
    handled: Arc<Mutex<Vec<(i64, String)>>>,
}

impl Recorder {
    fn handled(&self) -> Vec<(i64, String)> {
        self.handled.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_delivery_keeps_each_referrals_order_and_acknowledges_the_handled_prefix() {
    let (_dir, mut mirror) = mirror();
    for second in 1..=9 {
        for id in ["a", "b", "c"] {
            mirror.apply(&version(id, second, "New")).unwrap();
        }
    }
    let mut feed = mirror.feed("crm", Start::After(0)).unwrap();
    let recorder = Recorder::default();
    let handler = |change: referrals_mirror::Change| {
        let recorder = recorder.clone();
        async move {
            // The changes of "a" take longest: others overtake them, never one of "a".
            let pause = if change.id == "a" { 3 } else { 1 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            recorder
                .handled
                .lock()
                .unwrap()
                .push((change.seq, change.id));
            Ok::<(), Failure>(())
        }
    };
    let delivery = Delivery::new().concurrency(3).follow(false);
    let report = feed
        .deliver(&delivery, handler, std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.delivered, 27);
    assert_eq!(report.position, 27);
    let handled = recorder.handled();
    for id in ["a", "b", "c"] {
        let seqs: Vec<i64> = handled
            .iter()
            .filter(|(_, i)| i == id)
            .map(|(s, _)| *s)
            .collect();
        assert!(seqs.is_sorted(), "{id}: {seqs:?}");
        assert_eq!(seqs.len(), 9);
    }
    drop(feed);
    let mut feed = mirror.feed("crm", Start::Now).unwrap();
    assert_eq!(feed.hold().await.unwrap().position, 27);
}

#[tokio::test]
async fn a_change_that_keeps_failing_stops_the_delivery_before_it_or_is_set_aside() {
    let (_dir, mut mirror) = mirror();
    for id in ["a", "b", "c"] {
        mirror.apply(&version(id, 1, "New")).unwrap();
    }
    let attempts = Arc::new(Mutex::new(0));
    let handler = |change: referrals_mirror::Change| {
        let attempts = Arc::clone(&attempts);
        async move {
            if change.id == "b" {
                *attempts.lock().unwrap() += 1;
                return Err(Failure::new("the CRM answered 500"));
            }
            Ok(())
        }
    };
    let delivery = Delivery::new()
        .attempts(3)
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .follow(false);
    let mut feed = mirror.feed("crm", Start::After(0)).unwrap();
    let error = feed
        .deliver(&delivery, handler, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Delivery {
                seq: 2,
                attempts: 3,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("the CRM answered 500"),
        "{error}"
    );
    assert_eq!(*attempts.lock().unwrap(), 3);
    assert_eq!(feed.hold().await.unwrap().position, 1, "stopped before b");

    let aside = delivery.clone().on_failure(OnFailure::SetAside);
    let report = feed
        .deliver(&aside, handler, std::future::pending())
        .await
        .unwrap();
    assert_eq!(
        (report.delivered, report.set_aside, report.position),
        (1, 1, 3)
    );
    let set_aside = feed.set_aside_list().await.unwrap();
    assert_eq!(set_aside.len(), 1);
    assert_eq!(set_aside[0].change.id, "b");
    assert_eq!(set_aside[0].attempts, 3);
    assert!(set_aside[0].change.referral.is_some());
    feed.forget_set_aside(2).await.unwrap();
    assert!(feed.set_aside_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_attempt_past_its_timeout_is_a_failure() {
    let (_dir, mut mirror) = mirror();
    mirror.apply(&version("a", 1, "New")).unwrap();
    let mut feed = mirror.feed("crm", Start::After(0)).unwrap();
    let delivery = Delivery::new()
        .attempts(2)
        .timeout(Duration::from_millis(50))
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
        .follow(false);
    let error = feed
        .deliver(
            &delivery,
            |_| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<(), Failure>(())
            },
            std::future::pending(),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("the timeout"), "{error}");
}

#[tokio::test]
async fn a_stop_ends_a_following_delivery_with_its_position_saved() {
    let (dir, mirror) = mirror();
    let mut feed = mirror.feed("crm", Start::Now).unwrap();
    feed.hold().await.unwrap();
    let path = dir.path().join("mirror.sqlite");
    let handled = Arc::new(Mutex::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let mut mirror = Mirror::open(&path).unwrap();
        for second in 1..=3 {
            mirror.apply(&version("a", second, "New")).unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop.send(());
    });
    let counted = Arc::clone(&handled);
    let report = feed
        .deliver(
            &Delivery::new(),
            move |_| {
                let counted = Arc::clone(&counted);
                async move {
                    *counted.lock().unwrap() += 1;
                    Ok::<(), Failure>(())
                }
            },
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
    writer.await.unwrap();
    assert_eq!(report.delivered, 3);
    assert_eq!(report.position, 3);
}

#[test]
fn a_retention_of_any_length_prunes_nothing_by_age_and_never_panics() {
    let (_dir, mut mirror) = mirror();
    mirror.apply(&version("a", 1, "New")).unwrap();
    mirror.set_change_retention(Duration::MAX).unwrap();
    assert_eq!(
        mirror.change_retention().unwrap(),
        referrals_mirror::feed::MAX_RETENTION
    );
    // A value written by hand, past what a time can hold.
    mirror
        .connection()
        .execute(
            "UPDATE mirror_settings SET value = '18446744073709551615'
             WHERE key = 'change_retention_seconds'",
            [],
        )
        .unwrap();
    mirror.prune_changes().unwrap();
    let kept: i64 = mirror
        .connection()
        .query_row("SELECT count(*) FROM changes", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, 1);
}
