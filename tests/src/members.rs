//! The members of the resource that the tests address by path: the shape at a path, and a
//! value made for it by the generator of the property tests.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use crate::generate;
use crate::json::Json;
use crate::model::{Model, Shape};

/// The shape at the end of `segments` from the schema `root`, passing through arrays.
pub fn shape_at(model: &Model, root: &str, segments: &[&str]) -> Shape {
    let mut shape = Shape::Ref(root.into());
    for segment in segments {
        shape = strip(model, &shape);
        if let Shape::Array(items) = shape {
            shape = strip(model, &items);
        }
        let Shape::Object { properties, .. } = shape else {
            panic!("{segments:?}: `{segment}` is inside a value that has no members");
        };
        shape = properties
            .iter()
            .find(|(name, _)| name == segment)
            .unwrap_or_else(|| panic!("{segments:?}: no member `{segment}`"))
            .1
            .clone();
    }
    shape
}

/// `shape` without `nullable` and references, but an open value set or money, which are kinds of
/// their own.
pub fn strip(model: &Model, shape: &Shape) -> Shape {
    match shape {
        Shape::Nullable(inner) => strip(model, inner),
        Shape::Ref(name) if name == "Amount" => Shape::Number { format: None },
        Shape::Ref(_) => strip(model, model.resolve(shape)),
        other => other.clone(),
    }
}

/// The member names of a JSON Pointer, without a final `-` (which appends to an array).
pub fn segments(pointer: &str) -> Vec<&str> {
    pointer
        .trim_start_matches('/')
        .split('/')
        .filter(|segment| *segment != "-")
        .collect()
}

/// The shape of the member (or, for `/-`, of an item) at `pointer` of the schema `root`.
pub fn shape_of_pointer(model: &Model, root: &str, pointer: &str) -> Shape {
    let shape = shape_at(model, root, &segments(pointer));
    if !pointer.ends_with("/-") {
        return shape;
    }
    match strip(model, &shape) {
        Shape::Array(items) => *items,
        other => panic!("{pointer}: not an array: {other:?}"),
    }
}

/// A value, not null, for the member (or, for `/-`, the item) at `pointer` of `root`, as JSON
/// text: `null` clears a member, which says nothing of its type.
pub fn value_at(model: &Model, root: &str, pointer: &str, runner: &mut TestRunner) -> String {
    let shape = shape_of_pointer(model, root, pointer);
    for _ in 0..1000 {
        let value = generate::shape(model, &shape, 2)
            .new_tree(runner)
            .unwrap()
            .current();
        if value != Json::Null {
            return value.to_text();
        }
    }
    panic!("{pointer}: the generator made only null");
}
