//! Money as exact decimal text.
//!
//! The document's `Amount` schema is a JSON number. Decoding it into `f64` would turn
//! `0.1` into 0.1000000000000000055… and round amounts beyond 15 or 16 significant digits, so the
//! client keeps the number's text exactly as received and writes it back the same way.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// An amount of money: a JSON number kept as its exact decimal text.
///
/// `12345678901234.56` and `0.1` decode and encode digit for digit, whatever their length.
/// Two amounts are equal when they have the same value (`10000` equals `10000.0` and `1e4`).
/// Convert to a decimal type for arithmetic, for instance
/// `rust_decimal::Decimal::from_str_exact(amount.as_str())`.
///
/// ```
/// # extern crate referrals_model as referrals_client;
/// use referrals_client::Amount;
///
/// let amount: Amount = "12345678901234.56".parse().unwrap();
/// assert_eq!(amount.as_str(), "12345678901234.56");
/// assert_eq!(amount, "12345678901234.560".parse().unwrap());
/// assert!("12,5".parse::<Amount>().is_err());
/// ```
#[derive(Clone)]
pub struct Amount(Box<RawValue>);

/// Why a text is not an [`Amount`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a JSON number: {reason}")]
pub struct AmountError {
    text: String,
    reason: &'static str,
}

impl Amount {
    /// The number as written on the wire, such as `48250.75`.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The value with its digits and exponent normalized, used for equality and hashing.
    fn normalized(&self) -> Normalized {
        normalize(self.as_str()).expect("an Amount always holds a valid JSON number")
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        normalize(text).map_err(|reason| AmountError {
            text: text.to_owned(),
            reason,
        })?;
        let raw = RawValue::from_string(text.to_owned()).map_err(|_| AmountError {
            text: text.to_owned(),
            reason: "not valid JSON",
        })?;
        Ok(Self(raw))
    }
}

macro_rules! from_integer {
    ($($integer:ty),*) => {$(
        impl From<$integer> for Amount {
            fn from(value: $integer) -> Self {
                value.to_string().parse().expect("an integer is a JSON number")
            }
        }
    )*};
}
from_integer!(i8, i16, i32, i64, i128, u8, u16, u32, u64, u128);

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.as_str())
    }
}

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        self.normalized() == other.normalized()
    }
}

impl Eq for Amount {}

/// Amounts order by value, exactly (no conversion to a float).
impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Amount {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let (a, b) = (self.normalized(), other.normalized());
        let sign = |n: &Normalized| match (n.digits.is_empty(), n.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        match sign(&a).cmp(&sign(&b)) {
            Ordering::Equal if sign(&a) == 0 => Ordering::Equal,
            Ordering::Equal => {
                // Same sign: compare magnitudes by the position of the leading digit, then digit
                // by digit; for negative numbers the larger magnitude is the smaller number.
                let lead = |n: &Normalized| n.digits.len() as i128 + i128::from(n.exponent);
                let magnitude = lead(&a).cmp(&lead(&b)).then_with(|| {
                    let width = a.digits.len().max(b.digits.len());
                    format!("{:0<width$}", a.digits).cmp(&format!("{:0<width$}", b.digits))
                });
                if a.negative {
                    magnitude.reverse()
                } else {
                    magnitude
                }
            }
            different => different,
        }
    }
}

impl Hash for Amount {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.normalized().hash(state);
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // serde_json writes a raw value verbatim: the digits go out as they came in.
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde_json hands a raw value over as the number's text, before any conversion to a
        // float. (Behind serde's buffering, as in untagged enums, this is not available and
        // decoding fails rather than lose digits; the document puts no amount there.)
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        match normalize(raw.get()) {
            Ok(_) => Ok(Self(raw)),
            Err(reason) => Err(serde::de::Error::custom(format!(
                "expected an amount (a JSON number), found `{}`: {reason}",
                raw.get()
            ))),
        }
    }
}

/// A decimal number as sign, significant digits (no leading or trailing zeros) and a power of
/// ten, so that `10000`, `10000.0` and `1e4` compare equal.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Normalized {
    negative: bool,
    digits: String,
    exponent: i64,
}

/// Checks the JSON number grammar (RFC 8259, section 6) and normalizes the value.
fn normalize(text: &str) -> Result<Normalized, &'static str> {
    let bytes = text.as_bytes();
    let negative = bytes.first() == Some(&b'-');
    let int_start = usize::from(negative);
    let mut at = digits_end(bytes, int_start);
    let int = &text[int_start..at];
    if int.is_empty() {
        return Err("no digits before the decimal point");
    }
    if int.len() > 1 && int.starts_with('0') {
        return Err("a leading zero");
    }
    let mut frac = "";
    if bytes.get(at) == Some(&b'.') {
        let start = at + 1;
        at = digits_end(bytes, start);
        frac = &text[start..at];
        if frac.is_empty() {
            return Err("no digits after the decimal point");
        }
    }
    let (exponent, end) = exponent_at(text, at)?;
    if end != bytes.len() {
        return Err("characters after the number");
    }
    let mut digits: String = format!("{int}{frac}").trim_start_matches('0').to_owned();
    let exponent = exponent
        .checked_sub(frac.len() as i64)
        .ok_or("an exponent out of range")?;
    let trailing = digits.len() - digits.trim_end_matches('0').len();
    digits.truncate(digits.len() - trailing);
    let exponent = exponent
        .checked_add(trailing as i64)
        .ok_or("an exponent out of range")?;
    if digits.is_empty() {
        return Ok(Normalized {
            negative: false,
            digits,
            exponent: 0,
        });
    }
    Ok(Normalized {
        negative,
        digits,
        exponent,
    })
}

/// Where the run of ASCII digits that starts at `at` ends.
fn digits_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && bytes[at].is_ascii_digit() {
        at += 1;
    }
    at
}

/// The exponent (`e`, `E`, a sign, digits) at `at`, 0 when there is none, and where it ends.
fn exponent_at(text: &str, at: usize) -> Result<(i64, usize), &'static str> {
    let bytes = text.as_bytes();
    if !matches!(bytes.get(at), Some(b'e' | b'E')) {
        return Ok((0, at));
    }
    let (negative, start) = match bytes.get(at + 1) {
        Some(b'-') => (true, at + 2),
        Some(b'+') => (false, at + 2),
        _ => (false, at + 1),
    };
    let end = digits_end(bytes, start);
    let digits = &text[start..end];
    if digits.is_empty() {
        return Err("no digits in the exponent");
    }
    let exponent: i64 = digits.parse().map_err(|_| "an exponent out of range")?;
    Ok((if negative { -exponent } else { exponent }, end))
}

/// Money as the document describes it: a JSON number of the `decimal` format.
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Amount {
    fn schema_name() -> String {
        "Amount".to_owned()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::Number.into()),
            format: Some("decimal".to_owned()),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str) -> Amount {
        text.parse().unwrap()
    }

    #[test]
    fn keeps_every_digit() {
        for text in [
            "12345678901234.56",
            "0.1",
            "10000",
            "250000.00",
            "-0.0",
            "1E+2",
            "123456789012345678901234567890.123456789",
        ] {
            let decoded: Amount = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&decoded).unwrap(), text);
            assert_eq!(decoded.as_str(), text);
        }
    }

    #[test]
    fn equal_by_value() {
        assert_eq!(amount("10000"), amount("10000.0"));
        assert_eq!(amount("10000"), amount("1e4"));
        assert_eq!(amount("0.10"), amount("1E-1"));
        assert_eq!(amount("0"), amount("-0.000"));
        assert_ne!(amount("0.1"), amount("0.10000000000000001"));
        assert_ne!(amount("-1"), amount("1"));
    }

    #[test]
    fn refuses_what_json_refuses() {
        for text in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1,5", "0x10", "NaN", " 1",
        ] {
            assert!(text.parse::<Amount>().is_err(), "{text:?} was accepted");
        }
        let error = serde_json::from_str::<Amount>("\"10\"").unwrap_err();
        assert!(error.to_string().contains("expected an amount"), "{error}");
    }

    #[test]
    fn order_by_value() {
        let mut amounts: Vec<Amount> = [
            "10", "-2.5", "0.1", "1e3", "-30", "0", "9.99", "0.10", "-2.49",
        ]
        .iter()
        .map(|text| amount(text))
        .collect();
        amounts.sort();
        let texts: Vec<&str> = amounts.iter().map(Amount::as_str).collect();
        assert_eq!(
            texts,
            [
                "-30", "-2.5", "-2.49", "0", "0.1", "0.10", "9.99", "10", "1e3"
            ]
        );
        assert!(
            amount("123456789012345678901234567890.2") > amount("123456789012345678901234567890.1")
        );
    }

    #[test]
    fn integers_convert() {
        assert_eq!(Amount::from(48250_u32).as_str(), "48250");
        assert_eq!(Amount::from(-5_i64), amount("-5.00"));
    }
}
