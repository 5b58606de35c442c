//! The API's facts as the document states them: keywords of OpenAPI (`required`, `readOnly`,
//! `paths`, parameters) and the vendor extensions of the resource schema (`x-filterable`,
//! `x-sortable`, `x-patchable`, `x-status-rules`, which the document's description defines).
//!
//! [`read`] checks every extension against the schemas it names, so that a filterable member
//! without a comparison, a patchable path that names no member or an unknown operator is an
//! error that names the schema, the entry and its line, before anything is generated.

use heck::ToShoutySnakeCase;
use openapiv3::{Parameter, ReferenceOr, SchemaKind, Type};
use serde_json::{Map, Value};

use crate::Error;
use crate::document::{Document, Key, locate};
use crate::open_enum::OpenEnum;
use crate::settings::AMOUNT;

mod members;
mod routes;

/// The extensions that this module reads.
pub const FILTERABLE: &str = "x-filterable";
/// See [`FILTERABLE`].
pub const SORTABLE: &str = "x-sortable";
/// See [`FILTERABLE`].
pub const PATCHABLE: &str = "x-patchable";
/// See [`FILTERABLE`].
pub const STATUS_RULES: &str = "x-status-rules";
/// The roles that may call the API, on a security scheme.
pub const ROLES: &str = "x-roles";
/// The members of the value of an object schema that names Microsoft.
pub const MICROSOFT: &str = "x-microsoft";
/// The accessors of the resource: a name for each member path that programs read most.
pub const ACCESSORS: &str = "x-accessors";

/// The comparison operators of OData that an `x-filterable` entry may list.
pub const OPERATORS: [&str; 6] = ["eq", "ne", "gt", "ge", "lt", "le"];
/// The operators that compare for order; they need a member whose values have one.
const ORDERING: [&str; 4] = ["gt", "ge", "lt", "le"];
/// The lambda operators of OData.
const LAMBDAS: [&str; 2] = ["any", "all"];

/// Everything that the generated tables say.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The schema that carries the extensions (the resource that lists are made of).
    pub resource: Option<String>,
    /// `x-filterable`, in the document's order.
    pub filterable: Vec<Filterable>,
    /// `x-sortable`, in the document's order.
    pub sortable: Vec<Sortable>,
    /// `x-patchable`, in the document's order.
    pub patchable: Vec<Patchable>,
    /// `x-status-rules`, in the document's order.
    pub status_rules: Vec<StatusRule>,
    /// The value sets of the status and substatus members that the rules name.
    pub status_sets: Option<(String, String)>,
    /// Every object schema with its required and read-only members.
    pub objects: Vec<ObjectFacts>,
    /// Every operation of `paths`.
    pub operations: Vec<Operation>,
    /// The OAuth 2 scopes of the security schemes, in the document's order.
    pub scopes: Vec<String>,
    /// `x-roles` of the security schemes, in the document's order.
    pub roles: Vec<String>,
    /// The names of the headers that answers carry, in the document's order.
    pub response_headers: Vec<String>,
    /// The resource's leaves, in the document's order: the paths of its members that hold no
    /// object of the components (`id`, `customerProfile/address/country`, `team`), one column
    /// each in a flat export.
    pub columns: Vec<String>,
    /// The URLs of `servers`, in the document's order.
    pub servers: Vec<String>,
    /// `x-accessors`: a name (in the document's case) and the member path it reads.
    pub accessors: Vec<(String, Vec<String>)>,
    /// The security schemes of `apiKey` in a header: the scheme's name and the header's.
    pub header_keys: Vec<(String, String)>,
}

/// What a member holds, as far as a comparison or a sort is concerned: the kinds of
/// `referrals_model::facts::Kind`, told from the member's schema here ([`Reader::member_type`]),
/// and named as the model names them ([`Kind::name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A value of the open value set of this name, compared as its text.
    Set(String),
    /// A UUID (`format: uuid`).
    Uuid,
    /// A date-time, compared by instant.
    Time,
    /// A date (`format: date`).
    Date,
    /// An integer (`type: integer`), of the Rust type progenitor gives its format.
    Integer(&'static str),
    /// A binary float (`type: number` with `format: float` or `double`).
    Number(&'static str),
    /// Money (the `Amount` schema), compared by value.
    Money,
    /// `true` or `false`.
    Bool,
}

impl Kind {
    /// Whether `gt`, `ge`, `lt` and `le` mean something for it (as the model's
    /// `Kind::is_ordered` says).
    fn is_ordered(&self) -> bool {
        !matches!(self, Kind::Set(_) | Kind::Uuid | Kind::Bool)
    }

    /// The variant of the model's `Kind`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Text => "Text",
            Kind::Set(_) => "Set",
            Kind::Uuid => "Uuid",
            Kind::Time => "Time",
            Kind::Date => "Date",
            Kind::Integer(_) => "Integer",
            Kind::Number(_) => "Number",
            Kind::Money => "Money",
            Kind::Bool => "Bool",
        }
    }

    /// What a value of it is, for messages.
    fn describe(&self) -> String {
        match self {
            Kind::Set(name) => format!("a value of `{name}`"),
            Kind::Integer(_) => "an integer".to_owned(),
            Kind::Number(_) => "a number".to_owned(),
            Kind::Text => "a text".to_owned(),
            Kind::Uuid => "a UUID".to_owned(),
            Kind::Time => "a date-time".to_owned(),
            Kind::Date => "a date".to_owned(),
            Kind::Money => "an amount of money".to_owned(),
            Kind::Bool => "a boolean".to_owned(),
        }
    }
}

/// The member of a JSON Patch operation that RFC 6902 has `op` take (`value`, `from`, or
/// `none`), or `None` for a name that the RFC does not define.
pub fn patch_op_takes(op: &str) -> Option<&'static str> {
    match op {
        "add" | "replace" | "test" => Some("value"),
        "move" | "copy" => Some("from"),
        "remove" => Some("none"),
        _ => None,
    }
}

/// The kind of a scalar schema of `type` and `format` (`None` when no filter compares it).
fn scalar_kind(schema: &Value) -> Option<Kind> {
    let format = schema.get("format").and_then(Value::as_str);
    match (schema.get("type").and_then(Value::as_str)?, format) {
        ("string", _) if schema.get("enum").is_some() => None,
        ("string", Some("date-time")) => Some(Kind::Time),
        ("string", Some("date")) => Some(Kind::Date),
        ("string", Some("uuid")) => Some(Kind::Uuid),
        ("string", _) => Some(Kind::Text),
        ("integer", Some("int32")) => Some(Kind::Integer("i32")),
        ("integer", Some("int64") | None) => Some(Kind::Integer("i64")),
        ("number", Some("float")) => Some(Kind::Number("f32")),
        ("number", Some("double")) => Some(Kind::Number("f64")),
        ("boolean", _) => Some(Kind::Bool),
        _ => None,
    }
}

/// One entry of `x-filterable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filterable {
    /// The member path as a filter writes it (`customerProfile/address/country`, `team/email`).
    pub path: String,
    /// The member names along the path, from the resource.
    pub segments: Vec<String>,
    /// What the member holds.
    pub kind: Kind,
    /// The operators it takes, in the document's order.
    pub operators: Vec<String>,
    /// For a member inside the items of an array: how many segments name the array, and the
    /// lambda (`any` or `all`).
    pub lambda: Option<(usize, String)>,
}

/// One entry of `x-sortable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sortable {
    /// The member path.
    pub path: String,
    /// The member names along it.
    pub segments: Vec<String>,
    /// What the member holds.
    pub kind: Kind,
}

/// One entry of `x-patchable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patchable {
    /// The JSON Pointer (`/details/dealValue`, `/team/-`).
    pub pointer: String,
    /// The member names along it (without a final `-`).
    pub segments: Vec<String>,
    /// Whether it ends in `/-` (appends an item to an array).
    pub append: bool,
    /// The JSON Patch operations accepted on it.
    pub ops: Vec<String>,
}

/// One entry of `x-status-rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRule {
    /// The status.
    pub from: String,
    /// The statuses it may move to.
    pub to: Vec<String>,
    /// The substatuses that go with it.
    pub substatus: Vec<String>,
}

/// The required and read-only members of an object schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFacts {
    /// The schema's name.
    pub name: String,
    /// `required`, in the document's order.
    pub required: Vec<String>,
    /// The properties marked `readOnly`, in the document's order.
    pub read_only: Vec<String>,
    /// `x-microsoft`: the members, and their text, of the value that names Microsoft.
    pub microsoft: Vec<(String, String)>,
}

/// One operation of `paths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The `operationId`.
    pub id: String,
    /// The method, upper case.
    pub method: String,
    /// The path as the document writes it (`/v1.0/engagements/referrals/{id}`).
    pub path: String,
    /// Whether the document marks it deprecated.
    pub deprecated: bool,
    /// Its parameters: name and location (`query`, `header`, `path`), in the document's order.
    pub parameters: Vec<(String, String)>,
    /// The component schema of its request body, when it takes one.
    pub body: Option<String>,
    /// Its answers: the status as the document writes it (`200`, `4XX`, `default`) and the
    /// headers that the answer declares.
    pub responses: Vec<(String, Vec<String>)>,
    /// The values that a parameter's `enum` allows, for the parameters that have one.
    pub parameter_values: Vec<(String, Vec<String>)>,
    /// The vendor extensions of its parameters that hold text or a list of text: the
    /// parameter's name, the extension's name (without `x-`) and its text.
    pub parameter_extensions: Vec<(String, String, Vec<String>, bool)>,
}

impl Operation {
    /// The Rust name of a parameter constant: `$filter` → `FILTER`, `If-Match` → `IF_MATCH`.
    pub fn constant_name(parameter: &str) -> String {
        parameter
            .replace(|c: char| !c.is_alphanumeric(), " ")
            .to_shouty_snake_case()
    }
}

/// Reads and checks the facts of `document`, whose open value sets are `open_enums`.
pub fn read(document: &Document, open_enums: &[OpenEnum]) -> Result<Facts, Error> {
    let doc = serde_json::to_value(&document.openapi).expect("an OpenAPI value serializes");
    let reader = Reader {
        document,
        doc: &doc,
        open_enums,
    };
    let (scopes, roles) = reader.security()?;
    let mut facts = Facts {
        header_keys: reader.header_keys(),
        objects: reader.objects()?,
        operations: reader.operations(),
        scopes,
        roles,
        response_headers: reader.response_headers(),
        servers: document
            .openapi
            .servers
            .iter()
            .map(|server| server.url.clone())
            .collect(),
        ..Facts::default()
    };
    let carriers: Vec<&String> = reader
        .schemas()
        .iter()
        .filter(|(_, schema)| {
            [FILTERABLE, SORTABLE, PATCHABLE, STATUS_RULES, ACCESSORS]
                .iter()
                .any(|key| schema.get(*key).is_some())
        })
        .map(|(name, _)| name)
        .collect();
    let resource = match carriers.as_slice() {
        [] => return Ok(facts),
        [one] => (*one).clone(),
        [first, second, ..] => {
            return Err(reader.error(
                second,
                None,
                &[],
                format!(
                    "the extensions {FILTERABLE}, {SORTABLE}, {PATCHABLE} and {STATUS_RULES} belong to one \
                     schema, the resource that lists are made of; `{first}` has some already"
                ),
            ));
        }
    };
    let schema = &reader.schemas()[&resource];
    facts.filterable = reader.filterable(&resource, schema)?;
    facts.sortable = reader.sortable(&resource, schema)?;
    facts.patchable = reader.patchable(&resource, schema)?;
    facts.accessors = reader.accessors(&resource, schema)?;
    if let Some(rules) = schema.get(STATUS_RULES) {
        let (rules, sets) = reader.status_rules(&resource, rules)?;
        facts.status_rules = rules;
        facts.status_sets = Some(sets);
    }
    if let Some((name, _)) = reader.schemas().get_key_value(&resource) {
        reader.columns(name, &mut Vec::new(), &mut facts.columns);
    }
    facts.resource = Some(resource);
    Ok(facts)
}

struct Reader<'a> {
    document: &'a Document,
    doc: &'a Value,
    open_enums: &'a [OpenEnum],
}

/// The keys of the mapping at `components/schemas/<schema>/<extension>` in the document's
/// order (serde_json's maps sort their keys; the YAML reader keeps them as written).
fn ordered_keys(document: &Document, schema: &str, extension: &str) -> Vec<String> {
    let Ok(yaml) = serde_norway::from_str::<serde_norway::Value>(&document.text) else {
        return Vec::new();
    };
    yaml.get("components")
        .and_then(|components| components.get("schemas"))
        .and_then(|schemas| schemas.get(schema))
        .and_then(|schema| schema.get(extension))
        .and_then(serde_norway::Value::as_mapping)
        .map(|mapping| {
            mapping
                .keys()
                .filter_map(|key| key.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The type of a member, as far as the tables need it.
enum MemberType<'a> {
    Scalar(Kind),
    /// An object schema of the components.
    Object(&'a str),
    /// An array, and the type of its items.
    Array(Box<MemberType<'a>>),
    /// Anything else (an inline object, a value without a type).
    Other,
}

impl<'a> Reader<'a> {
    fn schemas(&self) -> &'a Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    fn error(&self, schema: &str, entry: Option<&str>, deeper: &[&str], message: String) -> Error {
        let mut keys = vec![
            Key::Map("components".into()),
            Key::Map("schemas".into()),
            Key::Map(schema.into()),
        ];
        keys.extend(entry.map(|entry| Key::Map(entry.into())));
        keys.extend(deeper.iter().map(|key| Key::Map((*key).into())));
        Error::Extension {
            path: self.document.path.clone(),
            line: locate(&self.document.text, &keys).map(|(line, _)| line),
            schema: schema.into(),
            entry: match (entry, deeper.first()) {
                (Some(entry), Some(first)) => format!("`{entry}` entry `{first}`"),
                (Some(entry), None) => format!("`{entry}`"),
                (None, _) => "its extensions".into(),
            },
            message,
        }
    }

    /// The type of a schema object (a property's or an item's).
    fn member_type(&self, schema: &'a Value) -> MemberType<'a> {
        let reference = schema.get("$ref").or_else(|| {
            match schema
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                Some([only]) => only.get("$ref"),
                _ => None,
            }
        });
        if let Some(name) = reference
            .and_then(Value::as_str)
            .and_then(|target| target.strip_prefix("#/components/schemas/"))
        {
            if name == AMOUNT {
                return MemberType::Scalar(Kind::Money);
            }
            if self.open_enums.iter().any(|open| open.name == name) {
                return MemberType::Scalar(Kind::Set(name.to_owned()));
            }
            return match self.schemas().get(name) {
                Some(target) if target.get("properties").is_some() => MemberType::Object(name),
                Some(target) => self.member_type(target),
                None => MemberType::Other,
            };
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("array") => match schema.get("items") {
                Some(items) => MemberType::Array(Box::new(self.member_type(items))),
                None => MemberType::Other,
            },
            _ => scalar_kind(schema).map_or(MemberType::Other, MemberType::Scalar),
        }
    }

    /// The property `name` of the object schema `object`.
    fn property(&self, object: &str, name: &str) -> Option<&'a Value> {
        self.schemas()
            .get(object)?
            .get("properties")?
            .as_object()?
            .get(name)
    }

    /// Follows `segments` from the schema `from`; the type at their end, and how many leading
    /// segments name an array (the last array passed), or why the path names no member.
    fn walk(
        &self,
        from: &'a str,
        segments: &[String],
    ) -> Result<(MemberType<'a>, Option<usize>), String> {
        let mut object = from;
        let mut array_at = None;
        let mut current = None;
        for (index, segment) in segments.iter().enumerate() {
            let Some(property) = self.property(object, segment) else {
                return Err(format!(
                    "`{segment}` is not a member of `{object}`{}",
                    self.members_hint(object)
                ));
            };
            let mut found = self.member_type(property);
            if let MemberType::Array(items) = found {
                array_at = Some(index + 1);
                found = *items;
            }
            if index + 1 < segments.len() {
                match found {
                    MemberType::Object(name) => object = name,
                    _ => {
                        return Err(format!(
                            "`{segment}` of `{object}` has no members, so `{}` names nothing",
                            segments.join("/")
                        ));
                    }
                }
            }
            current = Some(found);
        }
        current
            .map(|found| (found, array_at))
            .ok_or_else(|| "an empty path names no member".to_owned())
    }

    /// Appends the leaves of the object schema `object` to `columns`, each prefixed by `path`.
    /// An object met again below itself is a leaf (its JSON), so that a recursive schema ends.
    fn columns(&self, object: &'a str, path: &mut Vec<&'a str>, columns: &mut Vec<String>) {
        self.columns_below(object, path, &mut vec![object], columns);
    }

    fn columns_below(
        &self,
        object: &'a str,
        path: &mut Vec<&'a str>,
        objects: &mut Vec<&'a str>,
        columns: &mut Vec<String>,
    ) {
        for name in self.properties(object).unwrap_or_default() {
            let Some(property) = self.property(object, name) else {
                continue;
            };
            path.push(name);
            match self.member_type(property) {
                MemberType::Object(inner) if !objects.contains(&inner) => {
                    objects.push(inner);
                    self.columns_below(inner, path, objects, columns);
                    objects.pop();
                }
                _ => columns.push(path.join("/")),
            }
            path.pop();
        }
    }

    /// The property names of the object schema `object`, in the document's order (openapiv3's
    /// maps keep it).
    fn properties(&self, object: &str) -> Option<Vec<&'a str>> {
        let components = self.document.openapi.components.as_ref()?;
        let schema = components.schemas.get(object)?.as_item()?;
        match &schema.schema_kind {
            SchemaKind::Type(Type::Object(object)) => {
                Some(object.properties.keys().map(String::as_str).collect())
            }
            _ => None,
        }
    }

    fn members_hint(&self, object: &str) -> String {
        // openapiv3's maps keep the document's order, which the reader of the message knows.
        let properties = self
            .document
            .openapi
            .components
            .as_ref()
            .and_then(|components| components.schemas.get(object))
            .and_then(ReferenceOr::as_item)
            .and_then(|schema| match &schema.schema_kind {
                SchemaKind::Type(Type::Object(object)) => Some(&object.properties),
                _ => None,
            });
        match properties {
            Some(properties) => format!(
                " (its members: {})",
                properties.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            None => String::new(),
        }
    }
}

/// A non-empty list of strings.
fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    let list: Vec<String> = value?
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect::<Option<_>>()?;
    (!list.is_empty()).then_some(list)
}
