//! `referrals changes` run as a user runs it, on a mirror kept from a sandbox: changes printed
//! and resumed after the consumer's position, a command run per change (its input, its
//! environment, its failures, its timeout), deliveries to an endpoint signed as Standard
//! Webhooks says (checked by the reference library `standardwebhooks` from PyPI) through
//! failures, throttling and redirects; and bad input refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use referrals_client::sync::SyncOptions;
use referrals_client::types::Referral;
use referrals_mirror::Mirror;
use referrals_sandbox::Config;
use referrals_testkit::TOKEN;

/// A secret of Standard Webhooks (the reference libraries' test vector's).
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// `referrals ARGS` in `dir`, with the sandbox's root and token and `envs`.
async fn referrals(dir: &Path, root: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_referrals"));
    command
        .current_dir(dir)
        .env("PARTNER_ROOT", root)
        .env("PARTNER_TOKEN", TOKEN)
        .args(args)
        .kill_on_drop(true);
    for (name, value) in envs {
        command.env(name, value);
    }
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("referrals ends within two minutes")
        .expect("referrals runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A sandbox of `count` referrals and a mirror of it in `dir/mirror.sqlite`.
async fn mirrored(dir: &Path, count: usize) -> (referrals_sandbox::Sandbox, Mirror) {
    let sandbox = referrals_testkit::start(Config {
        seed_count: count,
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    let mut mirror = Mirror::open(dir.join("mirror.sqlite")).unwrap();
    mirror
        .sync(&client, SyncOptions::new().skew(Duration::ZERO))
        .await
        .unwrap();
    (sandbox, mirror)
}

/// A newer version of the mirror's referral `id`, with `notes`.
fn newer(mirror: &Mirror, id: &str, notes: &str) -> Referral {
    let mut referral = mirror.get(id).unwrap().unwrap();
    let later = referral.updated_date_time.unwrap() + chrono::Duration::seconds(1);
    referral.updated_date_time = Some(later);
    referral.e_tag = Some(format!("{notes}-{later}"));
    referral.details.get_or_insert_with(Default::default).notes = Some(notes.to_owned());
    referral
}

/// The NDJSON lines of `output`, each parsed.
fn lines(output: &Output) -> Vec<serde_json::Value> {
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_printed_and_a_consumer_goes_on_after_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, mut mirror) = mirrored(dir.path(), 20).await;
    let total = mirror.count().unwrap() as usize;
    let root = sandbox.url();
    let db = ["changes", "--db", "mirror.sqlite", "--consumer", "crm"];
    let first = referrals(
        dir.path(),
        &root,
        &[&db[..], &["--from", "snapshot"]].concat(),
        &[],
    )
    .await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stderr).contains("a new consumer"),
        "{}",
        text(&first.stderr)
    );
    let snapshot = lines(&first);
    assert_eq!(snapshot.len(), total);
    assert!(
        snapshot
            .iter()
            .all(|line| line["change"]["kind"] == "snapshot")
    );
    assert!(
        snapshot
            .iter()
            .all(|line| line["referral"]["id"] == line["change"]["id"])
    );

    // The mirror alone: no token, no service.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_referrals"))
        .current_dir(dir.path())
        .env_remove("PARTNER_TOKEN")
        .env_remove("PARTNER_ROOT")
        .args(db)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        lines(&again).is_empty(),
        "nothing new: {}",
        text(&again.stdout)
    );

    let id = snapshot[3]["change"]["id"].as_str().unwrap().to_owned();
    mirror.apply(&newer(&mirror, &id, "called back")).unwrap();
    let changed = lines(&referrals(dir.path(), &root, &db, &[]).await);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["change"]["kind"], "changed");
    let notes = changed[0]["change"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|member| member["member"] == "details/notes")
        .expect("the notes changed")
        .clone();
    assert_eq!(notes["value"], "called back");
    assert_eq!(changed[0]["referral"]["details"]["notes"], "called back");

    pruned_then_restarted(dir.path(), &root, &mirror, total).await;
}

/// Another consumer from now sees nothing of the past. Once every consumer acknowledged the
/// changes, they are pruned: a start before them is refused, and --restart from a snapshot
/// reads every referral again.
async fn pruned_then_restarted(dir: &Path, root: &str, mirror: &Mirror, total: usize) {
    // Another consumer from now sees nothing of the past. Once every consumer acknowledged
    // the changes, they are pruned: a start before them is refused, and --restart from a
    // snapshot reads every referral again.
    let other = ["changes", "--db", "mirror.sqlite", "--consumer", "other"];
    assert!(lines(&referrals(dir, root, &other, &[]).await).is_empty());
    mirror.prune_changes().unwrap();
    let pruned = referrals(
        dir,
        root,
        &[&other[..], &["--restart", "--from", "0"]].concat(),
        &[],
    )
    .await;
    assert_eq!(pruned.status.code(), Some(1));
    assert!(
        text(&pruned.stderr).contains("were pruned"),
        "{}",
        text(&pruned.stderr)
    );
    let restarted = referrals(
        dir,
        root,
        &[&other[..], &["--restart", "--from", "snapshot"]].concat(),
        &[],
    )
    .await;
    assert!(restarted.status.success(), "{}", text(&restarted.stderr));
    let again = lines(&restarted);
    assert_eq!(again.len(), total);
    assert!(
        again
            .iter()
            .all(|line| line["change"]["kind"] == "snapshot")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, _mirror) = mirrored(dir.path(), 1).await;
    let root = sandbox.url();
    let named = referrals(
        dir.path(),
        &root,
        &[
            "changes",
            "--db",
            "mirror.sqlite",
            "--consumer",
            "crm; rm -rf /",
        ],
        &[],
    )
    .await;
    assert_eq!(named.status.code(), Some(2));
    assert!(
        text(&named.stderr).contains("cannot name a consumer"),
        "{}",
        text(&named.stderr)
    );
    let missing = referrals(
        dir.path(),
        &root,
        &["changes", "--db", "typo.sqlite", "--consumer", "crm"],
        &[],
    )
    .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("no such file"),
        "{}",
        text(&missing.stderr)
    );
    assert!(
        !dir.path().join("typo.sqlite").exists(),
        "no mirror is made"
    );
    std::fs::write(dir.path().join("notes.sqlite"), "my notes\n".repeat(100)).unwrap();
    let foreign = referrals(
        dir.path(),
        &root,
        &["changes", "--db", "notes.sqlite", "--consumer", "crm"],
        &[],
    )
    .await;
    assert_eq!(foreign.status.code(), Some(1));
    assert!(
        text(&foreign.stderr).contains("not a SQLite database"),
        "{}",
        text(&foreign.stderr)
    );
    let unsigned = referrals(
        dir.path(),
        &root,
        &[
            "changes",
            "--db",
            "mirror.sqlite",
            "--consumer",
            "crm",
            "--post",
            "http://127.0.0.1:9/x",
        ],
        &[],
    )
    .await;
    assert_eq!(unsigned.status.code(), Some(2));
    assert!(
        text(&unsigned.stderr).contains("REFERRALS_POST_SECRET"),
        "{}",
        text(&unsigned.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_gets_each_change_and_its_failures_stop_or_set_it_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, mirror) = mirrored(dir.path(), 5).await;
    let root = sandbox.url();
    let ids: Vec<String> = mirror
        .referrals()
        .unwrap()
        .into_iter()
        .filter_map(|r| r.id)
        .collect();
    let bad: String = mirror
        .connection()
        .query_row("SELECT referral_id FROM changes WHERE seq = 3", [], |row| {
            row.get(0)
        })
        .unwrap();
    // Every change is appended to a file; the change of `bad` fails while `fail` exists.
    let command = format!(
        "[ -e fail ] && [ \"$REFERRALS_REFERRAL_ID\" = '{bad}' ] && exit 3; \
         line=\"$REFERRALS_CHANGE_SEQ $REFERRALS_CHANGE_KIND $REFERRALS_REFERRAL_ID $(cat)\"; \
         printf '%s\\n' \"$line\" >> handled.txt"
    );
    std::fs::write(dir.path().join("fail"), "").unwrap();
    let base = [
        "changes",
        "--db",
        "mirror.sqlite",
        "--consumer",
        "crm",
        "--from",
        "0",
        "--exec",
        &command,
        "--attempts",
        "2",
    ];
    let stopped = referrals(dir.path(), &root, &base, &[]).await;
    assert_eq!(stopped.status.code(), Some(1));
    let message = text(&stopped.stderr);
    assert!(
        message.contains(&format!("(referral {bad}) after 2 attempts")),
        "{message}"
    );
    assert!(message.contains("exited with status 3"), "{message}");
    let handled = std::fs::read_to_string(dir.path().join("handled.txt")).unwrap();
    let first: Vec<&str> = handled.lines().collect();
    assert_eq!(first.len(), 2, "stopped at the third change: {handled}");
    let (seq, rest) = first[0].split_once(' ').unwrap();
    let (kind, rest) = rest.split_once(' ').unwrap();
    let (id, payload) = rest.split_once(' ').unwrap();
    let payload: serde_json::Value = serde_json::from_str(payload).unwrap();
    assert_eq!(payload["change"]["seq"].to_string(), seq);
    assert_eq!(payload["change"]["kind"], kind);
    assert_eq!(payload["referral"]["id"], id);

    set_aside_then_retried(dir.path(), &root, &base, &command, &bad, ids.len()).await;
}

/// With --set-aside the failing change is listed and the others handled; mended and sent
/// again, the list empties.
async fn set_aside_then_retried(
    dir: &Path,
    root: &str,
    base: &[&str],
    command: &str,
    bad: &str,
    total: usize,
) {
    // With --set-aside the failing change is listed, the others handled.
    let aside = referrals(dir, root, &[base, &["--set-aside"]].concat(), &[]).await;
    assert!(aside.status.success(), "{}", text(&aside.stderr));
    let handled = std::fs::read_to_string(dir.join("handled.txt")).unwrap();
    assert_eq!(handled.lines().count(), total - 1);
    let list = [
        "changes",
        "--db",
        "mirror.sqlite",
        "--consumer",
        "crm",
        "--failed",
    ];
    let failed = lines(&referrals(dir, root, &list, &[]).await);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["change"]["id"], bad);
    assert_eq!(failed[0]["attempts"], 2);
    assert!(failed[0]["error"].as_str().unwrap().contains("status 3"));

    // Mended, sent again: the list empties.
    std::fs::remove_file(dir.join("fail")).unwrap();
    let retry = [
        "changes",
        "--db",
        "mirror.sqlite",
        "--consumer",
        "crm",
        "--exec",
        command,
        "--retry-failed",
    ];
    let retried = referrals(dir, root, &retry, &[]).await;
    assert!(retried.status.success(), "{}", text(&retried.stderr));
    assert!(lines(&referrals(dir, root, &list, &[]).await).is_empty());
    let handled = std::fs::read_to_string(dir.join("handled.txt")).unwrap();
    assert!(handled.lines().any(|line| line.contains(bad)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_never_ends_is_stopped_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, _mirror) = mirrored(dir.path(), 1).await;
    let command = "sleep 600 & echo $! > child.pid; wait";
    let out = referrals(
        dir.path(),
        &sandbox.url(),
        &[
            "changes",
            "--db",
            "mirror.sqlite",
            "--consumer",
            "crm",
            "--from",
            "0",
            "--exec",
            command,
            "--timeout",
            "300ms",
            "--attempts",
            "1",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the timeout"),
        "{}",
        text(&out.stderr)
    );
    let pid = std::fs::read_to_string(dir.path().join("child.pid")).unwrap();
    let mut gone = false;
    for _ in 0..50 {
        let status = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
        // Gone, or a zombie waiting for init.
        if status.map_or(true, |stat| stat.contains(") Z ")) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the command's child {pid} was stopped too");
}

/// What the endpoint received, and how it answers each attempt.
#[derive(Default)]
struct Endpoint {
    /// Every delivery that it took: its headers and body.
    taken: Mutex<Vec<(BTreeMap<String, String>, String)>>,
    /// Attempts by webhook-id.
    attempts: Mutex<BTreeMap<String, u32>>,
}

/// An endpoint on loopback that answers the first attempts of some changes with a failure:
/// 500, 429 with Retry-After, a redirect, or no answer within the client's timeout.
async fn endpoint(state: Arc<Endpoint>) -> String {
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(state): axum::extract::State<Arc<Endpoint>>,
                 headers: HeaderMap,
                 body: String| async move {
                    let id = headers["webhook-id"].to_str().unwrap().to_owned();
                    let attempt = {
                        let mut attempts = state.attempts.lock().unwrap();
                        let attempt = attempts.entry(id.clone()).or_default();
                        *attempt += 1;
                        *attempt
                    };
                    let seq: u32 = id.parse().unwrap();
                    match (seq % 5, attempt) {
                        (1, 1) => (StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new()),
                        (2, 1) => {
                            let mut headers = HeaderMap::new();
                            headers.insert("retry-after", "1".parse().unwrap());
                            (StatusCode::TOO_MANY_REQUESTS, headers)
                        }
                        (3, 1) => {
                            let mut headers = HeaderMap::new();
                            headers.insert(
                                "location",
                                "http://127.0.0.1:9/elsewhere".parse().unwrap(),
                            );
                            (StatusCode::TEMPORARY_REDIRECT, headers)
                        }
                        (4, 1) => {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            (StatusCode::OK, HeaderMap::new())
                        }
                        _ => {
                            let headers = headers
                                .iter()
                                .map(|(name, value)| {
                                    (name.to_string(), value.to_str().unwrap().to_owned())
                                })
                                .collect();
                            state.taken.lock().unwrap().push((headers, body));
                            (StatusCode::NO_CONTENT, HeaderMap::new())
                        }
                    }
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The Python that has `standardwebhooks`, or `None` (a skip) when there is none and CI does
/// not require it.
fn standard_webhooks() -> Option<String> {
    let python = std::env::var("REFERRALS_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let found = std::process::Command::new(&python)
        .args(["-c", "import standardwebhooks"])
        .output()
        .is_ok_and(|out| out.status.success());
    if found {
        return Some(python);
    }
    let message = "the Python package standardwebhooks is not installed (pip install \
                   standardwebhooks, or REFERRALS_PYTHON=...): the signatures are checked by \
                   the unit test of the test vector only";
    assert!(
        std::env::var_os("REFERRALS_REQUIRE_STANDARDWEBHOOKS").is_none(),
        "{message}, and REFERRALS_REQUIRE_STANDARDWEBHOOKS is set"
    );
    eprintln!("{message}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_are_signed_and_failures_throttling_and_redirects_cost_retries_only() {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, mut mirror) = mirrored(dir.path(), 6).await;
    let ids: Vec<String> = mirror
        .referrals()
        .unwrap()
        .into_iter()
        .filter_map(|r| r.id)
        .collect();
    for (at, id) in ids.iter().enumerate().take(4) {
        mirror
            .apply(&newer(&mirror, id, &format!("note {at}")))
            .unwrap();
    }
    let state = Arc::new(Endpoint::default());
    let url = endpoint(Arc::clone(&state)).await;
    let out = referrals(
        dir.path(),
        &sandbox.url(),
        &[
            "changes",
            "--db",
            "mirror.sqlite",
            "--consumer",
            "flow",
            "--from",
            "0",
            "--post",
            &url,
            "--timeout",
            "1s",
            "--concurrency",
            "3",
        ],
        &[("REFERRALS_POST_SECRET", SECRET)],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let taken = state.taken.lock().unwrap().clone();
    let total = mirror.count().unwrap() as usize + 4;
    let seqs: Vec<i64> = taken
        .iter()
        .map(|(headers, _)| headers["webhook-id"].parse().unwrap())
        .collect();
    let mut distinct = seqs.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct,
        (1..=total as i64).collect::<Vec<_>>(),
        "each change, once"
    );
    assert_eq!(seqs.len(), total);
    // One referral's changes arrive in their order, whatever failed on the way.
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for (_, body) in &taken {
        let payload: serde_json::Value = serde_json::from_str(body).unwrap();
        let id = payload["change"]["id"].as_str().unwrap().to_owned();
        let seq = payload["change"]["seq"].as_i64().unwrap();
        assert!(last.insert(id, seq).is_none_or(|before| before < seq));
    }
    assert!(
        text(&out.stderr).contains("retries"),
        "{}",
        text(&out.stderr)
    );
    verify_with_standard_webhooks(dir.path(), &taken);
}

/// Verifies each delivery of `taken` (headers, body) with the reference library.
fn verify_with_standard_webhooks(dir: &Path, taken: &[(BTreeMap<String, String>, String)]) {
    let total = taken.len();
    let Some(python) = standard_webhooks() else {
        return;
    };
    let file = dir.join("deliveries.json");
    std::fs::write(&file, serde_json::to_string(taken).unwrap()).unwrap();
    let check = format!(
        "import json, sys\nfrom standardwebhooks import Webhook\n\
         hook = Webhook('{SECRET}')\n\
         for headers, body in json.load(open(sys.argv[1])):\n    hook.verify(body, headers)\n\
         print('verified', len(json.load(open(sys.argv[1]))))\n"
    );
    let verified = std::process::Command::new(python)
        .args(["-c", &check])
        .arg(&file)
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert_eq!(text(&verified.stdout).trim(), format!("verified {total}"));
}
