//! The mirror on a real PostgreSQL server of the test's own (see `referrals_testkit::postgres`):
//! a sync equal to the store and queryable by columns, several writers and syncs at once,
//! a row that never goes back, the databases it refuses, a column added by a schema step, and
//! errors that never print a password.

use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::types::Referral;
use referrals_mirror::Applied;
use referrals_mirror::postgres::{PgMirror, SYNC_LOCK};
use referrals_sandbox::Config;
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

fn at(second: u32, tag: &str) -> Referral {
    serde_json::from_str(&format!(
        r#"{{"id":"a","eTag":"{tag}","status":"New","updatedDateTime":"2024-05-01T00:00:{second:02}Z","customerProfile":{{"address":{{"country":"US"}}}},"details":{{"dealValue":12345678901234567890.01}}}}"#
    ))
    .unwrap()
}

#[tokio::test]
async fn a_sync_is_the_store_queryable_by_columns_and_one_runs_at_a_time() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = database(&server, "mirror").await;
    let sandbox = referrals_testkit::start(Config {
        seed_count: 400,
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    let options = SyncOptions::new().skew(std::time::Duration::ZERO);

    // Another session holds the sync's lock: a sync skips, and writes nothing.
    let mut first = PgMirror::connect(&url).await.unwrap();
    let holder = PgMirror::connect(&url).await.unwrap();
    holder
        .client()
        .execute("SELECT pg_advisory_lock($1)", &[&SYNC_LOCK])
        .await
        .unwrap();
    let skipped = first.sync(&client, options.clone()).await.unwrap();
    assert!(skipped.skipped && skipped.changed == 0, "{skipped:?}");
    drop(holder);

    // Two syncs at once: one of them does the work, and the table is the store.
    let mut second = PgMirror::connect(&url).await.unwrap();
    let (a, b) = tokio::join!(
        first.sync(&client, options.clone()),
        second.sync(&client, options.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.changed + b.changed >= 402, "{a:?} {b:?}");
    let store: Vec<Referral> = {
        use futures_util::TryStreamExt;
        client
            .list_all(Default::default())
            .try_collect()
            .await
            .unwrap()
    };
    let rows = first
        .client()
        .query("SELECT id, e_tag FROM referrals ORDER BY id", &[])
        .await
        .unwrap();
    let mut expected: Vec<(String, String)> = store
        .iter()
        .map(|r| (r.id.clone().unwrap(), r.e_tag.clone().unwrap()))
        .collect();
    expected.sort();
    let got: Vec<(String, String)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(got, expected);

    // The columns of the document's members answer without JSON functions.
    let by_columns: i64 = first
        .client()
        .query_one(
            "SELECT count(*) FROM referrals WHERE country = 'US' AND status = 'New'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let by_json = store
        .iter()
        .filter(|r| {
            r.country() == Some("US") && r.status.as_ref().map(|s| s.as_str()) == Some("New")
        })
        .count();
    assert_eq!(by_columns as usize, by_json);
    assert!(by_json > 0);
}

#[tokio::test]
async fn rows_never_go_back_and_the_state_only_moves_forward() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = database(&server, "rows").await;
    let mut mirror = PgMirror::connect(&url).await.unwrap();
    assert_eq!(
        mirror.apply(&at(10, "v2")).await.unwrap(),
        Applied::Inserted
    );
    assert_eq!(mirror.apply(&at(5, "v1")).await.unwrap(), Applied::Kept);
    assert_eq!(mirror.apply(&at(10, "v2")).await.unwrap(), Applied::Kept);
    // Eight writers race with versions in any order: the newest stays.
    let versions: Vec<Referral> = [3, 7, 0, 5, 1, 6, 2, 4]
        .into_iter()
        .map(|second| at(20 + second, &format!("w{second}")))
        .collect();
    let mut writers = Vec::new();
    for _ in &versions {
        writers.push(PgMirror::connect(&url).await.unwrap());
    }
    futures_util::future::join_all(
        writers
            .iter_mut()
            .zip(&versions)
            .map(|(writer, version)| writer.apply(version)),
    )
    .await;
    let row = mirror.get("a").await.unwrap().unwrap();
    assert_eq!(row.e_tag.as_deref(), Some("w7"));
    assert_eq!(
        row.deal_value().map(|v| v.as_str()),
        Some("12345678901234567890.01")
    );

    // The state moves only forward.
    let later = SyncState::from_json(
        r#"{"version":1,"filter":null,"watermark":"2024-06-01T00:00:00Z","delivered":{},"complete":false,"bound":null}"#,
    )
    .unwrap();
    let earlier = SyncState::from_json(
        r#"{"version":1,"filter":null,"watermark":"2024-01-01T00:00:00Z","delivered":{},"complete":false,"bound":null}"#,
    )
    .unwrap();
    mirror.write_state(&later).await.unwrap();
    let error = mirror.write_state(&earlier).await.unwrap_err();
    assert!(
        error.to_string().contains("changed by another program"),
        "{error}"
    );

    // A column that the document lists and the table lacks is added, filled from the JSON.
    mirror
        .client()
        .batch_execute("ALTER TABLE referrals DROP COLUMN country")
        .await
        .unwrap();
    let again = PgMirror::connect(&url).await.unwrap();
    let country: Option<String> = again
        .client()
        .query_one("SELECT country FROM referrals WHERE id = 'a'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(country.as_deref(), Some("US"));
}

/// The rule "a version replaces the row only when it is newer" is one table here, checked alike
/// on both backends: SQLite decides in Rust (`replaces`), PostgreSQL in the upsert's `WHERE`.
/// Newer is a later `updatedDateTime`, or the same one with another eTag; a version without
/// `updatedDateTime` never replaces one with it, and replaces one without it when its eTag
/// differs.
#[tokio::test]
async fn the_newer_rule_is_the_same_on_both_backends() {
    let Some(server) = Server::start() else {
        return;
    };
    let version = |second: Option<u32>, tag: &str| -> Referral {
        let time = second.map_or("null".to_owned(), |s| {
            format!("\"2024-05-01T00:00:{s:02}Z\"")
        });
        serde_json::from_str(&format!(
            r#"{{"id":"a","eTag":"{tag}","status":"New","updatedDateTime":{time}}}"#
        ))
        .unwrap()
    };
    // (the row's version, the version applied, whether it replaces the row)
    let table = [
        ((Some(10), "a"), (Some(9), "b"), false),
        ((Some(10), "a"), (Some(10), "a"), false),
        ((Some(10), "a"), (Some(10), "b"), true),
        ((Some(10), "a"), (Some(11), "a"), true),
        ((None, "a"), (Some(10), "b"), true),
        ((Some(10), "a"), (None, "b"), false),
        ((None, "a"), (None, "a"), false),
        ((None, "a"), (None, "b"), true),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (case, (row, applied, replaces)) in table.into_iter().enumerate() {
        let url = database(&server, &format!("newer{case}")).await;
        let mut server_mirror = PgMirror::connect(&url).await.unwrap();
        let path = dir.path().join(format!("newer{case}.sqlite"));
        let mut file_mirror = referrals_mirror::Mirror::open(&path).unwrap();
        let (row, applied) = (version(row.0, row.1), version(applied.0, applied.1));
        assert_eq!(server_mirror.apply(&row).await.unwrap(), Applied::Inserted);
        assert_eq!(file_mirror.apply(&row).unwrap(), Applied::Inserted);
        let expected = if replaces {
            Applied::Updated
        } else {
            Applied::Kept
        };
        let on_server = server_mirror.apply(&applied).await.unwrap();
        let in_file = file_mirror.apply(&applied).unwrap();
        assert_eq!((on_server, in_file), (expected, expected), "case {case}");
    }
}

#[tokio::test]
async fn foreign_databases_are_refused_unchanged_and_no_password_is_printed() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = database(&server, "later").await;
    let again = PgMirror::connect(&url).await.unwrap();
    // Another program's tables, and a mirror of a later version, are refused unchanged.
    let foreign = database(&server, "another").await;
    let (raw, connection) = tokio_postgres::connect(&foreign, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    raw.batch_execute("CREATE TABLE referrals (x int)")
        .await
        .unwrap();
    let error = PgMirror::connect(&foreign).await.unwrap_err().to_string();
    assert!(error.contains("not a mirror's"), "{error}");
    let tables: i64 = raw
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "nothing was made");
    again
        .client()
        .batch_execute("UPDATE referrals_mirror SET value = '99' WHERE key = 'version'")
        .await
        .unwrap();
    let error = PgMirror::connect(&url).await.unwrap_err().to_string();
    assert!(error.contains("version 99"), "{error}");

    // A password is never printed.
    let secret = format!(
        "postgres://postgres:hunter2secret@127.0.0.1:{}/nowhere",
        server.port()
    );
    let error = PgMirror::connect(&secret).await.unwrap_err().to_string();
    assert!(
        !error.contains("hunter2secret") && error.contains("postgres@127.0.0.1"),
        "{error}"
    );
}

#[tokio::test]
async fn events_worked_off_are_pruned_after_their_age_and_pending_ones_stay() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = database(&server, "pruned").await;
    let mirror = PgMirror::connect(&url).await.unwrap();
    let old_done = mirror
        .store_event("referral-updated", Some("a"), "a", DAY)
        .await
        .unwrap()
        .seq();
    let old_pending = mirror
        .store_event("referral-updated", Some("b"), "b", DAY)
        .await
        .unwrap()
        .seq();
    let new_done = mirror
        .store_event("referral-updated", Some("c"), "c", DAY)
        .await
        .unwrap()
        .seq();
    mirror.finish_event(old_done).await.unwrap();
    mirror.finish_event(new_done).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute(
            "UPDATE events SET received = now() - interval '10 days' WHERE seq = ANY($1)",
            &[&vec![old_done, old_pending]],
        )
        .await
        .unwrap();
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    assert_eq!(mirror.prune_events(week).await.unwrap(), 1);
    let left: Vec<i64> = client
        .query("SELECT seq FROM events ORDER BY seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, [old_pending, new_done]);
    // Any retention, however long, is a query the server takes.
    assert_eq!(
        mirror.prune_events(std::time::Duration::MAX).await.unwrap(),
        0
    );
}

/// The window of replays in the tests: a day.
const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

#[tokio::test]
async fn a_replayed_body_is_stored_once_and_a_claim_is_its_receivers_alone() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = database(&server, "claims").await;
    let first = PgMirror::connect(&url).await.unwrap();
    let second = PgMirror::connect(&url).await.unwrap();
    let stored = first.store_event("referral-updated", Some("a"), "x", DAY);
    let seq = stored.await.unwrap();
    assert!(matches!(seq, referrals_mirror::Stored::New(_)));
    for _ in 0..50 {
        let again = second.store_event("referral-updated", Some("a"), "x", DAY);
        assert_eq!(
            again.await.unwrap(),
            referrals_mirror::Stored::Replay(seq.seq())
        );
    }
    assert_eq!(first.event_counts().await.unwrap().pending, 1);

    let claimed = first.claim_events(10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(second.claim_events(10).await.unwrap().is_empty());
    assert_eq!(first.renew_claims().await.unwrap(), 1);
    // The other receiver can neither finish nor fail what the first holds.
    assert!(!second.finish_event(seq.seq()).await.unwrap());
    let counted = second.fail_event(seq.seq(), "not mine", None).await;
    assert!(!counted.unwrap());
    assert!(second.aside_events().await.unwrap().is_empty());
    // Its holder fails it, sets it aside, and it comes back when retried.
    assert!(first.fail_event(seq.seq(), "503", Some(DAY)).await.unwrap());
    assert!(second.claim_events(10).await.unwrap().is_empty());
    first
        .fail_event(seq.seq(), "503 again", None)
        .await
        .unwrap();
    let aside = second.aside_events().await.unwrap();
    assert_eq!((aside.len(), aside[0].attempts), (1, 2));
    assert_eq!(aside[0].error, "503 again");
    assert_eq!(second.retry_events(None).await.unwrap(), 1);
    let claimed = second.claim_events(10).await.unwrap();
    assert_eq!((claimed.len(), claimed[0].attempts), (1, 0));
    assert!(second.finish_event(seq.seq()).await.unwrap());
    let counts = first.event_counts().await.unwrap();
    assert_eq!((counts.pending, counts.aside), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_in_a_write_leaves_whole_groups_and_the_next_run_goes_on() {
    let Some(server) = Server::start() else {
        return;
    };
    let sandbox = referrals_testkit::start(Config {
        seed_count: 1500,
        page_size: 100,
        latency: std::time::Duration::from_millis(30),
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    let url = database(&server, "killed").await;
    let (watcher, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let killer = tokio::spawn(async move {
        // Once a batch is in, the sync's connection is ended by the server (a failover, an
        // administrator), whatever it is doing.
        for _ in 0..400 {
            let rows: i64 = watcher
                .query_one("SELECT count(*) FROM referrals", &[])
                .await
                .map_or(0, |row| row.get(0));
            if rows > 0 {
                let kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                            WHERE datname = current_database() AND pid <> pg_backend_pid()";
                watcher.execute(kill, &[]).await.unwrap();
                return watcher;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no batch was written");
    });
    let mut mirror = PgMirror::connect(&url).await.unwrap();
    let options = SyncOptions::new().skew(std::time::Duration::ZERO);
    let killed = mirror.sync(&client, options.clone()).await;
    let watcher = killer.await.unwrap();
    assert!(
        killed.is_err(),
        "the run ends with the connection: {killed:?}"
    );
    let rows: i64 = watcher
        .query_one("SELECT count(*) FROM referrals", &[])
        .await
        .unwrap()
        .get(0);
    // Batches are written in groups, each with the state after it: whatever group the kill
    // met, the rows and the state agree, as the run that goes on shows (nothing twice, nothing
    // missing).
    assert!(rows > 0, "a group was written before the kill");

    // A new connection goes on from the state, and the copy is whole.
    let mut again = PgMirror::connect(&url).await.unwrap();
    let report = again.sync(&client, options).await.unwrap();
    let total = i64::try_from(report.changed).unwrap() + rows;
    let expected: i64 = watcher
        .query_one("SELECT count(*) FROM referrals", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(expected, 1502, "every referral of the sandbox");
    assert_eq!(total, 1502, "nothing written twice: {report:?}");
}

/// The number that `sql` gives.
async fn count(mirror: &PgMirror, sql: &str) -> i64 {
    mirror.client().query_one(sql, &[]).await.unwrap().get(0)
}

/// Makes the upsert of the second group fail, and counts the upserts that ended: on a
/// sequence, which a rollback leaves as it is, and in a table, which it empties.
async fn refuse_and_count(mirror: &PgMirror) {
    let sql = "CREATE SEQUENCE upserts_started;
         CREATE SEQUENCE upserts_ended;
         CREATE TABLE upserts_kept (one int);
         CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF nextval('upserts_started') = 2 THEN RAISE EXCEPTION 'refused by the test'; END IF;
             RETURN NULL;
         END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON referrals
             FOR EACH STATEMENT EXECUTE FUNCTION refuse();
         CREATE FUNCTION counted() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             PERFORM nextval('upserts_ended');
             INSERT INTO upserts_kept VALUES (1);
             RETURN NULL;
         END $$;
         CREATE TRIGGER counted AFTER INSERT ON referrals
             FOR EACH STATEMENT EXECUTE FUNCTION counted();";
    mirror.client().batch_execute(sql).await.unwrap();
}

/// A sync writes two groups at once. When one fails, the group after it, whose rows were
/// already upserted, is rolled back: its state never stands for rows that are not there, and
/// the next run writes every referral, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_fails_rolls_back_the_group_written_beside_it() {
    let Some(server) = Server::start() else {
        return;
    };
    let sandbox = referrals_testkit::start(Config {
        seed_count: 4_998,
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    let options = SyncOptions::new().skew(std::time::Duration::ZERO);
    let mut mirror = PgMirror::connect(&database(&server, "refused").await)
        .await
        .unwrap();
    // Five groups at least. The third starts once the second holds its locks, before the
    // second's upsert fails.
    refuse_and_count(&mirror).await;
    let failed = mirror.sync(&client, options.clone()).await.unwrap_err();
    assert!(
        failed.to_string().contains("refused by the test"),
        "{failed}"
    );
    let ended = count(&mirror, "SELECT last_value FROM upserts_ended").await;
    let kept = count(&mirror, "SELECT count(*) FROM upserts_kept").await;
    assert!(
        ended > kept,
        "a group after the failed one was upserted, and rolled back: {ended} upserts ended, {kept} kept"
    );
    let rows = count(&mirror, "SELECT count(*) FROM referrals").await;
    assert!(rows > 0 && rows < 5_000, "{rows}");

    mirror
        .client()
        .batch_execute("DROP TRIGGER refuse ON referrals")
        .await
        .unwrap();
    let report = mirror.sync(&client, options).await.unwrap();
    let all = count(&mirror, "SELECT count(*) FROM referrals").await;
    assert_eq!(all, 5_000, "every referral of the sandbox");
    assert_eq!(
        rows + i64::try_from(report.changed).unwrap(),
        5_000,
        "none twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_dropped_midway_leaves_the_sync_lock_to_the_next_sync_of_its_mirror() {
    let Some(server) = Server::start() else {
        return;
    };
    let sandbox = referrals_testkit::start(Config {
        seed_count: 300,
        page_size: 100,
        latency: std::time::Duration::from_millis(20),
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    let url = database(&server, "dropped").await;
    let options = SyncOptions::new().skew(std::time::Duration::ZERO);
    let (mut mirror, mut other) = (
        PgMirror::connect(&url).await.unwrap(),
        PgMirror::connect(&url).await.unwrap(),
    );

    // Dropped after its first batch, as a timeout or a `select!` around it would.
    let (batch, batched) = tokio::sync::oneshot::channel();
    let mut batch = Some(batch);
    let sync = mirror.sync_with(&client, options.clone(), |_| {
        if let Some(batch) = batch.take() {
            let _ = batch.send(());
        }
        std::ops::ControlFlow::Continue(())
    });
    tokio::select! {
        ended = sync => panic!("the sync ended before its drop: {ended:?}"),
        _ = batched => {}
    }
    let skipped = other.sync(&client, options.clone()).await.unwrap();
    assert!(
        skipped.skipped,
        "the dropped sync's lock is held: {skipped:?}"
    );

    // The mirror's next sync takes the lock, ends, and gives it back whole.
    let next = mirror.sync(&client, options.clone()).await.unwrap();
    assert!(!next.skipped, "{next:?}");
    let held = format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND classid = {} AND objid = {}",
        SYNC_LOCK >> 32,
        SYNC_LOCK & 0xffff_ffff
    );
    assert_eq!(
        count(&mirror, &held).await,
        0,
        "the sync's lock is given back"
    );
    let after = other.sync(&client, options).await.unwrap();
    assert!(!after.skipped, "another mirror syncs: {after:?}");
}

#[tokio::test]
async fn a_build_of_another_document_adding_a_column_stops_this_ones_writes() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = database(&server, "builds").await;
    let mut mirror = PgMirror::connect(&url).await.unwrap();
    assert_eq!(
        mirror.apply(&at(1, "one")).await.unwrap(),
        Applied::Inserted
    );
    // A column of the partner's own changes nothing.
    let other = PgMirror::connect(&url).await.unwrap();
    let own = "ALTER TABLE referrals ADD COLUMN notes text";
    other.client().batch_execute(own).await.unwrap();
    assert_eq!(mirror.apply(&at(2, "two")).await.unwrap(), Applied::Updated);

    // A build of a document with one more member adds its column and records it.
    let newer = "ALTER TABLE referrals ADD COLUMN new_member text;
        UPDATE referrals_mirror SET value = jsonb_insert(value::jsonb, '{-1}', '\"new_member\"', true)::text
        WHERE key = 'member_columns'";
    other.client().batch_execute(newer).await.unwrap();
    let refused = |error: referrals_mirror::Error| match error {
        referrals_mirror::Error::OtherBuild { columns, .. } => columns,
        other => panic!("{other}"),
    };
    let error = mirror.apply(&at(3, "three")).await.unwrap_err();
    assert_eq!(refused(error), ["new_member"]);
    let tag = "SELECT count(*) FROM referrals WHERE e_tag = 'two'";
    assert_eq!(count(&other, tag).await, 1, "nothing written");
    let sandbox = referrals_testkit::start(Config {
        seed_count: 10,
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    let error = mirror.sync(&client, SyncOptions::new()).await.unwrap_err();
    assert_eq!(refused(error), ["new_member"]);

    // Opened again, this build takes the mirror as it is now.
    let mut again = PgMirror::connect(&url).await.unwrap();
    assert_eq!(
        again.apply(&at(3, "three")).await.unwrap(),
        Applied::Updated
    );
}
