//! What ties cost a sync, against a sandbox started in this process (its requests are counted
//! there): the referrals that a batch job created and updated at one instant, more than a page
//! of each, from a sandbox that gives them in a new order on every request, with or without
//! `$count`; requests against the pages they fill, and how many came twice.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use referrals_client::sync::SyncOptions;
use referrals_client::{Client, StaticToken, query};
use referrals_sandbox::{Config, Paging, Sandbox};

const TOKEN: &str = "bench";

async fn sandbox(config: Config) -> Sandbox {
    referrals_sandbox::start(Config {
        token: Some(TOKEN.to_owned()),
        log: false,
        ..config
    })
    .await
    .expect("a sandbox")
}

fn client(sandbox: &Sandbox) -> Client {
    Client::builder(&sandbox.url(), StaticToken::new(TOKEN))
        .allow_http_to_loopback(true)
        .build()
        .expect("a client")
}

/// What a sync of what the batch job imported (ties of both instants) costs, from a sandbox
/// of `count` referrals with pages of `page_size` that shuffles ties.
pub async fn ties(count: usize, page_size: usize, answer_count: bool) -> serde_json::Value {
    let sandbox = sandbox(Config {
        seed_count: count,
        page_size,
        paging: Paging::Shuffled,
        answer_count,
        ..Config::default()
    })
    .await;
    let client = client(&sandbox);
    // The batch job's instants come after every other creation instant of the data.
    let imports = query::created_date_time().ge(chrono_instant("2026-02-01T00:00:00Z"));
    let options = SyncOptions::new().skew(Duration::ZERO).filter(imports);
    let before = sandbox.listings();
    let started = Instant::now();
    let (mut delivered, mut versions, mut state_bytes) = (0usize, BTreeSet::new(), 0usize);
    let mut run = client.sync(None, options).expect("a sync");
    while let Some(batch) = run.next().await.expect("a batch") {
        for referral in batch.items() {
            delivered += 1;
            versions.insert((referral.id.clone(), referral.e_tag.clone()));
        }
        state_bytes = state_bytes.max(batch.commit().to_json().len());
    }
    let seconds = started.elapsed().as_secs_f64();
    let requests = sandbox.listings().saturating_sub(before);
    sandbox.shutdown().await;
    let pages = versions.len().div_ceil(page_size);
    serde_json::json!({
        "mode": "ties", "count": count, "with_count": answer_count, "referrals": versions.len(),
        "pages": pages, "requests": requests, "delivered_again": delivered - versions.len(),
        "largest_state_bytes": state_bytes, "seconds": seconds,
    })
}

fn chrono_instant(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().expect("an instant")
}
