//! Properties of every component schema, one named test each, with proptest.
//!
//! - `generated::<Schema>`: payloads generated from the schema validate against it as JSON
//!   Schema, decode into the generated type, and round-trip;
//! - `forward::<Schema>`: the same payloads with members that the document does not name added
//!   at any depth, and values of value sets replaced by ones it does not list, still validate,
//!   decode and come back unchanged (closed value sets are left alone only in schemas that the
//!   service never sends, such as the JSON Patch operation);
//! - `malformed::<Schema>`: a wrong JSON type at some path, a string where an object belongs,
//!   or the text cut short, fails to decode with an error that names the path, never a panic.
//!
//! Each runs 256 cases; `PROPTEST_CASES=5000 cargo test -p referrals-contract-tests --test
//! properties` runs more.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use referrals_contract_tests::codec::{self, COMPONENTS};
use referrals_contract_tests::model::Shape;
use referrals_contract_tests::mutate::{self, Damage};
use referrals_contract_tests::{Contract, generate};

fn main() {
    let args = Arguments::from_args();
    let contract = Arc::new(Contract::load());
    let mut trials = Vec::new();
    for &name in COMPONENTS {
        let shared = Arc::clone(&contract);
        trials.push(Trial::test(format!("generated::{name}"), move || {
            generated(&shared, name)
        }));
        let shared = Arc::clone(&contract);
        trials.push(Trial::test(format!("forward::{name}"), move || {
            forward(&shared, name)
        }));
        let shared = Arc::clone(&contract);
        trials.push(Trial::test(format!("malformed::{name}"), move || {
            malformed(&shared, name)
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}

fn runner() -> TestRunner {
    // Config::default() reads PROPTEST_CASES. Failures are reported with the shrunk payload
    // rather than stored in files, which would land in the source tree.
    TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    })
}

fn report<T: std::fmt::Debug>(name: &str, result: Result<(), TestError<T>>) -> Result<(), Failed> {
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, input)) => {
            Err(format!("{name}: {reason}\nminimal failing input: {input:#?}").into())
        }
        Err(TestError::Abort(reason)) => Err(format!("{name}: aborted: {reason}").into()),
    }
}

/// Checks that `payload` is valid for `name` and round-trips through its generated type.
fn valid_and_round_trips(
    contract: &Contract,
    name: &str,
    payload: &referrals_contract_tests::json::Json,
) -> Result<(), TestCaseError> {
    let violations = contract.violations(name, payload);
    if !violations.is_empty() {
        return Err(TestCaseError::fail(format!(
            "the payload is not valid for {name}:\n  {}\npayload: {}",
            violations.join("\n  "),
            payload.to_pretty()
        )));
    }
    match codec::round_trip_component(name, payload) {
        Err(error) => Err(TestCaseError::fail(format!(
            "does not decode into the type of {name} {error}\npayload: {}",
            payload.to_pretty()
        ))),
        Ok(differences) if !differences.is_empty() => Err(TestCaseError::fail(format!(
            "the round trip through the type of {name} changed it:\n  {}\npayload: {}",
            differences
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  "),
            payload.to_pretty()
        ))),
        Ok(_) => Ok(()),
    }
}

fn generated(contract: &Contract, name: &'static str) -> Result<(), Failed> {
    let strategy = generate::component(&contract.model, name);
    let result = runner().run(&strategy, |payload| {
        valid_and_round_trips(contract, name, &payload)
    });
    report(name, result)
}

fn forward(contract: &Arc<Contract>, name: &'static str) -> Result<(), Failed> {
    let shared = Arc::clone(contract);
    let from_service = contract.response_components().contains(name);
    let strategy = generate::component(&contract.model, name).prop_flat_map(move |base| {
        mutate::forward(
            &shared.model,
            &Shape::Ref(name.to_owned()),
            base,
            from_service,
        )
    });
    let result = runner().run(&strategy, |(payload, additions)| {
        valid_and_round_trips(contract, name, &payload)
            .map_err(|error| TestCaseError::fail(format!("{error}\nadditions: {additions:#?}")))
    });
    report(name, result)
}

fn malformed(contract: &Arc<Contract>, name: &'static str) -> Result<(), Failed> {
    let shared = Arc::clone(contract);
    let strategy = generate::component(&contract.model, name).prop_flat_map(move |base| {
        mutate::malformed(&shared.model, &Shape::Ref(name.to_owned()), base)
    });
    let result = runner().run(&strategy, |(text, damage)| {
        let outcome = catch_unwind(AssertUnwindSafe(|| codec::decode_component(name, &text)));
        let error = match outcome {
            Err(_) => {
                return Err(TestCaseError::fail(format!(
                    "decoding panicked\ntext: {text}"
                )));
            }
            Ok(Ok(())) => {
                return Err(TestCaseError::fail(format!(
                    "a damaged payload decoded: {damage:?}\ntext: {text}"
                )));
            }
            Ok(Err(error)) => error,
        };
        if let Some(expected) = damage.path()
            && !is_prefix(&error.path, &expected)
        {
            return Err(TestCaseError::fail(format!(
                "the error names {} but the damage is at {expected}: {error}\ntext: {text}",
                error.path
            )));
        }
        if matches!(damage, Damage::Truncated { .. }) && error.message.is_empty() {
            return Err(TestCaseError::fail(
                "a cut payload failed without a message",
            ));
        }
        Ok(())
    });
    report(name, result)
}

/// Whether the decoder's path `reported` leads to `damaged`: the same place, or a container of
/// it (an untagged enum reports the member that no variant fits, not the value inside).
fn is_prefix(reported: &str, damaged: &str) -> bool {
    reported == "."
        || reported == damaged
        || damaged
            .strip_prefix(reported)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}
