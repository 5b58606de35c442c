//! The generated types decode the published examples, and the details that matter survive:
//! exact money, open value sets, unknown members, the odd shapes of `ids`.

use referrals_model::types::{
    CustomerProfileIds, ErrorCode, ErrorResponse, Referral, ReferralList, ReferralStatus,
    ReferralSubstatus,
};

fn example(name: &str) -> String {
    let path = format!(
        "{}/../../openapi/examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

#[test]
fn seed000_list_decodes() {
    let page: ReferralList = serde_json::from_str(&example("seed000-list-2020.json")).unwrap();
    assert_eq!(page.odata_count, Some(1));
    assert_eq!(
        page.odata_next_link.as_deref(),
        Some("http://api.partner.microsoft.com/v1.0/referrals?$skiptoken=k181pEdP0ykypkieJfcxX")
    );
    let referral = &page.value.as_ref().unwrap()[0];
    assert_eq!(referral.status, Some(ReferralStatus::New));
    assert_eq!(referral.substatus, Some(ReferralSubstatus::Pending));
    let details = referral.details.as_ref().unwrap();
    assert_eq!(details.deal_value.as_ref().unwrap().as_str(), "10000");
    assert!(
        referral.extra.is_empty(),
        "every member of seed 000 is named: {:?}",
        referral.extra
    );
}

#[test]
fn seed002_list_keeps_both_shapes_of_ids() {
    let page: ReferralList = serde_json::from_str(&example("seed002-list-2019.json")).unwrap();
    let items = page.value.unwrap();
    assert_eq!(items.len(), 2);
    let ids = items[0]
        .customer_profile
        .as_ref()
        .unwrap()
        .ids
        .as_ref()
        .unwrap();
    assert!(matches!(ids, CustomerProfileIds::Object(map) if map.is_empty()));
    assert_eq!(
        items[1]
            .consent
            .as_ref()
            .unwrap()
            .consent_to_to_share_info_with_others,
        Some(true)
    );
}

#[test]
fn seed003_get_decodes_nulls_and_id_arrays() {
    let referral: Referral = serde_json::from_str(&example("seed003-get-2019.json")).unwrap();
    assert_eq!(referral.status_reason, None);
    let ids = referral
        .customer_profile
        .as_ref()
        .unwrap()
        .ids
        .as_ref()
        .unwrap();
    match ids {
        CustomerProfileIds::Array(ids) => assert_eq!(ids[0].id.as_deref(), Some("795986822")),
        other => panic!("expected an array of ids, got {other:?}"),
    }
    assert_eq!(
        referral.e_tag.as_deref(),
        Some("\"2500ec5a-0000-0000-0000-5bf4967d0000\"")
    );
}

#[test]
fn unknown_values_and_members_survive_a_round_trip() {
    let text = r#"{"status":"Archived","details":{"dealValue":12345678901234.56,"newMember":{"x":[1,2]}},"brandNew":true}"#;
    let referral: Referral = serde_json::from_str(text).unwrap();
    let status = referral.status.as_ref().unwrap();
    assert!(!status.is_known());
    assert_eq!(status.as_str(), "Archived");
    let back: serde_json::Value = serde_json::to_value(&referral).unwrap();
    let original: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(back, original);
    assert_eq!(
        serde_json::to_string(&referral.details.unwrap().deal_value).unwrap(),
        "12345678901234.56"
    );
}

#[test]
fn error_body_decodes_with_nested_inner_errors() {
    let text = example("ours-error-bad-request.json");
    let body: ErrorResponse = serde_json::from_str(&text).unwrap();
    assert_eq!(body.error.code, ErrorCode::InvalidRequest);
    let inner = body.error.inner_error.as_ref().unwrap();
    let deeper = Option::as_ref(&inner.inner_error).unwrap();
    assert_eq!(deeper.code.as_deref(), Some("referralClosed"));
}

/// The build script and `cargo xtask codegen` call the same function; this proves that the
/// committed copy is what the build compiled, so a reviewer reads the code that runs.
#[cfg(feature = "codegen")]
#[test]
fn the_committed_copy_is_what_the_build_compiled() {
    let built = include_str!(concat!(env!("OUT_DIR"), "/model.rs"));
    let committed =
        std::fs::read_to_string(format!("{}/generated/model.rs", env!("CARGO_MANIFEST_DIR")))
            .expect("the committed copy exists; run `cargo xtask codegen`");
    assert!(
        built == committed,
        "crates/referrals-model/generated/model.rs differs from what build.rs generated: \
         run `cargo xtask codegen` and commit the result"
    );
}
