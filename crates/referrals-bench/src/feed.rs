//! The measures of the change feed: what the change log costs a first sync, and how long a
//! change takes from the sandbox to a consumer's handler (the library's, a command's, an
//! endpoint's), through `referrals listen` and the mirror.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use referrals_client::patch::Patch;
use referrals_client::query::Query;
use referrals_client::sync::SyncOptions;
use referrals_client::{Client, StaticToken};
use referrals_mirror::feed::{Delivery, Failure};
use referrals_mirror::{Db, Start};

fn client(url: &str, token: &str) -> Client {
    Client::builder(url, StaticToken::new(token))
        .allow_http_to_loopback(true)
        .build()
        .expect("a client")
}

/// A first sync of every referral into the empty mirror `db` (a file, or a `postgres://`
/// database whose mirror's tables are dropped first), with the change log or without it.
pub async fn sync_into(url: &str, token: &str, db: &str, unlogged: bool) -> serde_json::Value {
    if referrals_mirror::is_server(db) {
        drop_tables(db).await;
    } else {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{db}{suffix}"));
        }
    }
    let client = client(url, token);
    let options = SyncOptions::new().skew(Duration::ZERO);
    let started = Instant::now();
    let report = match Db::open(db).await.expect("the mirror") {
        Db::File(mirror) => {
            let mut mirror = if unlogged {
                mirror.without_change_log()
            } else {
                mirror
            };
            mirror.sync(&client, options).await
        }
        Db::Server(mirror) => {
            let mut mirror = if unlogged {
                mirror.without_change_log().await.expect("the upsert")
            } else {
                mirror
            };
            mirror.sync(&client, options).await
        }
    }
    .expect("a sync");
    serde_json::json!({
        "mode": "sync-into", "unlogged": unlogged, "referrals": report.changed,
        "seconds": started.elapsed().as_secs_f64(), "peak_kib": crate::peak_kib(),
    })
}

/// Drops the tables of a mirror in the database `url`, for a first sync from nothing.
async fn drop_tables(url: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the database");
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE IF EXISTS referrals, sync_state, events, changes, change_counter,
             consumers, failed_changes, referrals_mirror",
        )
        .await
        .expect("the tables dropped");
}

/// Who handles the changes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Consumer {
    /// `Feed::deliver` in this process.
    Library,
    /// `referrals changes --follow --exec`, its command writing to a pipe that this process
    /// reads.
    Exec,
    /// `referrals changes --follow --post` to an endpoint of this process.
    Post,
}

/// When each referral's change reached the handler, by id.
type Arrivals = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

fn arrived(arrivals: &Arrivals, id: &str) {
    let now = Instant::now();
    let mut arrivals = arrivals
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    arrivals.entry(id.to_owned()).or_default().push(now);
}

/// Changes `count` referrals of the service at `url`, `rate` a second, while a `consumer`
/// follows the mirror `db` (kept by a `referrals listen` of the caller's): how long each
/// change took to reach the consumer's handler, p50 and p99.
pub async fn latency(
    url: &str,
    token: &str,
    db: &str,
    rate: u32,
    count: usize,
    consumer: Consumer,
) -> serde_json::Value {
    let client = client(url, token);
    let all: Vec<_> =
        futures_util::TryStreamExt::try_collect::<Vec<_>>(client.list_all(Query::new()))
            .await
            .expect("the referrals");
    let mut ids: Vec<String> = all.into_iter().filter_map(|referral| referral.id).collect();
    let warm_up = ids.pop().expect("a referral");
    ids.truncate(count);
    let arrivals = Arrivals::default();
    let scratch = tempfile::tempdir().expect("a folder");
    let running = start(consumer, db, url, token, &arrivals, scratch.path()).await;
    // The consumer is placed (from now) once a warm-up change reaches it: a process may
    // start after the first ones.
    let started = Instant::now();
    while !arrivals.lock().expect("arrivals").contains_key(&warm_up) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the consumer never got a change"
        );
        change(&client, &warm_up).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sent = send(&client, &ids, rate).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !all_arrived(&arrivals, &sent) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(running);
    report(&arrivals, &sent, consumer)
}

async fn change(client: &Client, id: &str) {
    client
        .update_unconditionally(
            id,
            Patch::new().set_details_notes(format!("at {:?}", Instant::now())),
        )
        .await
        .expect("a change");
}

/// Changes each of `ids` once, `rate` a second: when each change was asked for (its event may
/// reach a consumer before the answer reaches this process).
async fn send(client: &Client, ids: &[String], rate: u32) -> HashMap<String, Instant> {
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut next = Instant::now();
    let mut sent = HashMap::new();
    for id in ids {
        tokio::time::sleep_until(next.into()).await;
        sent.insert(id.clone(), Instant::now());
        change(client, id).await;
        next += interval;
    }
    sent
}

fn all_arrived(arrivals: &Arrivals, sent: &HashMap<String, Instant>) -> bool {
    let arrivals = arrivals.lock().expect("arrivals");
    sent.iter().all(|(id, at)| {
        arrivals
            .get(id)
            .is_some_and(|times| times.iter().any(|time| time >= at))
    })
}

fn report(
    arrivals: &Arrivals,
    sent: &HashMap<String, Instant>,
    consumer: Consumer,
) -> serde_json::Value {
    let arrivals = arrivals.lock().expect("arrivals");
    let mut latencies: Vec<f64> = sent
        .iter()
        .filter_map(|(id, at)| {
            let first = arrivals.get(id)?.iter().find(|time| *time >= at)?;
            Some(first.duration_since(*at).as_secs_f64())
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let at = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(at).copied().unwrap_or(f64::NAN)
    };
    serde_json::json!({
        "mode": "feed-latency", "consumer": format!("{consumer:?}"), "changes": sent.len(),
        "seen": latencies.len(), "missed": sent.len() - latencies.len(),
        "p50_ms": quantile(0.5) * 1e3, "p99_ms": quantile(0.99) * 1e3,
    })
}

/// What runs the consumer; stopped when dropped.
enum Running {
    Task(tokio::task::JoinHandle<()>),
    Process(std::process::Child),
}

impl Drop for Running {
    fn drop(&mut self) {
        match self {
            Self::Task(task) => task.abort(),
            Self::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

async fn start(
    consumer: Consumer,
    db: &str,
    url: &str,
    token: &str,
    arrivals: &Arrivals,
    scratch: &Path,
) -> Running {
    match consumer {
        Consumer::Library => {
            let mut feed = Db::open(db)
                .await
                .expect("the mirror")
                .feed(&format!("bench-library-{}", std::process::id()), Start::Now)
                .await
                .expect("a feed");
            feed.hold().await.expect("the consumer");
            let arrivals = Arc::clone(arrivals);
            Running::Task(tokio::spawn(async move {
                let handler = |change: referrals_mirror::Change| {
                    arrived(&arrivals, &change.id);
                    std::future::ready(Ok::<(), Failure>(()))
                };
                let _ = feed
                    .deliver(&Delivery::new(), handler, std::future::pending())
                    .await;
            }))
        }
        Consumer::Exec => {
            let pipe = pipe(scratch, arrivals);
            let command = format!(
                "printf '%s\\n' \"$REFERRALS_REFERRAL_ID\" > '{}'",
                pipe.display()
            );
            let name = format!("bench-exec-{}", std::process::id());
            Running::Process(changes(url, token, db, &name, &["--exec", &command], &[]))
        }
        Consumer::Post => {
            let endpoint = endpoint(arrivals).await;
            let secret = (
                "REFERRALS_POST_SECRET",
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            );
            let name = format!("bench-post-{}", std::process::id());
            Running::Process(changes(
                url,
                token,
                db,
                &name,
                &["--post", &endpoint],
                &[secret],
            ))
        }
    }
}

/// `referrals changes --follow` for `consumer` (a name of this run's own: a known consumer
/// would go on from its position, not from now), with `more` arguments.
fn changes(
    url: &str,
    token: &str,
    db: &str,
    consumer: &str,
    more: &[&str],
    envs: &[(&str, &str)],
) -> std::process::Child {
    let referrals = std::env::current_exe()
        .ok()
        .and_then(|bench| bench.parent().map(|dir| dir.join("referrals")))
        .expect("the folder of the binaries");
    std::process::Command::new(referrals)
        .env("PARTNER_ROOT", url)
        .env("PARTNER_TOKEN", token)
        .envs(envs.iter().copied())
        .args(["--quiet", "changes", "--db", db, "--consumer", consumer])
        .args(["--from", "now", "--follow"])
        .args(more)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("referrals changes runs")
}

/// A named pipe in `scratch` whose lines (referral ids) a thread of this process reads as they
/// come.
fn pipe(scratch: &Path, arrivals: &Arrivals) -> PathBuf {
    let path = scratch.join("handled");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    // Read and write: the pipe never reads an end of file between two commands.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("the pipe opens");
    let arrivals = Arc::clone(arrivals);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(reader).lines() {
            let Ok(id) = line else { return };
            arrived(&arrivals, id.trim());
        }
    });
    path
}

/// An endpoint on loopback that records each change's arrival; its URL.
async fn endpoint(arrivals: &Arrivals) -> String {
    let arrivals = Arc::clone(arrivals);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let arrivals = Arc::clone(&arrivals);
            async move {
                let payload: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if let Some(id) = payload["change"]["id"].as_str() {
                    arrived(&arrivals, id);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
