//! The sandbox and the client together: every answer of the sandbox is decoded by the
//! generated client, and every rule of the document is checked on a running server.

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use referrals_client::facts;
use referrals_client::generated::{ClientLegacyExt, ClientReferralsExt};
use referrals_client::patch::Patch;
use referrals_client::query::{self, Filter, OrderBy, Query, Select, SortKey};
use referrals_client::types::{
    ErrorResponse, NewReferral, Referral, ReferralStatus, ReferralSubstatus,
};
use referrals_client::{Client, ErrorKind, RetryPolicy};
use referrals_sandbox::{Config, Sandbox};
use serde_json::json;

use referrals_testkit::TOKEN;

async fn sandbox(seed_count: usize) -> Sandbox {
    referrals_testkit::start(Config {
        seed_count,
        ..referrals_testkit::config()
    })
    .await
}

fn client(sandbox: &Sandbox) -> Client {
    referrals_testkit::client(&sandbox.url())
}

fn new_referral(name: &str) -> NewReferral {
    serde_json::from_value(json!({
        "type": "Independent",
        "name": name,
        "customerProfile": { "name": name, "address": { "country": "NO", "city": "Ålesund" } },
        "consent": { "consentToContact": true },
        "details": { "dealValue": 12345678901234.56, "currency": "NOK", "notes": "ünïcödé" }
    }))
    .unwrap()
}

async fn all(client: &Client, query: Query) -> Vec<Referral> {
    client.list_all(query).try_collect().await.unwrap()
}

/// The ids of the pages after `first`, followed one continuation at a time.
async fn rest(client: &Client, query: &Query, first: &referrals_client::Page) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = first.next().unwrap().cloned();
    while let Some(continuation) = next {
        let page = client.list_page(query, Some(&continuation)).await.unwrap();
        seen.extend(ids(&page.items));
        next = page.next().unwrap().cloned();
    }
    seen
}

fn ids(referrals: &[Referral]) -> Vec<String> {
    referrals
        .iter()
        .map(|referral| referral.id.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn paging_with_count_returns_every_referral_exactly_once() {
    let sandbox = sandbox(250).await;
    let client = client(&sandbox);
    let first = client
        .list_page(&Query::new().count(true), None)
        .await
        .unwrap();
    assert_eq!(
        first.count,
        Some(252),
        "250 synthetic referrals and the 2 of the seed examples"
    );
    assert_eq!(first.items.len(), 100);
    let everything = all(&client, Query::new().count(true)).await;
    let unique: BTreeSet<String> = ids(&everything).into_iter().collect();
    assert_eq!(everything.len(), 252);
    assert_eq!(unique.len(), 252);
    assert!(
        unique.contains("61c65491-2f2c-461a-84b4-3654499bc1d9"),
        "the seed examples are there"
    );
}

#[tokio::test]
async fn a_listing_survives_concurrent_inserts_and_updates() {
    let sandbox = sandbox(250).await;
    let client = client(&sandbox);
    let query = Query::new()
        .filter(query::status().ne(ReferralStatus::Closed))
        .order_by(OrderBy::desc(SortKey::UpdatedDateTime));
    let expected: BTreeSet<String> = ids(&all(&client, query.clone()).await)
        .into_iter()
        .collect();

    let first = client.list_page(&query, None).await.unwrap();
    let mut seen = ids(&first.items);
    // While the listing runs: new referrals, and updates that move referrals to the top of
    // the order (updatedDateTime desc), some already seen and some not yet.
    for index in 0..5 {
        client
            .create(&new_referral(&format!("late {index}")))
            .await
            .unwrap();
    }
    let pending: Vec<Referral> = all(&client, query.clone()).await;
    for referral in pending
        .iter()
        .filter(|r| r.status == Some(ReferralStatus::New))
        .step_by(7)
        .take(10)
    {
        client.accept(referral).await.unwrap();
    }
    seen.extend(rest(&client, &query, &first).await);
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len(), "a referral came twice");
    assert_eq!(
        unique, expected,
        "the listing is the snapshot it started from"
    );
}

#[tokio::test]
async fn the_creation_index_and_a_full_sort_give_the_same_pages() {
    let sandbox = sandbox(700).await;
    let client = client(&sandbox);
    for filter in [
        None,
        Some(query::status().eq(ReferralStatus::New)),
        Some(query::country().eq("JP")),
    ] {
        for descending in [false, true] {
            let (indexed, sorted) = if descending {
                (
                    OrderBy::desc(SortKey::CreatedDateTime),
                    OrderBy::desc(SortKey::CreatedDateTime).then_desc(SortKey::CreatedDateTime),
                )
            } else {
                (
                    OrderBy::asc(SortKey::CreatedDateTime),
                    OrderBy::asc(SortKey::CreatedDateTime).then_asc(SortKey::CreatedDateTime),
                )
            };
            let mut query = Query::new().count(true).skip(3).top(400);
            if let Some(filter) = &filter {
                query = query.filter(filter.clone());
            }
            let by_index = all(&client, query.clone().order_by(indexed)).await;
            let by_sort = all(&client, query.clone().order_by(sorted)).await;
            assert_eq!(
                ids(&by_index),
                ids(&by_sort),
                "{filter:?} descending {descending}"
            );
            let count = client.list_page(&query, None).await.unwrap().count.unwrap();
            assert_eq!(by_index.len(), (count as usize).saturating_sub(3).min(400));
        }
    }
    // The default order is the index too, and keeps its place across inserts.
    let first = client.list_page(&Query::new(), None).await.unwrap();
    client
        .create(&new_referral("inserted meanwhile"))
        .await
        .unwrap();
    let mut seen = ids(&first.items);
    seen.extend(rest(&client, &Query::new(), &first).await);
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!((seen.len(), unique.len()), (702, 702));
}

#[tokio::test]
async fn filters_with_quotes_non_ascii_and_lambdas() {
    let sandbox = sandbox(50).await;
    let client = client(&sandbox);
    // A country is a free string to the sandbox: one that holds every character that the
    // query string or OData quoting could get wrong.
    let awkward = "O'Neil & Sons + Zoë's #1 100%";
    let mut new = new_referral("Awkward");
    new.customer_profile.address.as_mut().unwrap().country = Some(awkward.into());
    let created = client.create(&new).await.unwrap();
    let filter =
        Filter::raw("customerProfile/address/country eq 'O''Neil & Sons + Zoë''s #1 100%'");
    let found = all(&client, Query::new().filter(filter)).await;
    assert_eq!(ids(&found), [created.id.clone().unwrap()]);
    let typed = all(&client, Query::new().filter(query::country().eq(awkward))).await;
    assert_eq!(ids(&typed), [created.id.clone().unwrap()]);

    let team = all(
        &client,
        Query::new().filter(query::team_email_any().eq("john.doe@microsoft.com")),
    )
    .await;
    assert_eq!(
        ids(&team),
        ["61c65491-2f2c-461a-84b4-3654499bc1d9"],
        "the seed 003 referral has John Doe on its team"
    );

    let norwegian = client.create(&new_referral("Fjord AS")).await.unwrap();
    let nested = all(
        &client,
        Query::new().filter(
            query::country()
                .eq("NO")
                .and(query::status().eq(ReferralStatus::New).not().not()),
        ),
    )
    .await;
    assert!(nested.iter().all(|r| {
        r.customer_profile
            .as_ref()
            .unwrap()
            .address
            .as_ref()
            .unwrap()
            .country
            .as_deref()
            == Some("NO")
    }));
    assert!(nested.iter().any(|r| r.id == norwegian.id));

    let grouped =
        Filter::raw("(status eq 'New' or status eq 'Active') and not (direction eq 'Incoming')");
    for referral in all(&client, Query::new().filter(grouped)).await {
        assert!(matches!(
            referral.status,
            Some(ReferralStatus::New | ReferralStatus::Active)
        ));
        assert_ne!(
            referral.direction.as_ref().map(|d| d.as_str()),
            Some("Incoming")
        );
    }
}

#[tokio::test]
async fn bad_filters_get_a_400_that_names_the_position() {
    let sandbox = sandbox(10).await;
    let client = client(&sandbox);
    for (filter, expected) in [
        ("nope eq 'x'", "at position 1"),
        ("status eq 'New' and", "at position 20"),
        ("status eq 'O''Neil", "never closed"),
        ("createdDateTime gt 'yesterday'", "holds a date-time"),
    ] {
        let error = client
            .list_page(&Query::new().filter(Filter::raw(filter)), None)
            .await
            .unwrap_err();
        assert_eq!(error.status().map(|s| s.as_u16()), Some(400), "{filter}");
        let detail = error.service_error().expect("the error body");
        assert_eq!(detail.target.as_deref(), Some("$filter"));
        assert!(
            detail.message.as_deref().unwrap().contains(expected),
            "{filter}: {:?}",
            detail.message
        );
    }
}

/// A filter or order that names what the document does not list, or that a standard OData
/// parser reads otherwise than it looks, is refused with the list of what is accepted: code
/// developed against the sandbox cannot depend on more than the service documents.
#[tokio::test]
async fn only_what_the_document_lists_is_accepted() {
    let sandbox = sandbox(10).await;
    let client = client(&sandbox);
    let accepted = referrals_client::facts::filterable_paths().join(", ");
    let cases = [
        (
            "$filter",
            "organizationName eq 'Contoso Company'",
            accepted.clone(),
        ),
        (
            "$filter",
            "id eq '61c65491-2f2c-461a-84b4-3654499bc1d9'",
            accepted.clone(),
        ),
        ("$filter", "favorite eq true", accepted.clone()),
        ("$filter", "details/dealValue gt 100", accepted.clone()),
        (
            "$filter",
            "customerProfile/team/any(c:c/email eq 'x@y.z')",
            "`customerProfile/team/any` is not a lambda".into(),
        ),
        (
            "$filter",
            "team/any(t:t/firstName eq 'Sue')",
            "(t/email)".into(),
        ),
        (
            "$filter",
            "status gt 'New'",
            "`status` compares with eq, ne only, not gt".into(),
        ),
        (
            "$filter",
            "not status eq 'New'",
            "`not` binds tighter than a comparison in OData".into(),
        ),
        (
            "$filter",
            "not (status eq 'New') eq true",
            "would compare the negation itself".into(),
        ),
        (
            "$orderby",
            "name asc",
            "the members that can are: createdDateTime, updatedDateTime".into(),
        ),
    ];
    for (parameter, text, expected) in cases {
        let query = referrals_odata::wire::encode_query([(parameter, text)]);
        let response = http()
            .get(format!(
                "{}/v1.0/engagements/referrals?{query}",
                sandbox.url()
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{parameter}={text}");
        let body: ErrorResponse = response.json().await.unwrap();
        assert_eq!(body.error.target.as_deref(), Some(parameter), "{text}");
        let message = body.error.message.unwrap_or_default();
        assert!(message.contains(&expected), "{parameter}={text}: {message}");
    }
    // Negated comparisons in parentheses, the way the builder writes them, are accepted and
    // mean what they say.
    let not_new = all(
        &client,
        Query::new().filter(query::status().eq(ReferralStatus::New).not()),
    )
    .await;
    assert!(!not_new.is_empty());
    assert!(
        not_new
            .iter()
            .all(|r| r.status != Some(ReferralStatus::New))
    );
}

#[tokio::test]
async fn orderby_select_top_skip_and_count() {
    let sandbox = sandbox(300).await;
    let client = client(&sandbox);
    let order = OrderBy::asc(SortKey::UpdatedDateTime).then_desc(SortKey::CreatedDateTime);
    let sorted = all(&client, Query::new().order_by(order)).await;
    assert!(
        sorted
            .windows(2)
            .all(|pair| pair[0].updated_date_time <= pair[1].updated_date_time)
    );

    let select = Select::members(["id", "status", "details"]).unwrap();
    let page = client
        .list_page(&Query::new().select(select).top(5), None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 5);
    for referral in &page.items {
        assert!(referral.id.is_some() && referral.status.is_some());
        assert!(
            referral.customer_profile.is_none() && referral.e_tag.is_none(),
            "only the selected members"
        );
    }

    let top = all(&client, Query::new().top(150).count(true)).await;
    assert_eq!(top.len(), 150, "$top counts across pages");
    let skipped = all(&client, Query::new().skip(290)).await;
    assert_eq!(skipped.len(), 12);
    let none = client
        .list_page(&Query::new().top(0).count(true), None)
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.count == Some(302));
}

#[tokio::test]
async fn get_create_and_the_two_step_shared_referral() {
    let sandbox = sandbox(5).await;
    let client = client(&sandbox);
    let created = client.create(&new_referral("Fabrikam")).await.unwrap();
    assert_eq!(created.status, Some(ReferralStatus::New));
    assert_eq!(
        created
            .details
            .as_ref()
            .unwrap()
            .deal_value
            .as_ref()
            .unwrap()
            .as_str(),
        "12345678901234.56"
    );
    let read = client
        .referral(created.id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(read.e_tag, created.e_tag);

    let answer = client
        .get_referral()
        .id(created.id.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.headers().get("etag").and_then(|v| v.to_str().ok()),
        created.e_tag.as_deref(),
        "the eTag is in the body and in the ETag header"
    );

    let missing = client
        .referral("0d43414c-fb9f-4ca0-9b8d-29deb70364cf")
        .await
        .unwrap_err();
    assert!(missing.is_not_found());
    assert_eq!(
        missing.service_error().unwrap().code.as_str(),
        "itemNotFound"
    );

    // A co-sell referral: your own, shared; then one with its engagementId that invites Microsoft.
    let mut own = new_referral("Co-sell customer");
    own.type_ = referrals_client::types::ReferralType::Shared;
    let own = client.create(&own).await.unwrap();
    let mut invite = new_referral("Co-sell customer");
    invite.type_ = referrals_client::types::ReferralType::Shared;
    invite.engagement_id = own.engagement_id.clone();
    invite.target = Some(vec![
        serde_json::from_value(json!({ "type": "BusinessProfileLocation", "id": "msft" })).unwrap(),
    ]);
    let invitation = client.create(&invite).await.unwrap();
    assert_eq!(invitation.engagement_id, own.engagement_id);

    invite.engagement_id = None;
    let refused = client.create(&invite).await.unwrap_err();
    assert_eq!(refused.status().map(|s| s.as_u16()), Some(400));
    assert!(
        refused
            .service_error()
            .unwrap()
            .message
            .as_deref()
            .unwrap()
            .contains("second step")
    );
}

#[tokio::test]
async fn creating_without_required_members_names_them() {
    let sandbox = sandbox(0).await;
    let answer = raw(
        &sandbox,
        reqwest::Method::POST,
        "/v1.0/engagements/referrals",
        Some(json!({ "type": "Shared" }).to_string()),
    )
    .await;
    let (status, body) = answer;
    assert_eq!(status, 400);
    let message = body.error.message.unwrap();
    assert!(
        message.contains("customerProfile")
            && message.contains("consent")
            && message.contains("details"),
        "{message}"
    );
}

/// The members that the document marks `readOnly` are the service's: sent in a create or a
/// replace, they are ignored.
#[tokio::test]
async fn read_only_members_sent_by_a_client_are_ignored() {
    let sandbox = sandbox(0).await;
    let client = client(&sandbox);
    let mut new = new_referral("Sneaky");
    for (member, value) in [
        ("id", json!("mine")),
        ("isSpam", json!(true)),
        ("organizationName", json!("Someone else")),
        ("createdDateTime", json!("2001-01-01T00:00:00Z")),
    ] {
        new.extra.insert(member.into(), value);
    }
    let created = client.create(&new).await.unwrap();
    assert_ne!(created.id.as_deref(), Some("mine"));
    assert_eq!(created.is_spam, None);
    assert_eq!(
        created.organization_name.as_deref(),
        Some("Contoso Company")
    );
    assert_ne!(
        created.created_date_time.map(|at| at.to_rfc3339()),
        Some("2001-01-01T00:00:00+00:00".into())
    );

    let mut replacement = created.clone();
    replacement.organization_name = Some("Someone else".into());
    replacement.name = Some("Renamed".into());
    replacement.e_tag = Some("\"forged\"".into());
    let replaced = client
        .replace_referral()
        .id(created.id.clone().unwrap())
        .if_match(created.e_tag.clone().unwrap())
        .body(replacement)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replaced.name.as_deref(), Some("Renamed"));
    assert_eq!(
        replaced.organization_name.as_deref(),
        Some("Contoso Company")
    );
    assert_ne!(replaced.e_tag.as_deref(), Some("\"forged\""));
    assert_ne!(replaced.e_tag, created.e_tag);
}

#[tokio::test]
async fn updates_follow_the_status_rules_and_if_match() {
    let sandbox = sandbox(0).await;
    let client = client(&sandbox);
    let lead = client.create(&new_referral("Lead")).await.unwrap();

    let accepted = client.accept(&lead).await.unwrap();
    assert_eq!(
        (accepted.status.clone(), accepted.substatus.clone()),
        (
            Some(ReferralStatus::Active),
            Some(ReferralSubstatus::Accepted)
        )
    );
    assert_ne!(accepted.e_tag, lead.e_tag);
    assert!(accepted.accepted_date_time.is_some());

    // The old eTag is stale now: 412, and nothing changes.
    let stale = client.decline(&lead, "late").await.unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::PreconditionFailed);
    assert_eq!(
        client.referral(lead.id.as_deref().unwrap()).await.unwrap(),
        accepted
    );

    let won = client
        .close_won(&accepted, Some(&"98765432109876543.21".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        won.details
            .as_ref()
            .unwrap()
            .deal_value
            .as_ref()
            .unwrap()
            .as_str(),
        "98765432109876543.21"
    );
    assert!(won.closed_date_time.is_some());

    // A Closed referral stays Closed: the sandbox says so (a plain update does not check the
    // rules in the client, as `change_status` does).
    let back = Patch::new()
        .set_status(ReferralStatus::Active)
        .set_substatus(ReferralSubstatus::Accepted);
    let error = client.update(&won, back).await.unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400));
    assert!(
        error
            .service_error()
            .unwrap()
            .message
            .as_deref()
            .unwrap()
            .contains("Closed may move to Closed only")
    );
}

/// The ops that the patchable path `pointer` takes.
fn ops_at(pointer: &str) -> Vec<String> {
    facts::PATCHABLE
        .iter()
        .find(|entry| entry.pointer == pointer)
        .map(|entry| entry.ops.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn patches_outside_the_table_are_refused_and_prefer_decides_the_answer() {
    let sandbox = sandbox(0).await;
    let client = client(&sandbox);
    let lead = client.create(&new_referral("Patched")).await.unwrap();
    let won = client
        .close_won(&client.accept(&lead).await.unwrap(), None)
        .await
        .unwrap();
    // An op of RFC 6902 that `/status` does not take, and the op that sets `/statusReason`.
    let refused = ["remove", "move", "copy", "test", "replace", "add"]
        .into_iter()
        .find(|op| !ops_at("/status").iter().any(|taken| taken == op))
        .unwrap();
    let refused_message = format!("the op `{refused}` is not accepted");
    let sets = ops_at("/statusReason")
        .into_iter()
        .find(|op| op == "replace" || op == "add")
        .unwrap();
    for (op, path, value, expected) in [
        (refused, "/status", json!("x"), refused_message.as_str()),
        (
            "replace",
            "/id",
            json!("x"),
            "not a member that can be changed",
        ),
        (
            "replace",
            "/details/dealValue",
            json!("ten"),
            "does not fit /details/dealValue",
        ),
        ("replace", "/team/-", json!({}), "it takes add"),
    ] {
        let body = json!([{ "op": op, "path": path, "value": value }]).to_string();
        let (status, error) = raw(
            &sandbox,
            reqwest::Method::PATCH,
            &format!("/v1.0/engagements/referrals/{}", won.id.as_deref().unwrap()),
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{op} {path}");
        assert!(
            error.error.message.as_deref().unwrap().contains(expected),
            "{op} {path}: {:?}",
            error.error.message
        );
    }

    // Without Prefer: 204 and the new eTag in the header.
    let body = json!([{ "op": sets, "path": "/statusReason", "value": "Signed." }]).to_string();
    let response = http()
        .patch(format!(
            "{}/v1.0/engagements/referrals/{}",
            sandbox.url(),
            won.id.as_deref().unwrap()
        ))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let etag = response
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        client
            .referral(won.id.as_deref().unwrap())
            .await
            .unwrap()
            .e_tag
            .as_deref(),
        Some(etag.as_str())
    );
}

#[tokio::test]
async fn of_twenty_concurrent_updates_with_one_etag_exactly_one_wins() {
    let sandbox = sandbox(0).await;
    let client = client(&sandbox);
    let lead = client.create(&new_referral("Contested")).await.unwrap();
    let id = lead.id.clone().unwrap();
    let attempts = (0..20).map(|index| {
        let client = client.clone();
        let lead = lead.clone();
        tokio::spawn(async move {
            let patch = Patch::new().set_status_reason(format!("writer {index}"));
            client.update(&lead, patch).await
        })
    });
    let results: Vec<_> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners = results.iter().filter(|result| result.is_ok()).count();
    let stale = results
        .iter()
        .filter(|result| result.as_ref().is_err_and(|e| e.is_precondition_failed()))
        .count();
    assert_eq!((winners, stale), (1, 19));
    let stored = client.referral(&id).await.unwrap();
    let winner = results.into_iter().find_map(Result::ok).unwrap();
    assert_eq!(stored, winner);
}

/// Requests that the sandbox must refuse, with the status of each.
fn bad_requests() -> Vec<BadRequest> {
    let list = "/v1.0/engagements/referrals";
    let nested = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let deep_member = format!(
        r#"{{"type":"Independent","customerProfile":{{}},"consent":{{}},"details":{{}},"deep":{}1{}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let post = |body: Vec<u8>, content_type: &'static str, status| {
        (
            reqwest::Method::POST,
            list.to_owned(),
            Some(body),
            Some(content_type),
            status,
        )
    };
    let get = |query: &str, status| {
        (
            reqwest::Method::GET,
            format!("{list}?{query}"),
            None,
            None,
            status,
        )
    };
    let json = "application/json";
    vec![
        post(vec![b' '; 2 * 1024 * 1024], json, 413),
        post(b"{\"type\": ".to_vec(), json, 400),
        post(nested.into_bytes(), json, 400),
        post(deep_member.into_bytes(), json, 400),
        post(b"{\"type\":\"\xff\"}".to_vec(), json, 400),
        post(
            b"type=Shared".to_vec(),
            "application/x-www-form-urlencoded",
            415,
        ),
        get("$top=99999999999", 400),
        get("$top=-1", 400),
        get("$top=ten", 400),
        get("$filter=%FF", 400),
        get("$skiptoken=not-a-token", 400),
        get("$expand=team", 400),
        get("$top=1&$top=2", 400),
        get(
            &format!(
                "$filter={}status%20eq%20'New'{}",
                "(".repeat(5000),
                ")".repeat(5000)
            ),
            400,
        ),
        get(
            &format!(
                "$filter={}",
                vec!["status%20eq%20'New'"; 300].join("%20and%20")
            ),
            400,
        ),
        get(&format!("$orderby={}", vec!["id"; 40].join(",")), 400),
        (
            reqwest::Method::DELETE,
            format!("{list}/x"),
            None,
            None,
            405,
        ),
    ]
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_the_error_body_and_harms_nothing() {
    let sandbox = sandbox(20).await;
    let client = client(&sandbox);
    let before = client
        .list_page(&Query::new().count(true), None)
        .await
        .unwrap()
        .count;
    let cases = bad_requests();
    for (method, path, body, content_type, expected) in cases {
        let mut request = http()
            .request(method.clone(), format!("{}{path}", sandbox.url()))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request
                .header("content-type", content_type.unwrap_or("application/json"))
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, expected, "{method} {path}: {text}");
        let body: ErrorResponse = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}: {text}"));
        assert!(!body.error.code.as_str().is_empty());
    }
    let after = client
        .list_page(&Query::new().count(true), None)
        .await
        .unwrap()
        .count;
    assert_eq!(before, after, "nothing was created or lost");
}

#[tokio::test]
async fn requests_without_a_bearer_token_get_401() {
    let sandbox = sandbox(1).await;
    for authorization in [
        None,
        Some("Bearer "),
        Some("Basic abc"),
        Some("Bearer wrong"),
    ] {
        let mut request = http().get(format!("{}/v1.0/engagements/referrals", sandbox.url()));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{authorization:?}");
        assert!(response.headers().contains_key("request-id"));
        let body: ErrorResponse = response.json().await.unwrap();
        assert_eq!(body.error.code.as_str(), "unauthenticated");
    }
}

#[tokio::test]
async fn the_legacy_list_takes_its_four_parameters() {
    let sandbox = sandbox(100).await;
    let client = client(&sandbox);
    let answer = client
        .list_referrals_legacy()
        .status(ReferralStatus::Closed)
        .self_(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    let value = answer.value.unwrap();
    assert!(!value.is_empty());
    assert!(
        value
            .iter()
            .all(|r| r.status == Some(ReferralStatus::Closed))
    );
    let invited = client
        .list_referrals_legacy()
        .invited_by_organization("msft")
        .engagement_id("b1c40bb4-6d36-4eca-baa3-e1460cf2a454")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ids(&invited.value.unwrap()),
        ["61c65491-2f2c-461a-84b4-3654499bc1d9"]
    );
}

#[tokio::test]
async fn above_its_rate_limit_the_sandbox_answers_429_with_retry_after() {
    let sandbox = referrals_testkit::start(Config {
        seed_count: 0,
        rate_limit: Some(1),
        ..referrals_testkit::config()
    })
    .await;
    let url = format!("{}/v1.0/engagements/referrals", sandbox.url());
    let mut throttled = None;
    for _ in 0..50 {
        let answer = http().get(&url).bearer_auth(TOKEN).send().await.unwrap();
        if answer.status().as_u16() == 429 {
            throttled = answer.headers().get("retry-after").cloned();
            break;
        }
    }
    assert_eq!(
        throttled.as_ref().map(|value| value.to_str().unwrap()),
        Some("1")
    );
}

#[tokio::test]
async fn the_client_rides_out_injected_faults() {
    let sandbox = referrals_testkit::start(Config {
        seed_count: 500,
        fault_429: 0.15,
        fault_503: 0.1,
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::builder(&sandbox.url())
        .retry(RetryPolicy {
            max_attempts: 12,
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let everything = all(&client, Query::new()).await;
    assert_eq!(everything.len(), 502);
    let lead = everything
        .iter()
        .find(|r| r.status == Some(ReferralStatus::New))
        .unwrap();
    client.accept(lead).await.unwrap();
}

/// A request that the sandbox must refuse: method, path, body, content type, status.
type BadRequest = (
    reqwest::Method,
    String,
    Option<Vec<u8>>,
    Option<&'static str>,
    u16,
);

/// A request outside the client, for bodies that the client would never send.
async fn raw(
    sandbox: &Sandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
) -> (u16, ErrorResponse) {
    let mut request = http()
        .request(method, format!("{}{path}", sandbox.url()))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}")),
    )
}

/// A plain HTTP client for requests that the client of the crate would never send.
fn http() -> reqwest::Client {
    referrals_client::install_crypto_provider();
    reqwest::Client::new()
}
