//! Members that the synthetic referrals would otherwise never carry, drawn from the document's
//! schemas: each member of `Referral` (and of the objects inside it) that a synthetic referral
//! leaves out gets, now and then, a value drawn from its schema (a value of its set, a
//! date-time, a number in its range, a text within its length). So every member of the
//! document, the service-set ones included, appears in some referrals, and a member added to
//! the document appears without an edit here.

use fastrand::Rng;
use serde_json::{Map, Value};

/// How deep objects are filled.
const DEPTH: usize = 4;

/// The document, parsed once.
fn document() -> &'static Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        referrals_document::parse(referrals_document::REFERRALS_YAML)
            .expect("the embedded document is valid YAML")
    })
}

/// Fills the members of `referral` (a `Referral` as JSON) that it leaves out, each with a
/// chance of one in `one_in`.
pub(crate) fn fill(referral: &mut Value, rng: &mut Rng, one_in: u32) {
    let schema = &document()["components"]["schemas"]["Referral"];
    fill_object(referral, schema, rng, one_in, 0);
}

/// The schema behind `$ref` and an `allOf` of one, with the outer description's siblings
/// (such as `nullable`) dropped.
fn resolve(schema: &Value) -> &Value {
    let mut schema = schema;
    for _ in 0..8 {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next().unwrap_or_default();
            schema = &document()["components"]["schemas"][name];
        } else if let Some([only]) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            schema = only;
        } else {
            break;
        }
    }
    schema
}

fn fill_object(value: &mut Value, schema: &Value, rng: &mut Rng, one_in: u32, depth: usize) {
    let schema = resolve(schema);
    let (Some(members), Some(properties)) = (
        value.as_object_mut(),
        schema.get("properties").and_then(Value::as_object),
    ) else {
        return;
    };
    for (name, member) in properties {
        match members.get_mut(name) {
            Some(present) if !present.is_null() => {
                if present.is_object() && depth < DEPTH {
                    fill_object(present, member, rng, one_in, depth + 1);
                }
            }
            _ => {
                if rng.u32(..one_in.max(1)) == 0
                    && let Some(drawn) = draw(member, name, rng, depth)
                {
                    members.insert(name.clone(), drawn);
                }
            }
        }
    }
}

/// A value that `schema` allows, or `None` when none is drawn easily (a pattern).
fn draw(schema: &Value, name: &str, rng: &mut Rng, depth: usize) -> Option<Value> {
    let schema = resolve(schema);
    if let Some(branches) = schema.get("oneOf").or_else(|| schema.get("anyOf")) {
        return draw(branches.as_array()?.first()?, name, rng, depth);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<&Value> = values.iter().filter(|value| !value.is_null()).collect();
        return (!values.is_empty()).then(|| values[rng.usize(..values.len())].clone());
    }
    if schema.get("pattern").is_some() {
        return None;
    }
    let Some(kind) = schema.get("type").and_then(Value::as_str) else {
        // A schema of any value (`{}`): a text.
        let any = schema.as_object().is_some_and(Map::is_empty);
        return any.then(|| Value::from(text(schema, name, rng)));
    };
    match kind {
        "string" => Some(Value::from(text(schema, name, rng))),
        "integer" => Some(Value::from(number(schema, rng))),
        "number" => Some(Value::from(number(schema, rng))),
        "boolean" => Some(Value::from(rng.bool())),
        "array" if depth < DEPTH => {
            let item = draw(schema.get("items")?, name, rng, depth + 1)?;
            Some(Value::Array(vec![item]))
        }
        "object" if depth < DEPTH => {
            let mut object = Value::Object(Map::new());
            fill_object(&mut object, schema, rng, 1, depth + 1);
            Some(object)
        }
        _ => None,
    }
}

fn text(schema: &Value, name: &str, rng: &mut Rng) -> String {
    match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => format!("2024-{:02}-{:02}T10:00:00Z", rng.u32(1..13), rng.u32(1..29)),
        Some("date") => format!("2024-{:02}-{:02}", rng.u32(1..13), rng.u32(1..29)),
        Some("uuid") => uuid::Uuid::from_u128(rng.u128(..)).to_string(),
        Some("email") => format!("someone{}@contoso.com", rng.u32(..1000)),
        Some("uri") => format!("https://contoso.com/{}", rng.u32(..1000)),
        _ => {
            let most = schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .and_then(|most| usize::try_from(most).ok())
                .unwrap_or(64);
            let least = schema
                .get("minLength")
                .and_then(Value::as_u64)
                .and_then(|least| usize::try_from(least).ok())
                .unwrap_or(0);
            let mut text = format!("{name} {}", rng.u32(..1000));
            while text.len() < least {
                text.push('x');
            }
            text.chars().take(most.max(least)).collect()
        }
    }
}

fn number(schema: &Value, rng: &mut Rng) -> i64 {
    let least = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
    let most = schema
        .get("maximum")
        .and_then(Value::as_i64)
        .unwrap_or(least.saturating_add(100));
    if most <= least {
        least
    } else {
        rng.i64(least..=most)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use referrals_model::types::Referral;

    /// Every member of the document's `Referral` appears in some synthetic referrals, and
    /// every filled referral satisfies the document's schema and decodes into the model.
    #[test]
    fn every_member_appears_and_every_referral_is_valid() {
        let referrals = crate::seed::synthetic(400, 7, "http://127.0.0.1");
        let validators = referrals_document::Validators::new(document());
        let mut seen = std::collections::BTreeSet::new();
        for referral in &referrals {
            let json = serde_json::to_value(referral).unwrap();
            let violations = validators.check_component("Referral", &json);
            assert!(violations.is_empty(), "{violations:?}");
            let _: Referral = serde_json::from_value(json.clone()).unwrap();
            seen.extend(json.as_object().unwrap().keys().cloned());
        }
        let declared = document()["components"]["schemas"]["Referral"]["properties"]
            .as_object()
            .unwrap();
        let never: Vec<&String> = declared
            .keys()
            .filter(|name| !seen.contains(*name))
            .collect();
        assert!(
            never.is_empty(),
            "members that no synthetic referral carries: {never:?}"
        );
    }
}
