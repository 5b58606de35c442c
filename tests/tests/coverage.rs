//! What the examples and the generator cover. (That every member of every example is a
//! declared property is checked per example, as `declared::<example>` in `examples.rs`.)

use std::collections::BTreeSet;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use referrals_contract_tests::model::Shape;
use referrals_contract_tests::spec::Spec;
use referrals_contract_tests::walk::walk;
use referrals_contract_tests::{Contract, generate};
use serde_json::Value;

#[test]
fn every_operation_has_a_response_example() {
    let contract = Contract::load();
    let with_examples: BTreeSet<String> = contract
        .spec
        .attachments()
        .into_iter()
        .filter(|attachment| attachment.place.starts_with("response"))
        .map(|attachment| attachment.operation)
        .collect();
    let missing: Vec<String> = contract
        .spec
        .operations()
        .into_iter()
        .filter(|operation| !with_examples.contains(&operation.id))
        .map(|operation| format!("{} ({} {})", operation.id, operation.method, operation.path))
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a response example in openapi/examples/: {missing:?}"
    );
}

#[test]
fn every_component_schema_is_reached_by_an_example_or_the_generator() {
    let contract = Contract::load();

    // The schemas that some example passes through, walked with the schema it is attached to.
    let mut by_examples = BTreeSet::new();
    for attachment in contract.spec.attachments() {
        let Some(component) = attachment.component() else {
            continue;
        };
        // An unreadable example is reported by its own test, example::<file>.
        let Ok(payload) = contract.spec.read_example(&attachment.file) else {
            continue;
        };
        by_examples.insert(component.to_owned());
        walk(
            &contract.model,
            &Shape::Ref(component.to_owned()),
            &payload,
            &mut |node| {
                if let Some(component) = node.component {
                    by_examples.insert(component.to_owned());
                }
            },
        );
    }

    // The others must be reached by the generator of the property tests: it must produce a
    // valid payload for them.
    let mut runner = TestRunner::deterministic();
    let mut unreached = Vec::new();
    for name in contract.spec.component_names() {
        if by_examples.contains(&name) {
            continue;
        }
        let strategy = generate::component(&contract.model, &name);
        let payload = strategy
            .new_tree(&mut runner)
            .expect("a strategy makes a value")
            .current();
        let violations = contract.violations(&name, &payload);
        if !violations.is_empty() {
            unreached.push(format!(
                "{name}: the generator's payload is invalid: {violations:?}"
            ));
        }
    }
    assert!(
        unreached.is_empty(),
        "schemas that nothing reaches: {unreached:#?}"
    );
    assert!(
        by_examples.contains("Referral") && by_examples.contains("ErrorResponse"),
        "the examples reach {by_examples:?}"
    );
}

/// The members of `payload` that its schema marks `readOnly`, at any depth, as JSON Pointers.
fn read_only_members(
    spec: &Spec,
    schema: &Value,
    payload: &Value,
    at: &str,
    found: &mut Vec<String>,
) {
    let schema = resolve(spec, schema);
    match payload {
        Value::Object(members) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, value) in members {
                let Some(property) = properties.and_then(|properties| properties.get(name)) else {
                    continue;
                };
                let pointer = format!("{at}/{name}");
                if property.get("readOnly").and_then(Value::as_bool) == Some(true) {
                    found.push(pointer.clone());
                }
                read_only_members(spec, property, value, &pointer, found);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    read_only_members(spec, item_schema, item, &format!("{at}/{index}"), found);
                }
            }
        }
        _ => {}
    }
}

/// A schema with its `$ref` and one-reference `allOf` followed.
fn resolve<'a>(spec: &'a Spec, schema: &'a Value) -> &'a Value {
    let mut schema = spec.resolve(schema);
    while let Some([only]) = schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        schema = spec.resolve(only);
    }
    schema
}

/// A request example is what a client would send: no member that the document marks
/// `readOnly` (the service sets those, and OpenAPI says a request should not carry them).
#[test]
fn request_examples_send_no_read_only_member() {
    let contract = Contract::load();
    let mut offenders = Vec::new();
    for attachment in contract.spec.attachments() {
        if attachment.place != "request body" {
            continue;
        }
        let text = std::fs::read_to_string(contract.spec.dir.join(&attachment.file)).unwrap();
        let payload: Value = serde_json::from_str(&text).unwrap();
        let mut found = Vec::new();
        read_only_members(&contract.spec, &attachment.schema, &payload, "", &mut found);
        offenders.extend(
            found.into_iter().map(|pointer| {
                format!("{} ({}): {pointer}", attachment.file, attachment.operation)
            }),
        );
    }
    assert!(
        offenders.is_empty(),
        "request examples that send read-only members: {offenders:#?}"
    );
}
