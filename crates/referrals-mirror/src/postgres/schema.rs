//! The tables of a PostgreSQL mirror: made in a database that has none of them, checked in one
//! that has them, and given the columns of members that the document lists since they were
//! made (a step of the schema, under a lock, with the old rows filled from their JSON).

use tokio_postgres::Client;

use crate::Error;
use crate::columns::{Column, columns};

/// What marks the tables as a mirror's, in `referrals_mirror`.
const PROGRAM: &str = "referrals-mirror";
/// The version of the tables' shape; the columns of members are recorded beside it.
pub(crate) const VERSION: i64 = 1;
/// The advisory lock held while the tables are made or changed.
const SCHEMA_LOCK: i64 = i64::from_be_bytes(*b"RFRLschm");

/// The tables of version 1, less the columns of members.
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

/// Makes or checks the tables, and adds the columns that the document gained; returns the
/// columns. A database with tables of these names that are not a mirror's, or of a later
/// version, is refused, unchanged.
pub(crate) async fn prepare(client: &mut Client, place: &str) -> Result<Vec<Column>, Error> {
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
    if ours.is_none() {
        create(&transaction, place).await?;
    } else {
        check(&transaction, place).await?;
    }
    add_columns(&transaction, &columns, place).await?;
    transaction.commit().await.map_err(failed("commit"))?;
    Ok(columns)
}

async fn create(transaction: &tokio_postgres::Transaction<'_>, place: &str) -> Result<(), Error> {
    let taken: Option<String> = transaction
        .query_one(
            "SELECT coalesce(to_regclass('referrals')::text, to_regclass('sync_state')::text, \
             to_regclass('events')::text)",
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
        .batch_execute(TABLES)
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

async fn check(transaction: &tokio_postgres::Transaction<'_>, place: &str) -> Result<(), Error> {
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
        Some(VERSION) => Ok(()),
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
