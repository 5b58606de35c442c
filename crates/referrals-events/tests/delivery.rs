//! The sandbox delivers its events as Partner Center does: signed, and when the registered URL
//! does not answer, 10 attempts, then the offline queue.

use std::time::{Duration, Instant};

use referrals_client::webhooks::types::{WebhookEventName, WebhookRegistration};
use referrals_sandbox::Config;

#[tokio::test]
async fn an_event_that_is_never_acknowledged_is_tried_ten_times_then_queued_offline() {
    let sandbox = referrals_testkit::start(Config {
        seed_count: 0,
        event_backoff: Duration::from_millis(1),
        ..referrals_testkit::config()
    })
    .await;
    // A port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let webhooks = referrals_testkit::builder(&sandbox.url())
        .build_webhooks()
        .unwrap();
    let registration = WebhookRegistration::new(
        format!("http://{closed}/events"),
        vec![
            WebhookEventName::TestCreated,
            WebhookEventName::ReferralUpdated,
        ],
    );
    let registered = webhooks.register(&registration).await.unwrap();
    assert!(registered.subscriber_id.is_some());
    assert!(
        webhooks.register(&registration).await.is_err(),
        "a second registration is refused"
    );

    let sent = webhooks.send_validation().await.unwrap();
    let id = sent.correlation_id.unwrap();
    let started = Instant::now();
    let mut attempts = Vec::new();
    while attempts.len() < 10 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        attempts = webhooks.validation_deliveries(&id).await.unwrap();
    }
    assert_eq!(attempts.len(), 10, "{attempts:?}");
    assert!(
        attempts
            .iter()
            .all(|attempt| attempt.system_error.is_some())
    );

    let http = reqwest::Client::new();
    let offline: Vec<serde_json::Value> = http
        .get(format!(
            "{}{}",
            sandbox.url(),
            referrals_sandbox::events::OFFLINE_PATH
        ))
        .bearer_auth(referrals_testkit::TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(offline.len(), 1, "{offline:?}");
    assert_eq!(offline[0]["EventName"], "test-created");
}
