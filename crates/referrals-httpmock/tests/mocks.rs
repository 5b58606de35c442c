//! The typed mocks serve the client as the service would.

use httpmock::MockServer;
use referrals_client::query::{self, Query};
use referrals_client::types::{ErrorDetail, ErrorResponse, Referral, ReferralList, ReferralStatus};
use referrals_client::{Client, StaticToken};
use referrals_httpmock::MockServerExt;

fn client(server: &MockServer) -> Client {
    Client::builder(&server.base_url(), StaticToken::new("token"))
        .allow_http_to_loopback(true)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_typed_mock_answers_the_client() {
    let server = MockServer::start_async().await;
    let referral = Referral {
        id: Some("r1".into()),
        status: Some(ReferralStatus::New),
        ..Referral::default()
    };
    let get = server.get_referral(|when, then| {
        when.id("r1");
        then.ok(&referral);
    });
    let missing = server.get_referral(|when, then| {
        when.id("nope");
        then.not_found(&ErrorResponse {
            error: serde_json::from_value::<ErrorDetail>(
                serde_json::json!({ "code": "itemNotFound" }),
            )
            .unwrap(),
            extra: Default::default(),
        });
    });
    let list = server.list_referrals(|when, then| {
        when.filter("status eq 'New'");
        then.ok(&ReferralList {
            value: Some(vec![referral.clone()]),
            ..ReferralList::default()
        });
    });

    let client = client(&server);
    assert_eq!(client.referral("r1").await.unwrap(), referral);
    assert!(client.referral("nope").await.unwrap_err().is_not_found());
    let page = client
        .list_page(
            &Query::new().filter(query::status().eq(ReferralStatus::New)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.items, [referral]);
    get.assert_async().await;
    missing.assert_async().await;
    list.assert_async().await;
}

/// The committed copy in `generated/` is what the build compiled.
#[test]
fn the_committed_copy_is_what_the_build_compiled() {
    let built = include_str!(concat!(env!("OUT_DIR"), "/httpmock.rs"));
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/generated/httpmock.rs"
    ))
    .expect("the committed copy exists; run `cargo xtask codegen`");
    assert!(
        built == committed,
        "crates/referrals-httpmock/generated/httpmock.rs differs from what build.rs generated: \
         run `cargo xtask codegen` and commit the result"
    );
}
