//! The client's runtime against real HTTP servers on loopback (wiremock): headers, query
//! encoding on the wire, paging and next links, retries on a virtual clock, errors, updates.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::{FutureExt, TryStreamExt};
use referrals_client::concurrency::Concurrency;
use referrals_client::generated::ClientReferralsExt;
use referrals_client::query::{self, Filter, OrderBy, Query};
use referrals_client::types::{Referral, ReferralStatus, ReferralSubstatus};
use referrals_client::{
    AccessToken, Client, Clock, ErrorKind, RetryPolicy, StaticToken, TokenError, TokenFn,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const LIST: &str = "/v1.0/engagements/referrals";
const SECRET: &str = "secret-token-8f2c";

/// A clock that does not wait: it records each wait and moves its own time forward.
#[derive(Debug, Clone)]
struct VirtualClock {
    now: Arc<Mutex<SystemTime>>,
    waits: Arc<Mutex<Vec<Duration>>>,
}

impl VirtualClock {
    fn new() -> Self {
        Self {
            now: Arc::new(Mutex::new(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )),
            waits: Arc::default(),
        }
    }

    fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap()
    }

    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.waits.lock().unwrap().push(duration);
        *self.now.lock().unwrap() += duration;
        Box::pin(async {})
    }
}

fn client_for(server: &MockServer) -> (Client, VirtualClock) {
    let clock = VirtualClock::new();
    let client = Client::builder(&server.uri(), StaticToken::new(SECRET))
        .allow_http_to_loopback(true)
        .correlation_id(uuid::Uuid::from_u128(0x5eed))
        .clock(clock.clone())
        .build()
        .unwrap();
    (client, clock)
}

fn referral(id: &str) -> Value {
    json!({ "id": id, "status": "New", "substatus": "Pending", "eTag": format!("\"etag-{id}\"") })
}

fn page(ids: std::ops::Range<usize>, next: Option<String>) -> Value {
    let mut body = json!({ "value": ids.map(|id| referral(&id.to_string())).collect::<Vec<_>>() });
    if let Some(next) = next {
        body["@odata.nextLink"] = Value::String(next);
    }
    body
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn query_value(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[tokio::test]
async fn every_request_carries_the_token_and_request_ids_but_no_api_version() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{LIST}/abc")))
        .respond_with(ResponseTemplate::new(200).set_body_json(referral("abc")))
        .mount(&server)
        .await;
    let (client, _) = client_for(&server);

    client.referral("abc").await.unwrap();
    client.get_referral().id("abc").send().await.unwrap();

    let requests = received(&server).await;
    assert_eq!(requests.len(), 2);
    let mut ids = Vec::new();
    for request in &requests {
        assert_eq!(
            header(request, "authorization"),
            Some(format!("Bearer {SECRET}").as_str())
        );
        assert_eq!(
            header(request, "ms-correlationid"),
            Some("00000000-0000-0000-0000-000000005eed")
        );
        let id = header(request, "ms-requestid").expect("MS-RequestId is sent");
        ids.push(uuid::Uuid::parse_str(id).expect("MS-RequestId is a GUID"));
        assert!(
            request.headers.get("api-version").is_none(),
            "progenitor's api-version is removed"
        );
    }
    assert_ne!(ids[0], ids[1], "each call has its own request id");
}

#[tokio::test]
async fn tricky_filter_values_reach_the_wire_percent_encoded() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(LIST))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0..0, None)))
        .mount(&server)
        .await;
    let (client, _) = client_for(&server);
    let name = "O'Neil & Sons + Co #1 100% Zoë 東京";
    let filter = query::engagement_id()
        .eq(name)
        .and(query::country().eq("a b"));
    let query = Query::new()
        .filter(filter.clone())
        .order_by(OrderBy::newest_first())
        .top(5);
    client.list_page(&query, None).await.unwrap();

    let requests = received(&server).await;
    let raw = requests[0].url.query().unwrap().to_owned();
    assert!(!raw.contains('+'), "a space or plus went out as `+`: {raw}");
    assert!(!raw.contains(' '), "{raw}");
    for encoded in ["%20", "%2B", "%26", "%23", "%25", "Zo%C3%AB", "%E6%9D%B1"] {
        assert!(raw.contains(encoded), "{encoded} missing from {raw}");
    }
    assert!(
        raw.contains("$filter=") && raw.contains("$orderby=") && raw.contains("$top=5"),
        "{raw}"
    );
    // What the server reads back is exactly the filter that was built, one literal per value.
    assert_eq!(
        query_value(&requests[0], "$filter").unwrap(),
        filter.to_string()
    );
    let parsed =
        referrals_odata::parse_filter(&query_value(&requests[0], "$filter").unwrap()).unwrap();
    assert_eq!(parsed.to_string(), filter.to_string());
    assert!(
        filter
            .to_string()
            .contains("'O''Neil & Sons + Co #1 100% Zoë 東京'")
    );
}

#[tokio::test]
async fn paging_follows_next_links_across_pages() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path(LIST))
        .respond_with(move |request: &Request| {
            let token = query_value(request, "$skiptoken");
            let page_number: usize = token
                .as_deref()
                .map_or(0, |token| token.trim_start_matches("p").parse().unwrap());
            let next = (page_number < 3).then(|| {
                format!(
                    "{uri}{LIST}?$filter=status%20eq%20'New'&$skiptoken=p{}",
                    page_number + 1
                )
            });
            ResponseTemplate::new(200)
                .set_body_json(page(page_number * 10..page_number * 10 + 10, next))
        })
        .mount(&server)
        .await;
    let (client, _) = client_for(&server);
    let query = Query::new().filter(query::status().eq(ReferralStatus::New));

    let all: Vec<Referral> = client.list_all(query.clone()).try_collect().await.unwrap();
    assert_eq!(all.len(), 40);
    assert_eq!(all.last().unwrap().id.as_deref(), Some("39"));

    // Page by page, with a continuation that survives a restart.
    let first = client.list_page(&query, None).await.unwrap();
    let stored = serde_json::to_string(first.next().unwrap().unwrap()).unwrap();
    let resumed: referrals_client::Continuation = serde_json::from_str(&stored).unwrap();
    let second = client.list_page(&query, Some(&resumed)).await.unwrap();
    assert_eq!(second.items[0].id.as_deref(), Some("10"));
    assert_eq!(resumed.skiptoken(), Some("p1"));

    let requests = received(&server).await;
    assert!(
        requests
            .iter()
            .all(|request| header(request, "authorization").is_some())
    );
    assert!(
        requests
            .iter()
            .skip(1)
            .take(3)
            .all(|request| query_value(request, "$filter").as_deref() == Some("status eq 'New'"))
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_refused_and_gets_nothing() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0..1, None)))
        .mount(&elsewhere)
        .await;
    // `localhost` and `127.0.0.1` are different hosts to the client, whatever they resolve to.
    let other_host = elsewhere.uri().replace("127.0.0.1", "localhost");
    Mock::given(method("GET"))
        .and(path(LIST))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(0..2, Some(format!("{other_host}{LIST}?$skiptoken=x")))),
        )
        .mount(&server)
        .await;
    let (client, _) = client_for(&server);

    let results: Vec<_> = client.list_all(Query::new()).collect_results().await;
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 2);
    let error = results.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UntrustedNextLink, "{error}");
    assert!(!error.to_string().contains(SECRET));
    assert!(
        received(&elsewhere).await.is_empty(),
        "the other host received a request"
    );
}

#[tokio::test]
async fn a_next_link_on_another_port_or_scheme_is_carried_to_the_root() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0..1, None)))
        .mount(&elsewhere)
        .await;
    // The published shape: another scheme or port, a path without /engagements.
    let other_port = format!("{}/v1.0/referrals?$skiptoken=tok1", elsewhere.uri());
    let other_scheme = format!(
        "{}/v1.0/referrals?$skiptoken=tok2",
        server.uri().replace("http://", "https://")
    );
    Mock::given(method("GET"))
        .and(path(LIST))
        .respond_with(move |request: &Request| {
            match query_value(request, "$skiptoken").as_deref() {
                None => {
                    ResponseTemplate::new(200).set_body_json(page(0..1, Some(other_port.clone())))
                }
                Some("tok1") => {
                    ResponseTemplate::new(200).set_body_json(page(1..2, Some(other_scheme.clone())))
                }
                Some(_) => ResponseTemplate::new(200).set_body_json(page(2..3, None)),
            }
        })
        .mount(&server)
        .await;
    let (client, _) = client_for(&server);
    let query = Query::new().filter(query::country().eq("US")).skip(3);

    let all: Vec<Referral> = client.list_all(query).try_collect().await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(
        received(&elsewhere).await.is_empty(),
        "the link's own address received a request"
    );
    let requests = received(&server).await;
    assert_eq!(requests.len(), 3);
    for request in &requests[1..] {
        assert_eq!(request.url.path(), LIST, "the original path is kept");
        assert_eq!(
            query_value(request, "$filter").as_deref(),
            Some("customerProfile/address/country eq 'US'")
        );
        assert_eq!(
            query_value(request, "$skip"),
            None,
            "$skip is not sent again with a $skiptoken"
        );
    }
}

#[tokio::test]
async fn a_next_link_seen_twice_ends_the_listing_with_an_error() {
    let server = MockServer::start().await;
    let link = format!("{}{LIST}?$skiptoken=again", server.uri());
    Mock::given(method("GET"))
        .and(path(LIST))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0..1, Some(link))))
        .mount(&server)
        .await;
    let (client, _) = client_for(&server);

    let results: Vec<_> = client.pages(Query::new()).collect_results().await;
    assert_eq!(results.len(), 3, "two pages, then the error");
    let error = results[2].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PagingLoop);
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn a_page_limit_stops_an_endless_listing() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path(LIST))
        .respond_with(move |request: &Request| {
            let token: u64 =
                query_value(request, "$skiptoken").map_or(0, |token| token.parse().unwrap());
            ResponseTemplate::new(200).set_body_json(page(
                0..1,
                Some(format!("{uri}{LIST}?$skiptoken={}", token + 1)),
            ))
        })
        .mount(&server)
        .await;
    let clock = VirtualClock::new();
    let client = Client::builder(&server.uri(), StaticToken::new(SECRET))
        .allow_http_to_loopback(true)
        .clock(clock)
        .max_pages(5)
        .build()
        .unwrap();
    let results: Vec<_> = client.pages(Query::new()).collect_results().await;
    assert_eq!(results.len(), 6);
    assert_eq!(
        results[5].as_ref().unwrap_err().kind(),
        ErrorKind::PagingLoop
    );
}

/// A server that answers 429 with `Retry-After: 7` to the first `times` requests, then the
/// referral `r1` to every request.
async fn throttled_then_r1(times: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .up_to_n_times(times)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(referral("r1")))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn retry_after_is_honoured_with_the_same_request_id() {
    let server = throttled_then_r1(2).await;
    let (client, clock) = client_for(&server);

    let found = client.referral("r1").await.unwrap();
    assert_eq!(found.id.as_deref(), Some("r1"));
    assert_eq!(
        clock.waits(),
        [Duration::from_secs(7), Duration::from_secs(7)]
    );
    let requests = received(&server).await;
    assert_eq!(requests.len(), 3);
    let ids: Vec<_> = requests
        .iter()
        .map(|request| header(request, "ms-requestid").unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "retries keep the request id: {ids:?}"
    );
}

/// A clock whose waits do not wait; each records whether a request of `concurrency` could
/// start meanwhile.
#[derive(Debug, Clone)]
struct Watching {
    concurrency: Concurrency,
    could_start: Arc<Mutex<Vec<bool>>>,
}

impl Clock for Watching {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(
        &self,
        _: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let (concurrency, could_start) = (self.concurrency.clone(), self.could_start.clone());
        Box::pin(async move {
            let could = concurrency.permit().now_or_never().is_some();
            could_start.lock().unwrap().push(could);
        })
    }
}

#[tokio::test]
async fn while_a_call_waits_out_a_429_no_other_request_of_its_concurrency_starts() {
    let server = throttled_then_r1(1).await;
    let concurrency = Concurrency::new(4);
    let clock = Watching {
        concurrency: concurrency.clone(),
        could_start: Arc::default(),
    };
    let client = Client::builder(&server.uri(), StaticToken::new(SECRET))
        .allow_http_to_loopback(true)
        .clock(clock.clone())
        .build()
        .unwrap();

    let found = concurrency.send(client.referral("r1")).await.unwrap();
    assert_eq!(found.id.as_deref(), Some("r1"));
    assert_eq!(*clock.could_start.lock().unwrap(), [false]);
    assert_eq!(concurrency.limit(), 2, "halved once");
    assert_eq!(concurrency.answers(), (1, 1));
    assert!(
        concurrency.permit().now_or_never().is_some(),
        "and after it, they do"
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_and_the_backoff_when_longer() {
    let server = MockServer::start().await;
    let clock = VirtualClock::new();
    let date = httpdate::fmt_http_date(clock.now() + Duration::from_secs(30));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", date.as_str()))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(referral("r1")))
        .with_priority(3)
        .mount(&server)
        .await;
    let client = Client::builder(&server.uri(), StaticToken::new(SECRET))
        .allow_http_to_loopback(true)
        .clock(clock.clone())
        .retry(RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    client.referral("r1").await.unwrap();
    // 30 s from the date; then no Retry-After, so the second backoff (1 s).
    assert_eq!(
        clock.waits(),
        [Duration::from_secs(30), Duration::from_secs(1)]
    );
}

#[tokio::test]
async fn the_retry_budget_is_respected() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .insert_header("Request-ID", "svc-1"),
        )
        .mount(&server)
        .await;
    let (client, clock) = client_for(&server);
    let error = client.referral("r1").await.unwrap_err();
    assert_eq!(error.status().map(|status| status.as_u16()), Some(429));
    assert_eq!(error.attempts(), 4, "{error}");
    assert!(error.is_retryable());
    assert_eq!(error.service_request_id(), Some("svc-1"));
    assert_eq!(received(&server).await.len(), 4);
    assert_eq!(clock.waits().len(), 3);

    // A wait beyond the time budget is not taken at all.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "500"))
        .mount(&server)
        .await;
    let (client, clock) = client_for(&server);
    let error = client.referral("r1").await.unwrap_err();
    assert_eq!(error.attempts(), 1);
    assert!(clock.waits().is_empty());

    // And retries can be switched off.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let client = Client::builder(&server.uri(), StaticToken::new(SECRET))
        .allow_http_to_loopback(true)
        .retry(RetryPolicy::disabled())
        .build()
        .unwrap();
    assert_eq!(client.referral("r1").await.unwrap_err().attempts(), 1);
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn writes_are_retried_only_when_they_cannot_have_been_applied() {
    let body =
        json!({ "type": "Independent", "customerProfile": {}, "consent": {}, "details": {} });
    let new: referrals_client::types::NewReferral = serde_json::from_value(body).unwrap();

    for (status, retry_after, attempts) in [
        (503, false, 1),
        (503, true, 4),
        (429, false, 4),
        (502, false, 1),
        (500, false, 1),
    ] {
        let server = MockServer::start().await;
        let mut answer = ResponseTemplate::new(status);
        if retry_after {
            answer = answer.insert_header("Retry-After", "1");
        }
        Mock::given(method("POST"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let (client, _) = client_for(&server);
        let error = client.create(&new).await.unwrap_err();
        assert_eq!(
            error.attempts(),
            attempts,
            "POST {status} with Retry-After {retry_after}: {error}"
        );
        assert_eq!(received(&server).await.len(), attempts as usize);
    }
}

#[tokio::test]
async fn a_412_on_update_is_its_own_error() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(412).set_body_json(json!({
            "error": { "code": "resourceModified", "message": "The referral changed since it was read." }
        })))
        .mount(&server)
        .await;
    let (client, _) = client_for(&server);
    let lead: Referral = serde_json::from_value(referral("r1")).unwrap();

    let error = client.accept(&lead).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PreconditionFailed);
    assert!(error.is_precondition_failed());
    assert!(!error.is_retryable());
    assert_eq!(
        error.service_error().unwrap().code.as_str(),
        "resourceModified"
    );
    let requests = received(&server).await;
    assert_eq!(requests.len(), 1, "a 412 is not retried");
    assert_eq!(header(&requests[0], "if-match"), Some("\"etag-r1\""));
    assert_eq!(
        header(&requests[0], "prefer"),
        Some("return=representation")
    );
    let patch: Value = requests[0].body_json().unwrap();
    assert_eq!(
        patch,
        json!([
            { "op": "replace", "path": "/status", "value": "Active" },
            { "op": "replace", "path": "/substatus", "value": "Accepted" }
        ])
    );
}

#[tokio::test]
async fn refused_transitions_send_nothing() {
    let server = MockServer::start().await;
    let (client, _) = client_for(&server);
    let mut closed: Referral = serde_json::from_value(referral("r1")).unwrap();
    closed.status = Some(ReferralStatus::Closed);
    closed.substatus = Some(ReferralSubstatus::Won);

    let error = client.accept(&closed).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidTransition, "{error}");
    assert!(
        error.message().contains("Closed may move to Closed only"),
        "{error}"
    );
    let mut no_etag: Referral = serde_json::from_value(referral("r2")).unwrap();
    no_etag.e_tag = None;
    assert_eq!(
        client.decline(&no_etag, "no").await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn error_bodies_are_decoded_and_other_bodies_kept() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{LIST}/missing")))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("Request-ID", "9f8bed52")
                .set_body_json(json!({ "error": {
                    "code": "itemNotFound", "message": "No referral has this id.", "target": "id",
                    "innerError": { "code": "deeper", "innerError": { "code": "deepest" } }
                }})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{LIST}/broken")))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_string(format!("<html>{}</html>", "x".repeat(100_000))),
        )
        .mount(&server)
        .await;
    let (client, _) = client_for(&server);

    let error = client.referral("missing").await.unwrap_err();
    assert!(error.is_not_found());
    assert_eq!(error.kind(), ErrorKind::Service);
    let detail = error.service_error().unwrap();
    assert_eq!(
        (detail.code.as_str(), detail.target.as_deref()),
        ("itemNotFound", Some("id"))
    );
    let inner = detail.inner_error.as_ref().unwrap();
    assert_eq!(
        Option::as_ref(&inner.inner_error).unwrap().code.as_deref(),
        Some("deepest")
    );
    assert_eq!(error.service_request_id(), Some("9f8bed52"));
    assert!(error.request_id().is_some());
    let text = error.to_string();
    assert!(
        text.contains("404")
            && text.contains("itemNotFound")
            && text.contains("Request-ID 9f8bed52"),
        "{text}"
    );

    let error = client.referral("broken").await.unwrap_err();
    assert_eq!(error.status().map(|status| status.as_u16()), Some(500));
    let raw = error.raw_body().unwrap();
    assert!(raw.starts_with("<html>xxx"), "{raw}");
    assert!(
        raw.len() <= 64 * 1024 + 4,
        "the raw body is capped: {}",
        raw.len()
    );
}

#[tokio::test]
async fn the_token_stays_out_of_debug_display_and_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let (client, _) = client_for(&server);
    let error = client.referral("r1").await.unwrap_err();
    for text in [
        format!("{client:?}"),
        format!("{error}"),
        format!("{error:?}"),
        format!("{:?}", AccessToken::new(SECRET)),
    ] {
        assert!(!text.contains(SECRET), "the token shows in: {text}");
    }
}

#[tokio::test]
async fn the_token_is_asked_for_each_attempt_and_its_failure_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(referral("r1")))
        .with_priority(2)
        .mount(&server)
        .await;
    let counter = Arc::new(Mutex::new(0));
    let seen = counter.clone();
    let tokens = TokenFn::new(move || {
        let counter = seen.clone();
        async move {
            let mut count = counter.lock().unwrap();
            *count += 1;
            Ok(AccessToken::new(format!("token-{count}")))
        }
    });
    let client = Client::builder(&server.uri(), tokens)
        .allow_http_to_loopback(true)
        .clock(VirtualClock::new())
        .build()
        .unwrap();
    client.referral("r1").await.unwrap();
    let requests = received(&server).await;
    assert_eq!(
        header(&requests[0], "authorization"),
        Some("Bearer token-1")
    );
    assert_eq!(
        header(&requests[1], "authorization"),
        Some("Bearer token-2")
    );

    let failing = TokenFn::new(|| async { Err(TokenError::new("the identity provider is down")) });
    let silent = MockServer::start().await;
    let client = Client::builder(&silent.uri(), failing)
        .allow_http_to_loopback(true)
        .build()
        .unwrap();
    let error = client.referral("r1").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Token);
    assert!(error.to_string().contains("identity provider is down"));
    assert!(received(&silent).await.is_empty());
}

#[test]
fn plain_http_roots_are_refused_unless_loopback_and_allowed() {
    let build = |root: &str, allow: bool| {
        Client::builder(root, StaticToken::new(SECRET))
            .allow_http_to_loopback(allow)
            .build()
            .map(drop)
    };
    assert!(build("http://api.partner.microsoft.com", true).is_err());
    assert!(build("http://127.0.0.1:8080", false).is_err());
    assert!(build("http://127.0.0.1:8080", true).is_ok());
    assert!(build("http://[::1]:8080", true).is_ok());
    assert!(build("http://localhost:8080", true).is_ok());
    assert!(build("https://api.partner.microsoft.com", false).is_ok());
    assert!(build("ftp://api.partner.microsoft.com", true).is_err());
    assert!(build("not a url", true).is_err());
}

#[tokio::test]
async fn a_raw_filter_is_sent_as_written() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0..0, None)))
        .mount(&server)
        .await;
    let (client, _) = client_for(&server);
    let filter = Filter::raw("contains(customerProfile/name, 'a+b')");
    client
        .list_page(&Query::new().filter(filter), None)
        .await
        .unwrap();
    let requests = received(&server).await;
    assert_eq!(
        query_value(&requests[0], "$filter").as_deref(),
        Some("contains(customerProfile/name, 'a+b')")
    );
}

/// Collects a stream of results, errors included.
trait CollectResults: futures_util::Stream + Sized {
    async fn collect_results(self) -> Vec<Self::Item> {
        use futures_util::StreamExt;
        self.collect().await
    }
}

impl<S: futures_util::Stream> CollectResults for S {}
