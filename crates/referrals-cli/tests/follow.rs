//! The whole chain under kills, as a partner runs it: the sandbox changes referrals at full
//! speed and publishes its events; `referrals listen` keeps the mirror; two consumers follow it
//! with `referrals changes --follow --exec` (one with a standby process waiting to take over,
//! one handling four changes at once), each appending what its command got to a file of its
//! own. The receiver and the consumers are killed at random moments and started again.
//!
//! Then, for each consumer: every change of the log reached it at least once; within one
//! process, one referral's changes came in their order; no two processes of the consumer
//! delivered at the same time (the lines of each process form one block); and the table that
//! the consumer keeps from what it got (the last referral of each id) equals the store. On
//! SQLite, and on PostgreSQL.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use referrals_client::patch::Patch;
use referrals_client::query::Query;
use referrals_client::webhooks::types::{WebhookEventName, WebhookRegistration};
use referrals_sandbox::Config;
use referrals_testkit::TOKEN;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `referrals ARGS` in `dir`, in the background.
fn spawn(dir: &Path, root: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_referrals"))
        .current_dir(dir)
        .env("PARTNER_ROOT", root)
        .env("PARTNER_TOKEN", TOKEN)
        .arg("--quiet")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Every referral of the sandbox: id → eTag.
async fn store(client: &referrals_client::Client) -> BTreeMap<String, String> {
    let all: Vec<_> = client.list_all(Query::new()).try_collect().await.unwrap();
    all.into_iter()
        .map(|referral| (referral.id.unwrap(), referral.e_tag.unwrap()))
        .collect()
}

/// A consumer's processes: one serves it, the others wait to take over.
struct Consumer {
    name: &'static str,
    args: Vec<String>,
    processes: VecDeque<Child>,
}

impl Consumer {
    fn new(dir: &Path, root: &str, db: &str, name: &'static str, more: &[&str]) -> Self {
        let command = format!("line=\"$PPID $(cat)\"; printf '%s\\n' \"$line\" >> {name}.log");
        let mut args: Vec<String> = [
            "changes",
            "--db",
            db,
            "--consumer",
            name,
            "--from",
            "0",
            "--follow",
            "--exec",
            &command,
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        args.extend(more.iter().map(|arg| (*arg).to_owned()));
        let mut consumer = Self {
            name,
            args,
            processes: VecDeque::new(),
        };
        consumer.start(dir, root);
        consumer
    }

    fn start(&mut self, dir: &Path, root: &str) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.processes.push_back(spawn(dir, root, &args));
    }

    /// Kills the process that serves it (the one that delivered last: the standbys race for
    /// it), and starts another.
    fn kill_one(&mut self, dir: &Path, root: &str) {
        let serving = delivered(dir, self.name)
            .last()
            .map(|(process, ..)| *process);
        let at = self
            .processes
            .iter()
            .position(|child| Some(child.id()) == serving)
            .unwrap_or(0);
        if let Some(mut holder) = self.processes.remove(at) {
            kill(&mut holder);
        }
        self.start(dir, root);
    }
}

/// What a consumer's command got: (process, seq, id, eTag of the referral), in file order.
fn delivered(dir: &Path, name: &str) -> Vec<(u32, i64, String, String)> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (process, payload) = line.split_once(' ')?;
            let payload: serde_json::Value = serde_json::from_str(payload).ok()?;
            Some((
                process.parse().ok()?,
                payload["change"]["seq"].as_i64()?,
                payload["change"]["id"].as_str()?.to_owned(),
                payload["referral"]["eTag"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Checks what `name` got against the log's `last` change and the `expected` store.
fn check(dir: &Path, name: &str, last: i64, expected: &BTreeMap<String, String>) {
    let got = delivered(dir, name);
    let seqs: BTreeSet<i64> = got.iter().map(|(_, seq, _, _)| *seq).collect();
    let processes: BTreeSet<u32> = got.iter().map(|(process, ..)| *process).collect();
    assert!(
        processes.len() >= 3,
        "{name}: killed twice, yet {processes:?}"
    );
    let missing: Vec<i64> = (1..=last).filter(|seq| !seqs.contains(seq)).collect();
    assert!(
        missing.is_empty(),
        "{name}: changes never delivered: {missing:?}"
    );
    let mut ended: BTreeSet<u32> = BTreeSet::new();
    let mut order: BTreeMap<(u32, &str), i64> = BTreeMap::new();
    for (at, (process, seq, id, _)) in got.iter().enumerate() {
        if at > 0 && got[at - 1].0 != *process {
            assert!(ended.insert(got[at - 1].0), "{name}: two processes at once");
            assert!(
                !ended.contains(process),
                "{name}: process {process} came back"
            );
        }
        let before = order.insert((*process, id), *seq);
        assert!(
            before.is_none_or(|before| before < *seq),
            "{name}: {id}'s changes out of order in process {process}"
        );
    }
    let mut table: BTreeMap<&str, &str> = BTreeMap::new();
    for (_, _, id, tag) in &got {
        table.insert(id, tag);
    }
    let differ = expected
        .iter()
        .filter(|(id, tag)| table.get(id.as_str()) != Some(&tag.as_str()))
        .count();
    assert_eq!(
        differ,
        0,
        "{name}: {differ} of {} rows differ",
        expected.len()
    );
}

/// Whether each consumer of `names` got the change `last` and keeps the `expected` table.
fn caught_up(dir: &Path, names: &[&str], last: i64, expected: &BTreeMap<String, String>) -> bool {
    names.iter().all(|name| {
        let got = delivered(dir, name);
        let table: BTreeMap<&str, &str> = got
            .iter()
            .map(|(_, _, id, tag)| (id.as_str(), tag.as_str()))
            .collect();
        got.iter().any(|(_, seq, _, _)| *seq == last)
            && expected
                .iter()
                .all(|(id, tag)| table.get(id.as_str()) == Some(&tag.as_str()))
    })
}

/// A sandbox that publishes its events (dropping some) to a receiver on `port`, and the file
/// of its events' root in `dir`.
async fn publishing(dir: &Path, port: u16) -> (referrals_sandbox::Sandbox, String) {
    let sandbox = referrals_testkit::start(Config {
        seed_count: 120,
        drop_events: 0.05,
        event_backoff: Duration::from_millis(50),
        ..referrals_testkit::config()
    })
    .await;
    let trust = dir.join("root.pem");
    std::fs::write(&trust, sandbox.events_root_pem().unwrap()).unwrap();
    referrals_testkit::builder(&sandbox.url())
        .build_webhooks()
        .unwrap()
        .register(&WebhookRegistration::new(
            format!("http://127.0.0.1:{port}/events"),
            WebhookEventName::KNOWN.to_vec(),
        ))
        .await
        .unwrap();
    (sandbox, trust.to_string_lossy().into_owned())
}

/// The whole chain on the mirror `db`; `last` reads the log's last sequence number.
async fn chain(db: &str, dir: &Path, last: impl AsyncFn() -> i64) {
    let port = free_port();
    let (sandbox, trust_text) = publishing(dir, port).await;
    let root = sandbox.url();
    let client = referrals_testkit::client(&root);
    let mut crm = Consumer::new(dir, &root, db, "crm", &[]);
    crm.start(dir, &root); // a standby
    let mut queue = Consumer::new(dir, &root, db, "queue", &["--concurrency", "4"]);
    let listen_args = [
        "listen",
        "--db",
        db,
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--every",
        "2s",
        "--skew",
        "0s",
        "--trust-root",
        &trust_text,
        "--allow-http-certificates",
        root.trim_start_matches("http://"),
    ];
    let mut receiver = spawn(dir, &root, &listen_args);
    let ids: Vec<String> = store(&client).await.into_keys().collect();
    // The kills come once both consumers delivered the receiver's first sync: each process
    // killed has delivered.
    let started = Instant::now();
    while [crm.name, queue.name]
        .iter()
        .any(|name| delivered(dir, name).len() < ids.len())
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut rng = fastrand::Rng::with_seed(24);
    for change in 0..600 {
        let id = &ids[rng.usize(..ids.len())];
        let note = format!("change {change}");
        client
            .update_unconditionally(id, Patch::new().set_details_notes(note))
            .await
            .unwrap();
        if change % 100 == 50 {
            // Each is killed twice, at a moment the writers do not wait for.
            match change / 100 % 3 {
                0 => {
                    kill(&mut receiver);
                    receiver = spawn(dir, &root, &listen_args);
                }
                1 => crm.kill_one(dir, &root),
                _ => queue.kill_one(dir, &root),
            }
        }
    }
    let expected = store(&client).await;
    let started = Instant::now();
    while !caught_up(dir, &[crm.name, queue.name], last().await, &expected)
        && started.elapsed() < Duration::from_secs(90)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for child in crm.processes.iter_mut().chain(queue.processes.iter_mut()) {
        kill(child);
    }
    kill(&mut receiver);
    let last = last().await;
    // Events that came faster than the referral was read add one change, not one each.
    let more = i64::try_from(expected.len()).unwrap() + 100;
    assert!(last > more, "{last} changes in the log");
    check(dir, "crm", last, &expected);
    check(dir, "queue", last, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_reaches_every_consumer_through_kills_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.sqlite");
    // The mirror exists before the consumers start.
    drop(referrals_mirror::Mirror::open(&db).unwrap());
    let last = async || {
        let mirror = referrals_mirror::Mirror::open(&db).unwrap();
        mirror
            .connection()
            .query_row(
                "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
                [],
                |row| row.get::<_, i64>(0),
            )
            .unwrap()
    };
    chain("mirror.sqlite", dir.path(), last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_reaches_every_consumer_through_kills_on_postgres() {
    let Some(postgres) = referrals_testkit::postgres::Server::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = postgres.url();
    let mirror = referrals_mirror::postgres::PgMirror::connect(&url)
        .await
        .unwrap();
    let last = async || {
        mirror
            .client()
            .query_one("SELECT last FROM change_counter", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    chain(&url, dir.path(), last).await;
}
