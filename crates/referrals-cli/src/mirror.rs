//! `referrals sync --db FILE`: a SQLite mirror of the referrals, kept by the client's incremental
//! sync ([`referrals_client::sync`]).
//!
//! The database holds the table `referrals` (one row per id: `id`, `eTag`, `status`,
//! `substatus`, `updatedDateTime`, and `json`, the referral as the client read it) and the
//! table `sync_state` (one row: the sync's state). Each batch of the sync and the state after it
//! are written in one transaction: a kill at any moment leaves the state of the last committed
//! batch beside exactly the rows of that batch and those before, and the next run goes on from
//! there. Rows are upserted by id, so a batch delivered again changes nothing.
//!
//! The file is marked as ours (SQLite's `application_id`) with the version of its tables
//! (`user_version`): a database of another program, of a later version, or whose state is
//! damaged is refused with an error that names it, and nothing in it is changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::ArgMatches;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::types::Referral;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::stop::Stop;
use crate::{Context, Usage};

/// `application_id` of a mirror: "RFRL".
const APPLICATION_ID: i32 = i32::from_be_bytes(*b"RFRL");
/// The version of the mirror's tables.
const SCHEMA_VERSION: i32 = 1;
/// The tables of a mirror.
const SCHEMA: &str = "
CREATE TABLE referrals (
    id TEXT PRIMARY KEY NOT NULL,
    eTag TEXT,
    status TEXT,
    substatus TEXT,
    updatedDateTime TEXT,
    json TEXT NOT NULL
);
CREATE INDEX referrals_by_updatedDateTime ON referrals (updatedDateTime);
CREATE TABLE sync_state (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    state TEXT NOT NULL,
    written TEXT NOT NULL
);
";

/// The options of `sync`; the filter flags are added from the document's tables.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SQLite database of the mirror; created when it does not exist.
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// Run again at this interval (such as 30s, 5m, 1h) until Ctrl-C, instead of once.
    #[arg(long, value_name = "INTERVAL", value_parser = interval)]
    every: Option<Duration>,
    /// How far behind the service's clock a run stops: a change stamped late by up to this much
    /// is still mirrored.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = skew)]
    skew: Duration,
    /// An OData filter, combined with the filter flags by `and`. A database keeps the filter
    /// it was made with.
    #[arg(long, value_name = "FILTER")]
    filter: Option<String>,
}

fn interval(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if duration < Duration::from_secs(1) || duration > Duration::from_secs(7 * 24 * 3600) {
        return Err(format!("`{text}` is not between 1s and 7d"));
    }
    Ok(duration)
}

fn skew(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if duration > Duration::from_secs(24 * 3600) {
        return Err(format!("`{text}` is more than a day"));
    }
    Ok(duration)
}

pub async fn run(context: &Context, args: &Args, matches: &ArgMatches) -> anyhow::Result<()> {
    let mut options = SyncOptions::new().skew(args.skew);
    if let Some(filter) = crate::filters::filter(matches).map_err(Usage)? {
        options = options.filter(filter);
    }
    let mut mirror = Mirror::open(&args.db)?;
    let stop = Stop::listen(context.quiet);
    loop {
        // A run that an earlier process left unfinished ends at the bound it started with;
        // a second run brings the mirror up to now.
        let resumed = mirror.state()?.is_some_and(|state| state.in_run());
        let mut outcome = once(context, &mut mirror, options.clone(), &stop).await?;
        if resumed && !outcome.stopped {
            let more = once(context, &mut mirror, options.clone(), &stop).await?;
            outcome = Outcome {
                changed: outcome.changed.saturating_add(more.changed),
                stopped: more.stopped,
            };
        }
        context.say(format_args!(
            "{}: {} referrals changed, {} in the mirror",
            args.db.display(),
            outcome.changed,
            mirror.count()?
        ));
        let Some(every) = args.every else {
            return Ok(());
        };
        if outcome.stopped || stop.asked() {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.wait() => return Ok(()),
        }
    }
}

struct Outcome {
    changed: u64,
    stopped: bool,
}

/// One run of the sync, to its end or to a stop.
async fn once(
    context: &Context,
    mirror: &mut Mirror,
    options: SyncOptions,
    stop: &Stop,
) -> anyhow::Result<Outcome> {
    let state = mirror.state()?;
    let mut run = context.client.sync(state, options).map_err(|error| {
        anyhow::anyhow!(
            "{}: {error}; use another --db for another filter",
            mirror.path.display()
        )
    })?;
    let progress = if context.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} referrals changed ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut changed = 0u64;
    loop {
        let batch = run.next().await.map_err(|error| {
            progress.abandon();
            anyhow::Error::new(error).context(format!(
                "the sync of {} stopped after {changed} referrals; the next run goes on from \
                 there",
                mirror.path.display()
            ))
        })?;
        let Some(mut batch) = batch else {
            break;
        };
        let items = batch.take_items();
        let state = batch.commit();
        mirror.write(&items, &state)?;
        changed = changed.saturating_add(items.len() as u64);
        progress.set_position(changed);
        if stop.asked() {
            progress.finish_and_clear();
            return Ok(Outcome {
                changed,
                stopped: true,
            });
        }
    }
    progress.finish_and_clear();
    Ok(Outcome {
        changed,
        stopped: false,
    })
}

/// Why the file at `path` is refused as a mirror.
fn refusal(path: &Path, what: String) -> anyhow::Error {
    anyhow::anyhow!(
        "{} {what}; nothing in it was changed. Give --db a new file to start a mirror",
        path.display()
    )
}

/// Creates the mirror's tables in an empty database, or checks that the database is a mirror
/// of this version.
fn set_up(connection: &Connection, path: &Path) -> anyhow::Result<()> {
    let refuse = |what: String| refusal(path, what);
    // Reading the header is the first access: a file that is not a database fails here.
    let application_id: i32 = connection
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|error| refuse(format!("is not a SQLite database ({error})")))?;
    let version: i32 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|error| refuse(format!("cannot be read ({error})")))?;
    let tables: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(|error| refuse(format!("cannot be read ({error})")))?;
    match (application_id, tables) {
        (0, 0) => {
            connection
                .busy_timeout(Duration::from_secs(10))
                .context("cannot set the busy timeout")?;
            connection
                .pragma_update(None, "journal_mode", "WAL")
                .with_context(|| format!("cannot set up {}", path.display()))?;
            let create = format!(
                "BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; \
                 PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            );
            connection.execute_batch(&create).with_context(|| {
                format!("cannot create the mirror's tables in {}", path.display())
            })?;
        }
        (APPLICATION_ID, _) if version > SCHEMA_VERSION => {
            return Err(refuse(format!(
                "is a mirror of version {version}, written by a later referrals (this one \
                 writes version {SCHEMA_VERSION})"
            )));
        }
        (APPLICATION_ID, _) if version == SCHEMA_VERSION => {
            connection
                .busy_timeout(Duration::from_secs(10))
                .context("cannot set the busy timeout")?;
        }
        (APPLICATION_ID, _) => {
            return Err(refuse(format!(
                "is a mirror of an unknown version {version}"
            )));
        }
        _ => {
            return Err(refuse(format!(
                "is a SQLite database of another program (application_id {application_id}, \
                 {tables} tables and indexes)"
            )));
        }
    }
    Ok(())
}

/// Checks that the mirror's tables have the columns that this version writes.
fn check_tables(connection: &Connection, path: &Path) -> anyhow::Result<()> {
    for (table, columns) in [
        (
            "referrals",
            &[
                "id",
                "eTag",
                "status",
                "substatus",
                "updatedDateTime",
                "json",
            ][..],
        ),
        ("sync_state", &["one", "state", "written"][..]),
    ] {
        let found = columns_of(connection, table)
            .map_err(|error| refusal(path, format!("cannot be read ({error})")))?;
        if found.iter().map(String::as_str).ne(columns.iter().copied()) {
            return Err(refusal(
                path,
                format!(
                    "has a table `{table}` with the columns ({}), not ({})",
                    found.join(", "),
                    columns.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// An open mirror.
struct Mirror {
    path: PathBuf,
    connection: Connection,
    /// The state as this process last read or wrote it: another writer is told apart by it.
    state: Option<String>,
}

impl Mirror {
    /// Opens the mirror at `path`, or creates it; refuses a file that is not one.
    fn open(path: &Path) -> anyhow::Result<Self> {
        let exists = path.exists();
        let flags = if exists {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let connection = Connection::open_with_flags(path, flags)
            .with_context(|| format!("cannot open {} as a SQLite database", path.display()))?;
        set_up(&connection, path)?;
        check_tables(&connection, path)?;
        let mut mirror = Self {
            path: path.to_owned(),
            connection,
            state: None,
        };
        mirror.state = mirror.stored_state()?;
        Ok(mirror)
    }

    fn stored_state(&self) -> anyhow::Result<Option<String>> {
        self.connection
            .query_row("SELECT state FROM sync_state WHERE one = 1", [], |row| {
                row.get::<_, String>(0)
            })
            .optional()
            .with_context(|| format!("cannot read the sync state of {}", self.path.display()))
    }

    /// The sync state, checked.
    fn state(&mut self) -> anyhow::Result<Option<SyncState>> {
        let text = self.stored_state()?;
        self.state = text.clone();
        text.map(|text| {
            SyncState::from_json(&text).map_err(|error| {
                anyhow::anyhow!(
                    "{}: {error}; nothing in it was changed. Give --db a new file to start a new \
                     mirror",
                    self.path.display()
                )
            })
        })
        .transpose()
    }

    /// Writes `items` and `state` in one transaction.
    fn write(&mut self, items: &[Referral], state: &SyncState) -> anyhow::Result<()> {
        let path = self.path.display().to_string();
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .with_context(|| format!("cannot write to {path}"))?;
        let stored: Option<String> = transaction
            .query_row("SELECT state FROM sync_state WHERE one = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .with_context(|| format!("cannot read the sync state of {path}"))?;
        if stored != self.state {
            bail!(
                "{path} was changed by another program while this sync ran (is another \
                 `referrals sync` writing to it?); this batch was not written"
            );
        }
        {
            let mut upsert = transaction
                .prepare_cached(
                    "INSERT INTO referrals (id, eTag, status, substatus, updatedDateTime, json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET eTag = ?2, status = ?3, substatus = ?4,
                         updatedDateTime = ?5, json = ?6",
                )
                .with_context(|| format!("cannot write to {path}"))?;
            for referral in items {
                let Some(id) = referral.id.as_deref() else {
                    // Nothing to key it by; the sync delivers it, the mirror cannot keep it.
                    eprintln!("warning: a referral without `id` was left out of the mirror");
                    continue;
                };
                let json = serde_json::to_string(referral)?;
                upsert
                    .execute(params![
                        id,
                        referral.e_tag.as_deref(),
                        referral.status.as_ref().map(|status| status.as_str()),
                        referral
                            .substatus
                            .as_ref()
                            .map(|substatus| substatus.as_str()),
                        referral.updated_date_time.map(|time| {
                            time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                        }),
                        json,
                    ])
                    .with_context(|| format!("cannot write the referral {id} to {path}"))?;
            }
        }
        let text = state.to_json();
        transaction
            .execute(
                "INSERT INTO sync_state (one, state, written) VALUES (1, ?1, ?2)
                 ON CONFLICT (one) DO UPDATE SET state = ?1, written = ?2",
                params![text, chrono::Utc::now().to_rfc3339()],
            )
            .with_context(|| format!("cannot write the sync state to {path}"))?;
        transaction
            .commit()
            .with_context(|| format!("cannot commit to {path}"))?;
        self.state = Some(text);
        Ok(())
    }

    fn count(&self) -> anyhow::Result<i64> {
        self.connection
            .query_row("SELECT count(*) FROM referrals", [], |row| row.get(0))
            .with_context(|| format!("cannot read {}", self.path.display()))
    }
}

fn columns_of(connection: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = statement.query_map([table], |row| row.get::<_, String>(0))?;
    names.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_and_damaged_files_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();

        let text = dir.path().join("notes.sqlite");
        std::fs::write(&text, "these are my notes, not a database\n".repeat(200)).unwrap();
        let error = Mirror::open(&text).err().unwrap().to_string();
        assert!(
            error.contains("notes.sqlite is not a SQLite database"),
            "{error}"
        );
        assert_eq!(
            std::fs::read_to_string(&text).unwrap(),
            "these are my notes, not a database\n".repeat(200)
        );

        let other = dir.path().join("crm.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');")
            .unwrap();
        let before = std::fs::read(&other).unwrap();
        let error = Mirror::open(&other).err().unwrap().to_string();
        assert!(error.contains("of another program"), "{error}");
        assert_eq!(std::fs::read(&other).unwrap(), before);

        let ours = dir.path().join("mirror.sqlite");
        drop(Mirror::open(&ours).unwrap());
        Connection::open(&ours)
            .unwrap()
            .execute(
                "INSERT INTO sync_state (one, state, written) VALUES (1, '{\"version\": 1, \"nope\": 2}', '')",
                [],
            )
            .unwrap();
        let mut mirror = Mirror::open(&ours).unwrap();
        let error = mirror.state().err().unwrap().to_string();
        assert!(
            error.contains("mirror.sqlite: the saved sync state cannot be used"),
            "{error}"
        );

        Connection::open(&ours)
            .unwrap()
            .pragma_update(None, "user_version", 7)
            .unwrap();
        let error = Mirror::open(&ours).err().unwrap().to_string();
        assert!(
            error.contains("version 7, written by a later referrals"),
            "{error}"
        );
    }

    #[test]
    fn a_batch_and_its_state_are_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror.sqlite");
        let mut mirror = Mirror::open(&path).unwrap();
        let referral: Referral =
            serde_json::from_str(r#"{"id":"a","eTag":"1","status":"New"}"#).unwrap();
        let state = SyncState::from_json(r#"{"version":1,"filter":null,"watermark":null,"delivered":{},"complete":false,"bound":null}"#).unwrap();
        mirror
            .write(std::slice::from_ref(&referral), &state)
            .unwrap();
        mirror
            .write(std::slice::from_ref(&referral), &state)
            .unwrap();
        assert_eq!(
            mirror.count().unwrap(),
            1,
            "a batch that comes again changes nothing"
        );

        // Another writer changed the state meanwhile: the batch is refused whole.
        let other = Connection::open(&path).unwrap();
        other
            .execute("UPDATE sync_state SET state = 'x' WHERE one = 1", [])
            .unwrap();
        let referral_b: Referral = serde_json::from_str(r#"{"id":"b","eTag":"1"}"#).unwrap();
        let error = mirror.write(&[referral_b], &state).unwrap_err().to_string();
        assert!(error.contains("changed by another program"), "{error}");
        assert_eq!(mirror.count().unwrap(), 1);
    }
}
