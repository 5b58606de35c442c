//! The document's schemas as JSON Schema, and a validator per schema.
//!
//! OpenAPI 3.0 schema objects are a dialect of JSON Schema draft 4 that a JSON Schema validator
//! misreads in two places: `nullable: true` (which it ignores, so `null` would be refused) and
//! boolean `exclusiveMinimum`/`exclusiveMaximum`. The conversion below rewrites those, drops the
//! OpenAPI-only keywords, and keeps `$ref`s into `#/components/schemas`, which resolve inside
//! the converted document.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

/// OpenAPI keywords with no meaning in JSON Schema.
const OPENAPI_ONLY: [&str; 5] = [
    "nullable",
    "discriminator",
    "xml",
    "externalDocs",
    "example",
];

/// Converts one OpenAPI 3.0 schema object to JSON Schema (draft 2020-12).
pub fn to_json_schema(schema: &Value) -> Value {
    let Value::Object(object) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in object {
        if OPENAPI_ONLY.contains(&key.as_str()) {
            continue;
        }
        let converted = match key.as_str() {
            "properties" => Value::Object(
                value
                    .as_object()
                    .map(|properties| {
                        properties
                            .iter()
                            .map(|(name, property)| (name.clone(), to_json_schema(property)))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" => to_json_schema(value),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(to_json_schema)
                    .collect(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        match out.get(flag) {
            Some(Value::Bool(true)) => {
                let limit = out.remove(bound).unwrap_or(Value::Null);
                out.insert(flag.to_owned(), limit);
            }
            Some(Value::Bool(false)) => {
                out.remove(flag);
            }
            _ => {}
        }
    }
    let converted = Value::Object(out);
    if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        // `type: [x, "null"]` would not do: a sibling `allOf`/`$ref` still refuses null.
        json!({ "anyOf": [{ "type": "null" }, converted] })
    } else {
        converted
    }
}

/// Validators of payloads against the document's schemas.
pub struct Validators {
    root: Value,
    cache: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

/// A payload that does not match its schema: where, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// A JSON Pointer into the payload (`/value/0/status`), empty for the root.
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

impl Validators {
    /// Converts every component schema of the document `doc` (as JSON).
    pub fn new(doc: &Value) -> Self {
        let schemas: Map<String, Value> = crate::component_names(doc)
            .into_iter()
            .map(|name| {
                let schema = doc
                    .pointer(&format!("/components/schemas/{name}"))
                    .expect("listed");
                (name, to_json_schema(schema))
            })
            .collect();
        Self {
            root: json!({ "components": { "schemas": schemas } }),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The violations of `instance` against the component schema `name`.
    pub fn check_component(&self, name: &str, instance: &Value) -> Vec<Violation> {
        self.check(
            &json!({ "$ref": format!("#/components/schemas/{name}") }),
            instance,
        )
    }

    /// The violations of `instance` against `schema`, an OpenAPI schema object of the document
    /// (usually `{"$ref": "#/components/schemas/Name"}`).
    pub fn check(&self, schema: &Value, instance: &Value) -> Vec<Violation> {
        let validator = self.validator(schema);
        let mut violations = Vec::new();
        for error in validator.iter_errors(instance) {
            explain(&error, &mut violations);
        }
        violations
    }

    fn validator(&self, schema: &Value) -> std::sync::Arc<jsonschema::Validator> {
        let key = schema.to_string();
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(validator) = cache.get(&key) {
            return validator.clone();
        }
        let mut document = self.root.clone();
        let converted = to_json_schema(schema);
        if let (Value::Object(document), Value::Object(converted)) = (&mut document, converted) {
            document.extend(converted);
            document.insert(
                "$schema".into(),
                Value::String("https://json-schema.org/draft/2020-12/schema".into()),
            );
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&document)
            .unwrap_or_else(|error| {
                panic!("the document's schema {schema} does not compile: {error}")
            });
        let validator = std::sync::Arc::new(validator);
        cache.insert(key, validator.clone());
        validator
    }
}

/// The most specific reasons behind `error`. A failed `anyOf`/`oneOf` is replaced by the
/// errors of its most telling branch: not the `null` branch that `nullable` adds, and among the
/// others the one whose errors reach deepest into the payload.
fn explain(error: &jsonschema::ValidationError<'_>, into: &mut Vec<Violation>) {
    use jsonschema::error::{TypeKind, ValidationErrorKind};
    let branches = match error.kind() {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            context
        }
        _ => {
            let found = error.instance().to_string();
            let found = if found.chars().count() > 80 {
                format!("{}…", found.chars().take(80).collect::<String>())
            } else {
                found
            };
            into.push(Violation {
                pointer: error.instance_path().as_str().to_owned(),
                message: format!("{} (found {found})", error.masked_with("the value")),
            });
            return;
        }
    };
    let only_null = |branch: &Vec<jsonschema::ValidationError<'static>>| {
        !branch.is_empty()
            && branch.iter().all(|error| {
                matches!(
                    error.kind(),
                    ValidationErrorKind::Type {
                        kind: TypeKind::Single(jsonschema::JsonType::Null)
                    }
                )
            })
    };
    let depth = |branch: &Vec<jsonschema::ValidationError<'static>>| {
        branch
            .iter()
            .map(|error| error.instance_path().as_str().len())
            .max()
            .unwrap_or(0)
    };
    let best = branches
        .iter()
        .filter(|branch| !only_null(branch))
        .max_by_key(|branch| depth(branch));
    match best {
        Some(branch) if !branch.is_empty() => branch.iter().for_each(|error| explain(error, into)),
        _ => into.push(Violation {
            pointer: error.instance_path().as_str().to_owned(),
            message: error.masked_with("the value").to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_admits_null_beside_a_reference() {
        let converted = to_json_schema(&json!({
            "type": "string", "nullable": true,
            "allOf": [{ "$ref": "#/components/schemas/X" }]
        }));
        assert_eq!(
            converted,
            json!({ "anyOf": [{ "type": "null" }, {
                "type": "string", "allOf": [{ "$ref": "#/components/schemas/X" }]
            }]})
        );
    }

    #[test]
    fn boolean_exclusive_bounds_become_numbers() {
        let converted =
            to_json_schema(&json!({ "type": "integer", "minimum": 3, "exclusiveMinimum": true }));
        assert_eq!(
            converted,
            json!({ "type": "integer", "exclusiveMinimum": 3 })
        );
    }
}
