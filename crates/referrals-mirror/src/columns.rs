//! The columns of a mirror beside each referral's JSON, in both backends: one for each member
//! that the document lists as filterable or sortable (`x-filterable`, `x-sortable`, read from
//! the generated tables), named in snake case after the member
//! (`customerProfile/address/country` → `country`; the whole path when two members end
//! alike), typed after its kind, the sort keys indexed.

use referrals_client::facts::{FILTERABLE, Kind, SORTABLE, Scalar};
use referrals_client::types::Referral;

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
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    get: fn(&Referral) -> Scalar<'_>,
}

impl Column {
    /// The column's type in PostgreSQL.
    #[cfg(feature = "postgres")]
    pub(crate) fn sql_type(&self) -> &'static str {
        self.kind.sql_type()
    }

    /// The column in SQLite: a virtual column computed from `json` (money as JSON text, so
    /// that it keeps its digits).
    pub(crate) fn sqlite_definition(&self) -> String {
        let path = format!("$.{}", self.path.replace('/', "."));
        let (sql_type, read) = self.kind.sqlite_column();
        format!(
            "{} {sql_type} GENERATED ALWAYS AS (json {read} '{path}') VIRTUAL",
            self.name
        )
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
