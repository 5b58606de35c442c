//! The columns of a mirror beside each referral's JSON, in both backends: one for each member
//! that the document lists as filterable or sortable (`x-filterable`, `x-sortable`, read from
//! the generated tables), named in snake case after the member
//! (`customerProfile/address/country` → `country`; the whole path when two members end
//! alike), typed after its kind, the sort keys indexed.

use std::borrow::Cow;

use referrals_client::facts::{FILTERABLE, Kind, SORTABLE, Scalar, SqliteValue};
use referrals_client::types::Referral;
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};

/// The columns that every PostgreSQL mirror has, whatever the document says.
#[cfg(feature = "postgres")]
pub(crate) const FIXED: [&str; 3] = ["id", "e_tag", "json"];

/// A column made from a member of the document's tables.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    /// The member's path in the referral (`customerProfile/address/country`).
    pub(crate) path: &'static str,
    kind: Kind,
    /// Whether the member is a sort key: its column has an index.
    pub(crate) sortable: bool,
    get: fn(&Referral) -> Scalar<'_>,
}

impl Column {
    /// The column's type in PostgreSQL.
    #[cfg(feature = "postgres")]
    pub(crate) fn sql_type(&self) -> &'static str {
        self.kind.sql_type()
    }

    /// The column in SQLite: a column of its own, written with each row
    /// ([`Self::sqlite_value`]), of the type of its kind.
    pub(crate) fn sqlite_definition(&self) -> String {
        format!("{} {}", self.name, self.kind.sqlite_column().0)
    }

    /// The SQL that reads the member from a row's `json` in SQLite: what
    /// [`Self::sqlite_value`] gives (money as JSON text, so that it keeps its digits).
    pub(crate) fn sqlite_read(&self) -> String {
        let path = format!("$.{}", self.path.replace('/', "."));
        format!("json {} '{path}'", self.kind.sqlite_column().1)
    }

    /// The member's value in `referral`, as its SQLite column holds it.
    pub(crate) fn sqlite_value<'a>(&self, referral: &'a Referral) -> SqliteValue<'a> {
        (self.get)(referral).sqlite_value()
    }

    /// The member's value in `referral`, as the text that PostgreSQL casts to the column's type.
    #[cfg(feature = "postgres")]
    pub(crate) fn text(&self, referral: &Referral) -> Option<String> {
        (self.get)(referral).sql_text()
    }

    /// The SQL that reads the member from a row's `json` in PostgreSQL, to fill a column
    /// added later.
    #[cfg(feature = "postgres")]
    pub(crate) fn read_from_json(&self) -> String {
        format!(
            "(json #>> '{{{}}}')::{}",
            self.path.replace('/', ","),
            self.sql_type()
        )
    }
}

/// The columns, in the order of the tables: the filterable members, then the sort keys that
/// are not filterable.
pub(crate) fn columns() -> Vec<Column> {
    let members = FILTERABLE
        .iter()
        .map(|member| (member.path, member.kind, member.get))
        .chain(
            SORTABLE
                .iter()
                .filter(|key| FILTERABLE.iter().all(|member| member.path != key.path))
                .map(|key| (key.path, key.kind, key.get)),
        );
    let mut columns: Vec<Column> = Vec::new();
    for (path, kind, get) in members {
        let last = path.rsplit('/').next().unwrap_or(path);
        let ends_alike = FILTERABLE
            .iter()
            .map(|member| member.path)
            .chain(SORTABLE.iter().map(|key| key.path))
            .any(|other| other != path && other.rsplit('/').next() == Some(last));
        let name = snake(if ends_alike { path } else { last });
        columns.push(Column {
            name,
            path,
            kind,
            sortable: SORTABLE.iter().any(|key| key.path == path),
            get,
        });
    }
    columns
}

/// The columns that a SQLite mirror writes beside [`crate::schema::REFERRALS_FIXED`]: those of
/// [`columns`] that a fixed column does not already hold (`status`, `substatus`).
pub(crate) fn sqlite_members() -> &'static [Column] {
    static MEMBERS: std::sync::LazyLock<Vec<Column>> = std::sync::LazyLock::new(|| {
        columns()
            .into_iter()
            .filter(|column| !crate::schema::is_fixed(&column.name))
            .collect()
    });
    &MEMBERS
}

/// `value`, as rusqlite binds it.
pub(crate) fn sqlite_output(value: SqliteValue<'_>) -> ToSqlOutput<'_> {
    ToSqlOutput::Owned(match value {
        SqliteValue::Null => SqlValue::Null,
        SqliteValue::Integer(value) => SqlValue::Integer(value),
        SqliteValue::Real(value) => SqlValue::Real(value),
        SqliteValue::Text(Cow::Borrowed(text)) => {
            return ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()));
        }
        SqliteValue::Text(Cow::Owned(text)) => SqlValue::Text(text),
    })
}

/// `customerProfile/address/country` → `customer_profile_address_country`.
fn snake(path: &str) -> String {
    let mut name = String::with_capacity(path.len() + 8);
    for character in path.chars() {
        if character == '/' {
            name.push('_');
        } else if character.is_ascii_uppercase() {
            name.push('_');
            name.push(character.to_ascii_lowercase());
        } else {
            name.push(character);
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate, Utc};
    use referrals_client::Amount;

    /// Whether SQLite reads from `{"m": json}` (with the kind's operator, into a column of the
    /// kind's type) the value that `scalar` writes, of the same type.
    fn read_alike(kind: Kind, scalar: &Scalar<'_>, json: &str) -> bool {
        let (sql_type, read) = kind.sqlite_column();
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(&format!(
            "CREATE TABLE t (written {sql_type}, read {sql_type})"
        ))
        .unwrap();
        db.execute(
            &format!("INSERT INTO t VALUES (?1, ?2 {read} '$.m')"),
            rusqlite::params![
                sqlite_output(scalar.sqlite_value()),
                format!("{{\"m\":{json}}}")
            ],
        )
        .unwrap();
        db.query_row(
            "SELECT written IS read AND typeof(written) = typeof(read) FROM t",
            [],
            |row| row.get(0),
        )
        .unwrap()
    }

    #[test]
    fn each_kind_is_written_as_sqlite_reads_it_from_the_json() {
        fn json<T: serde::Serialize>(value: &T) -> String {
            serde_json::to_string(value).unwrap()
        }
        let time: DateTime<Utc> = "2024-05-01T10:20:30.123456789Z".parse().unwrap();
        let whole: DateTime<Utc> = "2024-05-01T10:20:30Z".parse().unwrap();
        let date = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        let uuid = uuid::Uuid::parse_str("3F2504E0-4F89-41D3-9A0C-0305E82C3301").unwrap();
        let amount: Amount = "12345678901234.56".parse().unwrap();
        let text = "it's \"quoted\" é \\ \u{1F600}";
        let cases: Vec<(Kind, Scalar<'_>, String)> = vec![
            (Kind::Text, Scalar::Text(text), json(&text)),
            (Kind::Set, Scalar::Text("Accepted"), json(&"Accepted")),
            (Kind::Uuid, Scalar::Uuid(uuid), json(&uuid)),
            (Kind::Time, Scalar::Time(time), json(&time)),
            (Kind::Time, Scalar::Time(whole), json(&whole)),
            (Kind::Date, Scalar::Date(date), json(&date)),
            (Kind::Integer, Scalar::Integer(-5), json(&-5_i64)),
            (Kind::Integer, Scalar::Integer(i64::MAX), json(&i64::MAX)),
            (Kind::Number, Scalar::Number(0.5), json(&0.5_f64)),
            (Kind::Number, Scalar::Number(1.0), json(&1.0_f64)),
            // serde_json writes a number that is not finite as null.
            (Kind::Number, Scalar::Number(f64::NAN), json(&f64::NAN)),
            (Kind::Money, Scalar::Money(&amount), json(&amount)),
            (Kind::Bool, Scalar::Bool(true), json(&true)),
            (Kind::Bool, Scalar::Bool(false), json(&false)),
            (Kind::Text, Scalar::Null, "null".to_owned()),
        ];
        for kind in Kind::ALL {
            assert!(
                cases.iter().any(|case| case.0 == kind),
                "{kind:?} has a case"
            );
        }
        for (kind, scalar, json) in &cases {
            assert!(
                read_alike(*kind, scalar, json),
                "{kind:?} {scalar:?} {json}"
            );
        }
        // The check can fail: a date-time written as `to_rfc3339` gives `+00:00`.
        let other = Scalar::Text("2024-05-01T10:20:30+00:00");
        assert!(!read_alike(Kind::Time, &other, &json(&whole)));
    }

    #[test]
    fn every_filterable_and_sortable_member_has_one_column() {
        let columns = columns();
        for path in FILTERABLE
            .iter()
            .map(|m| m.path)
            .chain(SORTABLE.iter().map(|k| k.path))
        {
            assert_eq!(
                columns.iter().filter(|c| c.path == path).count(),
                1,
                "{path}"
            );
        }
        let names: std::collections::BTreeSet<&str> =
            columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), columns.len(), "names are distinct");
        assert!(
            names
                .iter()
                .all(|name| !["id", "e_tag", "json"].contains(name))
        );
        // The conditional upsert compares this column.
        assert!(names.contains("updated_date_time"));
        assert_eq!(
            snake("customerProfile/address/country"),
            "customer_profile_address_country"
        );
    }
}
