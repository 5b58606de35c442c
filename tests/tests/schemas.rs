//! The types say what the document says, checked from the types' side: for every component
//! schema, the JSON Schema that `schemars` derives from the generated type (with the model's
//! feature `schemars`) has the same wire names, the same required members, the same value sets
//! (open ones included), date-times and money as the document describes them. A member renamed
//! or retyped by a pass of the code generator fails here even when no example carries it.
//!
//! One named test per component schema: `schema::<Name>`.

use std::collections::BTreeSet;

use libtest_mimic::{Arguments, Failed, Trial};
use referrals_contract_tests::codec::{Codec, TypeVisitor, visit};
use referrals_contract_tests::spec::Spec;
use serde_json::Value;

/// What a place of a schema holds, as far as this comparison goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A component schema, by name.
    Ref(String),
    String,
    DateTime,
    Number(Option<String>),
    Integer,
    Boolean,
    Array(Box<Kind>),
    /// Values of a closed list.
    Enum(Vec<String>),
    /// Known values, and any other string.
    OpenEnum(Vec<String>),
    /// Any value.
    Any,
    /// An object, its members compared on their own.
    Object,
    /// One of several shapes.
    OneOf(Vec<Kind>),
}

const PREFIX: &str = "#/components/schemas/";

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The kind of a schema object, from either side: the document (OpenAPI 3.0) or schemars (with
/// its OpenAPI 3 settings). `null` is left out: both sides write nullability, in their own way.
fn kind(schema: &Value) -> Kind {
    if schema == &Value::Bool(true) {
        return Kind::Any;
    }
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        return Kind::Ref(target.trim_start_matches(PREFIX).to_owned());
    }
    // A reference wrapped to be nullable or described: `allOf: [{$ref}]`.
    if let Some([only]) = schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return kind(only);
    }
    let branches = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array);
    if let Some(branches) = branches {
        let branches: Vec<&Value> = branches
            .iter()
            .filter(|branch| branch.get("type") != Some(&Value::String("null".into())))
            .collect();
        if let [known, any] = branches.as_slice()
            && known.get("enum").is_some()
            && any.get("enum").is_none()
            && any.get("type") == Some(&Value::String("string".into()))
        {
            return Kind::OpenEnum(strings(known.get("enum")));
        }
        if let [only] = branches.as_slice() {
            return kind(only);
        }
        let kinds: Vec<Kind> = branches.into_iter().map(kind).collect();
        // A closed list whose values each have their own description is written by schemars as
        // one branch per value.
        if kinds.iter().all(|kind| matches!(kind, Kind::Enum(_))) {
            return Kind::Enum(
                kinds
                    .into_iter()
                    .flat_map(|kind| match kind {
                        Kind::Enum(values) => values,
                        _ => Vec::new(),
                    })
                    .collect(),
            );
        }
        return Kind::OneOf(kinds);
    }
    if schema.get("enum").is_some() {
        return Kind::Enum(strings(schema.get("enum")));
    }
    let types: Vec<String> = match schema.get("type") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .filter(|name| *name != "null")
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let format = schema.get("format").and_then(Value::as_str);
    match types.first().map(String::as_str) {
        Some("string") if format == Some("date-time") => Kind::DateTime,
        Some("string") => Kind::String,
        Some("number") => Kind::Number(format.map(str::to_owned)),
        Some("integer") => Kind::Integer,
        Some("boolean") => Kind::Boolean,
        Some("array") => Kind::Array(Box::new(schema.get("items").map_or(Kind::Any, kind))),
        Some("object") => Kind::Object,
        _ if schema.get("properties").is_some() => Kind::Object,
        _ => Kind::Any,
    }
}

/// A member of an object schema: its kind and whether it is required.
fn members(schema: &Value) -> Vec<(String, Kind)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .map(|(name, property)| (name.clone(), kind(property)))
                .collect()
        })
        .unwrap_or_default()
}

/// The JSON Schema of the generated type of a component, and the schemas it refers to.
struct Derived;

impl TypeVisitor for Derived {
    type Output = Value;

    fn visit<T: Codec>(self, _: &'static str) -> Value {
        let generator = schemars::r#gen::SchemaSettings::openapi3().into_generator();
        serde_json::to_value(generator.into_root_schema_for::<T>()).expect("a schema serializes")
    }
}

/// The derived schema of a component, which schemars writes at the root, or, for a type whose
/// schema it names (such as an open value set), among its definitions.
fn derived(name: &str) -> Value {
    let root = visit(name, Derived).expect("every component has a generated type");
    match root.get("$ref").and_then(Value::as_str) {
        Some(target) => root["definitions"][target.trim_start_matches(PREFIX)].clone(),
        None => root,
    }
}

/// Compares the component `name` of the document with its generated type.
fn compare(spec: &Spec, name: &str) -> Result<(), Failed> {
    let document = spec.component(name).expect("listed").clone();
    let derived = derived(name);
    let mut differences = Vec::new();

    let (wanted, found) = (kind(&document), kind(&derived));
    if wanted != found && !matches!((&wanted, &found), (Kind::Object, Kind::Object)) {
        differences.push(format!("the document says {wanted:?}, the type {found:?}"));
    }

    let (wanted, found) = (members(&document), members(&derived));
    let names = |members: &[(String, Kind)]| -> BTreeSet<String> {
        members.iter().map(|(name, _)| name.clone()).collect()
    };
    for missing in names(&wanted).difference(&names(&found)) {
        differences.push(format!(
            "the member `{missing}` of the document is not in the type"
        ));
    }
    for extra in names(&found).difference(&names(&wanted)) {
        differences.push(format!(
            "the type has a member `{extra}` that the document does not"
        ));
    }
    for (member, wanted_kind) in &wanted {
        if let Some((_, found_kind)) = found.iter().find(|(name, _)| name == member)
            && found_kind != wanted_kind
        {
            differences.push(format!(
                "`{member}`: the document says {wanted_kind:?}, the type {found_kind:?}"
            ));
        }
    }

    let required = |schema: &Value| -> BTreeSet<String> {
        strings(schema.get("required")).into_iter().collect()
    };
    if required(&document) != required(&derived) {
        differences.push(format!(
            "required members: the document says {:?}, the type {:?}",
            required(&document),
            required(&derived)
        ));
    }

    let open = |schema: &Value| match schema.get("additionalProperties") {
        None | Some(Value::Bool(false)) => false,
        Some(_) => true,
    };
    if document.get("properties").is_some() && open(&document) != open(&derived) {
        differences.push(format!(
            "unknown members: the document {} them, the type {} them",
            if open(&document) { "keeps" } else { "refuses" },
            if open(&derived) { "keeps" } else { "refuses" },
        ));
    }

    if differences.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{name}:\n  {}\n\nderived: {}",
            differences.join("\n  "),
            serde_json::to_string(&derived).unwrap_or_default()
        )
        .into())
    }
}

fn main() {
    let arguments = Arguments::from_args();
    let spec = std::sync::Arc::new(Spec::load());
    let trials = spec
        .component_names()
        .into_iter()
        .map(|name| {
            let spec = spec.clone();
            Trial::test(format!("schema::{name}"), move || compare(&spec, &name))
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit();
}
