//! The document's schemas reduced to the shapes that the tests walk and generate.
//!
//! The JSON Schema validator judges payloads against the document itself (see
//! [`referrals_document::Validators`]); this model only guides the tests: which members an object declares,
//! where an open value set sits, what a value of a given place looks like.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::spec::Spec;

/// The shape of a schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A component schema, by name.
    Ref(String),
    /// The inner shape, or `null`.
    Nullable(Box<Shape>),
    /// An object.
    Object {
        /// The declared members, in order.
        properties: Vec<(String, Shape)>,
        /// The members that must be present.
        required: BTreeSet<String>,
        /// The shape of undeclared members, when they are allowed.
        additional: Option<Box<Shape>>,
    },
    /// An array of items of one shape.
    Array(Box<Shape>),
    /// A string, maybe of a format or from a closed list.
    String {
        /// `date-time`, `uuid`, ...
        format: Option<String>,
        /// The only values allowed, for a closed enum.
        values: Option<Vec<String>>,
    },
    /// An open value set: known values, and any other string.
    OpenEnum(Vec<String>),
    /// A JSON number: money (the `Amount` schema, no format), or a binary float (`float`,
    /// `double`).
    Number {
        /// `float` or `double`; none for money.
        format: Option<String>,
    },
    /// An integer within bounds.
    Integer {
        /// The smallest value.
        minimum: Option<i64>,
        /// The largest value.
        maximum: Option<i64>,
    },
    /// `true` or `false`.
    Boolean,
    /// Exactly one of these.
    OneOf(Vec<Shape>),
    /// At least one of these.
    AnyOf(Vec<Shape>),
    /// Any JSON value.
    Any,
}

/// Every component schema of the document, as shapes.
pub struct Model {
    /// The shapes, by component name.
    pub components: BTreeMap<String, Shape>,
}

impl Model {
    /// Reduces the document's component schemas.
    pub fn new(spec: &Spec) -> Self {
        let components = spec
            .component_names()
            .into_iter()
            .map(|name| {
                let shape = shape_of(spec.component(&name).expect("listed"));
                (name, shape)
            })
            .collect();
        Self { components }
    }

    /// Follows [`Shape::Ref`]s to the shape they name.
    pub fn resolve<'a>(&'a self, mut shape: &'a Shape) -> &'a Shape {
        while let Shape::Ref(name) = shape {
            shape = self
                .components
                .get(name)
                .unwrap_or_else(|| panic!("no component schema `{name}`"));
        }
        shape
    }
}

/// The shape of one OpenAPI 3.0 schema object.
pub fn shape_of(schema: &Value) -> Shape {
    let nullable = schema.get("nullable").and_then(Value::as_bool) == Some(true);
    let shape = bare_shape_of(schema);
    if nullable {
        Shape::Nullable(Box::new(shape))
    } else {
        shape
    }
}

/// The shape of an object schema: its properties, required members and undeclared members.
fn object_shape(schema: &Value) -> Shape {
    Shape::Object {
        properties: schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| {
                properties
                    .iter()
                    .map(|(name, property)| (name.clone(), shape_of(property)))
                    .collect()
            })
            .unwrap_or_default(),
        required: schema
            .get("required")
            .and_then(Value::as_array)
            .map(|required| {
                required
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        additional: match schema.get("additionalProperties") {
            None | Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(Box::new(Shape::Any)),
            Some(additional) => Some(Box::new(shape_of(additional))),
        },
    }
}

fn bare_shape_of(schema: &Value) -> Shape {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unsupported reference {target}"));
        return Shape::Ref(name.to_owned());
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        // The document uses allOf only to wrap one reference with a description or `nullable`.
        assert_eq!(
            all.len(),
            1,
            "allOf with several schemas is not supported: {schema}"
        );
        return bare_shape_of(&all[0]);
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let shapes: Vec<Shape> = any.iter().map(shape_of).collect();
        if let [
            Shape::String {
                values: Some(values),
                format: None,
            },
            Shape::String {
                values: None,
                format: None,
            },
        ] = shapes.as_slice()
        {
            return Shape::OpenEnum(values.clone());
        }
        return Shape::AnyOf(shapes);
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        return Shape::OneOf(one.iter().map(shape_of).collect());
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => object_shape(schema),
        Some("array") => Shape::Array(Box::new(
            schema.get("items").map(shape_of).unwrap_or(Shape::Any),
        )),
        Some("string") => Shape::String {
            format: schema
                .get("format")
                .and_then(Value::as_str)
                .map(str::to_owned),
            values: schema.get("enum").and_then(Value::as_array).map(|values| {
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            }),
        },
        Some("number") => Shape::Number {
            format: schema
                .get("format")
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        Some("integer") => Shape::Integer {
            minimum: schema.get("minimum").and_then(Value::as_i64),
            maximum: schema.get("maximum").and_then(Value::as_i64),
        },
        Some("boolean") => Shape::Boolean,
        Some(other) => panic!("unsupported type `{other}` in {schema}"),
        None if schema.get("properties").is_some() => {
            panic!("an object schema without `type: object`: {schema}")
        }
        None => Shape::Any,
    }
}
