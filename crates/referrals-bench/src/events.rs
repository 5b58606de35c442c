//! The measures of events: how fast a callback verifies with a cached certificate, and how long
//! a change takes to reach a mirror.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use referrals_client::patch::Patch;
use referrals_client::query::Query;
use referrals_client::{Client, StaticToken};

/// Verifications per second on the thread of the caller (one core), the certificate cached
/// after the first: a signed event from the sandbox's test authority, its certificate served on
/// loopback.
pub async fn verify(seconds: u64) -> serde_json::Value {
    use referrals_client::webhooks::parameters::receive_webhook_event as documented;
    let signer = referrals_sandbox::signer::Signer::new(&Default::default()).expect("a signer");
    let certificate = signer.certificate_der().to_vec();
    let app = axum::Router::new().route(
        "/c.cer",
        axum::routing::get(move || async move { certificate.clone() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let verifier = referrals_events::Verifier::builder()
        .only_hosts_added()
        .platform_roots(false)
        .trust_root(signer.root_der())
        .allow_http_loopback("127.0.0.1", addr.port())
        .expect("a loopback host")
        .build()
        .expect("a verifier");
    let body = br#"{"EventName":"referral-updated","ResourceUri":"https://x/engagements/v1/referrals/a","ResourceName":"referral","ResourceChangeUtcDate":"2024-05-01T00:00:00Z"}"#;
    let mut headers = http::HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, http::HeaderValue::from_str(&value).expect("a header"));
    };
    set(
        referrals_client::webhooks::security::EVENT_SIGNATURE,
        signer.sign(body).expect("a signature"),
    );
    set(
        documented::X_MS_CERTIFICATE_URL,
        format!("http://{addr}/c.cer"),
    );
    set(
        documented::X_MS_SIGNATURE_ALGORITHM,
        "rsa-sha256".to_owned(),
    );
    verifier.verify(&headers, body).await.expect("a good event");
    let (started, mut count) = (Instant::now(), 0u64);
    while started.elapsed() < Duration::from_secs(seconds) {
        verifier.verify(&headers, body).await.expect("a good event");
        count += 1;
    }
    let per_second = count as f64 / started.elapsed().as_secs_f64();
    let bare = bare_verify(&signer, body, seconds);
    serde_json::json!({
        "mode": "verify",
        "verifications": count,
        "per_second": per_second,
        "bare_per_second": bare,
    })
}

/// RSA-2048 PKCS#1 SHA-256 verifications a second of `body` with ring alone, on the thread of
/// the caller: the floor of a callback's cost.
fn bare_verify(signer: &referrals_sandbox::signer::Signer, body: &[u8], seconds: u64) -> f64 {
    use base64::Engine;
    let header = signer.sign(body).expect("a signature");
    let signature = base64::engine::general_purpose::STANDARD
        .decode(header.trim_start_matches("Signature "))
        .expect("base64");
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signer.public_key_der().to_vec(),
    );
    let (started, mut count) = (Instant::now(), 0u64);
    while started.elapsed() < Duration::from_secs(seconds) {
        key.verify(body, &signature).expect("a good signature");
        count += 1;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Changes `count` referrals of the service at `url`, `rate` a second, and how long each took
/// to show in the mirror `db` (a row with the change's eTag, or a later one): p50 and p99.
pub async fn latency(
    url: &str,
    token: &str,
    db: &Path,
    rate: u32,
    count: usize,
) -> serde_json::Value {
    let client = Client::builder(url, StaticToken::new(token))
        .allow_http_to_loopback(true)
        .build()
        .expect("a client");
    let all: Vec<_> =
        futures_util::TryStreamExt::try_collect::<Vec<_>>(client.list_all(Query::new()))
            .await
            .expect("the referrals");
    let ids: Vec<String> = all
        .into_iter()
        .filter_map(|referral| referral.id)
        .take(count)
        .collect();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut pending: HashMap<String, (String, Instant)> = HashMap::new();
    let mut latencies = Vec::new();
    let mirror = rusqlite::Connection::open(db).expect("the mirror");
    let deadline = Instant::now()
        + interval * u32::try_from(ids.len()).unwrap_or(u32::MAX)
        + Duration::from_secs(30);
    let mut next = Instant::now();
    let mut sent = ids.iter();
    while Instant::now() < deadline && (sent.len() > 0 || !pending.is_empty()) {
        if Instant::now() >= next
            && let Some(id) = sent.next()
        {
            let changed = client
                .update_unconditionally(
                    id,
                    Patch::new().set_details_notes(format!("at {:?}", Instant::now())),
                )
                .await
                .expect("a change");
            pending.insert(
                id.clone(),
                (changed.e_tag.unwrap_or_default(), Instant::now()),
            );
            next += interval;
        }
        pending.retain(|id, (tag, at)| {
            let row: Option<String> = mirror
                .query_row(
                    "SELECT eTag FROM referrals WHERE id = ?1",
                    [id.as_str()],
                    |row| row.get(0),
                )
                .ok();
            let seen = row.as_deref() == Some(tag.as_str());
            if seen {
                latencies.push(at.elapsed().as_secs_f64());
            }
            !seen
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let at = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(at).copied().unwrap_or(f64::NAN)
    };
    serde_json::json!({
        "mode": "latency", "changes": ids.len(), "seen": latencies.len(), "missed": pending.len(),
        "p50_ms": quantile(0.5) * 1e3, "p99_ms": quantile(0.99) * 1e3,
    })
}
