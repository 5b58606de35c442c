//! The mirror as a program uses it: opened, synced from a sandbox, written one referral at a
//! time, read back; and the files it refuses.

use referrals_client::patch::Patch;
use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::types::Referral;
use referrals_client::{Client, StaticToken};
use referrals_mirror::{Applied, Error, Mirror};
use referrals_sandbox::Config;
use rusqlite::Connection;

/// The window of replays in the tests: a day.
const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

fn referral(json: &str) -> Referral {
    serde_json::from_str(json).unwrap()
}

const EMPTY_STATE: &str =
    r#"{"version":1,"filter":null,"watermark":null,"delivered":{},"complete":false,"bound":null}"#;

#[test]
fn foreign_and_damaged_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();

    let text = dir.path().join("notes.sqlite");
    std::fs::write(&text, "these are my notes, not a database\n".repeat(200)).unwrap();
    let error = Mirror::open(&text).unwrap_err();
    assert!(matches!(error, Error::Refused { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("notes.sqlite is not a SQLite database"),
        "{error}"
    );
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "these are my notes, not a database\n".repeat(200)
    );

    let other = dir.path().join("crm.sqlite");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');")
        .unwrap();
    let before = std::fs::read(&other).unwrap();
    let error = Mirror::open(&other).unwrap_err().to_string();
    assert!(error.contains("of another program"), "{error}");
    assert_eq!(std::fs::read(&other).unwrap(), before);

    let ours = dir.path().join("mirror.sqlite");
    drop(Mirror::open(&ours).unwrap());
    Connection::open(&ours)
        .unwrap()
        .execute(
            "INSERT INTO sync_state (one, state, written) VALUES (1, '{\"version\": 1, \"nope\": 2}', '')",
            [],
        )
        .unwrap();
    let mut mirror = Mirror::open(&ours).unwrap();
    let error = mirror.state().unwrap_err().to_string();
    assert!(
        error.contains("mirror.sqlite: the saved sync state cannot be used"),
        "{error}"
    );
    Connection::open(&ours)
        .unwrap()
        .pragma_update(None, "user_version", 7)
        .unwrap();
    let error = Mirror::open(&ours).unwrap_err().to_string();
    assert!(
        error.contains("version 7, written by a later referrals"),
        "{error}"
    );
}

#[test]
fn a_batch_and_its_state_are_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.sqlite");
    let mut mirror = Mirror::open(&path).unwrap();
    let a = referral(r#"{"id":"a","eTag":"1","status":"New"}"#);
    let state = SyncState::from_json(EMPTY_STATE).unwrap();
    mirror.write(std::slice::from_ref(&a), &state).unwrap();
    mirror.write(std::slice::from_ref(&a), &state).unwrap();
    assert_eq!(
        mirror.count().unwrap(),
        1,
        "a batch that comes again changes nothing"
    );

    // Another writer changed the state meanwhile: the batch is refused whole.
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE sync_state SET state = 'x' WHERE one = 1", [])
        .unwrap();
    let b = referral(r#"{"id":"b","eTag":"1"}"#);
    let error = mirror.write(&[b], &state).unwrap_err();
    assert!(matches!(error, Error::OtherWriter { .. }), "{error}");
    assert_eq!(mirror.count().unwrap(), 1);
}

#[test]
fn a_referral_replaces_its_row_only_when_it_is_newer() {
    let dir = tempfile::tempdir().unwrap();
    let mut mirror = Mirror::open(dir.path().join("mirror.sqlite")).unwrap();
    let at = |second: u32, tag: &str| {
        referral(&format!(
            r#"{{"id":"a","eTag":"{tag}","updatedDateTime":"2024-05-01T00:00:{second:02}.5Z","details":{{"dealValue":12345678901234567890.01}}}}"#
        ))
    };
    assert_eq!(mirror.apply(&at(10, "v2")).unwrap(), Applied::Inserted);
    assert_eq!(
        mirror.apply(&at(5, "v1")).unwrap(),
        Applied::Kept,
        "a late event"
    );
    assert_eq!(
        mirror.apply(&at(10, "v2")).unwrap(),
        Applied::Kept,
        "the same event twice"
    );
    assert_eq!(
        mirror.get("a").unwrap().unwrap().e_tag.as_deref(),
        Some("v2")
    );
    assert_eq!(mirror.apply(&at(11, "v3")).unwrap(), Applied::Updated);
    assert_eq!(
        mirror.apply(&referral(r#"{"eTag":"x"}"#)).unwrap(),
        Applied::NoId
    );

    // A batch of the sync obeys the same rule: an older version delivered late is kept out.
    let state = SyncState::from_json(EMPTY_STATE).unwrap();
    mirror.write(&[at(10, "v2")], &state).unwrap();
    let kept = mirror.get("a").unwrap().unwrap();
    assert_eq!(kept.e_tag.as_deref(), Some("v3"));
    assert_eq!(
        kept.deal_value().map(|value| value.as_str()),
        Some("12345678901234567890.01"),
        "money keeps its digits"
    );
    assert_eq!(mirror.referrals().unwrap().len(), 1);
    assert!(mirror.get("nobody").unwrap().is_none());
}

/// A sync that fails says why in its own text (a reporter that prints only `Display` shows
/// it): a refused connection and a wrong token read differently. The cause is not repeated
/// behind `source()`; `client_error()` gives it to a program.
#[tokio::test]
async fn a_failed_sync_says_why_in_its_own_text() {
    let sandbox = referrals_testkit::start(referrals_testkit::config()).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let wrong_token = Client::builder(&sandbox.url(), StaticToken::new("wrong"))
        .allow_http_to_loopback(true)
        .clock(referrals_testkit::NoWait)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut mirror = Mirror::open(dir.path().join("crm.sqlite")).unwrap();
    let mut texts = Vec::new();
    for client in [referrals_testkit::client(&closed), wrong_token] {
        let error = mirror.sync(&client, SyncOptions::new()).await.unwrap_err();
        assert!(std::error::Error::source(&error).is_none(), "{error}");
        assert!(error.client_error().is_some(), "{error}");
        texts.push(error.to_string());
    }
    assert!(texts[0].contains("refused"), "{}", texts[0]);
    assert!(texts[1].contains("401"), "{}", texts[1]);
    assert!(
        texts
            .iter()
            .all(|text| text.contains("crm.sqlite stopped after 0"))
    );
}

/// A token refused in the middle of a first sync: what was read before is written with its
/// state, the error counts it, and the next sync goes on from there to the whole copy.
#[tokio::test]
async fn a_sync_that_fails_midway_keeps_what_it_read_and_the_next_finishes() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let sandbox = referrals_testkit::start(Config {
        seed_count: 1_500,
        ..referrals_testkit::config()
    })
    .await;
    let tokens = std::sync::Arc::new(AtomicU32::new(0));
    let counted = tokens.clone();
    let failing = referrals_client::TokenFn::new(move || {
        let given = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if given < 8 {
                Ok(referrals_client::AccessToken::new(referrals_testkit::TOKEN))
            } else {
                Err(referrals_client::TokenError::new("the credential expired"))
            }
        }
    });
    let client = Client::builder(&sandbox.url(), failing)
        .allow_http_to_loopback(true)
        .clock(referrals_testkit::NoWait)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut mirror = Mirror::open(dir.path().join("crm.sqlite")).unwrap();
    let options = SyncOptions::new().skew(std::time::Duration::ZERO);
    let error = mirror.sync(&client, options.clone()).await.unwrap_err();
    let Error::Sync { changed, .. } = &error else {
        panic!("{error}");
    };
    assert!(*changed > 0, "{error}");
    assert_eq!(mirror.count().unwrap(), *changed, "{error}");
    let client = referrals_testkit::client(&sandbox.url());
    mirror.sync(&client, options).await.unwrap();
    assert_eq!(mirror.count().unwrap(), 1_502);
}

#[tokio::test]
async fn a_sync_copies_the_sandbox_and_another_brings_the_changes() {
    let sandbox = referrals_testkit::start(Config {
        seed_count: 250,
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    let dir = tempfile::tempdir().unwrap();
    let mut mirror = Mirror::open(dir.path().join("mirror.sqlite")).unwrap();
    let options = SyncOptions::new().skew(std::time::Duration::ZERO);
    let first = mirror.sync(&client, options.clone()).await.unwrap();
    assert_eq!(mirror.count().unwrap(), 252, "{first:?}");
    let lead = mirror.referrals().unwrap().into_iter().next().unwrap();
    let changed = client
        .update(&lead, Patch::new().set_details_notes("seen by the mirror"))
        .await
        .unwrap();
    // The service's clock is read to the second: a sync a second later sees the change.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = mirror.sync(&client, options).await.unwrap();
    assert!(second.changed >= 1, "{second:?}");
    let row = mirror.get(lead.id.as_deref().unwrap()).unwrap().unwrap();
    assert_eq!(row.e_tag, changed.e_tag);

    // The columns of the document's members answer without JSON functions.
    let by_columns: i64 = mirror
        .connection()
        .query_row(
            "SELECT count(*) FROM referrals WHERE country = 'US' AND status = 'New'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let by_json = mirror
        .referrals()
        .unwrap()
        .iter()
        .filter(|r| {
            r.country() == Some("US") && r.status.as_ref().map(|s| s.as_str()) == Some("New")
        })
        .count();
    assert_eq!((by_columns as usize, by_json > 0), (by_json, true));

    // Another filter on the same mirror is refused, and changes nothing.
    let filtered = SyncOptions::new()
        .filter(referrals_client::query::status().eq(referrals_client::types::ReferralStatus::New));
    let error = mirror.sync(&client, filtered).await.unwrap_err();
    assert!(matches!(error, Error::OtherFilter { .. }), "{error}");
    assert_eq!(mirror.count().unwrap(), 252);
}

#[test]
fn a_mirror_of_version_1_is_taken_to_this_version_and_events_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    let old = Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE referrals (id TEXT PRIMARY KEY NOT NULL, eTag TEXT, status TEXT,
             substatus TEXT, updatedDateTime TEXT, json TEXT NOT NULL);
         CREATE TABLE sync_state (one INTEGER PRIMARY KEY CHECK (one = 1), state TEXT NOT NULL,
             written TEXT NOT NULL);
         INSERT INTO referrals VALUES ('a', '1', 'New', 'Pending', NULL, '{\"id\":\"a\",\"eTag\":\"1\",\"direction\":\"Incoming\"}');
         PRAGMA application_id = 1380340300; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(old);
    let mirror = Mirror::open(&path).unwrap();
    assert_eq!(mirror.count().unwrap(), 1, "the rows stay");
    let version: i32 = mirror
        .connection()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 5);
    assert_eq!(
        mirror.opened(),
        referrals_mirror::Opened::Upgraded {
            from: 1,
            log_started: true
        }
    );
    // The old rows have the columns of the document's members at once.
    let direction: String = mirror
        .connection()
        .query_row(
            "SELECT direction FROM referrals WHERE id = 'a'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(direction, "Incoming");

    let first = mirror
        .store_event("referral-updated", Some("a"), "{\"a\":1}", DAY)
        .unwrap()
        .seq();
    let second = mirror
        .store_event("referral-created", Some("b"), "{\"b\":1}", DAY)
        .unwrap()
        .seq();
    drop(mirror);
    let mirror = Mirror::open(&path).unwrap();
    let pending = mirror.pending_events(10).unwrap();
    assert_eq!(
        pending.iter().map(|event| event.seq).collect::<Vec<_>>(),
        [first, second]
    );
    mirror.finish_event(first).unwrap();
    assert_eq!(
        mirror.pending_events(10).unwrap()[0].referral_id.as_deref(),
        Some("b")
    );
}

#[test]
fn a_new_mirror_has_pages_that_hold_several_referrals_and_copies_its_wal_every_40_mib() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = Mirror::open(dir.path().join("mirror.sqlite")).unwrap();
    let pragma = |name: &str| -> i64 {
        mirror
            .connection()
            .pragma_query_value(None, name, |row| row.get(0))
            .unwrap()
    };
    // A referral's JSON is a few KiB: SQLite's 4 KiB pages would hold one each.
    assert_eq!(pragma("page_size"), 16 << 10);
    assert_eq!(pragma("wal_autocheckpoint"), (40 << 20) / (16 << 10));
    assert_eq!(
        mirror
            .connection()
            .pragma_query_value(None, "journal_mode", |row| row.get::<_, String>(0))
            .unwrap(),
        "wal"
    );
}
