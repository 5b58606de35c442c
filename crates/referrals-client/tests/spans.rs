//! The `tracing` span of each request, captured by a small layer. In a test binary of its own:
//! tracing caches which call sites are of interest per process, and other tests running at the
//! same time without a subscriber would make this one miss its spans.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use referrals_client::{Client, RetryPolicy, StaticToken};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "secret-token-8f2c";

type Fields = BTreeMap<String, String>;

/// Every field of every `referrals.request` span, by span id.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<BTreeMap<u64, Fields>>>);

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attributes.metadata().name() == "referrals.request" {
            let mut fields = Fields::new();
            attributes.record(&mut Collect(&mut fields));
            self.0.lock().unwrap().insert(id.into_u64(), fields);
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(fields) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }
}

#[tokio::test]
async fn each_request_has_a_span_with_operation_request_id_attempt_and_status() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(Registry::default().with(capture.clone()));
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "id": "r1" })))
        .with_priority(2)
        .mount(&server)
        .await;
    let client = Client::builder(&server.uri(), StaticToken::new(SECRET))
        .allow_http_to_loopback(true)
        .retry(RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    client.referral("r1").await.unwrap();

    let spans: Vec<Fields> = capture.0.lock().unwrap().values().cloned().collect();
    assert_eq!(
        spans.len(),
        1,
        "one span for the call, its retries inside: {spans:?}"
    );
    let span = &spans[0];
    assert_eq!(span["operation"], "get_referral");
    assert_eq!(span["method"], "GET");
    assert_eq!(span["attempt"], "2");
    assert_eq!(span["status"], "200");
    let sent = server.received_requests().await.unwrap();
    let request_id = sent[0]
        .headers
        .get("ms-requestid")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(span["request_id"], request_id);
    assert!(
        spans
            .iter()
            .all(|fields| fields.values().all(|value| !value.contains(SECRET)))
    );
}
