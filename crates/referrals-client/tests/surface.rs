//! The client as a user meets it: models that build, roots as people write them, errors that say
//! what to do, one retry classification, typed continuations, no redirects, bounded answers.

use futures_util::TryStreamExt;
use referrals_client::generated::ClientReferralsExt;
use referrals_client::patch::Patch;
use referrals_client::query::{self, Query};
use referrals_client::types::{
    Consent, CustomerProfile, NewReferral, Referral, ReferralDetails, ReferralStatus, ReferralType,
};
use referrals_client::{
    Client, Continuation, Error, ErrorKind, RetryPolicy, StaticToken, TokenError, TokenFn,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const LIST: &str = "/v1.0/engagements/referrals";

use referrals_testkit::NoWait;

fn client(root: &str) -> Client {
    Client::builder(root, StaticToken::new("token"))
        .allow_http_to_loopback(true)
        .clock(NoWait)
        .build()
        .unwrap()
}

fn referral(id: &str) -> Value {
    json!({ "id": id, "eTag": format!("\"etag-{id}\""), "status": "New", "substatus": "Pending" })
}

fn page(ids: std::ops::Range<usize>, next: Option<String>) -> Value {
    let mut body = json!({ "value": ids.map(|i| referral(&i.to_string())).collect::<Vec<_>>() });
    if let Some(next) = next {
        body["@odata.nextLink"] = json!(next);
    }
    body
}

#[test]
fn models_build_without_their_catch_all_map_and_take_text() {
    let profile: CustomerProfile = CustomerProfile::builder()
        .name("Fabrikam")
        .try_into()
        .expect("a builder with no unknown members set");
    assert_eq!(profile.name.as_deref(), Some("Fabrikam"));
    assert!(profile.extra.is_empty());
    let new: NewReferral = NewReferral::builder()
        .type_(ReferralType::Independent)
        .customer_profile(profile.clone())
        .consent(Consent::default())
        .details(ReferralDetails::default())
        .name(String::from("A name"))
        .external_reference_id(None::<String>)
        .try_into()
        .expect("every required member set");
    assert_eq!(new.name.as_deref(), Some("A name"));
    // The constructor takes the required members, in the document's order.
    let built = NewReferral::new(
        ReferralType::Independent,
        profile,
        Consent::default(),
        ReferralDetails::default(),
    );
    assert_eq!(
        NewReferral {
            name: Some("A name".into()),
            ..built
        },
        new
    );
    // A builder that misses a required member says which.
    let missing = NewReferral::try_from(NewReferral::builder().type_(ReferralType::Shared));
    assert!(missing.unwrap_err().to_string().contains("consent"));
}

#[tokio::test]
async fn a_root_with_the_api_s_own_path_is_the_service_root() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{LIST}/abc")))
        .respond_with(ResponseTemplate::new(200).set_body_json(referral("abc")))
        .mount(&server)
        .await;
    for root in [
        server.uri(),
        format!("{}/", server.uri()),
        format!("{}/v1.0", server.uri()),
        format!("{}/v1.0/", server.uri()),
        format!("{}/v1.0/engagements/referrals", server.uri()),
        format!("{}/v1.0/engagements/referrals/", server.uri()),
    ] {
        let client = client(&root);
        assert_eq!(client.runtime().root().path(), "/", "{root}");
        let found = client.referral("abc").await;
        assert!(found.is_ok(), "{root}: {found:?}");
    }
    // A path that is not the API's is kept: a service behind a proxy.
    let proxied = client(&format!("{}/partner-api", server.uri()));
    assert_eq!(proxied.runtime().root().path(), "/partner-api");
    let error = proxied.referral("abc").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("/partner-api/v1.0/engagements/referrals/abc"),
        "the requested URL is in the message: {error}"
    );
}

#[tokio::test]
async fn errors_name_the_operation_method_and_url_but_no_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": { "code": "itemNotFound", "message": "No resource of the API has this path." }
        })))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let error = client.referral("a b").await.unwrap_err();
    assert_eq!(
        error.operation(),
        Some(referrals_client::Operation::GetReferral)
    );
    assert_eq!(error.method(), Some("GET"));
    let text = error.to_string();
    let url = format!("{}{LIST}/a%20b", server.uri());
    assert!(
        text.starts_with(&format!("getReferral (GET {url}) failed: 404 Not Found")),
        "{text}"
    );
    let error = client
        .list_page(
            &Query::new().filter(query::engagement_id().eq("private@contoso.com")),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        !error.to_string().contains("private"),
        "no query in messages: {error}"
    );
    assert_eq!(
        error.url(),
        Some(format!("{}{LIST}", server.uri()).as_str())
    );
}

#[tokio::test]
async fn a_connection_failure_names_the_address_and_the_os_cause() {
    // A port that nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client(&format!("http://127.0.0.1:{port}"));
    let error = client.referral("x").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport);
    assert!(error.is_retryable(), "nothing was sent");
    assert_eq!(
        error.attempts(),
        4,
        "connection failures are retried: {error}"
    );
    let text = error.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(
        text.to_lowercase().contains("connection refused"),
        "the OS cause: {text}"
    );
}

#[tokio::test]
async fn a_wrong_token_and_a_missing_role_have_their_own_kinds_and_say_what_to_do() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{LIST}/expired")))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{LIST}/forbidden")))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let error = client.referral("expired").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(!error.is_retryable());
    let text = error.to_string();
    assert!(
        text.contains("expired") && text.contains("https://api.partner.microsoft.com/.default"),
        "{text}"
    );
    let error = client.referral("forbidden").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Forbidden);
    assert!(
        error.to_string().contains("Referral Admin, Referral User"),
        "{error}"
    );
}

#[tokio::test]
async fn an_empty_token_is_refused_before_sending() {
    let server = MockServer::start().await;
    for token in ["", "   "] {
        let client = Client::builder(&server.uri(), StaticToken::new(token))
            .allow_http_to_loopback(true)
            .build()
            .unwrap();
        let error = client.referral("x").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Token);
        assert!(error.to_string().contains("empty token"), "{error}");
    }
    let unset = TokenFn::new(|| async {
        let token = std::env::var("REFERRALS_TEST_UNSET_VARIABLE").map_err(TokenError::new)?;
        Ok(referrals_client::AccessToken::new(token))
    });
    let client = Client::builder(&server.uri(), unset)
        .allow_http_to_loopback(true)
        .build()
        .unwrap();
    assert_eq!(
        client.referral("x").await.unwrap_err().kind(),
        ErrorKind::Token
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// `Error::is_retryable` says what the retry loop did: a write that may have been applied is
/// not retried, and its error does not call itself retryable.
#[tokio::test]
async fn retryable_means_what_the_retry_loop_does() {
    let lead: Referral = serde_json::from_value(referral("r1")).unwrap();
    for (verb, status, retry_after, attempts, retryable) in [
        ("PATCH", 502, false, 1, false),
        ("PATCH", 503, false, 1, false),
        ("PATCH", 503, true, 4, true),
        ("PATCH", 429, false, 4, true),
        ("GET", 502, false, 4, true),
        ("GET", 504, false, 4, true),
        ("GET", 500, false, 1, false),
    ] {
        let server = MockServer::start().await;
        let mut answer = ResponseTemplate::new(status);
        if retry_after {
            answer = answer.insert_header("Retry-After", "0");
        }
        Mock::given(method(verb))
            .respond_with(answer)
            .mount(&server)
            .await;
        let client = client(&server.uri());
        let error = match verb {
            "PATCH" => {
                client
                    .update(&lead, Patch::new().set_status_reason("x"))
                    .await
            }
            _ => client.referral("r1").await,
        }
        .unwrap_err();
        assert_eq!(
            (error.attempts(), error.is_retryable()),
            (attempts, retryable),
            "{verb} {status} Retry-After {retry_after}: {error}"
        );
    }
}

#[tokio::test]
async fn a_continuation_resumes_only_its_own_listing_and_keeps_the_correlation_id() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path(LIST))
        .respond_with(move |request: &Request| {
            let next = request
                .url
                .query_pairs()
                .all(|(name, _)| name != "$skiptoken")
                .then(|| format!("{uri}{LIST}?$filter=status%20eq%20'New'&$skiptoken=p1"));
            ResponseTemplate::new(200).set_body_json(page(0..2, next))
        })
        .mount(&server)
        .await;
    let first_client = client(&server.uri());
    let new = Query::new().filter(query::status().eq(ReferralStatus::New));
    let closed = Query::new().filter(query::status().eq(ReferralStatus::Closed));
    let first = first_client.list_page(&new, None).await.unwrap();
    let continuation = first.next().unwrap().unwrap().clone();

    let error = first_client
        .list_page(&closed, Some(&continuation))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidContinuation);
    assert!(error.to_string().contains("status eq 'New'"), "{error}");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "nothing sent"
    );

    // A checkpoint goes through JSON and back, and resumes with the query or alone.
    let stored = serde_json::to_string(&continuation).unwrap();
    let restored: Continuation = serde_json::from_str(&stored).unwrap();
    assert!(first_client.list_page(&new, Some(&restored)).await.is_ok());
    assert!(first_client.resume(&restored).await.is_ok());

    // A next link that does not make sense ends the listing with an error that keeps the ids.
    let server = MockServer::start().await;
    let link = format!("{}{LIST}?$top=ten", server.uri());
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0..1, Some(link))))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let page = client.list_page(&Query::new(), None).await.unwrap();
    let error = page.next().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedAnswer);
    assert!(error.to_string().contains("`$top=ten`"), "{error}");
    assert_eq!(
        error.correlation_id(),
        Some(client.runtime().correlation_id())
    );
    assert!(error.request_id().is_some());
}

#[tokio::test]
async fn a_listing_can_run_in_a_task_of_its_own() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0..3, None)))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let task = tokio::spawn(client.list_all(Query::new()).try_collect::<Vec<Referral>>());
    drop(client);
    assert_eq!(task.await.unwrap().unwrap().len(), 3);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(referral("stranger")))
        .mount(&elsewhere)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("Location", format!("{}{LIST}/x", elsewhere.uri()).as_str()),
        )
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let error = client.referral("x").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedAnswer);
    assert!(error.to_string().contains("redirected to"), "{error}");
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_ends_the_call_without_filling_memory() {
    let server = MockServer::start().await;
    let big = page(0..200, None);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(big))
        .mount(&server)
        .await;
    let client = Client::builder(&server.uri(), StaticToken::new("token"))
        .allow_http_to_loopback(true)
        .max_response_body(1000)
        .build()
        .unwrap();
    let error = client.list_page(&Query::new(), None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedAnswer);
    assert!(
        error.to_string().contains("larger than the 1000 bytes"),
        "{error}"
    );
}

#[tokio::test]
async fn generated_builders_give_the_same_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .insert_header("Request-ID", "svc-9")
                .set_body_json(json!({ "error": { "code": "tooManyRequests" } })),
        )
        .mount(&server)
        .await;
    let client = client(&server.uri());
    // Through `From`: the status, the service's body and Request-ID.
    let error: Error = client
        .get_referral()
        .id("x")
        .send()
        .await
        .unwrap_err()
        .into();
    assert_eq!(error.status().map(|status| status.as_u16()), Some(429));
    assert_eq!(
        error.service_error().unwrap().code.as_str(),
        "tooManyRequests"
    );
    assert_eq!(error.service_request_id(), Some("svc-9"));
    assert!(error.is_retryable());
    // Through `Client::run`: the operation, the URL, the request ids and the attempts too.
    let error = client
        .run(client.get_referral().id("x").send())
        .await
        .unwrap_err();
    assert_eq!(
        error.operation(),
        Some(referrals_client::Operation::GetReferral)
    );
    assert!(error.request_id().is_some());
    assert_eq!(error.attempts(), 4);
    assert!(error.url().unwrap().ends_with("/referrals/x"));
    let _ = RetryPolicy::default();
}
