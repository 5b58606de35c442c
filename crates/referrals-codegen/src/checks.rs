//! Rules that the document must follow for the generated client to be right, checked before
//! progenitor runs. Each one guards against a mistake that would otherwise compile silently.

use openapiv3::OpenAPI;
use serde_json::Value;

use crate::open_enum::{self, OpenEnum};
use crate::settings::AMOUNT;
use crate::{Culprit, Error};

/// Checks every rule; the first broken one is returned.
pub fn check(
    path: &std::path::Path,
    openapi: &OpenAPI,
    open_enums: &[OpenEnum],
) -> Result<(), Error> {
    for open in open_enums {
        open_enum::check(open).map_err(|message| Error::Rule {
            path: path.to_owned(),
            culprit: Culprit::Schema(open.name.clone()),
            message,
        })?;
    }
    money_goes_through_amount(path, openapi)
}

/// A bare `type: number` would become `f64` in Rust, and money must never pass through binary
/// floating point: every number of the document is the `Amount` schema or refers to it, or says
/// that it is a binary float (`format: float` or `double`: a measure, never money).
fn money_goes_through_amount(path: &std::path::Path, openapi: &OpenAPI) -> Result<(), Error> {
    let document = serde_json::to_value(openapi).expect("an OpenAPI value serializes to JSON");
    let amount_ref = Value::String(format!("#/components/schemas/{AMOUNT}"));
    let mut offenders = Vec::new();
    walk(&document, &mut String::new(), &mut |pointer, object| {
        let is_number = object.get("type") == Some(&Value::String("number".into()))
            && !matches!(
                object.get("format").and_then(Value::as_str),
                Some("float" | "double")
            );
        let is_amount = pointer == format!("/components/schemas/{AMOUNT}");
        let wraps_amount = object
            .get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|all| all.len() == 1 && all[0].get("$ref") == Some(&amount_ref));
        if is_number && !is_amount && !wraps_amount {
            offenders.push(pointer.to_owned());
        }
    });
    match offenders.first() {
        None => Ok(()),
        Some(first) => Err(Error::Rule {
            path: path.to_owned(),
            culprit: culprit_of(openapi, first),
            message: format!(
                "`type: number` at #{first} would be a binary float in Rust: money must refer \
                 to the `{AMOUNT}` schema (allOf: [$ref: '#/components/schemas/{AMOUNT}']), and a \
                 measure that a binary float holds says so (`format: double` or `float`)"
            ),
        }),
    }
}

/// Names the schema or operation that holds a JSON pointer.
pub fn culprit_of(openapi: &OpenAPI, pointer: &str) -> Culprit {
    let parts: Vec<_> = pointer.split('/').skip(1).map(unescape).collect();
    match parts.as_slice() {
        [components, schemas, name, ..] if components == "components" && schemas == "schemas" => {
            Culprit::Schema(name.clone())
        }
        [paths, path, method, ..] if paths == "paths" => Culprit::Operation {
            operation_id: openapi
                .paths
                .paths
                .get(path)
                .and_then(|item| item.as_item())
                .and_then(|item| item.iter().find(|(m, _)| m == method))
                .and_then(|(_, operation)| operation.operation_id.clone())
                .unwrap_or_else(|| "(no operationId)".into()),
            method: method.to_uppercase(),
            path: path.clone(),
        },
        _ => Culprit::Document,
    }
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

pub(crate) fn walk(
    value: &Value,
    pointer: &mut String,
    visit: &mut dyn FnMut(&str, &serde_json::Map<String, Value>),
) {
    match value {
        Value::Object(object) => {
            visit(pointer, object);
            for (key, child) in object {
                let length = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                walk(child, pointer, visit);
                pointer.truncate(length);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                let length = pointer.len();
                pointer.push_str(&format!("/{index}"));
                walk(child, pointer, visit);
                pointer.truncate(length);
            }
        }
        _ => {}
    }
}
