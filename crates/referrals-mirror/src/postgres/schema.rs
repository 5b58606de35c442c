//! The tables of a PostgreSQL mirror: made in a database that has none of them, checked in one
//! that has them, and given the columns of members that the document lists since they were
//! made (a step of the schema, under a lock, with the old rows filled from their JSON).

use tokio_postgres::Client;

use crate::columns::{Column, columns};
use crate::{Error, Opened};

/// What marks the tables as a mirror's, in `referrals_mirror`.
const PROGRAM: &str = "referrals-mirror";
/// The version of the tables' shape; the columns of members are recorded beside it.
pub(crate) const VERSION: i64 = 3;
/// The advisory lock held while the tables are made or changed.
const SCHEMA_LOCK: i64 = i64::from_be_bytes(*b"RFRLschm");

/// The tables of version 1, less the columns of members; [`STEPS`] take them to this version.
const TABLES: &str = "
CREATE TABLE referrals_mirror (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE referrals (id text PRIMARY KEY, e_tag text, json jsonb NOT NULL);
CREATE TABLE sync_state (
    one integer PRIMARY KEY CHECK (one = 1),
    state text NOT NULL,
    watermark timestamptz,
    written timestamptz NOT NULL
);
CREATE TABLE events (
    seq bigserial PRIMARY KEY,
    received timestamptz NOT NULL DEFAULT now(),
    name text NOT NULL,
    referral_id text,
    body text NOT NULL,
    done boolean NOT NULL DEFAULT false,
    claimed_until timestamptz
);
CREATE INDEX events_pending ON events (done, seq);
";

/// The steps from each version to the next: `STEPS[n]` takes version `n + 1` to `n + 2`.
const STEPS: [&str; 2] = [
    // 2: the change log (its sequence numbers handed out under the lock of `change_counter`'s
    // row, so that they follow the order of the commits), its consumers, and the changes
    // they set aside.
    "CREATE TABLE change_counter (one integer PRIMARY KEY CHECK (one = 1), last bigint NOT NULL);
    INSERT INTO change_counter VALUES (1, 0);
    CREATE TABLE changes (
        seq bigint PRIMARY KEY,
        referral_id text NOT NULL,
        kind text NOT NULL,
        e_tag text,
        updated_date_time text,
        members text NOT NULL,
        recorded timestamptz NOT NULL,
        consumer text
    );
    CREATE INDEX changes_by_recorded ON changes (recorded);
    CREATE TABLE consumers (
        id integer GENERATED ALWAYS AS IDENTITY UNIQUE,
        name text PRIMARY KEY,
        position bigint NOT NULL,
        created timestamptz NOT NULL DEFAULT now(),
        acknowledged timestamptz
    );
    CREATE TABLE failed_changes (
        consumer text NOT NULL,
        seq bigint NOT NULL,
        change text NOT NULL,
        error text NOT NULL,
        attempts integer NOT NULL,
        failed timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, seq)
    );",
    // 3: what receivers need to run unattended: each event's digest (a replay of a body is
    // told by it), its attempts, when it is tried next, whether it was set aside, the
    // receiver that holds its claim, and the instant of the change it announced.
    "ALTER TABLE events ADD COLUMN digest text, ADD COLUMN attempts integer NOT NULL DEFAULT 0,
        ADD COLUMN next_try timestamptz, ADD COLUMN aside boolean NOT NULL DEFAULT false,
        ADD COLUMN error text, ADD COLUMN claimed_by text, ADD COLUMN announced timestamptz;
    CREATE INDEX events_by_digest ON events (digest);",
];

/// A referral's row stays whole and uncompressed up to 8,160 bytes (a page): most rows (2 to 4
/// KiB of JSON) passed the default target of 2 KiB, and compressing each one (pglz) cost the
/// server more than the rest of the write. It costs about half as much disk again (396 MB
/// against 260 MB for 100,000 referrals). A setting of the table, not a version of the tables:
/// a binary that does not know it reads and writes them alike.
const WHOLE_ROWS: &str = "toast_tuple_target=8160";

/// The key in `referrals_mirror` of the names of the member columns that builds made (a JSON
/// array): every build adds its own, none is dropped.
pub(crate) const MEMBER_COLUMNS: &str = "member_columns";

/// The value of the key `$1` in `referrals_mirror`.
pub(crate) const SETTING_SQL: &str = "SELECT value FROM referrals_mirror WHERE key = $1";

/// Makes or checks the tables, and adds the columns that the document gained; returns the
/// columns, and the names of the member columns that builds made ([`MEMBER_COLUMNS`]). A
/// database with tables of these names that are not a mirror's, or of a later version, is
/// refused, unchanged.
pub(crate) async fn prepare(
    client: &mut Client,
    place: &str,
) -> Result<(Vec<Column>, Vec<String>, Opened), Error> {
    let columns = columns();
    let failed = |what: &'static str| move |error| Error::postgres(place, what, error);
    let transaction = client
        .transaction()
        .await
        .map_err(failed("start a transaction"))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(failed("lock the tables"))?;
    let ours: Option<String> = transaction
        .query_one("SELECT to_regclass('referrals_mirror')::text", &[])
        .await
        .map_err(failed("read the tables"))?
        .get(0);
    let opened = if ours.is_none() {
        create(&transaction, place).await?;
        Opened::Created
    } else {
        let version = check(&transaction, place).await?;
        upgrade(&transaction, place, version).await?;
        if version == VERSION {
            Opened::Current
        } else {
            Opened::Upgraded {
                from: i32::try_from(version).unwrap_or(0),
                log_started: version < 2,
            }
        }
    };
    add_columns(&transaction, &columns, place).await?;
    let recorded = record_columns(&transaction, &columns, place).await?;
    keep_rows_whole(&transaction, place).await?;
    transaction.commit().await.map_err(failed("commit"))?;
    Ok((columns, recorded, opened))
}

/// The names of [`MEMBER_COLUMNS`] in `text`; none when it does not parse.
pub(crate) fn recorded_names(text: Option<&str>) -> Vec<String> {
    text.and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// Adds the names of `columns` to [`MEMBER_COLUMNS`]; returns the names recorded.
async fn record_columns(
    transaction: &tokio_postgres::Transaction<'_>,
    columns: &[Column],
    place: &str,
) -> Result<Vec<String>, Error> {
    let failed = |error| Error::postgres(place, "record the member columns", error);
    let text = super::log::setting(transaction, MEMBER_COLUMNS)
        .await
        .map_err(failed)?;
    let mut names = recorded_names(text.as_deref());
    let before = names.len();
    for column in columns {
        if !names.contains(&column.name) {
            names.push(column.name.clone());
        }
    }
    if names.len() != before || text.is_none() {
        let value = serde_json::to_string(&names).unwrap_or_default();
        super::log::set(transaction, MEMBER_COLUMNS, &value)
            .await
            .map_err(failed)?;
    }
    Ok(names)
}

/// Sets [`WHOLE_ROWS`] on the table of referrals, unless it is set.
async fn keep_rows_whole(
    transaction: &tokio_postgres::Transaction<'_>,
    place: &str,
) -> Result<(), Error> {
    let failed = |error| Error::postgres(place, "set the rows' storage", error);
    let options: Option<Vec<String>> = transaction
        .query_one(
            "SELECT reloptions::text[] FROM pg_class WHERE oid = 'referrals'::regclass",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0);
    if options.is_some_and(|options| options.iter().any(|option| option == WHOLE_ROWS)) {
        return Ok(());
    }
    transaction
        .batch_execute(&format!("ALTER TABLE referrals SET ({WHOLE_ROWS})"))
        .await
        .map_err(failed)
}

/// Takes the tables of `version` to this one, in the transaction that holds the schema's lock.
async fn upgrade(
    transaction: &tokio_postgres::Transaction<'_>,
    place: &str,
    version: i64,
) -> Result<(), Error> {
    for next in (version + 1)..=VERSION {
        let Some(step) = usize::try_from(next - 2).ok().and_then(|at| STEPS.get(at)) else {
            continue;
        };
        let failed = |error| {
            Error::postgres(
                place,
                &format!("upgrade the tables to version {next}"),
                error,
            )
        };
        transaction.batch_execute(step).await.map_err(failed)?;
        transaction
            .execute(
                "UPDATE referrals_mirror SET value = $1 WHERE key = 'version'",
                &[&next.to_string()],
            )
            .await
            .map_err(failed)?;
    }
    Ok(())
}

async fn create(transaction: &tokio_postgres::Transaction<'_>, place: &str) -> Result<(), Error> {
    let taken: Option<String> = transaction
        .query_one(
            "SELECT coalesce(to_regclass('referrals')::text, to_regclass('sync_state')::text, \
             to_regclass('events')::text, to_regclass('changes')::text, \
             to_regclass('change_counter')::text, to_regclass('consumers')::text, \
             to_regclass('failed_changes')::text)",
            &[],
        )
        .await
        .map_err(|error| Error::postgres(place, "read the tables", error))?
        .get(0);
    if let Some(table) = taken {
        return Err(refused(
            place,
            format!("has a table {table} that is not a mirror's (no referrals_mirror table)"),
        ));
    }
    transaction
        .batch_execute(&format!("{TABLES}{}", STEPS.join("\n")))
        .await
        .map_err(|error| Error::postgres(place, "make the tables", error))?;
    transaction
        .execute(
            "INSERT INTO referrals_mirror (key, value) VALUES ('program', $1), ('version', $2)",
            &[&PROGRAM, &VERSION.to_string()],
        )
        .await
        .map_err(|error| Error::postgres(place, "mark the tables", error))?;
    Ok(())
}

/// Checks that the tables are a mirror's of this version or an earlier one, and gives it.
async fn check(transaction: &tokio_postgres::Transaction<'_>, place: &str) -> Result<i64, Error> {
    let rows = transaction
        .query("SELECT key, value FROM referrals_mirror", &[])
        .await
        .map_err(|error| Error::postgres(place, "read referrals_mirror", error))?;
    let value = |key: &str| {
        rows.iter()
            .find(|row| row.get::<_, String>(0) == key)
            .map(|row| row.get::<_, String>(1))
    };
    if value("program").as_deref() != Some(PROGRAM) {
        return Err(refused(
            place,
            "has a table referrals_mirror that another program made".to_owned(),
        ));
    }
    let version = value("version").and_then(|version| version.parse::<i64>().ok());
    match version {
        Some(version) if (1..=VERSION).contains(&version) => Ok(version),
        Some(later) if later > VERSION => Err(refused(
            place,
            format!(
                "is a mirror of version {later}, made by a later referrals; this one knows \
                 version {VERSION}"
            ),
        )),
        _ => Err(refused(
            place,
            "is a mirror of an unknown version".to_owned(),
        )),
    }
}

/// Adds the columns of `columns` that the table lacks, each filled from the rows' JSON.
async fn add_columns(
    transaction: &tokio_postgres::Transaction<'_>,
    columns: &[Column],
    place: &str,
) -> Result<(), Error> {
    let failed = |error| Error::postgres(place, "add a column of a member", error);
    let present: Vec<String> = transaction
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = 'referrals' AND table_schema = current_schema()",
            &[],
        )
        .await
        .map_err(failed)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for column in columns
        .iter()
        .filter(|column| !present.contains(&column.name))
    {
        let name = &column.name;
        let mut step = format!(
            "ALTER TABLE referrals ADD COLUMN {name} {};
             UPDATE referrals SET {name} = {};",
            column.sql_type(),
            column.read_from_json()
        );
        if column.sortable {
            step.push_str(&format!(
                "CREATE INDEX referrals_by_{name} ON referrals ({name});"
            ));
        }
        transaction.batch_execute(&step).await.map_err(failed)?;
    }
    Ok(())
}

fn refused(place: &str, reason: String) -> Error {
    Error::Refused {
        path: place.into(),
        reason,
    }
}
