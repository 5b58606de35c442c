//! Schemas that contradict themselves, refused before anything is generated: a `type` beside a
//! `$ref` or an `allOf` whose schema has another type (the generator would make a type that no
//! value decodes into, such as an enum without variants), and an `enum` that no value of the
//! schema's type can take.
//!
//! The raw document is read here, not the parsed OpenAPI value, which drops what stands beside
//! a `$ref`.

use serde_json::Value;

use crate::Error;
use crate::checks::culprit_of;
use crate::document::Document;

/// How deep `$ref` and `allOf` are followed to find a schema's type (a cycle ends there).
const DEPTH: usize = 16;

/// Checks every schema of the document.
pub fn check(document: &Document) -> Result<(), Error> {
    let Ok(raw) = serde_norway::from_str::<Value>(&document.text) else {
        // The syntax was checked when the document was read.
        return Ok(());
    };
    let mut found = None;
    crate::checks::walk(&raw, &mut String::new(), &mut |pointer, object| {
        // An example is a payload, not a schema, whatever members it has.
        let in_example = pointer
            .split('/')
            .any(|segment| segment == "example" || segment == "examples");
        if found.is_none() && !in_example {
            found = contradiction(&raw, pointer, object);
        }
    });
    match found {
        None => Ok(()),
        Some((pointer, message)) => Err(Error::Rule {
            path: document.path.clone(),
            culprit: culprit_of(&document.openapi, &pointer),
            message,
        }),
    }
}

/// What contradicts itself in the schema `object` at `pointer`, if anything.
fn contradiction(
    raw: &Value,
    pointer: &str,
    object: &serde_json::Map<String, Value>,
) -> Option<(String, String)> {
    let declared = object.get("type").and_then(Value::as_str)?;
    let mut others: Vec<&Value> = object.get("$ref").into_iter().collect();
    if let Some(all) = object.get("allOf").and_then(Value::as_array) {
        others.extend(all.iter());
    }
    for other in others {
        let other = match other {
            Value::String(reference) => &serde_json::json!({ "$ref": reference }),
            other => other,
        };
        // Every integer is a number: `type: number` beside an integer schema narrows nothing.
        if let Some((found, at)) = type_of(raw, other, DEPTH)
            && found != declared
            && !(declared == "number" && found == "integer")
        {
            return Some((
                pointer.to_owned(),
                format!(
                    "#{pointer} says `type: {declared}`, and the schema it refers to (#{at}) is of \
                     `type: {found}`: no value is both. Keep one: take `type` out to use the \
                     schema it refers to, or take the `$ref`/`allOf` out for a {declared} of its own"
                ),
            ));
        }
    }
    enum_fits(pointer, object, declared)
}

/// The type of a schema, following `$ref` and `allOf`, with where it is stated.
fn type_of(raw: &Value, schema: &Value, depth: usize) -> Option<(String, String)> {
    let depth = depth.checked_sub(1)?;
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference.strip_prefix('#')?;
        let resolved = raw.pointer(target)?;
        if let Some(found) = resolved.get("type").and_then(Value::as_str) {
            return Some((found.to_owned(), target.to_owned()));
        }
        return type_of(raw, resolved, depth).map(|(found, _)| (found, target.to_owned()));
    }
    let of = |inner: &Value| match inner.get("type").and_then(Value::as_str) {
        Some(found) => Some((found.to_owned(), String::from("(an entry of it)"))),
        None => type_of(raw, inner, depth),
    };
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        return all.iter().find_map(of);
    }
    // A value set written `anyOf` (or `oneOf`) of branches of one type has that type.
    let branches = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)?;
    let types: Vec<(String, String)> = branches.iter().map(of).collect::<Option<_>>()?;
    let first = types.first()?.clone();
    types
        .iter()
        .all(|(found, _)| *found == first.0)
        .then_some(first)
}

/// An `enum` must be non-empty, and each value of the schema's type (or `null`, when the
/// schema is nullable).
fn enum_fits(
    pointer: &str,
    object: &serde_json::Map<String, Value>,
    declared: &str,
) -> Option<(String, String)> {
    let values = object.get("enum")?.as_array()?;
    let nullable = object.get("nullable").and_then(Value::as_bool) == Some(true);
    let fits = |value: &Value| match (declared, value) {
        (_, Value::Null) => nullable,
        ("string", Value::String(_)) | ("boolean", Value::Bool(_)) => true,
        ("integer", Value::Number(number)) => number.is_i64() || number.is_u64(),
        ("number", Value::Number(_)) => true,
        _ => false,
    };
    if values.is_empty() {
        return Some((
            pointer.to_owned(),
            format!("#{pointer}/enum is empty: no value can be one; list the values it takes"),
        ));
    }
    let wrong: Vec<String> = values
        .iter()
        .filter(|v| !fits(v))
        .map(Value::to_string)
        .collect();
    if wrong.is_empty() {
        return None;
    }
    Some((
        pointer.to_owned(),
        format!(
            "#{pointer}/enum holds {}, which no value of `type: {declared}` is{}: write each \
             value as a {declared}, or change the `type`",
            wrong.join(", "),
            if wrong.iter().any(|value| value == "null") {
                " (`null` needs `nullable: true`)"
            } else {
                ""
            }
        ),
    ))
}
