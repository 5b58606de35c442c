//! The sync against servers that misbehave: saved states that cannot be used, answers without a
//! `Date`, pages out of order, items outside the run's bounds, failures in the middle of a run.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::{Client, Clock, ErrorKind, RetryPolicy, StaticToken};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

#[path = "sync/cost.rs"]
mod cost;
#[path = "sync/parts.rs"]
mod parts;
#[path = "sync/tie.rs"]
mod tie;

/// A clock at a fixed time that never waits.
#[derive(Debug)]
struct Fixed(SystemTime);

impl Clock for Fixed {
    fn now(&self) -> SystemTime {
        self.0
    }
    fn sleep(&self, _: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async {})
    }
}

fn at(text: &str) -> SystemTime {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().into()
}

fn client(server: &MockServer) -> Client {
    Client::builder(&server.uri(), StaticToken::new("token"))
        .allow_http_to_loopback(true)
        .clock(Fixed(at("2026-01-01T12:00:00Z")))
        .retry(RetryPolicy::disabled())
        .build()
        .unwrap()
}

fn referral(id: &str, updated: Option<&str>) -> Value {
    json!({ "id": id, "eTag": format!("\"{id}\""), "updatedDateTime": updated })
}

/// The query parameter `name` of a request.
fn param(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The `$filter` of a request.
fn filter(request: &Request) -> String {
    param(request, "$filter").unwrap_or_default()
}

/// A state of version 3 at `watermark` (JSON) that reads a tie by `cells` (JSON).
fn tie_state(watermark: &str, cells: &str) -> String {
    format!(
        r#"{{"version":3,"filter":null,"watermark":{watermark},"delivered":{{}},"passed":null,"tie":{{"created":"2023-01-01T00:00:00Z","cells":{cells},"before":40,"done":12,"plain":false}},"complete":false,"bound":null}}"#
    )
}

#[test]
fn a_saved_state_that_cannot_be_used_is_refused_with_a_reason() {
    for (text, expected) in [
        ("not json", "it is not JSON"),
        (r#"{"cursor": 7}"#, "not a sync state"),
        (r#"{"version": 4, "watermark": null}"#, "version 4"),
        (
            r#"{"version": 2, "filter": null, "watermark": "2024-01-01T00:00:00Z", "delivered": {}, "passed": "2023-01-01T00:00:00Z", "tie": null, "complete": false, "bound": null}"#,
            "a state of version 2 has no `tie`",
        ),
        (
            tie_state("null", r#"[[{"member": "status", "equal": true, "values": ["New"], "null": false}]]"#).as_str(),
            "without a watermark",
        ),
        (
            tie_state(r#""2024-01-01T00:00:00Z""#, r#"[[{"member": "customerProfile/name", "equal": true, "values": ["x"], "null": false}]]"#).as_str(),
            "`customerProfile/name` is not a member that cuts a tie",
        ),
        (
            tie_state(r#""2024-01-01T00:00:00Z""#, r#"[[{"member": "status", "equal": true, "values": ["New"], "null": false}, {"member": "status", "equal": false, "values": ["Active"], "null": true}]]"#).as_str(),
            "a cell of its tie is not one that a sync makes",
        ),
        (
            tie_state(r#""2024-01-01T00:00:00Z""#, r#"[[{"member": "status", "equal": true, "values": ["New"], "null": true}]]"#).as_str(),
            "a cell of its tie is not one that a sync makes",
        ),
        (
            tie_state(r#""2024-01-01T00:00:00Z""#, "[]").replace("\"before\":40", "\"before\":-1").as_str(),
            "a count below zero",
        ),
        (
            r#"{"version": 2, "filter": null, "watermark": null, "delivered": {}, "passed": "2024-01-01T00:00:00Z", "complete": false, "bound": null}"#,
            "without a watermark",
        ),
        (
            r#"{"version": 2, "filter": null, "watermark": "2024-01-01T00:00:00Z", "delivered": {}, "passed": "soon", "complete": false, "bound": null}"#,
            "`soon` is not a date-time",
        ),
        (
            r#"{"version": 1, "filter": null, "watermark": null, "delivered": {}, "passed": null, "complete": false, "bound": null}"#,
            "a state of version 1 has no `passed`",
        ),
        (
            r#"{"version": 1, "filter": null, "watermark": "yesterday", "delivered": {}, "complete": false, "bound": null}"#,
            "`yesterday` is not a date-time",
        ),
        (
            r#"{"version": 1, "filter": null, "watermark": null, "delivered": {"a": "b"}, "complete": false, "bound": null}"#,
            "without a watermark",
        ),
        (
            r#"{"version": 1, "filter": null, "watermark": null, "delivered": {}, "complete": false, "bound": null, "extra": 1}"#,
            "damaged",
        ),
    ] {
        let error = SyncState::from_json(text).unwrap_err();
        assert!(error.to_string().contains(expected), "{text}: {error}");
    }
}

/// A state of version 1 is read, and saved again as version 1 while it holds no `passed` (an
/// older client that shares it reads it); one with `passed` is version 2, one with `tie` 3.
#[test]
fn a_state_without_passed_stays_version_1() {
    let old = r#"{"version":1,"filter":null,"watermark":"2024-01-01T00:00:00Z","delivered":{"a":"b"},"complete":false,"bound":null}"#;
    let state = SyncState::from_json(old).unwrap();
    assert_eq!(state.to_json(), old);
    let new = r#"{"version":2,"filter":null,"watermark":"2024-01-01T00:00:00Z","delivered":{"a":"b"},"passed":"2023-01-01T00:00:00Z","complete":false,"bound":null}"#;
    assert_eq!(SyncState::from_json(new).unwrap().to_json(), new);
    // A tie read by cells is version 3, its cells saved by the members' paths.
    let cells = r#"[[],[{"member":"status","equal":false,"values":["New","Open"],"null":true},{"member":"customerProfile/address/country","equal":true,"values":["US"],"null":false}]]"#;
    let tie = tie_state(r#""2024-01-01T00:00:00Z""#, cells).replace("\"passed\":null,", "");
    assert_eq!(SyncState::from_json(&tie).unwrap().to_json(), tie);
}

/// A server on loopback that answers every request with `body` and no `Date` header (which
/// the usual test servers add).
async fn dateless(body: Value) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = body.to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = vec![0u8; 16 * 1024];
            let mut read = 0;
            while !request[..read]
                .windows(4)
                .any(|window| window == b"\r\n\r\n")
            {
                match socket.read(&mut request[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(count) => read += count,
                }
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn without_a_date_header_the_reach_is_the_client_s_clock_and_the_watermark_trails_by_the_skew()
 {
    let root = dateless(json!({
        "value": [
            referral("old", Some("2026-01-01T11:00:00Z")),
            referral("recent", Some("2026-01-01T11:59:30Z")),
            referral("future", Some("2026-01-01T12:00:30Z")),
        ]
    }))
    .await;
    let client = Client::builder(&root, StaticToken::new("token"))
        .allow_http_to_loopback(true)
        .clock(Fixed(at("2026-01-01T12:00:00Z")))
        .build()
        .unwrap();
    let mut sync = client
        .sync(None, SyncOptions::new().skew(Duration::from_secs(60)))
        .unwrap();
    let batch = sync.next().await.unwrap().unwrap();
    // The run reaches the client's clock, 12:00: `recent` is delivered now, `future` is after
    // the reach. The watermark saved stays at or before 12:00 less a minute, so that `recent`
    // comes once more in the next run (a change stamped late by up to the skew is not lost).
    let ids: Vec<_> = batch
        .items()
        .iter()
        .map(|r| r.id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["old", "recent"]);
    assert!(batch.is_last());
    let state = batch.commit();
    assert_eq!(
        state.watermark().map(|time| time.to_rfc3339()),
        Some("2026-01-01T11:00:00+00:00".into())
    );
    assert!(!state.in_run());
    assert!(sync.next().await.unwrap().is_none());
}

#[tokio::test]
async fn a_page_out_of_order_ends_the_run_with_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [
                referral("b", Some("2025-06-01T00:00:00Z")),
                referral("a", Some("2025-01-01T00:00:00Z")),
            ]
        })))
        .mount(&server)
        .await;
    let client = client(&server);
    let mut sync = client.sync(None, SyncOptions::new()).unwrap();
    let error = sync.next().await.err().unwrap();
    assert_eq!(error.kind(), ErrorKind::UnexpectedAnswer);
    assert!(
        error.to_string().contains("not in ascending order"),
        "{error}"
    );
}

#[tokio::test]
async fn odd_items_are_delivered_without_moving_the_watermark_back() {
    let server = MockServer::start().await;
    // A first answer with an item without updatedDateTime (first, as nulls sort first), then
    // later answers with an item before the watermark.
    let requests = Arc::new(Mutex::new(0));
    let count = requests.clone();
    Mock::given(method("GET"))
        .respond_with(move |_: &Request| {
            let mut count = count.lock().unwrap();
            *count += 1;
            let body = match *count {
                1 => json!({ "value": [
                    referral("undated", None),
                    referral("a", Some("2025-01-01T00:00:00Z")),
                ], "@odata.nextLink": "/v1.0/engagements/referrals?$skiptoken=x" }),
                _ => json!({ "value": [
                    referral("late-but-old", Some("2024-01-01T00:00:00Z")),
                    referral("b", Some("2025-02-01T00:00:00Z")),
                ] }),
            };
            ResponseTemplate::new(200)
                .insert_header("Date", "Thu, 01 Jan 2026 12:00:00 GMT")
                .set_body_json(body)
        })
        .mount(&server)
        .await;
    let client = client(&server);
    let mut sync = client
        .sync(None, SyncOptions::new().skew(Duration::ZERO))
        .unwrap();
    let mut delivered = Vec::new();
    let mut state = None;
    while let Some(batch) = sync.next().await.unwrap() {
        delivered.extend(batch.items().iter().map(|r| r.id.clone().unwrap()));
        state = Some(batch.commit());
    }
    assert_eq!(delivered, ["undated", "a", "late-but-old", "b"]);
    let state = state.unwrap();
    assert_eq!(
        state.watermark().map(|time| time.to_rfc3339()),
        Some("2025-02-01T00:00:00+00:00".into())
    );
}

/// A server of five referrals, one a day, pages of two, that reads the bounds of the sync's
/// filter (`updatedDateTime ge|gt X and updatedDateTime le Y`).
fn five_days(request: &Request) -> ResponseTemplate {
    let asked = filter(request);
    let bound = |operator: &str| {
        asked
            .split(&format!("updatedDateTime {operator} "))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|text| chrono::DateTime::parse_from_rfc3339(text).unwrap())
    };
    let items: Vec<Value> = (1..=5)
        .map(|day| format!("2025-01-0{day}T00:00:00Z"))
        .filter(|time| {
            let time = chrono::DateTime::parse_from_rfc3339(time).unwrap();
            bound("ge").is_none_or(|low| time >= low)
                && bound("gt").is_none_or(|low| time > low)
                && bound("le").is_none_or(|high| time <= high)
        })
        .map(|time| referral(&format!("r{}", &time[9..10]), Some(&time)))
        .collect();
    let mut body = json!({ "value": items.iter().take(2).collect::<Vec<_>>() });
    if items.len() > 2 {
        body["@odata.nextLink"] = json!("/v1.0/engagements/referrals?$skiptoken=more");
    }
    ResponseTemplate::new(200)
        .insert_header("Date", "Thu, 01 Jan 2026 12:00:00 GMT")
        .set_body_json(body)
}

#[tokio::test]
async fn a_failure_mid_run_ends_it_and_the_next_run_resumes_from_the_last_commit() {
    let server = MockServer::start().await;
    let failing = Arc::new(Mutex::new(false));
    let fail = failing.clone();
    Mock::given(method("GET"))
        .respond_with(move |request: &Request| {
            if *fail.lock().unwrap() {
                ResponseTemplate::new(401)
            } else {
                five_days(request)
            }
        })
        .mount(&server)
        .await;
    let client = client(&server);
    let options = SyncOptions::new().skew(Duration::ZERO);
    let mut sync = client.sync(None, options.clone()).unwrap();
    let batch = sync.next().await.unwrap().unwrap();
    let first: Vec<_> = batch
        .items()
        .iter()
        .map(|r| r.id.clone().unwrap())
        .collect();
    assert_eq!(first, ["r1", "r2"]);
    let saved = batch.commit().to_json();
    *failing.lock().unwrap() = true;
    let error = sync.next().await.err().unwrap();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);

    // The next run, from the saved state, once the service takes the token again: the rest,
    // and nothing that was committed.
    *failing.lock().unwrap() = false;
    let state = SyncState::from_json(&saved).unwrap();
    assert!(state.in_run(), "the run was cut short");
    let mut sync = client.sync(Some(state), options).unwrap();
    let mut delivered = Vec::new();
    while let Some(batch) = sync.next().await.unwrap() {
        delivered.extend(batch.items().iter().map(|r| r.id.clone().unwrap()));
        batch.commit();
    }
    assert_eq!(delivered, ["r3", "r4", "r5"]);
}

#[tokio::test]
async fn an_uncommitted_batch_comes_again() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(five_days)
        .mount(&server)
        .await;
    let client = client(&server);
    let mut sync = client
        .sync(None, SyncOptions::new().skew(Duration::ZERO))
        .unwrap();
    let first = sync.next().await.unwrap().unwrap();
    let ids: Vec<_> = first
        .items()
        .iter()
        .map(|r| r.id.clone().unwrap())
        .collect();
    drop(first);
    let again = sync.next().await.unwrap().unwrap();
    let again_ids: Vec<_> = again
        .items()
        .iter()
        .map(|r| r.id.clone().unwrap())
        .collect();
    assert_eq!(ids, again_ids);
    again.commit();
    let next = sync.next().await.unwrap().unwrap();
    assert_eq!(next.items()[0].id.as_deref(), Some("r3"));
}

/// A server of four referrals that share both instants, pages of two, whose `$count` says
/// `count` (it reads `createdDateTime gt` and `updatedDateTime gt`, after them, and nothing
/// else of the filter); it
/// answers 500 after `limit` requests, so that a sync that never gives up fails
/// rather than hangs.
fn tie(request: &Request, count: i64, served: &AtomicUsize, limit: usize) -> ResponseTemplate {
    if served.fetch_add(1, Ordering::SeqCst) >= limit {
        return ResponseTemplate::new(500);
    }
    let instant = "2025-01-01T00:00:00Z";
    let item = |id: &str| {
        let mut referral = referral(id, Some(instant));
        referral["createdDateTime"] = json!(instant);
        referral
    };
    let query = |name: &str| param(request, name);
    let asked = filter(request);
    let past = asked.contains("createdDateTime gt") || asked.contains("updatedDateTime gt");
    let mut body = match (query("$top").as_deref(), query("$skiptoken")) {
        _ if past => json!({ "value": [] }),
        (Some("0"), _) => json!({ "value": [] }),
        (_, Some(_)) => json!({ "value": [item("g3"), item("g4")] }),
        (_, None) => json!({
            "value": [item("g1"), item("g2")],
            "@odata.nextLink": "/v1.0/engagements/referrals?$skiptoken=2",
        }),
    };
    if query("$count").as_deref() == Some("true") {
        body["@odata.count"] = json!(count);
    }
    ResponseTemplate::new(200)
        .insert_header("Date", "Thu, 01 Jan 2026 12:00:00 GMT")
        .set_body_json(body)
}

/// Runs a sync to its end from `state`; returns the ids delivered (each batch committed), the
/// state saved last and the error that ended the run, if one did.
async fn to_the_end(
    client: &Client,
    state: Option<SyncState>,
) -> (
    Vec<String>,
    Option<SyncState>,
    Option<referrals_client::Error>,
) {
    let options = SyncOptions::new().skew(Duration::ZERO);
    let mut sync = client.sync(state, options).unwrap();
    let (mut delivered, mut saved) = (Vec::new(), None);
    loop {
        match sync.next().await {
            Ok(Some(batch)) => {
                delivered.extend(batch.items().iter().map(|r| r.id.clone().unwrap()));
                saved = Some(batch.commit());
            }
            Ok(None) => return (delivered, saved, None),
            Err(error) => return (delivered, saved, Some(error)),
        }
    }
}

#[tokio::test]
async fn a_group_that_cannot_be_proven_whole_ends_the_run_with_an_error_and_the_next_run_finishes_it()
 {
    let server = MockServer::start().await;
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::new(AtomicI64::new(5)); // one more than the pages hold
    let (answered, counted) = (served.clone(), count.clone());
    Mock::given(method("GET"))
        .respond_with(move |request: &Request| {
            tie(request, counted.load(Ordering::SeqCst), &answered, 500)
        })
        .mount(&server)
        .await;
    let client = client(&server);
    let (delivered, saved, error) = to_the_end(&client, None).await;
    let error = error.expect("a run that cannot prove the group whole fails");
    assert_eq!(error.kind(), ErrorKind::UnexpectedAnswer, "{error}");
    assert!(error.to_string().contains("20 passes"), "{error}");
    assert_eq!(delivered, ["g1", "g2", "g3", "g4"], "each once, as seen");
    // Three requests find the tie; a pass is its two pages and the count after it. The first
    // pass (over the pages, in the hope that they show it whole) gives way to the cells, whose
    // first page shows nothing to cut the tie by; then 20 passes.
    let requests = served.load(Ordering::SeqCst);
    assert_eq!(requests, 3 + 3 + 1 + 20 * 3, "{requests} requests");

    // Once the count is true, the next run finishes the group and delivers nothing again.
    count.store(4, Ordering::SeqCst);
    let state = saved.expect("the delivered referrals were committed");
    assert!(state.in_run());
    let (again, saved, error) = to_the_end(&client, Some(state)).await;
    assert!(error.is_none(), "{error:?}");
    assert!(again.is_empty(), "{again:?}");
    assert!(!saved.is_some_and(|state| state.in_run()), "the run ended");
}

#[tokio::test]
async fn a_page_that_goes_past_the_reach_ends_the_run_without_another_request() {
    let server = MockServer::start().await;
    let served = Arc::new(AtomicUsize::new(0));
    let answered = served.clone();
    Mock::given(method("GET"))
        .respond_with(move |_: &Request| {
            answered.fetch_add(1, Ordering::SeqCst);
            let body = json!({
                "value": [
                    referral("before", Some("2026-01-01T11:00:00Z")),
                    referral("after", Some("2026-01-01T13:00:00Z")),
                ],
                "@odata.nextLink": "/v1.0/engagements/referrals?$skiptoken=more",
            });
            ResponseTemplate::new(200)
                .insert_header("Date", "Thu, 01 Jan 2026 12:00:00 GMT")
                .set_body_json(body)
        })
        .mount(&server)
        .await;
    let (delivered, saved, error) = to_the_end(&client(&server), None).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        delivered,
        ["before"],
        "the one past the reach comes in the next run"
    );
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert!(!saved.is_some_and(|state| state.in_run()));
}

/// Each batch says whether it is the run's last, and gives its items once; a saved state is
/// refused under another filter, naming it.
#[tokio::test]
async fn batches_say_which_is_last_give_their_items_once_and_keep_their_filter() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(five_days)
        .mount(&server)
        .await;
    let client = client(&server);
    let mut sync = client
        .sync(None, SyncOptions::new().skew(Duration::ZERO))
        .unwrap();
    let (mut ids, mut lasts, mut saved) = (Vec::new(), Vec::new(), None);
    while let Some(mut batch) = sync.next().await.unwrap() {
        lasts.push(batch.is_last());
        let items = batch.take_items();
        assert!(batch.items().is_empty(), "taken once");
        ids.extend(items.into_iter().map(|r| r.id.unwrap()));
        saved = Some(batch.commit());
    }
    assert_eq!(ids, ["r1", "r2", "r3", "r4", "r5"]);
    assert_eq!(lasts.iter().filter(|last| **last).count(), 1, "{lasts:?}");
    assert_eq!(lasts.last(), Some(&true));
    let other = SyncOptions::new()
        .filter(referrals_client::query::status().eq(referrals_client::types::ReferralStatus::New));
    let Err(error) = client.sync(saved, other) else {
        panic!("a state of no filter was taken for another filter");
    };
    assert_eq!(error.kind(), ErrorKind::InvalidContinuation);
    assert!(error.message().contains("status eq 'New'"), "{error}");
}

/// A referral older than the watermark, alone on the run's last page, is delivered and leaves
/// the watermark where it was.
#[tokio::test]
async fn an_old_referral_at_the_end_does_not_move_the_watermark_back() {
    let server = MockServer::start().await;
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    Mock::given(method("GET"))
        .respond_with(move |_: &Request| {
            let body = match count.fetch_add(1, Ordering::SeqCst) {
                0 => json!({ "value": [referral("a", Some("2025-01-01T00:00:00Z"))],
                             "@odata.nextLink": "/v1.0/engagements/referrals?$skiptoken=x" }),
                _ => json!({ "value": [referral("old", Some("2024-01-01T00:00:00Z"))] }),
            };
            ResponseTemplate::new(200)
                .insert_header("Date", "Thu, 01 Jan 2026 12:00:00 GMT")
                .set_body_json(body)
        })
        .mount(&server)
        .await;
    let client = client(&server);
    let mut sync = client
        .sync(None, SyncOptions::new().skew(Duration::ZERO))
        .unwrap();
    let (mut ids, mut state) = (Vec::new(), None);
    while let Some(batch) = sync.next().await.unwrap() {
        ids.extend(batch.items().iter().map(|r| r.id.clone().unwrap()));
        state = Some(batch.commit());
    }
    assert_eq!(ids, ["a", "old"]);
    assert_eq!(
        state.unwrap().watermark().map(|time| time.to_rfc3339()),
        Some("2025-01-01T00:00:00+00:00".into())
    );
}

/// The link to the page at `token` of the listing that `request` asked for: its query with
/// that `$skiptoken`.
fn next_link(request: &Request, token: usize) -> String {
    let mut next = request.url.clone();
    let kept: Vec<(String, String)> = request
        .url
        .query_pairs()
        .filter(|(key, _)| key != "$skiptoken")
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    next.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("$skiptoken", &token.to_string());
    format!("{}?{}", next.path(), next.query().unwrap_or_default())
}

/// How [`status_tie`] reads `status ne 'New'` and `status eq null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nulls {
    /// As SQL: `ne` leaves out the referrals without a status; `or status eq null` gives them.
    Sql,
    /// `ne` leaves them out, and nothing gives them.
    Lost,
    /// As OData, `ne` gives them; but a filter with `eq null` is refused (400).
    Refused,
    /// Every filter on `status` is refused (400).
    NoStatus,
    /// As `Lost`, and `a1` is shown once only: on the page of the whole tie that the cells
    /// cut (the fifth request for the whole tie's first page), which delivers nothing.
    Hidden,
}

/// A server of a tie of eight referrals (both instants shared), pages of two, that counts
/// when `count`: five have status `New`, three have no status. Its first page of the whole tie
/// shows one referral twice; its other pages show the matches in a new rotation on every
/// request (drawn from the request's number). It reads `ne` and `eq null` as `nulls` says.
fn status_tie(
    request: &Request,
    served: &AtomicUsize,
    count: bool,
    nulls: Nulls,
) -> ResponseTemplate {
    let turn = served.fetch_add(1, Ordering::SeqCst);
    if turn >= 300 {
        // A sync that never ends fails rather than hangs.
        return ResponseTemplate::new(500);
    }
    let instant = "2025-01-01T00:00:00Z";
    let item = |id: &str| {
        let mut referral = referral(id, Some(instant));
        referral["createdDateTime"] = json!(instant);
        if id.starts_with('n') {
            referral["status"] = json!("New");
        }
        referral
    };
    let asked = filter(request);
    if nulls == Nulls::Refused && asked.contains("eq null")
        || nulls == Nulls::NoStatus && asked.contains("status")
    {
        return ResponseTemplate::new(400);
    }
    let hidden = nulls == Nulls::Hidden;
    let ids: &[&str] = if asked.contains("gt ") {
        &[]
    } else if asked.contains("status ne 'New' or status eq null") && nulls == Nulls::Sql
        || asked.contains("status ne 'New'") && nulls == Nulls::Refused
    {
        &["a1", "a2", "a3"]
    } else if asked.contains("status ne 'New'") {
        &[]
    } else if asked.contains("status eq 'New'") {
        &["n1", "n2", "n3", "n4", "n5"]
    } else if hidden {
        &["n1", "n2", "n3", "n4", "n5", "a2", "a3"]
    } else {
        &["n1", "n2", "n3", "n4", "n5", "a1", "a2", "a3"]
    };
    let whole = !asked.contains("status") && !asked.contains("gt ");
    let size = if hidden && whole { 8 } else { ids.len() };
    let offset: usize = param(request, "$skiptoken").map_or(0, |token| token.parse().unwrap());
    let shown: Vec<Value> = match param(request, "$top").as_deref() {
        Some("0") => Vec::new(),
        _ if offset == 0 && hidden && whole => {
            static FIRST_PAGES: AtomicUsize = AtomicUsize::new(0);
            match FIRST_PAGES.fetch_add(1, Ordering::SeqCst) {
                4 => vec![item("a1"), item("n2")],
                _ => vec![item("n1"), item("n1")],
            }
        }
        _ if offset == 0 && ids.len() == 8 => vec![item("n1"), item("n1")],
        _ => (offset..ids.len().min(offset + 2))
            .map(|at| item(ids[(at + (turn.wrapping_mul(2_654_435_761) >> 8)) % ids.len()]))
            .collect(),
    };
    let mut body = json!({ "value": shown });
    if offset + 2 < ids.len() && param(request, "$top").as_deref() != Some("0") {
        body["@odata.nextLink"] = json!(next_link(request, offset + 2));
    }
    if count && param(request, "$count").as_deref() == Some("true") {
        body["@odata.count"] = json!(size);
    }
    ResponseTemplate::new(200)
        .insert_header("Date", "Thu, 01 Jan 2026 12:00:00 GMT")
        .set_body_json(body)
}

/// What a sync to its end from [`status_tie`] did.
struct TieRun {
    /// The referrals delivered, in order of id.
    delivered: Vec<String>,
    /// The filters asked for.
    asked: Vec<String>,
    /// The requests answered.
    requests: usize,
    saved: Option<SyncState>,
    error: Option<referrals_client::Error>,
}

async fn run_status_tie(count: bool, nulls: Nulls) -> TieRun {
    let server = MockServer::start().await;
    let served = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let (answered, filters) = (served.clone(), asked.clone());
    Mock::given(method("GET"))
        .respond_with(move |request: &Request| {
            filters.lock().unwrap().push(filter(request));
            status_tie(request, &answered, count, nulls)
        })
        .mount(&server)
        .await;
    let (delivered, saved, error) = to_the_end(&client(&server), None).await;
    let delivered: std::collections::BTreeSet<String> = delivered.into_iter().collect();
    let asked = asked.lock().unwrap().clone();
    TieRun {
        delivered: delivered.into_iter().collect(),
        asked,
        requests: served.load(Ordering::SeqCst),
        saved,
        error,
    }
}

/// A sync to its end from [`status_tie`], which must end well: the referrals delivered (in
/// order of id), the filters asked for, the requests answered.
async fn from_status_tie(count: bool, nulls: Nulls) -> (Vec<String>, Vec<String>, usize) {
    let run = run_status_tie(count, nulls).await;
    assert!(run.error.is_none(), "{:?}", run.error);
    assert!(!run.saved.unwrap().in_run(), "the run ended");
    (run.delivered, run.asked, run.requests)
}

/// A tie that the service's pages do not show whole is cut into cells by status; a service
/// whose cells miss referrals (none gives those without a status) is caught by its count, and
/// the tie is then read in passes that count what the cells showed.
#[tokio::test]
async fn a_tie_is_cut_into_cells_and_cells_that_miss_referrals_are_caught_by_the_count() {
    let (delivered, asked, requests) = from_status_tie(true, Nulls::Lost).await;
    assert_eq!(delivered, ["a1", "a2", "a3", "n1", "n2", "n3", "n4", "n5"]);
    for cell in ["status eq 'New'", "(status ne 'New' or status eq null)"] {
        assert!(asked.iter().any(|text| text.ends_with(cell)), "{asked:#?}");
    }
    assert!(requests < 200, "{requests} requests");
}

/// A referral that only the page of a cut cell showed (such a page delivers nothing) is not
/// taken as seen by the passes that follow cells that came short of the count: the run
/// delivers it, or ends with an error that says the tie could not be proven whole, and never
/// ends well without it.
#[tokio::test]
async fn a_referral_shown_only_by_a_cut_page_is_not_counted_as_read() {
    let run = run_status_tie(true, Nulls::Hidden).await;
    let a1 = run.delivered.iter().any(|id| id == "a1");
    assert!(
        run.error.is_some() || a1,
        "{:?} and no error",
        run.delivered
    );
    assert!(
        run.asked
            .iter()
            .any(|text| text.ends_with("status eq 'New'"))
    );
}

/// The other cell asks for the referrals that lack the member too (`or status eq null`), so
/// that a service whose `ne` follows SQL gives them there, with no count to catch a miss.
#[tokio::test]
async fn a_service_whose_ne_follows_sql_loses_nothing_by_cells_without_a_count() {
    let (delivered, asked, requests) = from_status_tie(false, Nulls::Sql).await;
    assert_eq!(delivered, ["a1", "a2", "a3", "n1", "n2", "n3", "n4", "n5"]);
    assert!(
        asked
            .iter()
            .any(|text| text.ends_with("(status ne 'New' or status eq null)")),
        "{asked:#?}"
    );
    assert!(requests < 40, "{requests} requests");
}

/// A service that refuses `eq null` (400) gets cells of `ne` alone from then on, and they
/// read the tie whole where its `ne` follows OData.
#[tokio::test]
async fn a_service_that_refuses_eq_null_gets_cells_of_ne_alone() {
    for count in [true, false] {
        let (delivered, asked, requests) = from_status_tie(count, Nulls::Refused).await;
        assert_eq!(delivered, ["a1", "a2", "a3", "n1", "n2", "n3", "n4", "n5"]);
        let null = asked.iter().position(|text| text.contains("eq null"));
        let plain = asked
            .iter()
            .position(|text| text.ends_with("status ne 'New'"));
        assert!(null.is_some() && null < plain, "{asked:#?}");
        assert_eq!(asked.iter().filter(|t| t.contains("eq null")).count(), 1);
        assert!(requests < 40, "{requests} requests");
    }
}

/// A service that refuses the member of a cut makes the run end with its error, at once: the
/// cells ask without `eq null` only after a 400 to a cell that had it, and only once.
#[tokio::test]
async fn a_service_that_refuses_the_member_of_a_cut_ends_the_run_with_its_error() {
    for count in [true, false] {
        let run = run_status_tie(count, Nulls::NoStatus).await;
        let error = run.error.expect("the run ends with an error");
        assert_eq!(error.status().map(|status| status.as_u16()), Some(400));
        let refused = run.asked.iter().filter(|text| text.contains("status"));
        assert_eq!(refused.count(), 1, "{:#?}", run.asked);
        assert!(run.requests < 10, "{} requests", run.requests);
    }
}

/// A run that finds nothing to deliver and nothing to save gives no batch at all; one that
/// delivered gives, at its end, an empty batch only when the state to save changed.
#[tokio::test]
async fn a_quiet_run_gives_no_batch() {
    let server = MockServer::start().await;
    let served = Arc::new(AtomicUsize::new(0));
    let answered = served.clone();
    Mock::given(method("GET"))
        .respond_with(move |_: &Request| {
            // A referral in the first answer; nothing after.
            let value = if answered.fetch_add(1, Ordering::SeqCst) == 0 {
                vec![referral("r1", Some("2025-06-01T00:00:00Z"))]
            } else {
                Vec::new()
            };
            ResponseTemplate::new(200)
                .insert_header("Date", "Thu, 01 Jan 2026 12:00:00 GMT")
                .set_body_json(json!({ "value": value }))
        })
        .mount(&server)
        .await;
    let client = client(&server);
    let (delivered, saved, error) = to_the_end(&client, None).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(delivered, ["r1"]);
    let options = SyncOptions::new().skew(Duration::ZERO);
    let mut quiet = client.sync(saved, options.clone()).unwrap();
    assert!(quiet.next().await.unwrap().is_none(), "nothing changed");
    let mut empty = client.sync(None, options).unwrap();
    assert!(empty.next().await.unwrap().is_none(), "an empty service");
    assert_eq!(served.load(Ordering::SeqCst), 3, "one request a run");
}

/// A server that ignores the filter and gives two new referrals at one instant on every
/// request: a tie without end. With `count`, it counts and every page has a next link (its
/// pages never end); without, only first pages have one (each cell's pages end, but every cell
/// shows new referrals to cut it by). It answers 500 after 300 requests, so that a sync that
/// never stops fails otherwise.
fn endless(request: &Request, served: &AtomicUsize, count: bool) -> ResponseTemplate {
    let turn = served.fetch_add(1, Ordering::SeqCst);
    if turn >= 300 {
        return ResponseTemplate::new(500);
    }
    let instant = "2025-01-01T00:00:00Z";
    let item = |index: usize| {
        let mut referral = referral(&format!("g{index}"), Some(instant));
        referral["createdDateTime"] = json!(instant);
        referral["engagementId"] = json!(format!("e{index}"));
        referral
    };
    let mut body = json!({ "value": [item(2 * turn), item(2 * turn + 1)] });
    if count || param(request, "$skiptoken").is_none() {
        body["@odata.nextLink"] = json!(next_link(request, turn));
    }
    if count && param(request, "$count").as_deref() == Some("true") {
        body["@odata.count"] = json!(1000);
    }
    ResponseTemplate::new(200)
        .insert_header("Date", "Thu, 01 Jan 2026 12:00:00 GMT")
        .set_body_json(body)
}

/// A tie without end stops at the client's page limit, whether it is read through the
/// service's pages (a service that counts) or by cells (one that does not).
#[tokio::test]
async fn a_tie_without_end_stops_at_the_page_limit() {
    for count in [true, false] {
        let server = MockServer::start().await;
        let served = Arc::new(AtomicUsize::new(0));
        Mock::given(method("GET"))
            .respond_with(move |request: &Request| endless(request, &served, count))
            .mount(&server)
            .await;
        let client = Client::builder(&server.uri(), StaticToken::new("token"))
            .allow_http_to_loopback(true)
            .clock(Fixed(at("2026-01-01T12:00:00Z")))
            .retry(RetryPolicy::disabled())
            .max_pages(20)
            .build()
            .unwrap();
        let (_, _, error) = to_the_end(&client, None).await;
        let error = error.expect("a tie without end fails");
        assert_eq!(
            error.kind(),
            ErrorKind::PagingLoop,
            "count {count}: {error}"
        );
        let message = if count { "one instant passed" } else { "cells" };
        assert!(
            error.to_string().contains(message),
            "count {count}: {error}"
        );
    }
}

/// A server of a tie of five referrals (g1 to g5, both instants shared), pages of two at an
/// offset counted anew on each request. At its first request for a page after the first, g1
/// is updated: it leaves the tie for a later instant, and the others shift down by one, so
/// that this page passes over g3. It counts when `count` says so. It answers 500 after 300
/// requests, so that a sync that never ends fails rather than hangs.
fn leaving(request: &Request, state: &(AtomicBool, AtomicUsize), count: bool) -> ResponseTemplate {
    let (moved, served) = state;
    if served.fetch_add(1, Ordering::SeqCst) >= 300 {
        return ResponseTemplate::new(500);
    }
    let offset: usize = param(request, "$skiptoken").map_or(0, |token| token.parse().unwrap());
    if offset > 0 {
        moved.store(true, Ordering::SeqCst);
    }
    let (instant, later) = ("2025-01-01T00:00:00Z", "2025-01-01T00:00:01Z");
    let item = |id: &str, updated: &str| {
        let mut referral = referral(id, Some(updated));
        referral["createdDateTime"] = json!(instant);
        referral
    };
    let moved = moved.load(Ordering::SeqCst);
    let mut tie: Vec<Value> = ["g1", "g2", "g3", "g4", "g5"]
        .into_iter()
        .filter(|id| !(moved && *id == "g1"))
        .map(|id| item(id, instant))
        .collect();
    let asked = filter(request);
    let matches: Vec<Value> = if asked.contains("createdDateTime gt") {
        Vec::new()
    } else if asked.contains("updatedDateTime gt") {
        moved.then(|| item("g1", later)).into_iter().collect()
    } else {
        if moved && !asked.contains(" eq ") {
            tie.push(item("g1", later));
        }
        tie
    };
    let mut body = json!({ "value": matches.iter().skip(offset).take(2).collect::<Vec<_>>() });
    if offset + 2 < matches.len() {
        body["@odata.nextLink"] = json!(next_link(request, offset + 2));
    }
    if count && param(request, "$count").as_deref() == Some("true") {
        body["@odata.count"] = json!(matches.len());
    }
    ResponseTemplate::new(200)
        .insert_header("Date", "Thu, 01 Jan 2026 12:00:00 GMT")
        .set_body_json(body)
}

/// A referral that leaves a tie while a pass reads it shifts another out of that pass: the
/// pass does not prove the tie whole, whether the service counts (the count changed) or not
/// (one pass alone proves nothing), and the referral passed over is delivered.
#[tokio::test]
async fn a_referral_that_leaves_a_tie_mid_pass_does_not_hide_another() {
    for count in [true, false] {
        let server = MockServer::start().await;
        let state = (AtomicBool::new(false), AtomicUsize::new(0));
        Mock::given(method("GET"))
            .respond_with(move |request: &Request| leaving(request, &state, count))
            .mount(&server)
            .await;
        let (delivered, _, error) = to_the_end(&client(&server), None).await;
        assert!(error.is_none(), "count {count}: {error:?}");
        let delivered: std::collections::BTreeSet<String> = delivered.into_iter().collect();
        assert_eq!(
            delivered.into_iter().collect::<Vec<_>>(),
            ["g1", "g2", "g3", "g4", "g5"],
            "count {count}"
        );
    }
}
