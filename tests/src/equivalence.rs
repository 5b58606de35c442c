//! When a payload that went through the generated types came back unchanged.
//!
//! These are the only differences a round trip may make; everything else must come back as it
//! was, unknown members included:
//!
//! 1. **Numbers compare by value**: `10000` equals `10000.0` and `1e4`. The comparison is exact
//!    decimal arithmetic on the numbers' text, never `f64`, so a lost digit is seen.
//! 2. **Date-times compare by instant**: two strings that are both RFC 3339 date-times are equal
//!    when they name the same instant (`2020-10-30T21:03:00.0000000Z` equals
//!    `2020-10-30T21:03:00Z`).
//! 3. **A `null` member equals an absent one**: the generated types write no member for `None`.

use std::str::FromStr;

use referrals_model::Amount;

use crate::json::{Json, Step, path_text};

/// One difference between a payload and its round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Where, as `value[0].details.dealValue`.
    pub path: String,
    /// What the original had there (`absent` when nothing).
    pub expected: String,
    /// What came back there (`absent` when nothing).
    pub found: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "at {}: expected {}, found {}",
            self.path, self.expected, self.found
        )
    }
}

/// The differences between `original` and `back` that the rules above do not allow.
pub fn differences(original: &Json, back: &Json) -> Vec<Difference> {
    let mut found = Vec::new();
    compare(original, back, &mut Vec::new(), &mut found);
    found
}

fn compare(original: &Json, back: &Json, path: &mut Vec<Step>, found: &mut Vec<Difference>) {
    let equal = match (original, back) {
        (Json::Number(a), Json::Number(b)) => numbers_equal(a, b),
        (Json::String(a), Json::String(b)) => a == b || same_instant(a, b),
        (Json::Object(a), Json::Object(b)) => {
            let mut keys: Vec<&String> = a.iter().map(|(key, _)| key).collect();
            for (key, _) in b {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            for key in keys {
                let left = original.get(key).unwrap_or(&Json::Null);
                let right = back.get(key).unwrap_or(&Json::Null);
                path.push(Step::Key(key.clone()));
                if (original.get(key).is_none() || back.get(key).is_none())
                    && !(left == &Json::Null && right == &Json::Null)
                {
                    found.push(Difference {
                        path: path_text(path),
                        expected: original.get(key).map_or("absent".into(), Json::to_text),
                        found: back.get(key).map_or("absent".into(), Json::to_text),
                    });
                } else {
                    compare(left, right, path, found);
                }
                path.pop();
            }
            return;
        }
        (Json::Array(a), Json::Array(b)) if a.len() == b.len() => {
            for (index, (left, right)) in a.iter().zip(b).enumerate() {
                path.push(Step::Index(index));
                compare(left, right, path, found);
                path.pop();
            }
            return;
        }
        (a, b) => a == b,
    };
    if !equal {
        found.push(Difference {
            path: path_text(path),
            expected: original.to_text(),
            found: back.to_text(),
        });
    }
}

fn numbers_equal(a: &str, b: &str) -> bool {
    match (Amount::from_str(a), Amount::from_str(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn same_instant(a: &str, b: &str) -> bool {
    match (
        chrono::DateTime::parse_from_rfc3339(a),
        chrono::DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(a: &str, b: &str) -> Vec<String> {
        differences(&Json::parse(a).unwrap(), &Json::parse(b).unwrap())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_three_rules_hold() {
        assert!(diff(r#"{"a":10000}"#, r#"{"a":10000.0}"#).is_empty());
        assert!(diff(r#"{"a":10000}"#, r#"{"a":1e4}"#).is_empty());
        assert!(
            diff(
                r#"{"t":"2020-10-30T21:03:00.0000000Z"}"#,
                r#"{"t":"2020-10-30T21:03:00Z"}"#
            )
            .is_empty()
        );
        assert!(
            diff(
                r#"{"t":"2020-10-30T23:03:00+02:00"}"#,
                r#"{"t":"2020-10-30T21:03:00Z"}"#
            )
            .is_empty()
        );
        assert!(diff(r#"{"a":null,"b":1}"#, r#"{"b":1}"#).is_empty());
        assert!(diff(r#"{"b":1}"#, r#"{"a":null,"b":1}"#).is_empty());
    }

    #[test]
    fn everything_else_is_a_difference() {
        assert_eq!(
            diff(
                r#"{"a":12345678901234.5678}"#,
                r#"{"a":12345678901234.568}"#
            ),
            ["at a: expected 12345678901234.5678, found 12345678901234.568"]
        );
        assert_eq!(
            diff(r#"{"a":{"x":1}}"#, r#"{"a":{}}"#),
            ["at a.x: expected 1, found absent"]
        );
        assert_eq!(
            diff(r#"{"a":[1,2]}"#, r#"{"a":[1]}"#),
            ["at a: expected [1,2], found [1]"]
        );
        assert_eq!(
            diff(r#"{"s":"New"}"#, r#"{"s":"new"}"#),
            ["at s: expected \"New\", found \"new\""]
        );
        assert_eq!(
            diff(r#"{"a":"1"}"#, r#"{"a":1}"#),
            ["at a: expected \"1\", found 1"]
        );
        assert_eq!(
            diff(r#"{"a":false}"#, r#"{}"#),
            ["at a: expected false, found absent"]
        );
        assert_eq!(
            diff(
                r#"{"t":"2020-10-30T21:03:00Z"}"#,
                r#"{"t":"2020-10-30T21:03:01Z"}"#
            ),
            ["at t: expected \"2020-10-30T21:03:00Z\", found \"2020-10-30T21:03:01Z\""]
        );
    }
}
