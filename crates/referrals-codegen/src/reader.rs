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

    fn filterable(&self, resource: &str, schema: &'a Value) -> Result<Vec<Filterable>, Error> {
        let Some(entries) = schema.get(FILTERABLE) else {
            return Ok(Vec::new());
        };
        let entries = entries.as_object().ok_or_else(|| {
            self.error(
                resource,
                Some(FILTERABLE),
                &[],
                "must map member paths to `{operators: [...]}`".into(),
            )
        })?;
        let mut found = Vec::new();
        for path in ordered_keys(self.document, resource, FILTERABLE) {
            let Some(entry) = entries.get(&path) else {
                continue;
            };
            let path = &path;
            let fail = |message: String| self.error(resource, Some(FILTERABLE), &[path], message);
            let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
            let (member, array_at) = self.walk(resource, &segments).map_err(&fail)?;
            let MemberType::Scalar(kind) = member else {
                return Err(fail(
                    "the member has no comparison: only a scalar (a string, a value set, a UUID, \
                     a date-time, a date, an integer, a number of `format: double` or `float`, \
                     money or a boolean) can be filtered on"
                        .into(),
                ));
            };
            let Some(entry) = entry.as_object() else {
                return Err(fail("must be `{operators: [...]}`".into()));
            };
            if let Some(unknown) = entry
                .keys()
                .find(|key| !["operators", "lambda"].contains(&key.as_str()))
            {
                return Err(fail(format!(
                    "`{unknown}` is not a key of an entry (operators, lambda)"
                )));
            }
            let operators = operators(entry, &kind).map_err(&fail)?;
            let lambda = lambda(entry, array_at, &segments).map_err(&fail)?;
            found.push(Filterable {
                path: path.clone(),
                segments,
                kind,
                operators,
                lambda,
            });
        }
        Ok(found)
    }

    /// `x-accessors`: each name must map to a path of a member of the resource, outside arrays.
    fn accessors(
        &self,
        resource: &str,
        schema: &'a Value,
    ) -> Result<Vec<(String, Vec<String>)>, Error> {
        let Some(entries) = schema.get(ACCESSORS) else {
            return Ok(Vec::new());
        };
        let entries = entries.as_object().ok_or_else(|| {
            let message = "must map accessor names to member paths".to_owned();
            self.error(resource, Some(ACCESSORS), &[], message)
        })?;
        let mut found = Vec::new();
        for name in ordered_keys(self.document, resource, ACCESSORS) {
            let Some(path) = entries.get(&name) else {
                continue;
            };
            let fail = |message: String| self.error(resource, Some(ACCESSORS), &[&name], message);
            let path = path.as_str().ok_or_else(|| {
                fail("must be a member path, such as customerProfile/name".into())
            })?;
            let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
            let (_, array_at) = self.walk(resource, &segments).map_err(&fail)?;
            if array_at.is_some() {
                return Err(fail(format!(
                    "`{path}` passes through an array: an accessor reads one value"
                )));
            }
            found.push((name.clone(), segments));
        }
        Ok(found)
    }

    fn sortable(&self, resource: &str, schema: &'a Value) -> Result<Vec<Sortable>, Error> {
        let Some(entries) = schema.get(SORTABLE) else {
            return Ok(Vec::new());
        };
        let paths = strings(Some(entries)).ok_or_else(|| {
            self.error(
                resource,
                Some(SORTABLE),
                &[],
                "must be a non-empty list of member paths".into(),
            )
        })?;
        let mut found = Vec::new();
        for path in paths {
            let fail = |message: String| {
                self.error(
                    resource,
                    Some(SORTABLE),
                    &[],
                    format!("`{path}`: {message}"),
                )
            };
            let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
            let (member, array_at) = self.walk(resource, &segments).map_err(&fail)?;
            match (member, array_at) {
                (MemberType::Scalar(kind), None) => found.push(Sortable {
                    path,
                    segments,
                    kind,
                }),
                (_, Some(_)) => {
                    return Err(fail("a member inside an array cannot order a list".into()));
                }
                _ => {
                    return Err(fail(
                        "the member has no order: only a scalar (not an object or an array) can \
                         order a list"
                            .into(),
                    ));
                }
            }
        }
        Ok(found)
    }

    fn patchable(&self, resource: &str, schema: &'a Value) -> Result<Vec<Patchable>, Error> {
        let Some(entries) = schema.get(PATCHABLE) else {
            return Ok(Vec::new());
        };
        let entries = entries.as_object().ok_or_else(|| {
            self.error(
                resource,
                Some(PATCHABLE),
                &[],
                "must map JSON Pointers to lists of operations".into(),
            )
        })?;
        let known_ops = self.patch_ops();
        let mut found = Vec::new();
        for pointer in ordered_keys(self.document, resource, PATCHABLE) {
            let Some(ops) = entries.get(&pointer) else {
                continue;
            };
            let pointer = &pointer;
            let fail = |message: String| self.error(resource, Some(PATCHABLE), &[pointer], message);
            let Some(rest) = pointer.strip_prefix('/') else {
                return Err(fail(
                    "a JSON Pointer starts with `/`, as in /details/notes".into(),
                ));
            };
            let mut segments: Vec<String> = rest.split('/').map(str::to_owned).collect();
            let append = segments.last().is_some_and(|last| last == "-");
            if append {
                segments.pop();
            }
            let (_, array_at) = self.walk(resource, &segments).map_err(&fail)?;
            if append && array_at != Some(segments.len()) {
                return Err(fail(format!(
                    "`/-` appends to an array, and `{}` is not one",
                    segments.join("/")
                )));
            }
            if !append && array_at.is_some_and(|at| at < segments.len()) {
                return Err(fail(
                    "a pointer into the items of an array names no one member; patch the array \
                     or append to it with `/-`"
                        .into(),
                ));
            }
            let ops = strings(Some(ops)).ok_or_else(|| {
                fail("must be a non-empty list of operations, such as [replace, add]".into())
            })?;
            for op in &ops {
                if !known_ops.contains(op) {
                    return Err(fail(format!(
                        "`{op}` is not a value of the `JsonPatchOp` schema ({}): add it to its \
                         `enum` (#/components/schemas/JsonPatchOp/enum) if the service accepts it",
                        known_ops.join(", ")
                    )));
                }
                self.operation_fits(op).map_err(&fail)?;
            }
            if append && ops.iter().any(|op| op != "add") {
                return Err(fail("`/-` appends, which only `add` does".into()));
            }
            found.push(Patchable {
                pointer: pointer.clone(),
                segments,
                append,
                ops,
            });
        }
        Ok(found)
    }

    /// Refuses an op that RFC 6902 does not define, or whose members the `JsonPatchOperation`
    /// schema cannot hold (a `value` for `add`, a `from` for `move`; no required `value` for
    /// `remove`).
    fn operation_fits(&self, op: &str) -> Result<(), String> {
        const SCHEMA: &str = "#/components/schemas/JsonPatchOperation";
        let Some(takes) = patch_op_takes(op) else {
            return Err(format!(
                "`{op}` is not a JSON Patch operation; RFC 6902 defines add, remove, replace, \
                 move, copy and test: take it out of `JsonPatchOp`'s `enum`"
            ));
        };
        let schema = self.schemas().get("JsonPatchOperation");
        let has = |member: &str| {
            schema
                .and_then(|schema| schema.get("properties"))
                .is_some_and(|properties| properties.get(member).is_some())
        };
        let required = |member: &str| {
            schema
                .and_then(|schema| strings(schema.get("required")))
                .is_some_and(|required| required.iter().any(|name| name == member))
        };
        for member in ["value", "from"] {
            let wanted = takes == member;
            if wanted && !has(member) {
                return Err(format!(
                    "`{op}` takes a `{member}`, and `JsonPatchOperation` has no such member: \
                     add `{member}` to its `properties` ({SCHEMA}/properties)"
                ));
            }
            if !wanted && required(member) {
                return Err(format!(
                    "`{op}` takes no `{member}`, and `JsonPatchOperation` requires one: take \
                     `{member}` out of its `required` ({SCHEMA}/required)"
                ));
            }
        }
        Ok(())
    }

    /// The values of the `JsonPatchOp` schema: the operations that the API accepts at all.
    fn patch_ops(&self) -> Vec<String> {
        self.schemas()
            .get("JsonPatchOp")
            .and_then(|schema| strings(schema.get("enum")))
            .unwrap_or_default()
    }

    /// The known values of the open value set `set`.
    fn values(&self, set: &str) -> Vec<String> {
        self.open_enums
            .iter()
            .find(|open| open.name == set)
            .map(|open| open.values.clone())
            .unwrap_or_default()
    }

    fn status_rules(
        &self,
        resource: &str,
        rules: &Value,
    ) -> Result<(Vec<StatusRule>, (String, String)), Error> {
        let fail = |deeper: &[&str], message: String| {
            self.error(resource, Some(STATUS_RULES), deeper, message)
        };
        let set_of = |member: &str| match self
            .property(resource, member)
            .map(|p| self.member_type(p))
        {
            Some(MemberType::Scalar(Kind::Set(name))) => Ok(name),
            _ => Err(fail(
                &[],
                format!("the rules need a `{member}` member of `{resource}` that is a value set"),
            )),
        };
        let (status_set, substatus_set) = (set_of("status")?, set_of("substatus")?);
        let (statuses, substatuses) = (self.values(&status_set), self.values(&substatus_set));
        let Some(rules) = rules.as_object() else {
            return Err(fail(
                &[],
                "must map statuses to `{to: [...], substatus: [...]}`".into(),
            ));
        };
        let mut found = Vec::new();
        for from in ordered_keys(self.document, resource, STATUS_RULES) {
            let Some(rule) = rules.get(&from) else {
                continue;
            };
            let from = &from;
            let check = |list: &[String], known: &[String], set: &str| match list
                .iter()
                .find(|value| !known.contains(value))
            {
                Some(unknown) => Err(fail(
                    &[from],
                    format!(
                        "`{unknown}` is not a value of `{set}` ({})",
                        known.join(", ")
                    ),
                )),
                None => Ok(()),
            };
            check(std::slice::from_ref(from), &statuses, &status_set)?;
            let to = strings(rule.get("to"))
                .ok_or_else(|| fail(&[from], "`to` must be a non-empty list of statuses".into()))?;
            check(&to, &statuses, &status_set)?;
            let substatus = strings(rule.get("substatus")).ok_or_else(|| {
                fail(
                    &[from],
                    "`substatus` must be a non-empty list of substatuses".into(),
                )
            })?;
            check(&substatus, &substatuses, &substatus_set)?;
            found.push(StatusRule {
                from: from.clone(),
                to,
                substatus,
            });
        }
        if let Some((rule, missing)) = without_rule(&found) {
            return Err(fail(
                &[&rule.from],
                format!("`{missing}` is a status to move to, but has no rule of its own"),
            ));
        }
        Ok((found, (status_set, substatus_set)))
    }

    fn objects(&self) -> Result<Vec<ObjectFacts>, Error> {
        // From openapiv3's model, whose maps keep the document's order.
        let Some(components) = &self.document.openapi.components else {
            return Ok(Vec::new());
        };
        let mut objects = Vec::new();
        for (name, schema) in &components.schemas {
            let Some(schema) = schema.as_item() else {
                continue;
            };
            let SchemaKind::Type(Type::Object(object)) = &schema.schema_kind else {
                continue;
            };
            objects.push(ObjectFacts {
                name: name.clone(),
                required: object.required.clone(),
                read_only: object
                    .properties
                    .iter()
                    .filter(|(_, property)| {
                        property
                            .as_item()
                            .is_some_and(|property| property.schema_data.read_only)
                    })
                    .map(|(member, _)| member.clone())
                    .collect(),
                microsoft: self.microsoft(
                    name,
                    object,
                    schema.schema_data.extensions.get(MICROSOFT),
                )?,
            });
        }
        Ok(objects)
    }

    /// `x-microsoft` of the object schema `name`: a mapping of its members to text.
    fn microsoft(
        &self,
        name: &str,
        object: &openapiv3::ObjectType,
        value: Option<&Value>,
    ) -> Result<Vec<(String, String)>, Error> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let fail = |message: String| self.error(name, Some(MICROSOFT), &[], message);
        let Some(members) = value.as_object().filter(|members| !members.is_empty()) else {
            return Err(fail("must map members of the schema to their text".into()));
        };
        let order = ordered_keys(self.document, name, MICROSOFT);
        let mut pairs = Vec::new();
        for member in order.iter().filter(|key| members.contains_key(*key)) {
            let Some(text) = members[member].as_str() else {
                return Err(fail(format!("the value of `{member}` must be text")));
            };
            if !object.properties.contains_key(member) {
                return Err(fail(format!("`{member}` is not a member of `{name}`")));
            }
            pairs.push((member.clone(), text.to_owned()));
        }
        Ok(pairs)
    }

    /// The security schemes of `apiKey` in a header, in the document's order.
    fn header_keys(&self) -> Vec<(String, String)> {
        let Some(components) = &self.document.openapi.components else {
            return Vec::new();
        };
        components
            .security_schemes
            .iter()
            .filter_map(|(name, scheme)| match scheme.as_item()? {
                openapiv3::SecurityScheme::APIKey {
                    location: openapiv3::APIKeyLocation::Header,
                    name: header,
                    ..
                } => Some((name.clone(), header.clone())),
                _ => None,
            })
            .collect()
    }

    /// The scopes of every OAuth 2 flow and the `x-roles` of every security scheme.
    fn security(&self) -> Result<(Vec<String>, Vec<String>), Error> {
        let (mut scopes, mut roles) = (Vec::new(), Vec::new());
        let Some(components) = &self.document.openapi.components else {
            return Ok((scopes, roles));
        };
        for (name, scheme) in &components.security_schemes {
            let Some(scheme) = scheme.as_item() else {
                continue;
            };
            let (extensions, flows) = match scheme {
                openapiv3::SecurityScheme::OAuth2 {
                    flows, extensions, ..
                } => (extensions, Some(flows)),
                openapiv3::SecurityScheme::APIKey { extensions, .. }
                | openapiv3::SecurityScheme::HTTP { extensions, .. }
                | openapiv3::SecurityScheme::OpenIDConnect { extensions, .. } => (extensions, None),
            };
            if let Some(flows) = flows {
                let all = [
                    flows.implicit.as_ref().map(|flow| &flow.scopes),
                    flows.password.as_ref().map(|flow| &flow.scopes),
                    flows.client_credentials.as_ref().map(|flow| &flow.scopes),
                    flows.authorization_code.as_ref().map(|flow| &flow.scopes),
                ];
                for scope in all.into_iter().flatten().flat_map(|scopes| scopes.keys()) {
                    if !scopes.contains(scope) {
                        scopes.push(scope.clone());
                    }
                }
            }
            if let Some(listed) = extensions.get(ROLES) {
                let listed = strings(Some(listed)).ok_or_else(|| Error::Extension {
                    path: self.document.path.clone(),
                    line: locate(
                        &self.document.text,
                        &[
                            Key::Map("components".into()),
                            Key::Map("securitySchemes".into()),
                            Key::Map(name.clone()),
                            Key::Map(ROLES.into()),
                        ],
                    )
                    .map(|(line, _)| line),
                    schema: name.clone(),
                    entry: format!("`{ROLES}`"),
                    message: "must be a non-empty list of role names".into(),
                })?;
                roles.extend(listed);
            }
        }
        Ok((scopes, roles))
    }

    /// The header names of every answer of every operation (and of the shared answers).
    fn response_headers(&self) -> Vec<String> {
        let openapi = &self.document.openapi;
        let shared = openapi
            .components
            .iter()
            .flat_map(|components| components.responses.values())
            .filter_map(ReferenceOr::as_item);
        let own = openapi
            .paths
            .iter()
            .filter_map(|(_, item)| item.as_item())
            .flat_map(|item| item.iter().map(|(_, operation)| operation))
            .flat_map(|operation| operation.responses.responses.values())
            .filter_map(ReferenceOr::as_item);
        let mut names: Vec<String> = Vec::new();
        for response in shared.chain(own) {
            for name in response.headers.keys() {
                if !names.iter().any(|known| known.eq_ignore_ascii_case(name)) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// Every operation of `paths`, each followed by the operations of its callbacks.
    fn operations(&self) -> Vec<Operation> {
        let mut found = Vec::new();
        for (path, item) in self.document.openapi.paths.iter() {
            let Some(item) = item.as_item() else { continue };
            found.extend(self.operations_of(path, item));
            for (_, operation) in item.iter() {
                for callback in operation.callbacks.values() {
                    for (expression, item) in callback {
                        found.extend(self.operations_of(expression, item));
                    }
                }
            }
        }
        found
    }

    /// The operations of the path item `item` at `path`.
    fn operations_of(&self, path: &str, item: &openapiv3::PathItem) -> Vec<Operation> {
        let mut found = Vec::new();
        for (method, operation) in item.iter() {
            let Some(id) = &operation.operation_id else {
                continue;
            };
            let resolved: Vec<Parameter> = item
                .parameters
                .iter()
                .chain(&operation.parameters)
                .filter_map(|parameter| self.parameter(parameter))
                .collect();
            let parameter_values = resolved.iter().filter_map(enum_values).collect();
            let parameter_extensions = resolved.iter().flat_map(text_extensions).collect();
            let parameters = resolved
                .into_iter()
                .map(|parameter| {
                    let location = match &parameter {
                        Parameter::Query { .. } => "query",
                        Parameter::Header { .. } => "header",
                        Parameter::Path { .. } => "path",
                        Parameter::Cookie { .. } => "cookie",
                    };
                    (parameter.parameter_data().name, location.to_owned())
                })
                .collect();
            found.push(Operation {
                id: id.clone(),
                method: method.to_uppercase(),
                path: path.to_owned(),
                deprecated: operation.deprecated,
                parameters,
                body: body_schema(operation),
                responses: self.responses(operation),
                parameter_values,
                parameter_extensions,
            });
        }
        found
    }

    /// The answers of `operation`: each status and the headers it declares, references to
    /// `components/responses` resolved.
    fn responses(&self, operation: &openapiv3::Operation) -> Vec<(String, Vec<String>)> {
        let components = self.document.openapi.components.as_ref();
        let resolve = |response: &ReferenceOr<openapiv3::Response>| match response {
            ReferenceOr::Item(response) => Some(response.clone()),
            ReferenceOr::Reference { reference } => {
                let name = reference.strip_prefix("#/components/responses/")?;
                components?.responses.get(name)?.as_item().cloned()
            }
        };
        let headers = |response: Option<openapiv3::Response>| -> Vec<String> {
            response
                .map(|response| response.headers.keys().cloned().collect())
                .unwrap_or_default()
        };
        let mut found: Vec<(String, Vec<String>)> = operation
            .responses
            .responses
            .iter()
            .map(|(status, response)| (status.to_string(), headers(resolve(response))))
            .collect();
        if let Some(default) = &operation.responses.default {
            found.push(("default".to_owned(), headers(resolve(default))));
        }
        found
    }

    /// A parameter, its reference resolved.
    fn parameter(&self, parameter: &ReferenceOr<Parameter>) -> Option<Parameter> {
        match parameter {
            ReferenceOr::Item(parameter) => Some(parameter.clone()),
            ReferenceOr::Reference { reference } => {
                let name = reference.strip_prefix("#/components/parameters/")?;
                self.document
                    .openapi
                    .components
                    .as_ref()?
                    .parameters
                    .get(name)?
                    .as_item()
                    .cloned()
            }
        }
    }
}

/// A non-empty list of strings.
/// A rule that moves to a status without a rule of its own, and that status.
fn without_rule(rules: &[StatusRule]) -> Option<(&StatusRule, &String)> {
    rules.iter().find_map(|rule| {
        let missing = rule
            .to
            .iter()
            .find(|to| !rules.iter().any(|other| &other.from == *to))?;
        Some((rule, missing))
    })
}

/// The `operators` of an `x-filterable` entry, each one of OData's comparisons that a member
/// of `kind` has.
fn operators(entry: &Map<String, Value>, kind: &Kind) -> Result<Vec<String>, String> {
    let operators = strings(entry.get("operators"))
        .ok_or("`operators` must be a non-empty list, such as [eq, ne]")?;
    for operator in &operators {
        if !OPERATORS.contains(&operator.as_str()) {
            return Err(format!(
                "`{operator}` is not a comparison operator of OData ({})",
                OPERATORS.join(", ")
            ));
        }
        if ORDERING.contains(&operator.as_str()) && !kind.is_ordered() {
            return Err(format!(
                "`{operator}` compares for order, and {} has none: use eq, ne",
                kind.describe()
            ));
        }
    }
    Ok(operators)
}

/// The `lambda` of an `x-filterable` entry whose path passes through an array at the segment
/// `array_at`, when it does: which segments name the array, and `any` or `all`.
fn lambda(
    entry: &Map<String, Value>,
    array_at: Option<usize>,
    segments: &[String],
) -> Result<Option<(usize, String)>, String> {
    match (entry.get("lambda"), array_at) {
        (None, None) => Ok(None),
        (Some(Value::String(lambda)), Some(at)) if LAMBDAS.contains(&lambda.as_str()) => {
            if at == segments.len() {
                return Err(
                    "a lambda compares a member of the array's items; name one after the array"
                        .into(),
                );
            }
            Ok(Some((at, lambda.clone())))
        }
        (Some(_), Some(_)) => Err("`lambda` must be `any` or `all`".into()),
        (Some(_), None) => Err("`lambda` needs a path through an array".into()),
        (None, Some(at)) => Err(format!(
            "the path passes through the array `{}`: say which lambda compares its items \
             (`lambda: any`)",
            segments[..at].join("/")
        )),
    }
}

/// The vendor extensions of `parameter` that hold text (`false`) or a list of text (`true`).
fn text_extensions(parameter: &Parameter) -> Vec<(String, String, Vec<String>, bool)> {
    let data = parameter.parameter_data_ref();
    data.extensions
        .iter()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix("x-")?.to_owned();
            match value {
                Value::String(text) => Some((data.name.clone(), name, vec![text.clone()], false)),
                Value::Array(_) => {
                    let list = strings(Some(value))?;
                    Some((data.name.clone(), name, list, true))
                }
                _ => None,
            }
        })
        .collect()
}

/// The name of `parameter` and the values of its schema's `enum`, when it has one.
fn enum_values(parameter: &Parameter) -> Option<(String, Vec<String>)> {
    let data = parameter.parameter_data_ref();
    let openapiv3::ParameterSchemaOrContent::Schema(ReferenceOr::Item(schema)) = &data.format
    else {
        return None;
    };
    let SchemaKind::Type(Type::String(string)) = &schema.schema_kind else {
        return None;
    };
    let values: Vec<String> = string.enumeration.iter().flatten().cloned().collect();
    (!values.is_empty()).then(|| (data.name.clone(), values))
}

/// The component schema that the request body of `operation` refers to.
fn body_schema(operation: &openapiv3::Operation) -> Option<String> {
    let body = operation.request_body.as_ref()?.as_item()?;
    let (_, media) = body.content.first()?;
    match media.schema.as_ref()? {
        ReferenceOr::Reference { reference } => reference
            .strip_prefix("#/components/schemas/")
            .map(str::to_owned),
        ReferenceOr::Item(_) => None,
    }
}

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    let list: Vec<String> = value?
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect::<Option<_>>()?;
    (!list.is_empty()).then_some(list)
}
