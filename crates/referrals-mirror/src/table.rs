//! A table of the partner's own shape, kept from a feed's changes: a row per referral, a column
//! per leaf of the document's referral that the partner names (`customer` ←
//! `customerProfile/name`), in a SQLite database of the partner's (a CRM's staging table, a
//! report's). Each change upserts the row of its referral from the mirror's version of it, so
//! that a change delivered again, or late, writes the same row.

use std::path::PathBuf;

use referrals_client::flat::Columns;
use rusqlite::Connection;

use crate::{Change, Error};

/// A table kept from changes: see the module's documentation.
#[derive(Debug)]
pub struct Table<'c> {
    connection: &'c Connection,
    leaves: Columns,
    upsert: String,
}

/// Whether `name` is a plain SQL identifier (no quoting needed).
fn plain(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

fn refused(what: String) -> Error {
    Error::Refused {
        path: PathBuf::from("the table"),
        reason: what,
    }
}

/// The columns of a spec: `column = leaf` or a bare `leaf` (named after its last segment, in
/// snake case), separated by commas.
fn columns_of(spec: &str) -> Result<Vec<(String, String)>, Error> {
    spec.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (column, leaf) = match part.split_once('=') {
                Some((column, leaf)) => (column.trim().to_owned(), leaf.trim()),
                None => (snake(part.rsplit('/').next().unwrap_or(part)), part),
            };
            if !plain(&column) {
                return Err(refused(format!(
                    "`{column}` is not a plain SQL name (letters, digits, _)"
                )));
            }
            Ok((column, leaf.to_owned()))
        })
        .collect()
}

/// `dealValue` → `deal_value`.
fn snake(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for character in name.chars() {
        if character.is_ascii_uppercase() {
            snake.push('_');
        }
        snake.push(character.to_ascii_lowercase());
    }
    snake
}

impl<'c> Table<'c> {
    /// The table `name` of `connection`, made when it is not there, with the `columns` of the
    /// spec: `column = leaf` or a bare leaf, separated by commas
    /// (`"id, customer = customerProfile/name, deal_value = details/dealValue"`), the leaves
    /// paths of the document's referral. One of them must be `id`, whose column is the key.
    /// Every column holds text: money with the digits the service sent, `true`/`false`, arrays
    /// as JSON, `NULL` for a member without a value.
    pub fn sqlite(connection: &'c Connection, name: &str, columns: &str) -> Result<Self, Error> {
        if !plain(name) {
            return Err(refused(format!(
                "`{name}` is not a plain SQL name (letters, digits, _)"
            )));
        }
        let columns = columns_of(columns)?;
        let key = &columns
            .iter()
            .find(|(_, leaf)| leaf == "id")
            .ok_or_else(|| refused("no column holds the leaf `id`".to_owned()))?
            .0;
        let leaves: Vec<&str> = columns.iter().map(|(_, leaf)| leaf.as_str()).collect();
        let leaves = Columns::leaves(&leaves).map_err(refused)?;
        let names: Vec<&str> = columns.iter().map(|(column, _)| column.as_str()).collect();
        let definitions: Vec<String> = names
            .iter()
            .map(|column| match column == key {
                true => format!("{column} TEXT PRIMARY KEY NOT NULL"),
                false => format!("{column} TEXT"),
            })
            .collect();
        connection
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {name} ({})",
                definitions.join(", ")
            ))
            .map_err(|error| Error::sqlite(&PathBuf::from(name), "make the table", error))?;
        let marks: Vec<String> = (1..=names.len()).map(|at| format!("?{at}")).collect();
        let upsert = format!(
            "INSERT OR REPLACE INTO {name} ({}) VALUES ({})",
            names.join(", "),
            marks.join(", ")
        );
        Ok(Self {
            connection,
            leaves,
            upsert,
        })
    }

    /// Upserts the row of `change`'s referral, as the mirror holds it.
    pub fn keep(&self, change: &Change) -> Result<(), Error> {
        let Some(referral) = &change.referral else {
            return Ok(());
        };
        let row = |source| Error::Row {
            path: PathBuf::from("the table"),
            id: change.id.clone(),
            error: source,
        };
        let json = serde_json::to_string(referral).map_err(row)?;
        let cells = self.leaves.json_cells(&json).map_err(row)?;
        let values: Vec<Option<String>> = cells
            .into_iter()
            .map(|cell| match cell.as_bytes().first() {
                Some(b'n') => None,
                Some(b'"') => serde_json::from_str(&cell).ok(),
                _ => Some(cell),
            })
            .collect();
        self.connection
            .prepare_cached(&self.upsert)
            .and_then(|mut upsert| upsert.execute(rusqlite::params_from_iter(values)))
            .map_err(|error| Error::sqlite(&PathBuf::from("the table"), "upsert a row", error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_changes_and_names_that_need_quoting_are_refused() {
        let connection = Connection::open_in_memory().unwrap();
        let columns = "id, customer = customerProfile/name, details/dealValue, status";
        let table = Table::sqlite(&connection, "crm_leads", columns).unwrap();
        let referral = serde_json::from_str(
            r#"{"id":"a","customerProfile":{"name":"=cmd"},"details":{"dealValue":12345678901234.56}}"#,
        )
        .unwrap();
        let change: Change = serde_json::from_str(
            r#"{"seq":1,"kind":"new","id":"a","eTag":null,"updatedDateTime":null,"recorded":"2024-05-01T00:00:00Z"}"#,
        )
        .unwrap();
        let change = Change {
            referral: Some(referral),
            ..change
        };
        table.keep(&change).unwrap();
        table.keep(&change).unwrap();
        let row: (String, String, String, Option<String>) = connection
            .query_row("SELECT * FROM crm_leads", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap();
        assert_eq!(
            row,
            ("a".into(), "=cmd".into(), "12345678901234.56".into(), None)
        );
        let named: Vec<String> = connection
            .prepare("SELECT name FROM pragma_table_info('crm_leads')")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(named, ["id", "customer", "deal_value", "status"]);
        assert!(Table::sqlite(&connection, "x; DROP TABLE y", columns).is_err());
        assert!(Table::sqlite(&connection, "t", "x y = id").is_err());
        assert!(Table::sqlite(&connection, "t", "name = customerProfile/name").is_err());
        assert!(Table::sqlite(&connection, "t", "id, n = nope").is_err());
    }
}
