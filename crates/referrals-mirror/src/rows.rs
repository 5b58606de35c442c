//! The mirror's rows and state: written batch by batch with the state, or one referral at a
//! time, never replacing a version with an older one.

use chrono::{DateTime, Utc};
use referrals_client::sync::SyncState;
use referrals_client::types::Referral;
use rusqlite::types::{ToSql, ToSqlOutput};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use crate::change::{self, ChangeKind};
use crate::{Error, Mirror};

/// What [`Mirror::apply`] did with a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The mirror had no row of its id: the row was added.
    Inserted,
    /// The mirror had an older version: the row was replaced.
    Updated,
    /// The mirror has this version or a newer one (by `updatedDateTime`; the same eTag is the
    /// same version): nothing was written.
    Kept,
    /// The referral has no `id`: a mirror keys rows by it, so nothing was written.
    NoId,
}

/// Whether the version `(time, tag)` replaces the row's version `(row_time, row_tag)`: it is
/// later, or of the same instant and another eTag. A version without `updatedDateTime` never
/// replaces one with it.
fn replaces(
    (time, tag): (Option<DateTime<Utc>>, Option<&str>),
    (row_time, row_tag): (Option<DateTime<Utc>>, Option<&str>),
) -> bool {
    match (time, row_time) {
        (Some(time), Some(row_time)) => time > row_time || (time == row_time && tag != row_tag),
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (None, None) => tag != row_tag,
    }
}

#[cfg(feature = "postgres")]
/// The indexes of `items` to write, one for each id (those without one left out): of two
/// versions of one id, the later in the batch if it [`replaces`] the earlier (as writing them
/// in turn would leave), in the order of their first appearance.
pub(crate) fn newest_of_each_id(items: &[Referral]) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::with_capacity(items.len());
    let mut by_id: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (index, referral) in items.iter().enumerate() {
        let Some(id) = referral.id.as_deref() else {
            continue;
        };
        let Some(&slot) = by_id.get(id) else {
            by_id.insert(id, chosen.len());
            chosen.push(index);
            continue;
        };
        if replaces(version(referral), version(&items[chosen[slot]])) {
            chosen[slot] = index;
        }
    }
    chosen
}

/// The version of `item` that [`replaces`] compares.
#[cfg(feature = "postgres")]
fn version(item: &Referral) -> (Option<DateTime<Utc>>, Option<&str>) {
    (item.updated_date_time, item.e_tag.as_deref())
}

fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

impl Mirror {
    pub(crate) fn stored_state(&self) -> Result<Option<String>, Error> {
        self.connection
            .query_row("SELECT state FROM sync_state WHERE one = 1", [], |row| {
                row.get::<_, String>(0)
            })
            .optional()
            .map_err(|error| Error::sqlite(&self.path, "read the sync state", error))
    }

    /// The sync's state as the file holds it, checked; `None` before the first batch.
    pub fn state(&mut self) -> Result<Option<referrals_client::sync::SyncState>, Error> {
        let text = self.stored_state()?;
        self.state.clone_from(&text);
        text.map(|text| {
            SyncState::from_json(&text).map_err(|source| Error::State {
                path: self.path.clone(),
                error: source,
            })
        })
        .transpose()
    }

    /// Writes a batch of the sync and the state after it, in one transaction; each referral
    /// replaces its row only when it is not older ([`Applied`]), and each row written appends
    /// its change to the change log in the same transaction. Refused, with nothing
    /// written, when another program wrote the state since this mirror last read or wrote it.
    pub fn write(&mut self, items: &[Referral], state: &SyncState) -> Result<(), Error> {
        self.write_made(items, &[], state)
    }

    /// [`Self::write`], with the JSON of `items` made ahead where `jsons` holds it.
    pub(crate) fn write_made(
        &mut self,
        items: &[Referral],
        jsons: &[Option<String>],
        state: &SyncState,
    ) -> Result<(), Error> {
        let path = self.path.clone();
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| Error::sqlite(&path, "start a transaction", error))?;
        let stored: Option<String> = transaction
            .query_row("SELECT state FROM sync_state WHERE one = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|error| Error::sqlite(&path, "read the sync state", error))?;
        if stored != self.state {
            return Err(Error::OtherWriter { path });
        }
        self.schema_version = columns_are_ours(&transaction, self.schema_version, &path)?;
        for (index, referral) in items.iter().enumerate() {
            let version = Version {
                referral,
                json: jsons.get(index).and_then(Option::as_deref),
            };
            upsert(&transaction, &version, &path, self.logged)?;
        }
        let text = state.to_json();
        transaction
            .execute(
                "INSERT INTO sync_state (one, state, written) VALUES (1, ?1, ?2)
                 ON CONFLICT (one) DO UPDATE SET state = ?1, written = ?2",
                params![text, Utc::now().to_rfc3339()],
            )
            .map_err(|error| Error::sqlite(&path, "write the sync state", error))?;
        transaction
            .commit()
            .map_err(|error| Error::sqlite(&path, "commit", error))?;
        self.state = Some(text);
        crate::wake::written();
        self.prune_now_and_then();
        Ok(())
    }

    /// Writes one referral, such as one read after an event, only if it is newer than the
    /// mirror's row of its id (see [`Applied`]), with its change in the change log. The sync's
    /// state is left as it is.
    pub fn apply(&mut self, referral: &Referral) -> Result<Applied, Error> {
        let path = self.path.clone();
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| Error::sqlite(&path, "start a transaction", error))?;
        self.schema_version = columns_are_ours(&transaction, self.schema_version, &path)?;
        let version = Version {
            referral,
            json: None,
        };
        let applied = upsert(&transaction, &version, &path, self.logged)?;
        transaction
            .commit()
            .map_err(|error| Error::sqlite(&path, "commit", error))?;
        if matches!(applied, Applied::Inserted | Applied::Updated) {
            crate::wake::written();
        }
        self.prune_now_and_then();
        Ok(applied)
    }

    /// The mirror's version of the referral `id`.
    pub fn get(&self, id: &str) -> Result<Option<Referral>, Error> {
        let json: Option<String> = self
            .connection
            .query_row("SELECT json FROM referrals WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|error| Error::sqlite(&self.path, "read a referral", error))?;
        json.map(|json| self.decode(id, &json)).transpose()
    }

    /// Every referral of the mirror, by id.
    pub fn referrals(&self) -> Result<Vec<Referral>, Error> {
        let read = |error| Error::sqlite(&self.path, "read the referrals", error);
        let mut statement = self
            .connection
            .prepare("SELECT id, json FROM referrals ORDER BY id")
            .map_err(read)?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(read)?;
        let mut referrals = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(read)?;
            referrals.push(self.decode(&id, &json)?);
        }
        Ok(referrals)
    }

    /// How many referrals the mirror holds.
    pub fn count(&self) -> Result<u64, Error> {
        let count: i64 = self
            .connection
            .query_row("SELECT count(*) FROM referrals", [], |row| row.get(0))
            .map_err(|error| Error::sqlite(&self.path, "count the referrals", error))?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    fn decode(&self, id: &str, json: &str) -> Result<Referral, Error> {
        serde_json::from_str(json).map_err(|source| Error::Row {
            path: self.path.clone(),
            id: id.to_owned(),
            error: source,
        })
    }
}

/// A referral to write, with its JSON where it was made ahead.
struct Version<'a> {
    referral: &'a Referral,
    json: Option<&'a str>,
}

/// Writes the referral of `version` in `transaction` when it replaces the row of its id, and
/// appends the change to the change log in the same transaction.
fn upsert(
    transaction: &Transaction<'_>,
    version: &Version<'_>,
    path: &std::path::Path,
    logged: bool,
) -> Result<Applied, Error> {
    let referral = version.referral;
    let Some(id) = referral.id.as_deref() else {
        return Ok(Applied::NoId);
    };
    let write = |error| Error::sqlite(path, &format!("write the referral {id}"), error);
    let row: Option<(Option<String>, Option<String>, String)> = transaction
        .prepare_cached("SELECT updatedDateTime, eTag, json FROM referrals WHERE id = ?1")
        .and_then(|mut read| {
            read.query_row([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()
        })
        .map_err(write)?;
    let tag = referral.e_tag.as_deref();
    if let Some((time, row_tag, _)) = &row {
        let row_time = time.as_deref().and_then(instant);
        if !replaces(
            (referral.updated_date_time, tag),
            (row_time, row_tag.as_deref()),
        ) {
            return Ok(Applied::Kept);
        }
    }
    let undecodable = |source| Error::Row {
        path: path.to_owned(),
        id: id.to_owned(),
        error: source,
    };
    let json = crate::reading::json_of(referral, version.json).map_err(undecodable)?;
    let updated = referral
        .updated_date_time
        .as_ref()
        .map(referrals_client::instant_text);
    let written = Written {
        id,
        tag,
        updated: updated.as_deref(),
        json: &json,
    };
    write_row(transaction, referral, &written).map_err(write)?;
    let before = row.as_ref().map(|(_, _, before)| before.as_str());
    if logged {
        record(transaction, path, &written, before)?;
    }
    Ok(if before.is_none() {
        Applied::Inserted
    } else {
        Applied::Updated
    })
}

/// The file's schema version, once its member columns are found to be this build's: unless
/// it is still `checked` (one read), no column that the record says a build made is one that
/// this build's document does not list, and none of this build's is missing. Otherwise
/// another build, of another document, changed them since (two builds on one file): this
/// build would leave a column unfilled, or fail on one dropped, so the write is refused.
/// Called in a write's transaction, which holds the file's write lock.
fn columns_are_ours(
    transaction: &Transaction<'_>,
    checked: i64,
    path: &std::path::Path,
) -> Result<i64, Error> {
    let failed = |error| Error::sqlite(path, "read the member columns", error);
    let version: i64 = transaction
        .query_row("PRAGMA schema_version", [], |row| row.get(0))
        .map_err(failed)?;
    if version == checked {
        return Ok(version);
    }
    let columns = crate::sqlite_columns::changed_by_another_build(transaction).map_err(failed)?;
    if columns.is_empty() {
        Ok(version)
    } else {
        Err(Error::OtherBuild {
            path: path.to_owned(),
            columns,
        })
    }
}

/// Inserts the row of `referral` as `row` says, or replaces the row of its id: the fixed
/// columns and one for each member of [`crate::columns::sqlite_members`].
fn write_row(
    transaction: &Transaction<'_>,
    referral: &Referral,
    row: &Written<'_>,
) -> rusqlite::Result<usize> {
    let members = crate::columns::sqlite_members();
    // In the order of `REFERRALS_FIXED`, as the statement names them.
    let fixed = crate::schema::REFERRALS_FIXED.len();
    let mut values: Vec<ToSqlOutput<'_>> = Vec::with_capacity(fixed + members.len());
    let status = referral.status.as_ref().map(|status| status.as_str());
    let substatus = referral
        .substatus
        .as_ref()
        .map(|substatus| substatus.as_str());
    values.extend([
        row.id.to_sql()?,
        row.tag.to_sql()?,
        status.to_sql()?,
        substatus.to_sql()?,
        row.updated.to_sql()?,
        row.json.to_sql()?,
    ]);
    values.extend(
        members
            .iter()
            .map(|column| crate::columns::sqlite_output(column.sqlite_value(referral))),
    );
    transaction
        .prepare_cached(upsert_statement())?
        .execute(rusqlite::params_from_iter(values))
}

/// The statement of [`write_row`], made once: the fixed columns, then the members'.
fn upsert_statement() -> &'static str {
    static STATEMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let names: Vec<&str> = crate::schema::REFERRALS_FIXED
            .into_iter()
            .chain(
                crate::columns::sqlite_members()
                    .iter()
                    .map(|c| c.name.as_str()),
            )
            .collect();
        let places: Vec<String> = (1..=names.len()).map(|at| format!("?{at}")).collect();
        let sets: Vec<String> = names[1..]
            .iter()
            .map(|name| format!("{name} = excluded.{name}"))
            .collect();
        format!(
            "INSERT INTO referrals ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}",
            names.join(", "),
            places.join(", "),
            sets.join(", ")
        )
    });
    &STATEMENT
}

/// A version of a referral as [`upsert`] writes it.
struct Written<'a> {
    id: &'a str,
    tag: Option<&'a str>,
    updated: Option<&'a str>,
    json: &'a str,
}

/// Appends the change of `written` over the row's JSON `before` (none: a new referral) to the
/// change log, in `transaction`.
fn record(
    transaction: &Transaction<'_>,
    path: &std::path::Path,
    written: &Written<'_>,
    before: Option<&str>,
) -> Result<(), Error> {
    let (kind, members) = match before {
        None => (ChangeKind::New, "[]".to_owned()),
        Some(before) => (
            ChangeKind::Changed,
            change::members(before, written.json).map_err(|source| Error::Row {
                path: path.to_owned(),
                id: written.id.to_owned(),
                error: source,
            })?,
        ),
    };
    transaction
        .prepare_cached(
            "INSERT INTO changes (referral_id, kind, e_tag, updated_date_time, members, recorded)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut record| {
            record.execute(params![
                written.id,
                kind.as_str(),
                written.tag,
                written.updated,
                members,
                change::now_text()
            ])
        })
        .map_err(|error| Error::sqlite(path, "record a change", error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: u32) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&format!("2024-05-01T00:00:{second:02}Z"))
            .ok()
            .map(|time| time.with_timezone(&Utc))
    }

    #[cfg(feature = "postgres")]
    fn referral(id: Option<&str>, second: u32, tag: &str) -> Referral {
        Referral {
            id: id.map(str::to_owned),
            updated_date_time: at(second),
            e_tag: Some(tag.to_owned()),
            ..Referral::default()
        }
    }

    #[test]
    #[cfg(feature = "postgres")]
    fn a_batch_keeps_for_each_id_the_version_that_writing_in_turn_would_leave() {
        let items = [
            referral(Some("a"), 2, "a2"),
            referral(Some("b"), 1, "b1"),
            referral(None, 1, "x"),
            referral(Some("a"), 1, "a1"),
            referral(Some("b"), 3, "b3"),
            referral(Some("c"), 1, "c1"),
            referral(Some("c"), 1, "c1"),
        ];
        assert_eq!(newest_of_each_id(&items), vec![0, 4, 5]);
    }

    #[test]
    fn only_a_later_version_or_another_of_the_same_instant_replaces_a_row() {
        assert!(replaces((at(2), Some("b")), (at(1), Some("a"))));
        assert!(!replaces((at(1), Some("a")), (at(2), Some("b"))));
        assert!(replaces((at(1), Some("b")), (at(1), Some("a"))));
        assert!(!replaces((at(1), Some("a")), (at(1), Some("a"))));
        assert!(replaces((at(1), None), (None, Some("a"))));
        assert!(!replaces((None, Some("b")), (at(1), Some("a"))));
        assert!(replaces((None, Some("b")), (None, Some("a"))));
        assert!(!replaces((None, Some("a")), (None, Some("a"))));
    }
}
