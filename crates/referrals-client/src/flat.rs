//! A referral as flat cells, one per leaf of the document's schema ([`facts::COLUMNS`]), for CSV,
//! tables and the differences shown after a 412.
//!
//! The cells are read from the referral's JSON text, never from a parsed number: money keeps the
//! digits that the service sent (`12345678901234.56` stays so), where a trip through `f64`
//! would round it. A leaf that holds an array holds its JSON text. serde_json has no reader of
//! flat paths over raw values, hence this module.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::facts;
use serde_json::value::RawValue;

/// The columns of a flat export: the document's leaves, less those of members that `$select`
/// left out.
#[derive(Debug, Clone)]
pub struct Columns {
    names: Vec<&'static str>,
    index: HashMap<&'static str, usize>,
    /// Every proper prefix of a column (`customerProfile`, `customerProfile/address`).
    prefixes: HashSet<String>,
}

impl Columns {
    /// The columns of the members `selected` (all of them for `None`).
    pub fn new(selected: Option<&[&str]>) -> Self {
        let names: Vec<&'static str> = facts::COLUMNS
            .iter()
            .copied()
            .filter(|column| {
                let top = column.split('/').next().unwrap_or(column);
                selected.is_none_or(|selected| selected.contains(&top))
            })
            .collect();
        Self::of(names)
    }

    /// The columns `leaves`, in that order: each a leaf of the document's referral
    /// (`customerProfile/name`, `details/dealValue`), or the error names the first that is not.
    ///
    /// ```
    /// use referrals_client::flat::Columns;
    ///
    /// let columns = Columns::leaves(&["id", "customerProfile/name", "details/dealValue"]).unwrap();
    /// let cells = columns.cells(r#"{"id":"a","details":{"dealValue":12345678901234.56}}"#).unwrap();
    /// assert_eq!(cells, ["a", "", "12345678901234.56"]);
    /// assert!(Columns::leaves(&["customerProfile"]).is_err(), "not a leaf");
    /// ```
    pub fn leaves(leaves: &[&str]) -> Result<Self, String> {
        let names = leaves
            .iter()
            .map(|leaf| {
                facts::COLUMNS
                    .iter()
                    .copied()
                    .find(|column| column == leaf)
                    .ok_or_else(|| {
                        format!("`{leaf}` is not a leaf of the referral (see facts::COLUMNS)")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::of(names))
    }

    fn of(names: Vec<&'static str>) -> Self {
        let index = names
            .iter()
            .enumerate()
            .map(|(at, name)| (*name, at))
            .collect();
        let prefixes = names
            .iter()
            .flat_map(|name| {
                let segments: Vec<&str> = name.split('/').collect();
                (1..segments.len())
                    .map(move |end| segments[..end].join("/"))
                    .collect::<Vec<_>>()
            })
            .collect();
        Self {
            names,
            index,
            prefixes,
        }
    }

    /// The column names, in order.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// The cells of one referral given as JSON text, in the order of [`Self::names`]; a member
    /// that is absent or null gives an empty cell, a member outside the columns none.
    pub fn cells(&self, json: &str) -> Result<Vec<String>, serde_json::Error> {
        self.cells_as(json, Cells::Raw)
    }

    /// The cells of [`Self::cells`] for a file that a spreadsheet opens: a text cell that it
    /// would read as a formula is written as text (see [`spreadsheet_text`]). Numbers, money
    /// included, and `true`/`false` keep their text; what is text is what the service sent as
    /// a JSON string.
    pub fn spreadsheet_cells(&self, json: &str) -> Result<Vec<String>, serde_json::Error> {
        self.cells_as(json, Cells::Spreadsheet)
    }

    /// The header for a spreadsheet: the names, each as [`spreadsheet_text`] writes it
    /// (`@odata.context` starts with `@`).
    pub fn spreadsheet_header(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|name| spreadsheet_text(name).into_owned())
            .collect()
    }

    /// The JSON text of each leaf of one referral given as JSON text, in the order of
    /// [`Self::names`]: a string with its quotes, a number with the digits as written, an array
    /// whole, and `null` for a member that is absent or null.
    pub fn json_cells(&self, json: &str) -> Result<Vec<String>, serde_json::Error> {
        self.cells_as(json, Cells::Json)
    }

    fn cells_as(&self, json: &str, how: Cells) -> Result<Vec<String>, serde_json::Error> {
        let empty = if how == Cells::Json { "null" } else { "" };
        let mut cells = vec![empty.to_owned(); self.names.len()];
        let top: &RawValue = serde_json::from_str(json)?;
        self.fill(top, &mut String::new(), &mut cells, how)?;
        Ok(cells)
    }

    fn fill(
        &self,
        value: &RawValue,
        path: &mut String,
        cells: &mut [String],
        how: Cells,
    ) -> Result<(), serde_json::Error> {
        if let Some(&at) = self.index.get(path.as_str()) {
            cells[at] = cell(value, how)?;
            return Ok(());
        }
        if !(path.is_empty() || self.prefixes.contains(path.as_str()))
            || !value.get().starts_with('{')
        {
            return Ok(());
        }
        let members: BTreeMap<String, &RawValue> = serde_json::from_str(value.get())?;
        for (name, member) in members {
            let length = path.len();
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(&name);
            self.fill(member, path, cells, how)?;
            path.truncate(length);
        }
        Ok(())
    }
}

/// The text of one cell: a string's content, a number's digits as written, `true`/`false`,
/// nothing for null, and the JSON text of an array or an object.
fn cell(value: &RawValue, how: Cells) -> Result<String, serde_json::Error> {
    let text = value.get();
    if how == Cells::Json {
        return Ok(text.to_owned());
    }
    Ok(match text.as_bytes().first() {
        Some(b'"') if how == Cells::Spreadsheet => {
            spreadsheet_text(&serde_json::from_str::<String>(text)?).into_owned()
        }
        Some(b'"') => serde_json::from_str::<String>(text)?,
        Some(b'n') => String::new(),
        _ => text.to_owned(),
    })
}

/// How text cells are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cells {
    /// As the service sent them.
    Raw,
    /// So that a spreadsheet shows them as text.
    Spreadsheet,
    /// As JSON text.
    Json,
}

/// `text` as a spreadsheet shows it, not runs it: a text that starts with `=`, `+`, `-`, `@`, a
/// tab or a carriage return (what a spreadsheet reads as a formula, after OWASP's guidance on
/// CSV injection) gets a leading `'`, which spreadsheets take as "this cell is text".
///
/// ```
/// use referrals_client::flat::spreadsheet_text;
///
/// assert_eq!(spreadsheet_text("=HYPERLINK(\"http://evil.example\")"), "'=HYPERLINK(\"http://evil.example\")");
/// assert_eq!(spreadsheet_text("Contoso"), "Contoso");
/// ```
pub fn spreadsheet_text(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// The leaves whose cells differ between two versions of a referral, with both cells.
pub fn changes(
    columns: &Columns,
    before: &str,
    after: &str,
) -> Result<Vec<(&'static str, String, String)>, serde_json::Error> {
    differing(columns, columns.cells(before)?, columns.cells(after)?)
}

/// The leaves that differ between two versions of a referral, each with its JSON text before
/// and after (`null` for an absent member). The texts are compared as written: give both
/// versions as the same serializer writes them (the generated types' `serde`), and money keeps
/// its digits.
///
/// ```
/// use referrals_client::flat::{Columns, json_changes};
///
/// let before = r#"{"id":"a","status":"New","details":{"dealValue":12345678901234.56}}"#;
/// let after = r#"{"id":"a","status":"Active","details":{"dealValue":12345678901234.57}}"#;
/// let changed = json_changes(&Columns::new(None), before, after).unwrap();
/// assert_eq!(changed[0], ("status", r#""New""#.to_owned(), r#""Active""#.to_owned()));
/// assert_eq!(changed[1].2, "12345678901234.57");
/// ```
pub fn json_changes(
    columns: &Columns,
    before: &str,
    after: &str,
) -> Result<Vec<(&'static str, String, String)>, serde_json::Error> {
    differing(
        columns,
        columns.json_cells(before)?,
        columns.json_cells(after)?,
    )
}

/// The columns whose cells differ, with both cells.
fn differing(
    columns: &Columns,
    old: Vec<String>,
    new: Vec<String>,
) -> Result<Vec<(&'static str, String, String)>, serde_json::Error> {
    Ok(columns
        .names()
        .iter()
        .zip(old.into_iter().zip(new))
        .filter(|(_, (old, new))| old != new)
        .map(|(name, (old, new))| (*name, old, new))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_keeps_its_digits_and_nesting_flattens() {
        let columns = Columns::new(None);
        let json = r#"{"id":"a","details":{"dealValue":12345678901234.56789,"currency":"USD"},
            "customerProfile":{"address":{"country":"US"}},"team":[{"email":"x@y"}],
            "status":null,"name":"O\"Neil, \u00e9","unknownMember":{"k":1}}"#;
        let cells = columns.cells(json).unwrap();
        let get = |name: &str| {
            let at = columns
                .names()
                .iter()
                .position(|column| *column == name)
                .unwrap();
            cells[at].clone()
        };
        assert_eq!(get("details/dealValue"), "12345678901234.56789");
        assert_eq!(get("details/currency"), "USD");
        assert_eq!(get("customerProfile/address/country"), "US");
        assert_eq!(get("team"), r#"[{"email":"x@y"}]"#);
        assert_eq!(get("status"), "");
        assert_eq!(get("name"), "O\"Neil, é");
        assert_eq!(cells.len(), facts::COLUMNS.len());
    }

    #[test]
    fn selection_keeps_the_columns_of_its_members() {
        let columns = Columns::new(Some(&["id", "customerProfile"]));
        assert!(
            columns
                .names()
                .iter()
                .all(|name| name == &"id" || name.starts_with("customerProfile/"))
        );
        assert!(columns.names().contains(&"customerProfile/address/country"));
    }

    #[test]
    fn changes_name_the_leaves() {
        let columns = Columns::new(None);
        let before = r#"{"id":"a","status":"New","eTag":"1","details":{"notes":"x"}}"#;
        let after = r#"{"id":"a","status":"Active","eTag":"2","details":{"notes":"x"}}"#;
        let changed = changes(&columns, before, after).unwrap();
        assert_eq!(
            changed,
            vec![
                ("status", "New".to_owned(), "Active".to_owned()),
                ("eTag", "1".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn json_changes_keep_types_and_digits() {
        let columns = Columns::new(None);
        let before = r#"{"id":"a","status":"New","team":[{"email":"x@y"}],"favorite":true}"#;
        let after = r#"{"id":"a","status":null,"team":[{"email":"x@y"}],"favorite":false,
            "details":{"dealValue":0.10}}"#;
        let changed = json_changes(&columns, before, after).unwrap();
        assert_eq!(
            changed,
            vec![
                ("status", r#""New""#.to_owned(), "null".to_owned()),
                ("details/dealValue", "null".to_owned(), "0.10".to_owned()),
                ("favorite", "true".to_owned(), "false".to_owned()),
            ]
        );
        assert!(json_changes(&columns, before, before).unwrap().is_empty());
    }

    #[test]
    fn not_json_is_an_error() {
        assert!(Columns::new(None).cells("{").is_err());
    }
}
