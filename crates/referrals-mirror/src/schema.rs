//! The mirror's tables: made in an empty file, checked in an existing one.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::Error;

/// `application_id` of a mirror: "RFRL".
const APPLICATION_ID: i32 = i32::from_be_bytes(*b"RFRL");
/// The version of the mirror's tables.
const SCHEMA_VERSION: i32 = 5;
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
CREATE TABLE sync_state (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    state TEXT NOT NULL,
    written TEXT NOT NULL
);
";
/// The steps from each version to the next: `STEPS[n]` takes version `n + 1` to `n + 2`.
const STEPS: [Step; 4] = [
    // 2: the events received, stored before they are acknowledged.
    Step::Sql(
        "CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        received TEXT NOT NULL,
        name TEXT NOT NULL,
        referral_id TEXT,
        body TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX events_pending ON events (done, seq);",
    ),
    // 3: the change log, its consumers and their positions, the changes they set aside, and
    // the mirror's settings (the log's retention, how far it was pruned).
    Step::Sql(
        "CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        referral_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        e_tag TEXT,
        updated_date_time TEXT,
        members TEXT NOT NULL,
        recorded TEXT NOT NULL,
        consumer TEXT
    );
    CREATE INDEX changes_by_recorded ON changes (recorded);
    CREATE TABLE consumers (
        name TEXT PRIMARY KEY NOT NULL,
        position INTEGER NOT NULL,
        created TEXT NOT NULL,
        acknowledged TEXT
    );
    CREATE TABLE failed_changes (
        consumer TEXT NOT NULL,
        seq INTEGER NOT NULL,
        change TEXT NOT NULL,
        error TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        failed TEXT NOT NULL,
        PRIMARY KEY (consumer, seq)
    );
    CREATE TABLE mirror_settings (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);",
    ),
    // 4: what the receiver needs to run unattended: each event's digest (a replay of a body
    // is told by it), its attempts, when it is tried next, whether it was set aside, and the
    // instant of the change it announced.
    Step::Sql(
        "ALTER TABLE events ADD COLUMN digest TEXT;
    ALTER TABLE events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN next_try TEXT;
    ALTER TABLE events ADD COLUMN aside INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN error TEXT;
    ALTER TABLE events ADD COLUMN announced TEXT;
    CREATE INDEX events_by_digest ON events (digest);",
    ),
    // 5: the members' columns written with each row, not computed from `json` on each write.
    Step::Run(crate::sqlite_columns::to_columns_of_their_own),
];

/// A step from one version of the tables to the next, taken in the caller's transaction.
enum Step {
    /// Statements.
    Sql(&'static str),
    /// A step that reads the tables to know what to do.
    Run(fn(&Connection) -> rusqlite::Result<()>),
}

impl Step {
    fn take(&self, connection: &Connection) -> rusqlite::Result<()> {
        match self {
            Step::Sql(sql) => connection.execute_batch(sql),
            Step::Run(run) => run(connection),
        }
    }
}

/// The index of `updatedDateTime` that mirrors made before: the column of the member
/// `updated_date_time` holds the same instants with an index of its own, and a second index of
/// them cost each write of a referral one more page. It is dropped when a mirror is opened (an
/// index, not a version of the tables: a binary that does not know it reads and writes alike).
const SECOND_INDEX: &str = "referrals_by_updatedDateTime";
/// The columns that every mirror's `referrals` has, whatever the document says; a column for
/// each of the document's members follows them ([`crate::columns`]).
pub(crate) const REFERRALS_FIXED: [&str; 6] = [
    "id",
    "eTag",
    "status",
    "substatus",
    "updatedDateTime",
    "json",
];
/// Whether `name` is one of [`REFERRALS_FIXED`] (SQLite's names ignore case).
pub(crate) fn is_fixed(name: &str) -> bool {
    REFERRALS_FIXED
        .iter()
        .any(|fixed| fixed.eq_ignore_ascii_case(name))
}

/// The columns of each table, as this version writes them (`referrals`: the first of them).
const COLUMNS: [(&str, &[&str]); 7] = [
    ("referrals", &REFERRALS_FIXED),
    ("sync_state", &["one", "state", "written"]),
    (
        "events",
        &[
            "seq",
            "received",
            "name",
            "referral_id",
            "body",
            "done",
            "digest",
            "attempts",
            "next_try",
            "aside",
            "error",
            "announced",
        ],
    ),
    (
        "changes",
        &[
            "seq",
            "referral_id",
            "kind",
            "e_tag",
            "updated_date_time",
            "members",
            "recorded",
            "consumer",
        ],
    ),
    (
        "consumers",
        &["name", "position", "created", "acknowledged"],
    ),
    (
        "failed_changes",
        &["consumer", "seq", "change", "error", "attempts", "failed"],
    ),
    ("mirror_settings", &["key", "value"]),
];

fn refused(path: &Path, reason: String) -> Error {
    Error::Refused {
        path: path.to_owned(),
        reason,
    }
}

/// The connection to the mirror at `path`, made when no file is there; a file that is not a
/// mirror of this version is refused.
pub(crate) fn open(path: &Path) -> Result<(Connection, Opened), Error> {
    let flags = if path.exists() {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        // An empty file is an empty database; made first, it is its owner's alone, and so are
        // the journal and WAL files that SQLite makes beside it.
        crate::private::make_empty(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            what: "create the mirror's file".into(),
            error: source,
        })?;
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let mut connection = Connection::open_with_flags(path, flags)
        .map_err(|error| Error::sqlite(path, "open it as a SQLite database", error))?;
    set_connection(&mut connection, path)?;
    let opened = set_up(&connection, path)?;
    check_tables(&connection, path)?;
    add_member_columns(&connection, path)?;
    drop_second_index(&connection, path)?;
    Ok((connection, opened))
}

/// Drops [`SECOND_INDEX`] if the mirror has it.
fn drop_second_index(connection: &Connection, path: &Path) -> Result<(), Error> {
    let failed = |error| Error::sqlite(path, "drop the second index of updatedDateTime", error);
    let found: Option<i64> = connection
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1",
            [SECOND_INDEX],
            |row| row.get(0),
        )
        .optional()
        .map_err(failed)?;
    if found.is_some() {
        connection
            .execute_batch(&format!("DROP INDEX IF EXISTS {SECOND_INDEX};"))
            .map_err(failed)?;
    }
    Ok(())
}

/// What every connection to a mirror has: it waits when the database is busy, a new mirror's
/// pages are [`PAGE_BYTES`] (an existing one keeps its own), and its commits copy the WAL into
/// the database every [`CHECKPOINT_BYTES`] rather than every 1,000 pages (SQLite's default): a
/// page of an index that many writes touch is copied once for all of them.
pub(crate) fn set_connection(connection: &mut Connection, path: &Path) -> Result<(), Error> {
    wait_when_busy(connection, path)?;
    let failed = |error| Error::sqlite(path, "set the page size and checkpoint interval", error);
    // Only an empty file takes it; an existing database keeps its own.
    connection
        .pragma_update(None, "page_size", PAGE_BYTES)
        .map_err(failed)?;
    let page: i64 = connection
        .pragma_query_value(None, "page_size", |row| row.get(0))
        .map_err(failed)?;
    connection
        .pragma_update(None, "wal_autocheckpoint", CHECKPOINT_BYTES / page.max(512))
        .map_err(failed)
}

/// How much the WAL holds before SQLite copies it into the database.
const CHECKPOINT_BYTES: i64 = 40 << 20;

/// The page size of a new mirror. A referral's JSON is a few KiB: at SQLite's 4 KiB a page
/// holds one row and leaves the rest empty, at 16 KiB it holds four to six (a third less to
/// write and to read, one run of a first sync of 100,000). An existing mirror keeps its size.
const PAGE_BYTES: i64 = 16 << 10;

/// What opening a mirror found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Opened {
    /// There was no mirror: its tables were made, with an empty change log.
    Created,
    /// A mirror of this version.
    Current,
    /// A mirror of an earlier version, taken to this one. A mirror before version 3 (SQLite)
    /// or 2 (PostgreSQL) had no change log: it starts empty, and a consumer that needs every
    /// referral starts from a snapshot ([`crate::Start::Snapshot`]). A program of the earlier
    /// version that still has the mirror open goes on writing it as that version did: stop
    /// every one before a program of this version opens it (from SQLite's version 4 to 5, it
    /// would leave the columns of the document's members empty or old in the rows it writes).
    Upgraded {
        /// The version it had.
        from: i32,
        /// Whether its change log starts empty now (it had none before).
        log_started: bool,
    },
}

/// Creates the tables in an empty database, or checks that the database is a mirror of this
/// version.
fn set_up(connection: &Connection, path: &Path) -> Result<Opened, Error> {
    let unreadable = |error: rusqlite::Error| refused(path, format!("cannot be read ({error})"));
    // Reading the header is the first access: a file that is not a database fails here.
    let application_id: i32 = connection
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|error| refused(path, format!("is not a SQLite database ({error})")))?;
    let version: i32 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(unreadable)?;
    let tables: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(unreadable)?;
    match (application_id, tables) {
        (0, 0) => create(connection, path).map(|()| Opened::Created),
        (APPLICATION_ID, _) if version > SCHEMA_VERSION => Err(refused(
            path,
            format!(
                "is a mirror of version {version}, written by a later referrals (this one \
                 writes version {SCHEMA_VERSION})"
            ),
        )),
        (APPLICATION_ID, _) if (1..=SCHEMA_VERSION).contains(&version) => {
            upgrade(connection, path, version)?;
            Ok(if version == SCHEMA_VERSION {
                Opened::Current
            } else {
                Opened::Upgraded {
                    from: version,
                    log_started: version < 3,
                }
            })
        }
        (APPLICATION_ID, _) => Err(refused(
            path,
            format!("is a mirror of an unknown version {version}"),
        )),
        _ => Err(refused(
            path,
            format!(
                "is a SQLite database of another program (application_id {application_id}, \
                 {tables} tables and indexes)"
            ),
        )),
    }
}

/// How long a connection waits for another's write lock, at most.
const BUSY: Duration = Duration::from_secs(10);

/// Makes `connection` wait for another connection's write lock, trying again every
/// millisecond for [`BUSY`]: SQLite's own timeout sleeps in steps of up to 100 ms, which a
/// consumer or a receiver that shares the file with a writer would spend in waits.
fn wait_when_busy(connection: &mut Connection, path: &Path) -> Result<(), Error> {
    fn again(tries: i32) -> bool {
        std::thread::sleep(Duration::from_millis(1));
        u128::try_from(tries).is_ok_and(|tries| tries < BUSY.as_millis())
    }
    connection
        .busy_handler(Some(again))
        .map_err(|error| Error::sqlite(path, "set the busy handler", error))
}

/// The tables of a new mirror, marked as ours, in one transaction.
fn create(connection: &Connection, path: &Path) -> Result<(), Error> {
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .map_err(|error| Error::sqlite(path, "set up the journal", error))?;
    let made = (|| {
        connection.execute_batch(&format!("BEGIN; {SCHEMA}"))?;
        for step in &STEPS {
            step.take(connection)?;
        }
        connection.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; \
             PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
    })();
    made.map_err(|error| {
        let _ = connection.execute_batch("ROLLBACK;");
        Error::sqlite(path, "create the mirror's tables", error)
    })
}

/// Takes a mirror of `version` to this one, one step a transaction; a step that fails leaves
/// the file at the version before it. Each step reads the version again under the write lock:
/// another process may have taken the same step meanwhile.
fn upgrade(connection: &Connection, path: &Path, version: i32) -> Result<(), Error> {
    for next in (version + 1)..=SCHEMA_VERSION {
        let Some(step) = usize::try_from(next - 2).ok().and_then(|at| STEPS.get(at)) else {
            continue;
        };
        let failed = |error| {
            let _ = connection.execute_batch("ROLLBACK;");
            Error::sqlite(
                path,
                &format!("upgrade the mirror to version {next}"),
                error,
            )
        };
        connection
            .execute_batch("BEGIN IMMEDIATE;")
            .map_err(|error| Error::sqlite(path, "start the upgrade", error))?;
        let now: i32 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(failed)?;
        if now < next {
            step.take(connection).map_err(failed)?;
            connection
                .pragma_update(None, "user_version", next)
                .map_err(failed)?;
        }
        connection.execute_batch("COMMIT;").map_err(failed)?;
    }
    Ok(())
}

/// Checks that the tables have the columns that this version writes.
fn check_tables(connection: &Connection, path: &Path) -> Result<(), Error> {
    for (table, columns) in COLUMNS {
        let found = columns_of(connection, table)
            .map_err(|error| refused(path, format!("cannot be read ({error})")))?;
        // The document's members follow the fixed columns of `referrals`.
        let compared = match table {
            "referrals" => &found[..found.len().min(columns.len())],
            _ => &found[..],
        };
        if compared
            .iter()
            .map(String::as_str)
            .ne(columns.iter().copied())
        {
            return Err(refused(
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

/// Makes the columns of the document's members those that this build's document lists
/// ([`crate::sqlite_columns`]): a member added to the document gets its column when a mirror
/// is next opened, and the old rows have it at once.
fn add_member_columns(connection: &Connection, path: &Path) -> Result<(), Error> {
    let failed = |error| Error::sqlite(path, "make the columns of the document's members", error);
    if crate::sqlite_columns::aligned(connection).map_err(failed)? {
        return Ok(());
    }
    connection
        .execute_batch("BEGIN IMMEDIATE;")
        .map_err(failed)?;
    // Read again under the lock: another process may have made them meanwhile.
    let made = crate::sqlite_columns::aligned(connection).and_then(|aligned| {
        if !aligned {
            crate::sqlite_columns::align(connection)?;
        }
        connection.execute_batch("COMMIT;")
    });
    made.map_err(|error| {
        let _ = connection.execute_batch("ROLLBACK;");
        failed(error)
    })
}

pub(crate) fn columns_of(connection: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = statement.query_map([table], |row| row.get::<_, String>(0))?;
    names.collect()
}
