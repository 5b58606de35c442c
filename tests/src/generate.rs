//! Payloads generated from any schema of the document, written once by walking the schema.

use proptest::prelude::*;
use proptest::sample::select;

use crate::json::Json;
use crate::model::{Model, Shape};

/// How deep references may nest before optional members stop being generated.
const DEPTH: u32 = 4;

/// A strategy of payloads that are valid for the component schema `name`.
pub fn component(model: &Model, name: &str) -> BoxedStrategy<Json> {
    shape(model, &Shape::Ref(name.to_owned()), DEPTH)
}

/// A strategy of values valid for `shape`, with references nested at most `depth` deep.
pub fn shape(model: &Model, shape_: &Shape, depth: u32) -> BoxedStrategy<Json> {
    match shape_ {
        Shape::Ref(name) => {
            let target = model
                .components
                .get(name)
                .unwrap_or_else(|| panic!("no component schema `{name}`"));
            shape(model, target, depth.saturating_sub(1))
        }
        Shape::Nullable(inner) => {
            if depth == 0 {
                return Just(Json::Null).boxed();
            }
            prop_oneof![1 => Just(Json::Null), 4 => shape(model, inner, depth)].boxed()
        }
        Shape::Object {
            properties,
            required,
            additional,
        } => object(model, properties, required, additional.is_some(), depth),
        Shape::Array(items) => {
            let size = if depth == 0 { 0..1 } else { 0..3 };
            prop::collection::vec(shape(model, items, depth), size)
                .prop_map(Json::Array)
                .boxed()
        }
        Shape::String { format, values } => match (format.as_deref(), values) {
            (_, Some(values)) => select(values.clone()).prop_map(Json::String).boxed(),
            (Some("date-time"), None) => date_time().prop_map(Json::String).boxed(),
            (Some("uuid"), None) => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                .prop_map(Json::String)
                .boxed(),
            (Some("date"), None) => (1900i32..2100, 1u32..=12, 1u32..=28)
                .prop_map(|(year, month, day)| {
                    Json::String(format!("{year:04}-{month:02}-{day:02}"))
                })
                .boxed(),
            _ => text().prop_map(Json::String).boxed(),
        },
        Shape::OpenEnum(values) => {
            let known = values.clone();
            prop_oneof![
                3 => select(values.clone()).prop_map(Json::String),
                1 => new_value(known).prop_map(Json::String),
            ]
            .boxed()
        }
        Shape::Number { format } => match format.as_deref() {
            // A binary float: values that it holds exactly, written as serde_json writes them.
            // The shortest text that reads back the same value is not always unique (at 2^50,
            // `…346.2` and `…346.3` are one `f64`), and `Display` picks the other one of a tie.
            Some("float") => any::<f32>()
                .prop_filter("finite", |value| value.is_finite())
                .prop_map(|value| Json::Number(float_text(&value)))
                .boxed(),
            Some(_) => any::<f64>()
                .prop_filter("finite", |value| value.is_finite())
                .prop_map(|value| Json::Number(float_text(&value)))
                .boxed(),
            None => amount().prop_map(Json::Number).boxed(),
        },
        Shape::Integer { minimum, maximum } => {
            let low = minimum.unwrap_or(i64::from(i32::MIN));
            let high = maximum.unwrap_or(i64::from(i32::MAX));
            (low..=high)
                .prop_map(|value| Json::Number(value.to_string()))
                .boxed()
        }
        Shape::Boolean => any::<bool>().prop_map(Json::Bool).boxed(),
        Shape::OneOf(branches) | Shape::AnyOf(branches) => {
            let branches: Vec<_> = branches
                .iter()
                .map(|branch| shape(model, branch, depth))
                .collect();
            proptest::strategy::Union::new(branches).boxed()
        }
        Shape::Any => any_json(2),
    }
}

/// A strategy of objects with `properties` (the `required` ones always, the others at times),
/// and members of unknown names when `additional` members are allowed.
fn object(
    model: &Model,
    properties: &[(String, Shape)],
    required: &std::collections::BTreeSet<String>,
    additional: bool,
    depth: u32,
) -> BoxedStrategy<Json> {
    let members: Vec<BoxedStrategy<Option<(String, Json)>>> = properties
        .iter()
        .filter(|(name, _)| depth > 0 || required.contains(name))
        .map(|(name, member)| {
            let key = name.clone();
            let value = shape(model, member, depth).prop_map(move |value| (key.clone(), value));
            if required.contains(name.as_str()) {
                value.prop_map(Some).boxed()
            } else {
                prop::option::weighted(0.5, value).boxed()
            }
        })
        .collect();
    let extra = if additional && depth > 0 {
        prop::collection::vec((unknown_name(), any_json(2)), 0..2).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (members, extra)
        .prop_map(|(members, extra)| {
            let mut object: Vec<(String, Json)> = members.into_iter().flatten().collect();
            for (name, value) in extra {
                if !object.iter().any(|(existing, _)| *existing == name) {
                    object.push((name, value));
                }
            }
            Json::Object(object)
        })
        .boxed()
}

/// Printable text, quotes, backslashes and non-ASCII included.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\PC{0,16}",
        1 => "[a-zA-Z' \"\\\\&+#%=/?é中😀-]{0,12}",
    ]
}

/// An RFC 3339 date-time with 0 to 7 fractional digits and a `Z` or numeric offset.
pub fn date_time() -> impl Strategy<Value = String> {
    (
        1970u32..2100,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        "[0-9]{0,7}",
        prop_oneof![Just("Z".to_owned()), "[+-](0[0-9]|1[0-3]):(00|30)"],
    )
        .prop_map(|(year, month, day, hour, minute, second, fraction, offset)| {
            let fraction = if fraction.is_empty() { String::new() } else { format!(".{fraction}") };
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{offset}")
        })
}

/// A finite float as serde_json writes it (the shortest text that reads back the same value).
fn float_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("a finite float is written")
}

/// A JSON number of up to 20 integer digits and 10 decimals, sometimes with an exponent: the
/// amounts that `f64` cannot hold are the point.
pub fn amount() -> impl Strategy<Value = String> {
    "-?(0|[1-9][0-9]{0,19})(\\.[0-9]{1,10})?([eE][+-]?[0-9]{1,2})?"
}

/// A string that is none of `known`.
pub fn new_value(known: Vec<String>) -> impl Strategy<Value = String> {
    "[A-Z][a-zA-Z]{2,12}".prop_map(move |value| {
        if known.contains(&value) {
            format!("{value}Later")
        } else {
            value
        }
    })
}

/// The name of a member that no schema of the document declares.
pub fn unknown_name() -> impl Strategy<Value = String> {
    "[a-z]{2,8}".prop_map(|suffix| format!("unlisted{suffix}"))
}

/// Any JSON value, nested at most `depth` deep. Numbers stay within 15 significant digits:
/// members that the document does not name are kept in a `serde_json::Map`, which holds
/// numbers as `f64` (see the README), so longer ones could not come back digit for digit.
pub fn any_json(depth: u32) -> BoxedStrategy<Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        (-1_000_000_000i64..1_000_000_000).prop_map(|value| Json::Number(value.to_string())),
        "-?(0|[1-9][0-9]{0,8})\\.[0-9]{1,6}".prop_map(Json::Number),
        text().prop_map(Json::String),
    ];
    leaf.prop_recursive(depth, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
            prop::collection::vec(("[a-zA-Z]{1,8}", inner), 0..3).prop_map(|members| {
                let mut object: Vec<(String, Json)> = Vec::new();
                for (key, value) in members {
                    if !object.iter().any(|(existing, _)| *existing == key) {
                        object.push((key, value));
                    }
                }
                Json::Object(object)
            }),
        ]
    })
    .boxed()
}
