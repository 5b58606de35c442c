//! The kinds of scalar members that a filter compares, an order sorts and a mirror keeps in a
//! column, and everything each kind means, in one place: the codegen gives each filterable or
//! sortable member its [`Kind`] from the document's schema; the client's typed filters, the
//! sandbox's comparisons, the CLI's flags, the mirror's columns and the contract tests ask the
//! kind, never match on it. A kind added to the workspace is a variant here and its detection
//! in the codegen (`referrals-codegen`'s `reader::Kind`).

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use referrals_odata::Literal;
use uuid::Uuid;

use crate::Amount;

/// What a member holds, which decides the literals that it compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A string (`type: string`), in single quotes.
    Text,
    /// A value of a value set, open or closed, compared as its text.
    Set,
    /// A UUID (`format: uuid`), written bare.
    Uuid,
    /// A date-time (`format: date-time`), compared by instant; written bare.
    Time,
    /// A date (`format: date`), written bare (`2020-10-30`).
    Date,
    /// An integer (`type: integer`, `int32` or `int64`).
    Integer,
    /// A number (`type: number`, `float` or `double`), compared by value.
    Number,
    /// Money (the document's `Amount`), compared by value with every digit.
    Money,
    /// `true` or `false`.
    Bool,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 9] = [
        Kind::Text,
        Kind::Set,
        Kind::Uuid,
        Kind::Time,
        Kind::Date,
        Kind::Integer,
        Kind::Number,
        Kind::Money,
        Kind::Bool,
    ];

    /// What a literal of this kind looks like, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Text | Kind::Set => "a string (in single quotes)",
            Kind::Uuid => "a UUID (written bare)",
            Kind::Time => "a date-time (written bare, such as 2020-10-30T00:00:00Z)",
            Kind::Date => "a date (written bare, such as 2020-10-30)",
            Kind::Integer => "an integer",
            Kind::Number | Kind::Money => "a number",
            Kind::Bool => "true or false",
        }
    }

    /// Whether `gt`, `ge`, `lt` and `le` mean something for it: not for a value set (its values
    /// have no order of meaning), a UUID or a boolean. Any kind sorts.
    pub fn is_ordered(self) -> bool {
        !matches!(self, Kind::Set | Kind::Uuid | Kind::Bool)
    }

    /// Whether it is a point in time, whose bounds a command line names `-from` and `-to`.
    pub fn is_temporal(self) -> bool {
        matches!(self, Kind::Time | Kind::Date)
    }

    /// The name of a value on a command line (`VALUE`, `DATE-TIME`, `INTEGER`...).
    pub fn value_name(self) -> &'static str {
        match self {
            Kind::Text | Kind::Set => "VALUE",
            Kind::Uuid => "UUID",
            Kind::Time => "DATE-TIME",
            Kind::Date => "DATE",
            Kind::Integer => "INTEGER",
            Kind::Number => "NUMBER",
            Kind::Money => "AMOUNT",
            Kind::Bool => "BOOL",
        }
    }

    /// The literal of a value written by a person (a flag's value): a string as it is, a
    /// date-time in RFC 3339 or a date (its midnight, UTC), a number with its digits.
    pub fn literal_of_text(self, text: &str) -> Result<Literal, String> {
        let text = text.trim();
        let wrong = || format!("`{text}` is not {}", self.describe());
        Ok(match self {
            Kind::Text | Kind::Set => Literal::String(text.to_owned()),
            Kind::Uuid => Literal::Guid(Uuid::parse_str(text).map_err(|_| wrong())?.to_string()),
            Kind::Time => {
                Literal::DateTime(crate::instant_text(&time_of_text(text).ok_or_else(wrong)?))
            }
            Kind::Date => Literal::Date(date_of_text(text).ok_or_else(wrong)?.to_string()),
            Kind::Integer => Literal::Number(text.parse::<i64>().map_err(|_| wrong())?.to_string()),
            Kind::Number => {
                let number: f64 = text.parse().map_err(|_| wrong())?;
                if !number.is_finite() {
                    return Err(wrong());
                }
                Literal::Number(text.to_owned())
            }
            Kind::Money => {
                Literal::Number(text.parse::<Amount>().map_err(|_| wrong())?.to_string())
            }
            Kind::Bool => Literal::Boolean(text.parse().map_err(|_| wrong())?),
        })
    }

    /// The value of an OData literal compared with a member of this kind (`null` aside), or
    /// `None` when the literal is not of this kind.
    pub fn value_of_literal(self, literal: &Literal) -> Option<Value> {
        Some(match (self, literal) {
            (Kind::Text | Kind::Set, Literal::String(text) | Literal::Guid(text)) => {
                Value::Text(text.clone())
            }
            (Kind::Uuid, Literal::Guid(text) | Literal::String(text)) => {
                Value::Uuid(Uuid::parse_str(text).ok()?)
            }
            (Kind::Time, Literal::DateTime(text)) => Value::Time(time_of_text(text)?),
            (Kind::Time, Literal::Date(text)) => Value::Time(time_of_text(text)?),
            (Kind::Date, Literal::Date(text)) => Value::Date(date_of_text(text)?),
            (Kind::Integer, Literal::Number(text)) => Value::Integer(text.parse().ok()?),
            (Kind::Number, Literal::Number(text)) => {
                Value::Number(text.parse::<f64>().ok().filter(|n| n.is_finite())?)
            }
            (Kind::Money, Literal::Number(text)) => Value::Money(text.parse().ok()?),
            (Kind::Bool, Literal::Boolean(value)) => Value::Bool(*value),
            _ => return None,
        })
    }

    /// A literal of this kind, as an example (for tests and messages).
    pub fn example(self) -> Literal {
        match self {
            Kind::Text | Kind::Set => Literal::String("x".to_owned()),
            Kind::Uuid => Literal::Guid("61c65491-2f2c-461a-84b4-3654499bc1d9".to_owned()),
            Kind::Time => Literal::DateTime("2020-10-30T00:00:00Z".to_owned()),
            Kind::Date => Literal::Date("2020-10-30".to_owned()),
            Kind::Integer => Literal::Number("42".to_owned()),
            Kind::Number => Literal::Number("0.5".to_owned()),
            Kind::Money => Literal::Number("12345678901234.56".to_owned()),
            Kind::Bool => Literal::Boolean(true),
        }
    }

    /// The type of its column in PostgreSQL.
    pub fn sql_type(self) -> &'static str {
        match self {
            Kind::Text | Kind::Set => "text",
            Kind::Uuid => "uuid",
            Kind::Time => "timestamptz",
            Kind::Date => "date",
            Kind::Integer => "bigint",
            Kind::Number => "double precision",
            Kind::Money => "numeric",
            Kind::Bool => "boolean",
        }
    }

    /// Its column in SQLite: the column's type and the operator that reads the member from a
    /// row's JSON text (`->>` gives SQL values; money is read with `->`, as JSON text, so that
    /// it keeps its digits). [`Scalar::sqlite_value`] gives the same value without the JSON.
    pub fn sqlite_column(self) -> (&'static str, &'static str) {
        match self {
            Kind::Text | Kind::Set | Kind::Uuid | Kind::Time | Kind::Date => ("TEXT", "->>"),
            Kind::Integer | Kind::Bool => ("INTEGER", "->>"),
            Kind::Number => ("REAL", "->>"),
            Kind::Money => ("TEXT", "->"),
        }
    }
}

/// A date-time in RFC 3339, or a date (its midnight, UTC).
fn time_of_text(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .ok()
        .or_else(|| Some(date_of_text(text)?.and_hms_opt(0, 0, 0)?.and_utc()))
}

fn date_of_text(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A member's value in one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// The member is absent or `null`.
    Null,
    /// A string or a value of a set.
    Text(&'a str),
    /// A UUID.
    Uuid(Uuid),
    /// A date-time.
    Time(DateTime<Utc>),
    /// A date.
    Date(NaiveDate),
    /// An integer.
    Integer(i64),
    /// A number.
    Number(f64),
    /// An amount.
    Money(&'a Amount),
    /// A boolean.
    Bool(bool),
}

impl Scalar<'_> {
    /// Orders two values of one member; `null` first. Values of two kinds (which one member
    /// never gives) compare equal.
    pub fn compare(&self, other: &Scalar<'_>) -> Ordering {
        match (self, other) {
            (Scalar::Null, Scalar::Null) => Ordering::Equal,
            (Scalar::Null, _) => Ordering::Less,
            (_, Scalar::Null) => Ordering::Greater,
            (Scalar::Text(a), Scalar::Text(b)) => a.cmp(b),
            (Scalar::Uuid(a), Scalar::Uuid(b)) => a.cmp(b),
            (Scalar::Time(a), Scalar::Time(b)) => a.cmp(b),
            (Scalar::Date(a), Scalar::Date(b)) => a.cmp(b),
            (Scalar::Integer(a), Scalar::Integer(b)) => a.cmp(b),
            (Scalar::Number(a), Scalar::Number(b)) => a.total_cmp(b),
            (Scalar::Money(a), Scalar::Money(b)) => a.cmp(b),
            (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }

    /// The value as a text that SQL casts to the kind's column type; `None` for `null`.
    pub fn sql_text(&self) -> Option<String> {
        Some(match self {
            Scalar::Null => return None,
            Scalar::Text(text) => (*text).to_owned(),
            Scalar::Uuid(uuid) => uuid.to_string(),
            Scalar::Time(time) => time.to_rfc3339(),
            Scalar::Date(date) => date.to_string(),
            Scalar::Integer(value) => value.to_string(),
            Scalar::Number(value) => value.to_string(),
            Scalar::Money(amount) => amount.to_string(),
            Scalar::Bool(value) => value.to_string(),
        })
    }

    /// The value, owned.
    pub fn to_value(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Text(text) => Value::Text((*text).to_owned()),
            Scalar::Uuid(uuid) => Value::Uuid(*uuid),
            Scalar::Time(time) => Value::Time(*time),
            Scalar::Date(date) => Value::Date(*date),
            Scalar::Integer(value) => Value::Integer(*value),
            Scalar::Number(value) => Value::Number(*value),
            Scalar::Money(amount) => Value::Money((*amount).clone()),
            Scalar::Bool(value) => Value::Bool(*value),
        }
    }

    /// The value as JSON, for a continuation token: date-times keep every digit of their
    /// fraction, money its digits (as a string).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Null => serde_json::Value::Null,
            Scalar::Bool(value) => serde_json::Value::Bool(*value),
            Scalar::Integer(value) => serde_json::Value::from(*value),
            Scalar::Number(value) => serde_json::Value::from(*value),
            Scalar::Time(time) => serde_json::Value::String(crate::instant_text(time)),
            other => serde_json::Value::String(other.sql_text().unwrap_or_default()),
        }
    }
}

impl<'a> Scalar<'a> {
    /// The value that SQLite's operator of [`Kind::sqlite_column`] reads from the member in
    /// the JSON that serde writes: text as it is, a date-time in RFC 3339 with `Z` and the
    /// digits of its fraction, a boolean as 1 or 0, money as its JSON number.
    pub fn sqlite_value(&self) -> SqliteValue<'a> {
        match self {
            Scalar::Null => SqliteValue::Null,
            Scalar::Text(text) => SqliteValue::Text(Cow::Borrowed(*text)),
            Scalar::Uuid(uuid) => SqliteValue::Text(Cow::Owned(uuid.to_string())),
            Scalar::Time(time) => SqliteValue::Text(Cow::Owned(crate::instant_text(time))),
            Scalar::Date(date) => SqliteValue::Text(Cow::Owned(date.to_string())),
            Scalar::Integer(value) => SqliteValue::Integer(*value),
            // serde_json writes a number that is not finite as `null`.
            Scalar::Number(value) if !value.is_finite() => SqliteValue::Null,
            Scalar::Number(value) => SqliteValue::Real(*value),
            Scalar::Money(amount) => SqliteValue::Text(Cow::Borrowed(Amount::as_str(amount))),
            Scalar::Bool(value) => SqliteValue::Integer(i64::from(*value)),
        }
    }
}

/// A member's value as a SQLite mirror's column holds it ([`Scalar::sqlite_value`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SqliteValue<'a> {
    /// `NULL`: the member is absent or `null`.
    Null,
    /// An `INTEGER`.
    Integer(i64),
    /// A `REAL`.
    Real(f64),
    /// A `TEXT`.
    Text(Cow<'a, str>),
}

/// An owned value of a member: read from a literal or back from [`Scalar::to_json`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// A string.
    Text(String),
    /// A UUID.
    Uuid(Uuid),
    /// A date-time.
    Time(DateTime<Utc>),
    /// A date.
    Date(NaiveDate),
    /// An integer.
    Integer(i64),
    /// A number.
    Number(f64),
    /// An amount.
    Money(Amount),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The value, borrowed as a [`Scalar`].
    pub fn scalar(&self) -> Scalar<'_> {
        match self {
            Value::Null => Scalar::Null,
            Value::Text(text) => Scalar::Text(text),
            Value::Uuid(uuid) => Scalar::Uuid(*uuid),
            Value::Time(time) => Scalar::Time(*time),
            Value::Date(date) => Scalar::Date(*date),
            Value::Integer(value) => Scalar::Integer(*value),
            Value::Number(value) => Scalar::Number(*value),
            Value::Money(amount) => Scalar::Money(amount),
            Value::Bool(value) => Scalar::Bool(*value),
        }
    }

    /// A value of `kind` read back from [`Scalar::to_json`].
    pub fn from_json(kind: Kind, json: &serde_json::Value) -> Option<Value> {
        Some(match (kind, json) {
            (_, serde_json::Value::Null) => Value::Null,
            (Kind::Bool, serde_json::Value::Bool(value)) => Value::Bool(*value),
            (Kind::Integer, serde_json::Value::Number(number)) => Value::Integer(number.as_i64()?),
            (Kind::Number, serde_json::Value::Number(number)) => Value::Number(number.as_f64()?),
            (Kind::Text | Kind::Set, serde_json::Value::String(text)) => Value::Text(text.clone()),
            (Kind::Money, serde_json::Value::String(text)) => Value::Money(text.parse().ok()?),
            (kind, serde_json::Value::String(text)) => {
                let literal = match kind {
                    Kind::Uuid => Literal::Guid(text.clone()),
                    Kind::Date => Literal::Date(text.clone()),
                    _ => Literal::DateTime(text.clone()),
                };
                kind.value_of_literal(&literal)?
            }
            _ => return None,
        })
    }
}

/// A value that a table reads as a [`Scalar`].
pub trait AsScalar {
    /// The value as a scalar.
    fn as_scalar(&self) -> Scalar<'_>;
}

/// `AsScalar` for types that become a scalar by a conversion.
macro_rules! as_scalar {
    ($($type:ty => |$value:ident| $scalar:expr),* $(,)?) => {
        $(
            impl AsScalar for $type {
                fn as_scalar(&self) -> Scalar<'_> {
                    let $value = self;
                    $scalar
                }
            }
        )*
    };
}

as_scalar! {
    String => |value| Scalar::Text(value),
    Uuid => |value| Scalar::Uuid(*value),
    DateTime<Utc> => |value| Scalar::Time(*value),
    NaiveDate => |value| Scalar::Date(*value),
    i64 => |value| Scalar::Integer(*value),
    i32 => |value| Scalar::Integer(i64::from(*value)),
    u32 => |value| Scalar::Integer(i64::from(*value)),
    f64 => |value| Scalar::Number(*value),
    f32 => |value| Scalar::Number(f64::from(*value)),
    Amount => |value| Scalar::Money(value),
    bool => |value| Scalar::Bool(*value),
}

/// The scalar of an optional member.
pub fn scalar<T: AsScalar + ?Sized>(value: Option<&T>) -> Scalar<'_> {
    value.map_or(Scalar::Null, AsScalar::as_scalar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_takes_its_example_and_gives_it_back_through_json() {
        for kind in Kind::ALL {
            let value = kind
                .value_of_literal(&kind.example())
                .expect("its own example");
            let json = value.scalar().to_json();
            assert_eq!(Value::from_json(kind, &json), Some(value), "{kind:?}");
        }
    }

    #[test]
    fn text_from_a_person_is_checked_for_its_kind() {
        assert_eq!(
            Kind::Integer.literal_of_text("42"),
            Ok(Literal::Number("42".into()))
        );
        assert!(Kind::Integer.literal_of_text("4.2").is_err());
        assert!(Kind::Number.literal_of_text("NaN").is_err());
        assert!(Kind::Uuid.literal_of_text("not-a-uuid").is_err());
        assert_eq!(
            Kind::Time.literal_of_text("2024-05-01"),
            Ok(Literal::DateTime("2024-05-01T00:00:00Z".into()))
        );
        assert_eq!(
            Kind::Money.literal_of_text("12345678901234.56"),
            Ok(Literal::Number("12345678901234.56".into()))
        );
        assert!(Kind::Bool.literal_of_text("yes").is_err());
    }

    #[test]
    fn numbers_order_by_value_and_null_comes_first() {
        assert_eq!(
            Scalar::Number(0.5).compare(&Scalar::Number(-1.0)),
            Ordering::Greater
        );
        assert_eq!(Scalar::Null.compare(&Scalar::Integer(0)), Ordering::Less);
        assert_eq!(
            Scalar::Date(NaiveDate::MIN).compare(&Scalar::Date(NaiveDate::MAX)),
            Ordering::Less
        );
    }
}
