//! The value of a JSON Patch operation, kept as JSON text.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The `value` of a JSON Patch operation: any JSON value, kept as its text.
///
/// A `serde_json::Value` would hold numbers as `f64`; this keeps them as written, so that a
/// patch of `/details/dealValue` sends the [`Amount`](crate::Amount) digit for digit. Two values
/// are equal when their JSON text is.
///
/// ```
/// # extern crate referrals_model as referrals_client;
/// use referrals_client::{Amount, PatchValue};
///
/// let amount: Amount = "12345678901234.56".parse().unwrap();
/// let value = PatchValue::from_serialize(&amount).unwrap();
/// assert_eq!(value.json(), "12345678901234.56");
/// let back: Amount = value.to_value().unwrap();
/// assert_eq!(back.as_str(), "12345678901234.56");
/// ```
#[derive(Clone)]
pub struct PatchValue(Box<RawValue>);

impl PatchValue {
    /// The JSON text of any serializable value: a member of the generated types, a string, a
    /// number, an [`Amount`](crate::Amount).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// A value from JSON text; fails when `json` is not valid JSON.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json.trim().to_owned()).map(Self)
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// Decodes the value into `T`, straight from its text (so an amount keeps its digits).
    pub fn to_value<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl fmt::Debug for PatchValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PatchValue({})", self.json())
    }
}

impl fmt::Display for PatchValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

impl PartialEq for PatchValue {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Eq for PatchValue {}

impl Serialize for PatchValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PatchValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Self)
    }
}

/// Any JSON value, as the document describes a patch value.
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for PatchValue {
    fn schema_name() -> String {
        "JsonPatchValue".to_owned()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::Schema::Bool(true)
    }
}
