//! What the examples and the generator cover. (That every member of every example is a
//! declared property is checked per example, as `declared::<example>` in `examples.rs`.)

use std::collections::BTreeSet;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use referrals_contract_tests::model::Shape;
use referrals_contract_tests::walk::walk;
use referrals_contract_tests::{Contract, generate};

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
