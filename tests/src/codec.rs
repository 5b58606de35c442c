//! Decoding into the generated types and encoding back.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::equivalence::{Difference, differences};
use crate::json::Json;

/// What a generated type must do for the tests: decode, encode, show itself, and describe itself
/// as JSON Schema.
pub trait Codec: DeserializeOwned + Serialize + Debug + schemars::JsonSchema + 'static {}

impl<T: DeserializeOwned + Serialize + Debug + schemars::JsonSchema + 'static> Codec for T {}

/// Something to do with the Rust type of a component schema, found by name with [`visit`].
pub trait TypeVisitor {
    /// What the visit gives.
    type Output;
    /// Called with the Rust type `T`, whose path is `rust_type`.
    fn visit<T: Codec>(self, rust_type: &'static str) -> Self::Output;
}

include!(concat!(env!("OUT_DIR"), "/registry.rs"));

/// A payload that does not decode: where, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// The JSON path, as `value[0].details.dealValue` (`.` for the root).
    pub path: String,
    /// serde's message.
    pub message: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at {}: {}", self.path, self.message)
    }
}

/// Decodes `text` as `T`, saying where it fails.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| DecodeError {
            path: error.path().to_string(),
            message: error.into_inner().to_string(),
        })?;
    deserializer.end().map_err(|error| DecodeError {
        path: ".".into(),
        message: error.to_string(),
    })?;
    Ok(value)
}

/// Encodes `value` as the generated type writes it.
pub fn encode<T: Serialize>(value: &T) -> Json {
    let text = serde_json::to_string(value).expect("a generated type serializes");
    Json::parse(&text).expect("serde_json writes valid JSON")
}

/// A payload decoded and encoded again.
pub struct RoundTrip<T> {
    /// The decoded value.
    pub value: T,
    /// Its encoding.
    pub back: Json,
    /// What changed, beyond what the equivalence rules allow.
    pub differences: Vec<Difference>,
}

/// Decodes `original` as `T`, encodes it again and compares the two.
pub fn round_trip<T: Codec>(original: &Json) -> Result<RoundTrip<T>, DecodeError> {
    let value: T = decode(&original.to_text())?;
    let back = encode(&value);
    let differences = differences(original, &back);
    Ok(RoundTrip {
        value,
        back,
        differences,
    })
}

/// [`round_trip`] for a component schema named at run time: the differences, or why the
/// payload did not decode.
pub fn round_trip_component(
    component: &str,
    original: &Json,
) -> Result<Vec<Difference>, DecodeError> {
    struct Visitor<'a>(&'a Json);
    impl TypeVisitor for Visitor<'_> {
        type Output = Result<Vec<Difference>, DecodeError>;
        fn visit<T: Codec>(self, _: &'static str) -> Self::Output {
            round_trip::<T>(self.0).map(|round_trip| round_trip.differences)
        }
    }
    visit(component, Visitor(original))
        .unwrap_or_else(|| panic!("no component schema `{component}`"))
}

/// Decodes `text` as the type of `component`; a panic is returned as an error too.
pub fn decode_component(component: &str, text: &str) -> Result<(), DecodeError> {
    struct Visitor<'a>(&'a str);
    impl TypeVisitor for Visitor<'_> {
        type Output = Result<(), DecodeError>;
        fn visit<T: Codec>(self, _: &'static str) -> Self::Output {
            decode::<T>(self.0).map(drop)
        }
    }
    visit(component, Visitor(text)).unwrap_or_else(|| panic!("no component schema `{component}`"))
}
