//! The examples of `openapi/webhooks/webhooks.yaml`: each attached where the document shows it
//! (request bodies, answers, and the callback's body), valid for its schema as JSON Schema,
//! decoded by the generated type of that schema, and written back the same.

use std::collections::BTreeMap;
use std::path::PathBuf;

use referrals_contract_tests::equivalence::differences;
use referrals_contract_tests::json::Json;
use referrals_model::webhooks::types;
use serde_json::Value;

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/webhooks")
}

fn document() -> Value {
    let text = std::fs::read_to_string(folder().join("webhooks.yaml")).unwrap();
    referrals_document::parse(&text).unwrap()
}

/// Every example name and the schemas of the places that show it, found anywhere in the
/// document (callbacks included): a media type object with `schema` and `examples`.
fn attachments(value: &Value, found: &mut BTreeMap<String, Vec<Value>>) {
    match value {
        Value::Object(members) => {
            if let (Some(schema), Some(Value::Object(examples))) =
                (members.get("schema"), members.get("examples"))
            {
                for example in examples.values() {
                    let name = example["$ref"].as_str().unwrap_or_default();
                    let name = name.trim_start_matches("#/components/examples/").to_owned();
                    found.entry(name).or_default().push(schema.clone());
                }
            }
            members
                .values()
                .for_each(|member| attachments(member, found));
        }
        Value::Array(items) => items.iter().for_each(|item| attachments(item, found)),
        _ => {}
    }
}

/// The payload decoded by the generated type of `schema` and written back.
fn round_trip(schema: &Value, text: &str) -> Result<String, String> {
    fn through<T: serde::de::DeserializeOwned + serde::Serialize>(
        text: &str,
    ) -> Result<String, String> {
        let value: T = serde_json::from_str(text).map_err(|error| error.to_string())?;
        serde_json::to_string(&value).map_err(|error| error.to_string())
    }
    let name = |schema: &Value| {
        schema["$ref"].as_str().map(|reference| {
            reference
                .trim_start_matches("#/components/schemas/")
                .to_owned()
        })
    };
    match (
        schema["type"].as_str(),
        name(schema),
        name(&schema["items"]),
    ) {
        (Some("array"), None, Some(item)) => match item.as_str() {
            "WebhookEventName" => through::<Vec<types::WebhookEventName>>(text),
            "ValidationEventDelivery" => through::<Vec<types::ValidationEventDelivery>>(text),
            other => Err(format!(
                "no generated type is known here for arrays of {other}"
            )),
        },
        (_, Some(name), _) => match name.as_str() {
            "WebhookRegistration" => through::<types::WebhookRegistration>(text),
            "WebhookEvent" => through::<types::WebhookEvent>(text),
            "ValidationEvent" => through::<types::ValidationEvent>(text),
            other => Err(format!("no generated type is known here for {other}")),
        },
        _ => Err(format!("an inline schema: {schema}")),
    }
}

#[test]
fn every_example_is_attached_valid_and_round_trips() {
    let doc = document();
    let validators = referrals_document::Validators::new(&doc);
    let mut found = BTreeMap::new();
    attachments(&doc, &mut found);
    let files: Vec<String> = std::fs::read_dir(folder().join("examples"))
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    assert!(files.len() >= 7, "{files:?}");
    for file in &files {
        let schemas = found
            .get(file)
            .unwrap_or_else(|| panic!("{file}.json is not attached"));
        let text = std::fs::read_to_string(folder().join(format!("examples/{file}.json"))).unwrap();
        let payload: Value = serde_json::from_str(&text).unwrap();
        for schema in schemas {
            let violations = validators.check(schema, &payload);
            assert!(violations.is_empty(), "{file}: {violations:?}");
            let back = round_trip(schema, &text).unwrap_or_else(|error| panic!("{file}: {error}"));
            let (original, back) = (Json::parse(&text).unwrap(), Json::parse(&back).unwrap());
            let changed = differences(&original, &back);
            assert!(changed.is_empty(), "{file}: {changed:?}");
        }
    }
    // The validator does refuse what the schema does not allow.
    let registration = serde_json::json!({"$ref": "#/components/schemas/WebhookRegistration"});
    let wrong = serde_json::json!({"WebhookUrl": 5, "WebhookEvents": ["referral-created"]});
    assert!(!validators.check(&registration, &wrong).is_empty());
    for name in found.keys() {
        assert!(
            files.contains(name),
            "the document names the example {name}, which has no file"
        );
    }
}
