//! The walk of an answer's JSON against the JSON Schema of the generated types (schemars, made
//! from the same document): every member that the schema does not declare, every value outside
//! a known set (closed or open), and every member whose JSON type is not the schema's.

use std::collections::BTreeMap;

use schemars::schema::{InstanceType, Schema, SchemaObject, SingleOrVec};
use serde_json::Value;

/// What the walks found, counted.
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct Findings {
    /// Members the document does not declare: path → count.
    pub(super) undeclared: BTreeMap<String, u64>,
    /// Values outside the known set: (path, value) → count.
    pub(super) values: BTreeMap<(String, String), u64>,
    /// Members of another JSON type: (path, the document's type, the type met) → count.
    pub(super) types: BTreeMap<(String, String, String), u64>,
    /// Answers of a status that the document does not list for the operation: status → count.
    pub(super) statuses: BTreeMap<u16, u64>,
    /// Headers that the document does not declare for the answer: name → count.
    pub(super) headers: BTreeMap<String, u64>,
}

impl Findings {
    pub(super) fn is_empty(&self) -> bool {
        self.undeclared.is_empty()
            && self.values.is_empty()
            && self.types.is_empty()
            && self.statuses.is_empty()
            && self.headers.is_empty()
    }
}

fn bump<K: Ord>(map: &mut BTreeMap<K, u64>, key: K) {
    let count = map.entry(key).or_default();
    *count = count.saturating_add(1);
}

/// A walk of values against one root schema and its definitions.
pub(super) struct Walker<'a> {
    pub(super) definitions: &'a schemars::Map<String, Schema>,
    pub(super) findings: &'a mut Findings,
}

impl Walker<'_> {
    /// Walks `value` at `path` against `schema`.
    pub(super) fn walk(&mut self, value: &Value, schema: &Schema, path: &str) {
        let Some(object) = self.resolve(schema) else {
            return;
        };
        if value.is_null() {
            return;
        }
        if let Some(branches) = object
            .subschemas
            .as_ref()
            .and_then(|sub| sub.any_of.as_ref())
        {
            return self.any_of(value, branches, path);
        }
        if let Some(known) = &object.enum_values {
            if !known.contains(value) {
                bump(&mut self.findings.values, (path.to_owned(), text(value)));
            }
            return;
        }
        if let Some(types) = &object.instance_type
            && !matches_type(value, types)
        {
            let key = (
                path.to_owned(),
                type_names(types),
                json_type(value).to_owned(),
            );
            bump(&mut self.findings.types, key);
            return;
        }
        self.walk_inside(value, &object, path);
    }

    /// The members of an object, the items of an array.
    fn walk_inside(&mut self, value: &Value, object: &SchemaObject, path: &str) {
        match value {
            Value::Object(members) => {
                let Some(declared) = &object.object else {
                    return;
                };
                for (name, member) in members {
                    let at = join(path, name);
                    match declared.properties.get(name) {
                        Some(schema) => self.walk(member, schema, &at),
                        None => bump(&mut self.findings.undeclared, at),
                    }
                }
            }
            Value::Array(items) => {
                let items_schema = object.array.as_ref().and_then(|array| array.items.as_ref());
                if let Some(SingleOrVec::Single(schema)) = items_schema {
                    let at = format!("{path}[]");
                    for item in items {
                        self.walk(item, schema, &at);
                    }
                }
            }
            _ => {}
        }
    }

    /// `anyOf` or `oneOf`: an open value set (one of the known values, or any other string), a
    /// nullable wrapper of one schema, or shapes of another kind each (the branch of the
    /// value's JSON type is walked).
    fn any_of(&mut self, value: &Value, branches: &[Schema], path: &str) {
        let branches: Vec<SchemaObject> = branches
            .iter()
            .filter_map(|branch| self.resolve(branch))
            .filter(|branch| !is_null_only(branch))
            .collect();
        let known = branches
            .iter()
            .find_map(|branch| branch.enum_values.as_ref());
        match (known, value) {
            (Some(known), Value::String(_)) => {
                if !known.contains(value) {
                    bump(&mut self.findings.values, (path.to_owned(), text(value)));
                }
            }
            (Some(_), _) => {
                let key = (
                    path.to_owned(),
                    "string".to_owned(),
                    json_type(value).to_owned(),
                );
                bump(&mut self.findings.types, key);
            }
            (None, _) => {
                let fits = |branch: &&SchemaObject| {
                    branch
                        .instance_type
                        .as_ref()
                        .is_none_or(|types| matches_type(value, types))
                };
                match branches.iter().find(fits) {
                    Some(branch) => self.walk(value, &Schema::Object(branch.clone()), path),
                    None => {
                        let expected: Vec<String> = branches
                            .iter()
                            .filter_map(|branch| branch.instance_type.as_ref().map(type_names))
                            .collect();
                        let key = (
                            path.to_owned(),
                            expected.join(" or "),
                            json_type(value).to_owned(),
                        );
                        bump(&mut self.findings.types, key);
                    }
                }
            }
        }
    }

    /// The schema object behind references and an `allOf` of one.
    fn resolve(&self, schema: &Schema) -> Option<SchemaObject> {
        let mut object = match schema {
            Schema::Object(object) => object.clone(),
            Schema::Bool(_) => return None,
        };
        // A bounded walk: a reference to a reference, at most a few steps.
        for _ in 0..8 {
            if let Some(reference) = &object.reference {
                let name = reference.rsplit('/').next().unwrap_or_default();
                match self.definitions.get(name) {
                    Some(Schema::Object(target)) => object = target.clone(),
                    _ => return None,
                }
                continue;
            }
            match object
                .subschemas
                .as_ref()
                .and_then(|sub| sub.all_of.as_ref())
            {
                Some(all) if all.len() == 1 => match &all[0] {
                    Schema::Object(inner) => object = inner.clone(),
                    Schema::Bool(_) => return None,
                },
                _ => return Some(object),
            }
        }
        None
    }
}

fn is_null_only(object: &SchemaObject) -> bool {
    matches!(&object.instance_type, Some(SingleOrVec::Single(kind)) if **kind == InstanceType::Null)
}

fn matches_type(value: &Value, types: &SingleOrVec<InstanceType>) -> bool {
    let accepts = |kind: &InstanceType| match kind {
        InstanceType::Null => value.is_null(),
        InstanceType::Boolean => value.is_boolean(),
        InstanceType::Object => value.is_object(),
        InstanceType::Array => value.is_array(),
        InstanceType::Number => value.is_number(),
        InstanceType::String => value.is_string(),
        InstanceType::Integer => value.is_i64() || value.is_u64(),
    };
    match types {
        SingleOrVec::Single(kind) => accepts(kind),
        SingleOrVec::Vec(kinds) => kinds.iter().any(accepts),
    }
}

fn type_names(types: &SingleOrVec<InstanceType>) -> String {
    let name = |kind: &InstanceType| {
        serde_json::to_value(kind)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    match types {
        SingleOrVec::Single(kind) => name(kind),
        SingleOrVec::Vec(kinds) => kinds
            .iter()
            .filter(|kind| **kind != InstanceType::Null)
            .map(name)
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as the report shows it: a string's text, anything else as JSON, cut at 80
/// characters.
fn text(value: &Value) -> String {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    text.chars().take(80).collect()
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use referrals_client::types::ReferralList;

    fn walk(body: &str) -> Findings {
        let root = schemars::schema_for!(ReferralList);
        let mut findings = Findings::default();
        let value: Value = serde_json::from_str(body).unwrap();
        Walker {
            definitions: &root.definitions,
            findings: &mut findings,
        }
        .walk(&value, &Schema::Object(root.schema.clone()), "");
        findings
    }

    #[test]
    fn each_kind_of_drift_is_found_and_a_documented_answer_has_none() {
        let clean = walk(
            r#"{"value":[{"id":"a","status":"New","customerProfile":{"name":"C","address":{"country":"US"}}}]}"#,
        );
        assert!(clean.is_empty(), "{clean:?}");
        let drifted = walk(
            r#"{"value":[{"id":"a","sandboxUndeclared":"High","status":"SandboxPaused","qualification":"SandboxNope","customerProfile":{"name":7}}]}"#,
        );
        assert_eq!(
            drifted.undeclared.keys().collect::<Vec<_>>(),
            ["value[]/sandboxUndeclared"]
        );
        let values: Vec<_> = drifted
            .values
            .keys()
            .map(|(path, value)| format!("{path}={value}"))
            .collect();
        assert_eq!(
            values,
            [
                "value[]/qualification=SandboxNope",
                "value[]/status=SandboxPaused"
            ]
        );
        let types: Vec<_> = drifted.types.keys().collect();
        assert_eq!(types.len(), 1, "{types:?}");
        assert_eq!(types[0].0, "value[]/customerProfile/name");
        assert_eq!(
            (types[0].1.as_str(), types[0].2.as_str()),
            ("string", "number")
        );
    }

    #[test]
    fn a_member_of_several_shapes_takes_any_of_them_and_no_other() {
        for shape in ["[]", "{}", r#"[{"id":"y"}]"#] {
            let body = format!(r#"{{"value":[{{"customerProfile":{{"ids":{shape}}}}}]}}"#);
            assert!(walk(&body).is_empty(), "{shape}");
        }
        let odd = walk(r#"{"value":[{"customerProfile":{"ids":"x"}}]}"#);
        let (path, expected, found) = odd.types.keys().next().unwrap();
        assert_eq!(path, "value[]/customerProfile/ids");
        assert_eq!(
            (expected.as_str(), found.as_str()),
            ("array or object", "string")
        );
    }
}
