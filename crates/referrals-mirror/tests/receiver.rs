//! The receiver as an operator runs it for months: genuine callbacks of the sandbox, captured
//! and sent again, cost one row and one read; a burst of events for one referral costs one
//! read; an event of a related referral, one read and no retry; `/healthz`, `/readyz` and
//! `/metrics` say what it does (the metrics pass `promtool check metrics`); a PostgreSQL
//! restarted under it is connected again by itself.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use referrals_client::patch::Patch;
use referrals_client::webhooks::types::{WebhookEventName, WebhookRegistration};
use referrals_events::Verifier;
use referrals_mirror::receiver::{Receiver, Running};
use referrals_sandbox::{Config, Sandbox};

/// A callback as the sandbox delivered it.
#[derive(Clone)]
struct Delivery {
    headers: HeaderMap,
    body: axum::body::Bytes,
}

/// A server that keeps every delivery it is sent; its URL.
async fn capture() -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let kept: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let keep = Arc::clone(&kept);
    let router = axum::Router::new().fallback(move |headers: HeaderMap, body| {
        let keep = Arc::clone(&keep);
        async move {
            keep.lock().unwrap().push(Delivery { headers, body });
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, kept)
}

/// `count` genuine callbacks of the sandbox: each an update of the referral `id` (or of a
/// referral of the sandbox in turn when `id` is `None`).
async fn deliveries(sandbox: &Sandbox, count: usize, id: Option<&str>) -> Vec<Delivery> {
    let events = [WebhookEventName::ReferralUpdated];
    deliveries_of(sandbox, &events, count, id, count).await
}

/// The `expected` callbacks of the `events` registered that `count` updates (as
/// [`deliveries`]) make the sandbox send.
async fn deliveries_of(
    sandbox: &Sandbox,
    events: &[WebhookEventName],
    count: usize,
    id: Option<&str>,
    expected: usize,
) -> Vec<Delivery> {
    let (url, kept) = capture().await;
    let webhooks = referrals_testkit::builder(&sandbox.url())
        .build_webhooks()
        .unwrap();
    let events = events.to_vec();
    webhooks
        .register(&WebhookRegistration::new(url, events))
        .await
        .unwrap();
    let client = referrals_testkit::client(&sandbox.url());
    let ids = ids_of(&client).await;
    for change in 0..count {
        let id = id.map_or_else(|| ids[change % ids.len()].clone(), str::to_owned);
        let patch = Patch::new().set_details_notes(format!("change {change}"));
        client.update_unconditionally(&id, patch).await.unwrap();
    }
    let started = Instant::now();
    while kept.lock().unwrap().len() < expected && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept = kept.lock().unwrap().clone();
    assert_eq!(kept.len(), expected, "the sandbox delivered every event");
    kept
}

/// A referral of the sandbox that shares its engagement with others, and how many others.
async fn engaged(client: &referrals_client::Client) -> (String, usize) {
    let all = futures_util::TryStreamExt::try_collect::<Vec<_>>(
        client.list_all(referrals_client::query::Query::new()),
    );
    let mut engagements = std::collections::HashMap::<String, Vec<String>>::new();
    for referral in all.await.unwrap() {
        if let (Some(engagement), Some(id)) = (referral.engagement_id, referral.id) {
            engagements.entry(engagement).or_default().push(id);
        }
    }
    let mut ids = engagements
        .into_values()
        .find(|ids| ids.len() > 1)
        .expect("an engagement of two referrals or more");
    (ids.remove(0), ids.len())
}

/// The ids of the first page of referrals.
async fn ids_of(client: &referrals_client::Client) -> Vec<String> {
    let query = referrals_client::query::Query::new();
    let page = client.list_page(&query, None).await.unwrap();
    page.items
        .into_iter()
        .filter_map(|referral| referral.id)
        .collect()
}

/// A folder of the test's own, and the path of a SQLite mirror in it.
fn sqlite_file() -> (tempfile::TempDir, String) {
    let folder = tempfile::tempdir().unwrap();
    let db = folder.path().join("m.sqlite").display().to_string();
    (folder, db)
}

/// A receiver of the sandbox's callbacks into `db`, served on loopback (not started: the
/// test starts its worker and sync); its URL.
async fn receiver(sandbox: &Sandbox, db: &str, every: Duration) -> (Receiver, String) {
    let origin = sandbox.url().trim_start_matches("http://").to_owned();
    let verifier = Verifier::for_sandbox(&origin, sandbox.events_root_pem().unwrap()).unwrap();
    let client = referrals_testkit::client(&sandbox.url());
    let receiver = Receiver::builder(client, db)
        .verifier(verifier)
        .every(every)
        .skew(Duration::ZERO)
        .on_notice(|_| {})
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = receiver.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (receiver, url)
}

async fn deliver(http: &reqwest::Client, url: &str, delivery: &Delivery) -> u16 {
    let mut request = http
        .post(format!("{url}/events"))
        .body(delivery.body.clone());
    for (name, value) in &delivery.headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    request.send().await.unwrap().status().as_u16()
}

fn http() -> reqwest::Client {
    referrals_client::install_crypto_provider();
    reqwest::Client::new()
}

/// Waits (at most 30 s) until no event is left to work off.
async fn worked_off(db: &str) {
    let started = Instant::now();
    loop {
        let mut mirror = referrals_mirror::Db::open(db).await.unwrap();
        let counts = mirror.event_counts().await.unwrap();
        if counts.pending == 0 {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rows_of_events(db: &str) -> i64 {
    let mirror = referrals_mirror::Mirror::open(db).unwrap();
    let count = "SELECT count(*) FROM events";
    mirror
        .connection()
        .query_row(count, [], |row| row.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_replays_cost_one_row_and_one_read() {
    let sandbox = referrals_testkit::start(referrals_testkit::config()).await;
    let captured = deliveries(&sandbox, 1, None).await;
    let (_folder, db) = sqlite_file();
    let (receiver, url) = receiver(&sandbox, &db, Duration::from_secs(3600)).await;
    let http = http();
    let replays = futures_util::future::join_all((0..2000).map(|_| {
        let (http, url, delivery) = (&http, &url, &captured[0]);
        async move { deliver(http, url, delivery).await }
    }));
    let statuses = replays.await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    assert_eq!(rows_of_events(&db), 1, "one row for 2,000 replays");

    let reads = sandbox.reads();
    let running = receiver.start();
    worked_off(&db).await;
    assert_eq!(sandbox.reads() - reads, 1, "one read for 2,000 replays");
    let metrics = http.get(format!("{url}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("referrals_callbacks_total{check=\"\",outcome=\"replayed\"} 1999"),
        "{metrics}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_events_for_one_referral_costs_one_read() {
    let sandbox = referrals_testkit::start(referrals_testkit::config()).await;
    let client = referrals_testkit::client(&sandbox.url());
    let id = ids_of(&client).await.remove(0);
    let captured = deliveries(&sandbox, 50, Some(&id)).await;
    let (_folder, db) = sqlite_file();
    let (receiver, url) = receiver(&sandbox, &db, Duration::from_secs(3600)).await;
    let http = http();
    for delivery in &captured {
        assert_eq!(deliver(&http, &url, delivery).await, 200);
    }
    assert_eq!(rows_of_events(&db), 50);
    let reads = sandbox.reads();
    let running = receiver.start();
    worked_off(&db).await;
    assert_eq!(
        sandbox.reads() - reads,
        1,
        "one read for 50 events of one referral"
    );
    let mirror = referrals_mirror::Mirror::open(&db).unwrap();
    let row = mirror.get(&id).unwrap().unwrap();
    let now = client.referral(&id).await.unwrap();
    assert_eq!(row.e_tag, now.e_tag, "the mirror holds the last version");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_related_event_costs_one_read_and_no_retry() {
    let sandbox = referrals_testkit::start(referrals_testkit::config()).await;
    let client = referrals_testkit::client(&sandbox.url());
    let (id, others) = engaged(&client).await;
    // Each names another referral of the engagement, with the instant of `id`'s change.
    let events = [WebhookEventName::RelatedReferralUpdated];
    let captured = deliveries_of(&sandbox, &events, 1, Some(&id), others).await;
    let (_folder, db) = sqlite_file();
    let (receiver, url) = receiver(&sandbox, &db, Duration::from_secs(3600)).await;
    let http = http();
    for delivery in &captured {
        assert_eq!(deliver(&http, &url, delivery).await, 200);
    }
    let reads = sandbox.reads();
    let running = receiver.start();
    worked_off(&db).await;
    // A related event judged by its instant would be tried again (2, 4, 8 s): four reads.
    let others = u64::try_from(others).unwrap();
    assert_eq!(sandbox.reads() - reads, others, "one read an event");
    running.stop().await;
}

/// `promtool check metrics` on `text`, when promtool is installed (with
/// `REFERRALS_REQUIRE_PROMTOOL=1`, its absence fails the test).
fn promtool_check(text: &str) {
    use std::io::Write as _;
    let spawned = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .output_with_stdin(text.as_bytes());
    match spawned {
        Some(output) => assert!(
            output.status.success(),
            "promtool check metrics: {}{}\n{text}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        None if std::env::var_os("REFERRALS_REQUIRE_PROMTOOL").is_some() => {
            panic!("promtool is not installed (apt-get install prometheus)")
        }
        None => {
            let _ = writeln!(std::io::stderr(), "skipped: promtool is not installed");
        }
    }
}

/// Runs a command with `input` on its standard input; `None` when it cannot start.
trait WithStdin {
    fn output_with_stdin(&mut self, input: &[u8]) -> Option<std::process::Output>;
}

impl WithStdin for std::process::Command {
    fn output_with_stdin(&mut self, input: &[u8]) -> Option<std::process::Output> {
        use std::io::Write as _;
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(input).ok()?;
        child.wait_with_output().ok()
    }
}

/// The status and text of `GET url`.
async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let answer = http.get(url).send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_say_what_the_receiver_does() {
    let sandbox = referrals_testkit::start(referrals_testkit::config()).await;
    let captured = deliveries(&sandbox, 3, None).await;
    let (_folder, db) = sqlite_file();
    let (receiver, url) = receiver(&sandbox, &db, Duration::from_secs(1)).await;
    let http = http();
    for delivery in &captured {
        assert_eq!(deliver(&http, &url, delivery).await, 200);
    }
    let forged = Delivery {
        headers: captured[0].headers.clone(),
        body: axum::body::Bytes::from_static(b"{\"EventName\":\"referral-updated\"}"),
    };
    assert_eq!(deliver(&http, &url, &forged).await, 401);
    // A consumer of the change feed, which reads nothing: its lag grows with the sync.
    let consumer = referrals_mirror::Mirror::open(&db).unwrap();
    let mut feed = consumer
        .feed("crm", referrals_mirror::Start::After(0))
        .unwrap();
    assert!(feed.changes(1).await.unwrap().is_empty());
    drop(feed);
    let running = receiver.start();
    worked_off(&db).await;
    let synced = "referrals_sync_runs_total{outcome=\"ok\"}";
    let metrics = metrics_with(&http, &url, synced).await;
    let ready = get(&http, &format!("{url}/readyz")).await;
    assert_eq!(ready.0, 200, "{}", ready.1);
    assert_eq!(get(&http, &format!("{url}/healthz")).await.0, 200);
    for expected in [
        "referrals_callbacks_total{check=\"\",outcome=\"accepted\"} 3",
        "referrals_callbacks_total{check=\"signature\",outcome=\"refused\"} 1",
        "referrals_events_pending 0",
        "referrals_reads_total{outcome=\"read\"} 3",
        "referrals_sync_runs_total{outcome=\"ok\"}",
        "referrals_mirror_up 1",
        "referrals_mirror_rows ",
        "referrals_feed_consumer_lag{consumer=\"crm\"} ",
    ] {
        assert!(metrics.contains(expected), "{expected}:\n{metrics}");
    }
    promtool_check(&metrics);

    // The service gone, the catch-up sync fails: not ready once twice the interval passed.
    sandbox.shutdown().await;
    let (status, reason) = wait_for(&http, &format!("{url}/readyz"), 503).await;
    assert_eq!(status, 503, "{reason}");
    assert!(reason.contains("sync that ended well"), "{reason}");
    assert_eq!(get(&http, &format!("{url}/healthz")).await.0, 200);
    let failed = "referrals_sync_runs_total{outcome=\"failed\"}";
    let metrics = metrics_with(&http, &url, failed).await;
    promtool_check(&metrics);
    running.stop().await;
}

/// The metrics, once they hold `text` (at most 20 s).
async fn metrics_with(http: &reqwest::Client, url: &str, text: &str) -> String {
    let started = Instant::now();
    loop {
        let (_, metrics) = get(http, &format!("{url}/metrics")).await;
        if metrics.contains(text) {
            return metrics;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{text}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET url` until it answers `status` (at most 20 s); the last answer.
async fn wait_for(http: &reqwest::Client, url: &str, status: u16) -> (u16, String) {
    let started = Instant::now();
    loop {
        let answer = get(http, url).await;
        if answer.0 == status || started.elapsed() > Duration::from_secs(20) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restarted_under_the_receiver_is_connected_again() {
    let Some(server) = referrals_testkit::postgres::Server::start() else {
        return;
    };
    let sandbox = referrals_testkit::start(Config {
        seed_count: 10,
        ..referrals_testkit::config()
    })
    .await;
    let captured = deliveries(&sandbox, 6, None).await;
    let db = server.url();
    let (receiver, url) = receiver(&sandbox, &db, Duration::from_secs(3600)).await;
    let running: Running = receiver.start();
    let http = http();
    for delivery in &captured[..3] {
        assert_eq!(deliver(&http, &url, delivery).await, 200);
    }
    server.restart();
    // Answers 503 (Partner Center delivers again) until the connection is made again, which
    // happens by itself, within the bounded wait.
    for delivery in &captured[3..] {
        let started = Instant::now();
        let mut status = deliver(&http, &url, delivery).await;
        while status != 200 && started.elapsed() < Duration::from_secs(30) {
            assert_eq!(status, 503);
            tokio::time::sleep(Duration::from_millis(200)).await;
            status = deliver(&http, &url, delivery).await;
        }
        assert_eq!(status, 200);
    }
    worked_off(&db).await;
    let (status, reason) = wait_for(&http, &format!("{url}/readyz"), 200).await;
    assert_eq!(status, 200, "{reason}");
    running.stop().await;
}
