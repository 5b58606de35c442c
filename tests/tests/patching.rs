//! Every op that `x-patchable` declares on every path does what RFC 6902 says (with the
//! departures of a typed model that `patch::Step` lists), on the model that the client and the
//! sandbox share (`patch::apply`; the sandbox's answers to patches are checked in
//! `sandbox.rs`).
//!
//! A referral is made from a documented one (`seed001-get-2020.json`) with a generated value at
//! the path, or without the member; results are compared as the model writes them, so that a
//! value compares the same whichever way it was written.

use proptest::test_runner::TestRunner;
use referrals_client::PatchValue;
use referrals_client::facts::{self, Patchable};
use referrals_client::patch::{self, PatchError, PatchPath};
use referrals_client::types::{JsonPatchOp, JsonPatchOperation, Referral};
use referrals_contract_tests::Contract;
use referrals_contract_tests::members::{shape_of_pointer, strip, value_at};
use serde_json::Value;

/// The documented referral that the cases start from.
fn base(contract: &Contract) -> Value {
    let json = contract
        .spec
        .read_example("examples/seed001-get-2020.json")
        .unwrap();
    serde_json::from_str(&json.to_text()).unwrap()
}

/// `json` with `value` at `pointer` (appended, for `/-`), making the objects on the way; or
/// without the member when `value` is `None`.
fn put(mut json: Value, pointer: &str, value: Option<&Value>) -> Value {
    let segments: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let (last, parents) = segments.split_last().unwrap();
    let mut at = &mut json;
    for segment in parents {
        let object = at.as_object_mut().unwrap();
        at = object
            .entry(*segment)
            .or_insert_with(|| Value::Object(Default::default()));
        if at.is_null() {
            *at = Value::Object(Default::default());
        }
    }
    match (*last, value) {
        ("-", Some(value)) => {
            let items = at.as_array_mut().unwrap();
            items.push(value.clone());
        }
        (_, Some(value)) => {
            at.as_object_mut()
                .unwrap()
                .insert(last.to_string(), value.clone());
        }
        (_, None) => {
            at.as_object_mut().unwrap().remove(*last);
        }
    }
    json
}

/// The referral of `json`, as the model reads it.
fn referral(json: Value, what: &str) -> Referral {
    serde_json::from_value(json).unwrap_or_else(|error| panic!("{what}: {error}"))
}

/// The referral as the model writes it: the form in which two results are compared.
fn written(referral: &Referral) -> Value {
    serde_json::to_value(referral).unwrap()
}

fn operation(
    op: JsonPatchOp,
    path: &str,
    value: Option<&str>,
    from: Option<&str>,
) -> JsonPatchOperation {
    let value = value.map(|json| PatchValue::from_json(json).unwrap());
    patch::operation(op, path.into(), value, from.map(str::to_owned)).unwrap()
}

/// `operation` applied to a copy of `target`.
fn applied(target: &Referral, operation: &JsonPatchOperation) -> Result<Referral, PatchError> {
    let mut copy = target.clone();
    patch::apply(&mut copy, operation).map(|()| copy)
}

/// The cases of one path: the base without the member, the base with a value there, and the
/// value.
struct Case<'a> {
    entry: &'a Patchable,
    value: String,
    without: Value,
    with: Value,
}

impl Case<'_> {
    fn with(&self) -> Referral {
        referral(self.with.clone(), self.entry.pointer)
    }

    fn without(&self) -> Referral {
        referral(self.without.clone(), self.entry.pointer)
    }

    fn op(&self, op: JsonPatchOp, value: bool, from: Option<PatchPath>) -> JsonPatchOperation {
        let value = value.then_some(self.value.as_str());
        operation(op, self.entry.pointer, value, from.map(PatchPath::pointer))
    }
}

fn case<'a>(contract: &Contract, entry: &'a Patchable, runner: &mut TestRunner) -> Case<'a> {
    let value = value_at(&contract.model, "Referral", entry.pointer, runner);
    let parsed: Value = serde_json::from_str(&value).unwrap();
    let base = base(contract);
    let (without, with) = if let Some(array) = entry.pointer.strip_suffix("/-") {
        let without = put(base, array, Some(&Value::Array(Vec::new())));
        let with = put(without.clone(), entry.pointer, Some(&parsed));
        (without, with)
    } else {
        (
            put(base.clone(), entry.pointer, None),
            put(base, entry.pointer, Some(&parsed)),
        )
    };
    Case {
        entry,
        value,
        without,
        with,
    }
}

#[test]
fn every_declared_op_on_every_patchable_path_does_what_rfc_6902_says() {
    let contract = Contract::load();
    let mut runner = TestRunner::deterministic();
    let mut checked = 0;
    for entry in facts::PATCHABLE {
        let case = case(&contract, entry, &mut runner);
        for op in entry.ops {
            match op.to_string().as_str() {
                "add" | "replace" => set(&case, *op),
                "remove" => remove(&case, *op),
                "test" => test(&case, *op),
                "move" | "copy" => take_from(&contract, &case, *op),
                other => panic!("{}: `{other}` is not an op of RFC 6902", entry.pointer),
            }
            checked += 1;
        }
        refuses_another_type(&contract, &case);
    }
    let declared: usize = facts::PATCHABLE.iter().map(|entry| entry.ops.len()).sum();
    assert_eq!(checked, declared, "every declared op is checked");
    let outside = operation(
        JsonPatchOp::Replace,
        "/organizationName",
        Some(r#""F""#),
        None,
    );
    assert!(matches!(
        patch::apply(&mut Referral::default(), &outside),
        Err(PatchError::UnknownPath { .. })
    ));
}

/// `add` and `replace` set the member (or append the item), whether it was there or not, and
/// refuse an operation without a value.
fn set(case: &Case, op: JsonPatchOp) {
    let pointer = case.entry.pointer;
    let done = applied(&case.without(), &case.op(op, true, None))
        .unwrap_or_else(|error| panic!("{op} {pointer} {}: {error}", case.value));
    assert_eq!(written(&done), written(&case.with()), "{op} {pointer}");
    if !pointer.ends_with("/-") {
        let again = applied(&case.with(), &case.op(op, true, None)).unwrap();
        assert_eq!(
            written(&again),
            written(&case.with()),
            "{op} {pointer} again"
        );
    }
    let bare = applied(&case.without(), &case.op(op, false, None));
    assert!(
        matches!(bare, Err(PatchError::Value { .. })),
        "{op} {pointer} without a value: {bare:?}"
    );
}

/// `remove` takes the member away, and fails when it is absent.
fn remove(case: &Case, op: JsonPatchOp) {
    let pointer = case.entry.pointer;
    let done = applied(&case.with(), &case.op(op, false, None))
        .unwrap_or_else(|error| panic!("remove {pointer}: {error}"));
    assert_eq!(written(&done), written(&case.without()), "remove {pointer}");
    let absent = applied(&case.without(), &case.op(op, false, None));
    assert!(
        matches!(absent, Err(PatchError::Absent { .. })),
        "remove {pointer} when absent: {absent:?}"
    );
}

/// `test` passes, changing nothing, when the member holds the value, and fails when it is absent.
fn test(case: &Case, op: JsonPatchOp) {
    let pointer = case.entry.pointer;
    let done = applied(&case.with(), &case.op(op, true, None))
        .unwrap_or_else(|error| panic!("test {pointer} {}: {error}", case.value));
    assert_eq!(written(&done), written(&case.with()), "test {pointer}");
    let absent = applied(&case.without(), &case.op(op, true, None));
    assert!(
        matches!(absent, Err(PatchError::Test { .. })),
        "test {pointer} when absent: {absent:?}"
    );
    let bare = applied(&case.with(), &case.op(op, false, None));
    assert!(
        matches!(bare, Err(PatchError::Value { .. })),
        "test {pointer} without a value: {bare:?}"
    );
}

/// `move` and `copy` from another path of the same shape (or the path itself when there is
/// none): the value arrives, and leaves `from` for a move; an absent `from`, a missing one and
/// one that is no patchable member fail.
fn take_from(contract: &Contract, case: &Case, op: JsonPatchOp) {
    let pointer = case.entry.pointer;
    let moves = op.to_string() == "move";
    let from = source(contract, pointer, moves);
    let parsed: Value = serde_json::from_str(&case.value).unwrap();
    let start = put(case.without.clone(), from.pointer(), Some(&parsed));
    let mut expected = put(start.clone(), pointer, Some(&parsed));
    if moves && from.pointer() != pointer {
        expected = put(expected, from.pointer(), None);
    }
    let done = applied(&referral(start, pointer), &case.op(op, false, Some(from)))
        .unwrap_or_else(|error| panic!("{op} {pointer} from {from}: {error}"));
    assert_eq!(
        written(&done),
        written(&referral(expected, pointer)),
        "{op} {pointer} from {from}"
    );

    let empty = put(case.without.clone(), from.pointer(), None);
    let absent = applied(&referral(empty, pointer), &case.op(op, false, Some(from)));
    assert!(
        matches!(absent, Err(PatchError::Absent { .. })),
        "{op} {pointer} from an absent {from}: {absent:?}"
    );
    let missing = applied(&case.with(), &case.op(op, false, None));
    assert!(
        matches!(missing, Err(PatchError::From { .. })),
        "{op} {pointer} without from: {missing:?}"
    );
    let elsewhere = operation(op, pointer, None, Some("/organizationName"));
    let elsewhere = applied(&case.with(), &elsewhere);
    assert!(
        matches!(elsewhere, Err(PatchError::From { .. })),
        "{op} {pointer} from /organizationName: {elsewhere:?}"
    );
}

/// A patchable member of the same shape as `pointer`'s to move (it takes `remove`) or copy
/// from, another one when there is one.
fn source(contract: &Contract, pointer: &str, moves: bool) -> PatchPath {
    let model = &contract.model;
    let shape = strip(model, &shape_of_pointer(model, "Referral", pointer));
    let candidates: Vec<PatchPath> = PatchPath::ALL
        .iter()
        .copied()
        .filter(|path| strip(model, &shape_of_pointer(model, "Referral", path.pointer())) == shape)
        .filter(|path| {
            !moves
                || facts::PATCHABLE.iter().any(|entry| {
                    entry.pointer == path.pointer()
                        && entry.ops.iter().any(|op| op.to_string() == "remove")
                })
        })
        .collect();
    candidates
        .iter()
        .copied()
        .find(|path| path.pointer() != pointer)
        .or_else(|| candidates.first().copied())
        .unwrap_or_else(|| panic!("no patchable member has the shape of {pointer} to take from"))
}

/// A value that no member of the document has (an object with an unknown member) is refused
/// where the member is not an object.
fn refuses_another_type(contract: &Contract, case: &Case) {
    let pointer = case.entry.pointer;
    let model = &contract.model;
    let shape = strip(model, &shape_of_pointer(model, "Referral", pointer));
    let takes_object = matches!(shape, referrals_contract_tests::model::Shape::Object { .. });
    let Some(op) = case
        .entry
        .ops
        .iter()
        .find(|op| ["add", "replace"].contains(&op.to_string().as_str()))
    else {
        return;
    };
    let wrong = operation(*op, pointer, Some(r#"{"not":"a member's value"}"#), None);
    let applied = applied(&case.without(), &wrong);
    if !takes_object {
        assert!(
            matches!(applied, Err(PatchError::Value { .. })),
            "{pointer}: {applied:?}"
        );
    }
}
