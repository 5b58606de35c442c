//! JSON with numbers kept as text.
//!
//! `serde_json::Value` holds numbers as `f64`, which would make the round-trip comparison
//! blind to a lost digit in `12345678901234.5678`. This tree keeps each number's text; it is
//! read with serde_json's raw values, so it accepts exactly what serde_json accepts.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;

/// A JSON value whose numbers are kept as written. Object members keep their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, as its text.
    Number(String),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, members in order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses JSON text.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let raw: Box<RawValue> = serde_json::from_str(text)?;
        Self::from_raw(raw.get())
    }

    fn from_raw(text: &str) -> Result<Self, serde_json::Error> {
        let text = text.trim_start();
        Ok(match text.as_bytes().first() {
            Some(b'{') => {
                let Members(members) = serde_json::from_str(text)?;
                Json::Object(
                    members
                        .into_iter()
                        .map(|(key, value)| Ok((key, Self::from_raw(value.get())?)))
                        .collect::<Result<_, serde_json::Error>>()?,
                )
            }
            Some(b'[') => {
                let items: Vec<Box<RawValue>> = serde_json::from_str(text)?;
                Json::Array(
                    items
                        .iter()
                        .map(|item| Self::from_raw(item.get()))
                        .collect::<Result<_, _>>()?,
                )
            }
            Some(b'"') => Json::String(serde_json::from_str(text)?),
            Some(b't' | b'f') => Json::Bool(serde_json::from_str(text)?),
            Some(b'n') => Json::Null,
            _ => Json::Number(text.trim_end().to_owned()),
        })
    }

    /// The compact JSON text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("a Json tree always serializes")
    }

    /// The indented JSON text, for messages.
    pub fn to_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a Json tree always serializes")
    }

    /// The same value as a `serde_json::Value` (numbers become `f64` or integers), for the
    /// JSON Schema validator.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.to_text()).expect("a Json tree is valid JSON")
    }

    /// A member of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// The value at `path`, to change it.
    pub fn at_mut(&mut self, path: &[Step]) -> Option<&mut Json> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        let next = match (self, first) {
            (Json::Object(members), Step::Key(key)) => members
                .iter_mut()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value)?,
            (Json::Array(items), Step::Index(index)) => items.get_mut(*index)?,
            _ => return None,
        };
        next.at_mut(rest)
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A member of an object.
    Key(String),
    /// An item of an array.
    Index(usize),
}

/// A path written as serde_path_to_error writes it (`value[0].details.dealValue`), `.` for the
/// root, so that the two can be compared.
pub fn path_text(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Step::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    if text.is_empty() { ".".into() } else { text }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(value) => serializer.serialize_bool(*value),
            Json::Number(text) => RawValue::from_string(text.clone())
                .map_err(serde::ser::Error::custom)?
                .serialize(serializer),
            Json::String(value) => serializer.serialize_str(value),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// The members of an object in their order, each as raw JSON text.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text() {
        let text = r#"{"a":12345678901234.5678,"b":[0.1,1E+2,-0],"c":"x","d":null,"e":true}"#;
        let json = Json::parse(text).unwrap();
        assert_eq!(
            json.get("a"),
            Some(&Json::Number("12345678901234.5678".into()))
        );
        assert_eq!(json.to_text(), text);
    }

    #[test]
    fn invalid_json_is_refused() {
        assert!(Json::parse("{\"a\":1,}").is_err());
        assert!(Json::parse("[1 2]").is_err());
    }

    #[test]
    fn paths_are_written_like_serde_path_to_error() {
        let path = [
            Step::Key("value".into()),
            Step::Index(0),
            Step::Key("details".into()),
        ];
        assert_eq!(path_text(&path), "value[0].details");
        assert_eq!(path_text(&[]), ".");
    }
}
