//! The change log of a SQLite mirror, beside what writes it (`rows`) and what reads it
//! (`feed::file`): its settings, its pruning, and the rows as changes.
//!
//! The log is pruned past the slowest consumer's position and past its retention (a week by
//! default), at most once a minute by each process that writes or acknowledges. How far it
//! was pruned is kept (`pruned_through`), so that a consumer whose next change was pruned
//! away gets [`Error::Pruned`] rather than a silent jump.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::feed::terms::{DEFAULT_RETENTION, MAX_RETENTION, SetAside, prune_due};
use crate::{Change, ChangeKind, Error, Mirror};

/// The setting that holds the retention, in seconds.
const RETENTION: &str = "change_retention_seconds";
/// The setting that holds the last sequence number pruned.
const PRUNED_THROUGH: &str = "pruned_through";

/// A row of the log joined with its referral's row, as read.
pub(crate) struct Row {
    pub(crate) seq: i64,
    pub(crate) kind: String,
    pub(crate) id: String,
    pub(crate) e_tag: Option<String>,
    pub(crate) updated: Option<String>,
    pub(crate) recorded: String,
    pub(crate) members: String,
    pub(crate) referral: Option<String>,
}

impl Row {
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: row.get(0)?,
            kind: row.get(1)?,
            id: row.get(2)?,
            e_tag: row.get(3)?,
            updated: row.get(4)?,
            recorded: row.get(5)?,
            members: row.get(6)?,
            referral: row.get(7)?,
        })
    }

    /// The change of the row; `place` names the database in errors.
    pub(crate) fn change(self, place: &Path) -> Result<Change, Error> {
        let damaged = |what: String| Error::Log {
            path: place.to_owned(),
            seq: self.seq,
            what,
        };
        let kind = ChangeKind::parse(&self.kind)
            .ok_or_else(|| damaged(format!("the kind `{}` is not known", self.kind)))?;
        let time = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|error| damaged(format!("the time `{text}`: {error}")))
        };
        let referral = self
            .referral
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|source| Error::Row {
                path: place.to_owned(),
                id: self.id.clone(),
                error: source,
            })?;
        Ok(Change {
            seq: self.seq,
            kind,
            updated_date_time: self.updated.as_deref().map(time).transpose()?,
            recorded: time(&self.recorded)?,
            members: serde_json::from_str(&self.members)
                .map_err(|error| damaged(format!("the members: {error}")))?,
            id: self.id,
            e_tag: self.e_tag,
            referral,
        })
    }
}

fn setting(connection: &Connection, path: &Path, key: &str) -> Result<Option<String>, Error> {
    connection
        .query_row(
            "SELECT value FROM mirror_settings WHERE key = ?1",
            [key],
            |row| row.get(0),
        )
        .optional()
        .map_err(|error| Error::sqlite(path, "read the mirror's settings", error))
}

fn set(connection: &Connection, path: &Path, key: &str, value: &str) -> Result<(), Error> {
    connection
        .execute(
            "INSERT INTO mirror_settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = ?2",
            params![key, value],
        )
        .map_err(|error| Error::sqlite(path, "write the mirror's settings", error))?;
    Ok(())
}

/// The last sequence number that pruning removed (0: none).
fn pruned_through(connection: &Connection, path: &Path) -> Result<i64, Error> {
    Ok(setting(connection, path, PRUNED_THROUGH)?
        .and_then(|text| text.parse().ok())
        .unwrap_or(0))
}

/// [`Error::Pruned`] when changes after `position` were pruned.
pub(crate) fn check_not_pruned(
    connection: &Connection,
    path: &Path,
    name: &str,
    position: i64,
) -> Result<(), Error> {
    let pruned = pruned_through(connection, path)?;
    if pruned > position {
        return Err(Error::Pruned {
            consumer: name.to_owned(),
            position,
            pruned_through: pruned,
        });
    }
    Ok(())
}

/// Checks that a consumer may start after `seq`: the log holds every change after it, and
/// `seq` is not past the `last` change written.
pub(crate) fn check_start(
    connection: &Connection,
    path: &Path,
    name: &str,
    seq: i64,
    last: i64,
) -> Result<(), Error> {
    if seq < 0 || seq > last {
        return Err(Error::Start {
            consumer: name.to_owned(),
            seq,
            last,
        });
    }
    check_not_pruned(connection, path, name, seq)
}

/// The retention of the log.
pub(crate) fn retention(connection: &Connection, path: &Path) -> Result<Duration, Error> {
    Ok(setting(connection, path, RETENTION)?
        .and_then(|text| text.parse().ok())
        .map_or(DEFAULT_RETENTION, Duration::from_secs)
        .min(MAX_RETENTION))
}

/// Prunes the log unless this process did in the last minute. A write or an acknowledgement
/// was committed before: a failure here is told (`tracing`), not returned, and the next
/// pruning tries again.
pub(crate) fn prune_now_and_then(connection: &Connection, path: &Path) {
    if !prune_due(&path.to_string_lossy()) {
        return;
    }
    if let Err(error) = prune(connection, path) {
        tracing::warn!("{error}");
    }
}

/// Removes the changes that every consumer acknowledged, and those older than the retention.
pub(crate) fn prune(connection: &Connection, path: &Path) -> Result<(), Error> {
    let failed = |error| Error::sqlite(path, "prune the change log", error);
    let retention = retention(connection, path)?;
    let cutoff =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let cutoff = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    connection
        .execute_batch("BEGIN IMMEDIATE;")
        .map_err(failed)?;
    let pruned = (|| {
        let slowest: Option<i64> = connection
            .query_row("SELECT min(position) FROM consumers", [], |row| row.get(0))
            .map_err(failed)?;
        let old: Option<i64> = connection
            .query_row(
                "SELECT max(seq) FROM changes WHERE recorded < ?1",
                [&cutoff],
                |row| row.get(0),
            )
            .map_err(failed)?;
        if let Some(slowest) = slowest {
            connection
                .execute("DELETE FROM changes WHERE seq <= ?1", [slowest])
                .map_err(failed)?;
        }
        connection
            .execute("DELETE FROM changes WHERE recorded < ?1", [&cutoff])
            .map_err(failed)?;
        let through = pruned_through(connection, path)?
            .max(old.unwrap_or(0))
            .max(slowest.unwrap_or(0).min(last(connection, path)?));
        set(connection, path, PRUNED_THROUGH, &through.to_string())
    })();
    let end = if pruned.is_ok() {
        "COMMIT;"
    } else {
        "ROLLBACK;"
    };
    connection.execute_batch(end).map_err(failed)?;
    pruned
}

/// The last sequence number written (0: none yet).
fn last(connection: &Connection, path: &Path) -> Result<i64, Error> {
    connection
        .query_row(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
            [],
            |row| row.get(0),
        )
        .map_err(|error| Error::sqlite(path, "read the change log", error))
}

/// The text that the list of changes set aside keeps of `change`: its payload.
pub(crate) fn set_aside_text(change: &Change, path: &Path) -> Result<String, Error> {
    change.payload().map_err(|source| Error::Row {
        path: path.to_owned(),
        id: change.id.clone(),
        error: source,
    })
}

/// A change set aside, from its stored text.
pub(crate) fn set_aside_of(
    path: &Path,
    text: &str,
    error: String,
    attempts: u32,
    failed: &str,
) -> Result<SetAside, Error> {
    #[derive(serde::Deserialize)]
    struct Payload {
        change: Change,
        referral: Option<referrals_client::types::Referral>,
    }
    let damaged = |what: String| Error::Log {
        path: path.to_owned(),
        seq: 0,
        what,
    };
    let payload: Payload = serde_json::from_str(text)
        .map_err(|error| damaged(format!("a change set aside: {error}")))?;
    let failed = DateTime::parse_from_rfc3339(failed)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| damaged(format!("a change set aside: {error}")))?;
    Ok(SetAside {
        change: Change {
            referral: payload.referral,
            ..payload.change
        },
        error,
        attempts,
        failed,
    })
}

impl Mirror {
    /// How long the change log keeps a change that some consumer has not read (a week unless
    /// set): a consumer that falls further behind gets [`Error::Pruned`].
    pub fn change_retention(&self) -> Result<Duration, Error> {
        retention(&self.connection, &self.path)
    }

    /// Sets [`Mirror::change_retention`] (at most [`MAX_RETENTION`]), for every process that
    /// uses this mirror.
    pub fn set_change_retention(&self, retention: Duration) -> Result<(), Error> {
        let seconds = retention.min(MAX_RETENTION).as_secs();
        set(
            &self.connection,
            &self.path,
            RETENTION,
            &seconds.to_string(),
        )
    }

    /// Removes the changes that every consumer acknowledged, and those older than the
    /// retention. The mirror's writes and the consumers' acknowledgements do it at most once a
    /// minute; this does it now.
    pub fn prune_changes(&self) -> Result<(), Error> {
        prune(&self.connection, &self.path)
    }

    pub(crate) fn prune_now_and_then(&self) {
        prune_now_and_then(&self.connection, &self.path);
    }

    /// Each consumer of the change feed, with how many changes were logged after its
    /// position: how far behind the copy it is.
    pub fn consumer_lags(&self) -> Result<Vec<(String, u64)>, Error> {
        let read = |error| Error::sqlite(&self.path, "read the consumers", error);
        let mut statement = self
            .connection
            .prepare(
                "SELECT name, max(0, coalesce((SELECT seq FROM sqlite_sequence \
                 WHERE name = 'changes'), 0) - position) FROM consumers \
                 WHERE position >= 0 ORDER BY name",
            )
            .map_err(read)?;
        let rows = statement
            .query_map([], |row| {
                let lag: i64 = row.get(1)?;
                Ok((row.get(0)?, u64::try_from(lag).unwrap_or(0)))
            })
            .map_err(read)?;
        rows.collect::<Result<_, _>>().map_err(read)
    }
}
