//! `referrals listen` against the sandbox's signed events: a burst of changes with events
//! dropped on purpose and the receiver killed and started again during it, after which the
//! mirror equals the store (id and eTag); and forged callbacks refused, changing nothing.

use std::collections::BTreeMap;
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

/// `referrals listen` on `port`, for the sandbox at `root`.
fn listen(root: &str, db: &Path, trust: &Path, port: u16) -> Child {
    listen_with(root, db, trust, port, &[])
}

/// [`listen`], with more arguments.
fn listen_with(root: &str, db: &Path, trust: &Path, port: u16, more: &[&str]) -> Child {
    let sandbox = root.trim_start_matches("http://");
    Command::new(env!("CARGO_BIN_EXE_referrals"))
        .env("PARTNER_ROOT", root)
        .env("PARTNER_TOKEN", TOKEN)
        .args(["--quiet", "listen", "--db"])
        .arg(db)
        .args([
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--every",
            "2s",
            "--skew",
            "0s",
        ])
        .arg("--trust-root")
        .arg(trust)
        .args(["--allow-http-certificates", sandbox])
        .args(more)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The status of the first answer to a POST of `body` to `url`, once the receiver listens
/// (within 20 seconds).
async fn first_answer(http: &reqwest::Client, url: &str, body: &'static str) -> Option<u16> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(answer) = http.post(url).body(body).send().await {
            return Some(answer.status().as_u16());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Every referral of the sandbox: id → eTag.
async fn store(client: &referrals_client::Client) -> BTreeMap<String, String> {
    let all: Vec<_> = client.list_all(Query::new()).try_collect().await.unwrap();
    all.into_iter()
        .map(|referral| (referral.id.unwrap(), referral.e_tag.unwrap()))
        .collect()
}

/// The mirror's rows: id → eTag (empty while the file is not there yet).
fn mirror(db: &Path) -> BTreeMap<String, String> {
    let Ok(mirror) = referrals_mirror::Mirror::open(db) else {
        return BTreeMap::new();
    };
    mirror
        .referrals()
        .unwrap_or_default()
        .into_iter()
        .map(|referral| {
            (
                referral.id.unwrap_or_default(),
                referral.e_tag.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_equals_the_store_after_a_burst_with_drops_and_kills() {
    let sandbox = referrals_testkit::start(Config {
        seed_count: 150,
        drop_events: 0.1,
        event_backoff: Duration::from_millis(50),
        ..referrals_testkit::config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (db, trust) = (
        dir.path().join("mirror.sqlite"),
        dir.path().join("root.pem"),
    );
    std::fs::write(&trust, sandbox.events_root_pem().unwrap()).unwrap();
    let port = free_port();
    let client = referrals_testkit::client(&sandbox.url());
    let webhooks = referrals_testkit::builder(&sandbox.url())
        .build_webhooks()
        .unwrap();
    let events = WebhookEventName::KNOWN.to_vec();
    let url = format!("http://127.0.0.1:{port}/events");
    webhooks
        .register(&WebhookRegistration::new(url, events))
        .await
        .unwrap();

    let mut receiver = listen(&sandbox.url(), &db, &trust, port);
    let ids: Vec<String> = store(&client).await.into_keys().collect();
    let mut rng = fastrand::Rng::with_seed(5);
    for change in 0..1000 {
        let id = &ids[rng.usize(..ids.len())];
        let note = format!("change {change}");
        client
            .update_unconditionally(id, Patch::new().set_details_notes(note))
            .await
            .unwrap();
        if change == 300 || change == 700 {
            // Killed during the burst, and started again.
            receiver.kill().unwrap();
            let _ = receiver.wait();
            receiver = listen(&sandbox.url(), &db, &trust, port);
        }
    }
    let expected = store(&client).await;
    let started = Instant::now();
    let mut copy = mirror(&db);
    while copy != expected && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        copy = mirror(&db);
    }
    let differ = expected
        .iter()
        .filter(|(id, tag)| copy.get(*id) != Some(*tag))
        .count();
    assert_eq!(
        differ,
        0,
        "{differ} of {} referrals differ in the mirror",
        expected.len()
    );
    assert_eq!(copy.len(), expected.len());
    // The events carried most changes (the sync caught up the dropped ones and those sent
    // while the receiver was down).
    let received: i64 = referrals_mirror::Mirror::open(&db)
        .unwrap()
        .connection()
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert!(received > 500, "{received} events received");
    let _ = receiver.kill();
    let _ = receiver.wait();
}

/// The rows of the PostgreSQL mirror at `url`: id → eTag (empty while it cannot be read).
async fn rows_of(url: &str) -> BTreeMap<String, String> {
    let Ok(mirror) = referrals_mirror::postgres::PgMirror::connect(url).await else {
        return BTreeMap::new();
    };
    let rows = mirror
        .client()
        .query("SELECT id, e_tag FROM referrals", &[])
        .await
        .unwrap_or_default();
    rows.iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, String>(1)))
        .collect()
}

/// A sync that runs every second into `db` until killed.
fn sync_every(root: &str, db: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_referrals"))
        .env("PARTNER_ROOT", root)
        .env("PARTNER_TOKEN", TOKEN)
        .args([
            "--quiet", "sync", "--db", db, "--every", "1s", "--skew", "0s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A load balancer on loopback: each connection goes to the next of `ports` that accepts it.
async fn balance(ports: [u16; 2]) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut turn = 0usize;
        while let Ok((mut inbound, _)) = listener.accept().await {
            turn = turn.wrapping_add(1);
            let order = [ports[turn % 2], ports[(turn + 1) % 2]];
            tokio::spawn(async move {
                for port in order {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// How many events of the mirror `db` are done, once more than `more_than` are (or after 60 s).
async fn events_done(db: &str, more_than: i64) -> i64 {
    let mirror = referrals_mirror::postgres::PgMirror::connect(db)
        .await
        .unwrap();
    let waited = Instant::now();
    loop {
        let done: i64 = mirror
            .client()
            .query_one("SELECT count(*) FROM events WHERE done", &[])
            .await
            .unwrap()
            .get(0);
        if done > more_than || waited.elapsed() > Duration::from_secs(60) {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_and_syncs_share_a_postgres_mirror() {
    let Some(postgres) = referrals_testkit::postgres::Server::start() else {
        return;
    };
    let sandbox = referrals_testkit::start(Config {
        seed_count: 150,
        drop_events: 0.1,
        event_backoff: Duration::from_millis(50),
        ..referrals_testkit::config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let trust = dir.path().join("root.pem");
    std::fs::write(&trust, sandbox.events_root_pem().unwrap()).unwrap();
    let db = postgres.url();
    let webhooks = referrals_testkit::builder(&sandbox.url())
        .build_webhooks()
        .unwrap();
    // Two receivers behind a balancer (Partner Center calls one URL), and two syncs.
    let ports = [free_port(), free_port()];
    let url = format!("http://{}/events", balance(ports).await);
    webhooks
        .register(&WebhookRegistration::new(
            url,
            WebhookEventName::KNOWN.to_vec(),
        ))
        .await
        .unwrap();
    let faster = ["--reads-per-second", "100"];
    let start = |port| listen_with(&sandbox.url(), Path::new(&db), &trust, port, &faster);
    let mut receivers: Vec<Child> = ports.iter().map(|port| start(*port)).collect();
    let mut syncs = [
        sync_every(&sandbox.url(), &db),
        sync_every(&sandbox.url(), &db),
    ];
    let client = referrals_testkit::client(&sandbox.url());
    let ids: Vec<String> = store(&client).await.into_keys().collect();
    let mut rng = fastrand::Rng::with_seed(9);
    for change in 0..600 {
        let id = &ids[rng.usize(..ids.len())];
        client
            .update_unconditionally(
                id,
                Patch::new().set_details_notes(format!("change {change}")),
            )
            .await
            .unwrap();
        if change % 200 == 100 {
            // A receiver killed during the burst, and started again.
            let which = rng.usize(..receivers.len());
            receivers[which].kill().unwrap();
            let _ = receivers[which].wait();
            receivers[which] = start(ports[which]);
        }
    }
    let expected = store(&client).await;
    let started = Instant::now();
    let mut copy = rows_of(&db).await;
    while copy != expected && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        copy = rows_of(&db).await;
    }
    // The receivers carried most changes through the shared table of events (read at their
    // pace: they may finish after the syncs; the events claimed by a receiver killed wait for
    // the end of its claims' lease).
    let done = events_done(&db, 300).await;
    assert!(done > 300, "{done} events worked off");
    for child in receivers.iter_mut().chain(syncs.iter_mut()) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let differ = expected
        .iter()
        .filter(|(id, tag)| copy.get(*id) != Some(*tag))
        .count();
    assert_eq!(differ, 0, "{differ} of {} referrals differ", expected.len());
    assert_eq!(copy.len(), expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_callbacks_are_refused_and_change_nothing() {
    let sandbox = referrals_testkit::start(referrals_testkit::config()).await;
    let dir = tempfile::tempdir().unwrap();
    let (db, trust) = (
        dir.path().join("mirror.sqlite"),
        dir.path().join("root.pem"),
    );
    std::fs::write(&trust, sandbox.events_root_pem().unwrap()).unwrap();
    let port = free_port();
    let mut receiver = listen(&sandbox.url(), &db, &trust, port);
    referrals_client::install_crypto_provider();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/events");
    let body = r#"{"EventName":"referral-updated","ResourceUri":"https://x/engagements/v1/referrals/61c65491-2f2c-461a-84b4-3654499bc1d9"}"#;
    let answered = first_answer(&http, &url, body).await;
    assert_eq!(answered, Some(400), "no signature headers");
    let cert = format!("{}/sandbox/certificates/signer.cer", sandbox.url());
    let forged = http
        .post(&url)
        .header("Authorization", "Signature AAAA")
        .header("X-MS-Certificate-Url", &cert)
        .header("X-MS-Signature-Algorithm", "rsa-sha256")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let elsewhere = http
        .post(&url)
        .header("Authorization", "Signature AAAA")
        .header("X-MS-Certificate-Url", "http://127.0.0.1:9/x.cer")
        .header("X-MS-Signature-Algorithm", "rsa-sha256")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status().as_u16(), 401);
    let stored = referrals_mirror::Mirror::open(&db).unwrap();
    assert!(
        stored.pending_events(10).unwrap().is_empty(),
        "nothing was stored"
    );
    let _ = receiver.kill();
    let _ = receiver.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_serves_https_with_the_certificate_given() {
    let sandbox = referrals_testkit::start(referrals_testkit::config()).await;
    let dir = tempfile::tempdir().unwrap();
    let (db, trust) = (
        dir.path().join("mirror.sqlite"),
        dir.path().join("root.pem"),
    );
    std::fs::write(&trust, sandbox.events_root_pem().unwrap()).unwrap();
    let identity = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, identity.cert.pem()).unwrap();
    std::fs::write(&key, identity.signing_key.serialize_pem()).unwrap();
    let port = free_port();
    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let mut receiver = listen_with(&sandbox.url(), &db, &trust, port, &tls);
    referrals_client::install_crypto_provider();
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(identity.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/events");
    let answered = first_answer(&http, &url, "{}").await;
    assert_eq!(answered, Some(400), "an unsigned callback over https");
    let _ = receiver.kill();
    let _ = receiver.wait();
}

/// A callback whose body comes a byte at a time is answered 408 once the body's deadline is
/// over, so that slow senders cannot hold the receiver's connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_is_answered_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sandbox = referrals_testkit::start(Config {
        seed_count: 0,
        ..referrals_testkit::config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (db, trust) = (dir.path().join("m.sqlite"), dir.path().join("root.pem"));
    std::fs::write(&trust, sandbox.events_root_pem().unwrap()).unwrap();
    let port = free_port();
    let mut receiver = listen(&sandbox.url(), &db, &trust, port);
    let url = format!("http://127.0.0.1:{port}/events");
    referrals_client::install_crypto_provider();
    let http = reqwest::Client::new();
    assert!(
        first_answer(&http, &url, "{}").await.is_some(),
        "it listens"
    );

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        referrals_mirror::receiver::http::BODY_TIMEOUT + Duration::from_secs(20),
        stream.read_to_end(&mut answer),
    )
    .await;
    let _ = receiver.kill();
    let _ = receiver.wait();
    assert!(read.is_ok(), "answered within the deadline");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// With `--observe`, `/healthz`, `/readyz` and `/metrics` are served on that address alone:
/// the callbacks' address takes callbacks only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_moves_health_and_metrics_to_an_address_of_their_own() {
    let sandbox = referrals_testkit::start(referrals_testkit::config()).await;
    let dir = tempfile::tempdir().unwrap();
    let (db, trust) = (dir.path().join("m.sqlite"), dir.path().join("root.pem"));
    std::fs::write(&trust, sandbox.events_root_pem().unwrap()).unwrap();
    let (port, observe) = (free_port(), free_port());
    let more = ["--observe", &format!("127.0.0.1:{observe}")];
    let mut receiver = listen_with(&sandbox.url(), &db, &trust, port, &more);
    referrals_client::install_crypto_provider();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{observe}/readyz");
    let started = Instant::now();
    let mut ready = 0;
    while ready != 200 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = match http.get(&url).send().await {
            Ok(answer) => answer.status().as_u16(),
            Err(_) => 0,
        };
    }
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let elsewhere = http.get(&metrics).send().await.unwrap().status().as_u16();
    let _ = receiver.kill();
    let _ = receiver.wait();
    assert_eq!(ready, 200);
    assert_eq!(elsewhere, 405, "the callbacks' address serves no metrics");
}
