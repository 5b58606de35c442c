//! The query texts of the published pages, character for character: every `$filter`,
//! `$orderby` and `$select` of the examples of seeds 000 and 002 (the request syntax tables,
//! the sample requests, and the links inside the example payloads) parses, is accepted by the
//! sandbox, and is what the typed builders write.

use referrals_client::query::{self, Filter, OrderBy, Query, Select, SortKey};
use referrals_client::types::{
    ReferralDirection, ReferralQualification, ReferralStatus, ReferralSubstatus, ReferralType,
};
use referrals_sandbox::Config;

/// A published `$filter`, where it was published, and the builder that must write it.
struct Golden {
    seed: &'static str,
    text: &'static str,
    built: Filter,
}

fn filters() -> Vec<Golden> {
    let engagement = |id: &str| query::engagement_id().eq(id);
    vec![
        Golden {
            seed: "000 and 002, request syntax; 000 and 002, links of the first example item",
            text: "engagementId eq '65edc0b5-3485-41b7-a17e-dfa9ef4706e2'",
            built: engagement("65edc0b5-3485-41b7-a17e-dfa9ef4706e2"),
        },
        Golden {
            seed: "002, links of the second example item",
            text: "engagementId eq 'b1c40bb4-6d36-4eca-baa3-e1460cf2a454'",
            built: engagement("b1c40bb4-6d36-4eca-baa3-e1460cf2a454"),
        },
        Golden {
            seed: "000, request syntax",
            text: "status eq 'New' and qualification eq 'SalesQualified'",
            built: query::status()
                .eq(ReferralStatus::New)
                .and(query::qualification().eq(ReferralQualification::SalesQualified)),
        },
        Golden {
            seed: "000, request syntax",
            text: "customerProfile/address/country eq 'US' and direction eq 'Incoming'",
            built: query::country()
                .eq("US")
                .and(query::direction().eq(ReferralDirection::Incoming)),
        },
        Golden {
            seed: "000, sample request 1",
            text: "(type eq 'Shared' and direction eq 'Incoming')",
            built: query::type_()
                .eq(ReferralType::Shared)
                .and(query::direction().eq(ReferralDirection::Incoming))
                .grouped(),
        },
        Golden {
            seed: "000, sample request 2",
            text: "(direction eq 'Incoming' and substatus eq 'Pending')",
            built: query::direction()
                .eq(ReferralDirection::Incoming)
                .and(query::substatus().eq(ReferralSubstatus::Pending))
                .grouped(),
        },
        Golden {
            seed: "000, sample request 3",
            text: "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and team/any(t:t/email eq 'r2d2@contoso.com')",
            built: query::status()
                .eq(ReferralStatus::Active)
                .and(query::direction().eq(ReferralDirection::Outgoing))
                .and(query::type_().eq(ReferralType::Shared))
                .and(query::team_email_any().eq("r2d2@contoso.com")),
        },
    ]
}

#[test]
fn every_published_filter_parses_and_the_builder_writes_it() {
    for golden in filters() {
        referrals_odata::parse_filter(golden.text)
            .unwrap_or_else(|error| panic!("seed {}: {}: {error}", golden.seed, golden.text));
        assert_eq!(
            golden.built.to_string(),
            golden.text,
            "seed {}",
            golden.seed
        );
    }
}

#[test]
fn every_published_order_and_select_parses_and_the_builder_writes_it() {
    // Seeds 000 and 002, request syntax and every sample request.
    let order = "createdDateTime desc";
    let items = referrals_odata::parse_orderby(order).unwrap();
    assert_eq!(
        (items[0].member.path().as_str(), items[0].descending),
        ("createdDateTime", true)
    );
    assert_eq!(OrderBy::desc(SortKey::CreatedDateTime).to_string(), order);
    assert_eq!(OrderBy::newest_first().to_string(), order);

    // Seed 000, request syntax.
    let select = "id,status,customerProfile";
    let names: Vec<String> = referrals_odata::parse_select(select)
        .unwrap()
        .into_iter()
        .map(|item| item.name)
        .collect();
    assert_eq!(names, ["id", "status", "customerProfile"]);
    assert_eq!(
        Select::members(names.iter().map(String::as_str))
            .unwrap()
            .to_string(),
        select
    );
}

#[test]
fn the_published_sample_requests_are_what_a_query_sends() {
    // Seed 000, sample request 1, as its query parameters in order.
    let sample = Query::new()
        .top(10)
        .filter(
            query::type_()
                .eq(ReferralType::Shared)
                .and(query::direction().eq(ReferralDirection::Incoming))
                .grouped(),
        )
        .order_by(OrderBy::newest_first());
    let mut parameters = sample.parameters();
    parameters.sort();
    assert_eq!(
        parameters,
        [
            (
                "$filter".to_owned(),
                "(type eq 'Shared' and direction eq 'Incoming')".to_owned()
            ),
            ("$orderby".to_owned(), "createdDateTime desc".to_owned()),
            ("$top".to_owned(), "10".to_owned()),
        ]
    );
}

#[tokio::test]
async fn the_sandbox_accepts_every_published_query() {
    let sandbox = referrals_sandbox::start(Config {
        seed_count: 20,
        log: false,
        ..Config::default()
    })
    .await
    .unwrap();
    let http = http();
    let mut texts: Vec<(String, String)> = filters()
        .into_iter()
        .map(|golden| ("$filter".to_owned(), golden.text.to_owned()))
        .collect();
    texts.push(("$orderby".into(), "createdDateTime desc".into()));
    texts.push(("$select".into(), "id,status,customerProfile".into()));
    for (name, text) in texts {
        let url = format!(
            "{}/v1.0/engagements/referrals?{}",
            sandbox.url(),
            referrals_odata::wire::encode_query([(name.as_str(), text.as_str())])
        );
        let response = http.get(&url).bearer_auth("any").send().await.unwrap();
        let status = response.status();
        assert!(
            status.is_success(),
            "{name}={text}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
}

/// A plain HTTP client for requests that the client of the crate would never send.
fn http() -> reqwest::Client {
    referrals_client::install_crypto_provider();
    reqwest::Client::new()
}
