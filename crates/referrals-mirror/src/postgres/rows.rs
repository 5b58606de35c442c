//! The writes of a PostgreSQL mirror, each statement prepared once: a batch's ids locked, the
//! rows they replace read, and the rows upserted, all in one round trip (the connection
//! pipelines them, and the server runs them in order, each on a snapshot taken after the one
//! before); then the changes appended (see `log`). The rows are upserted by one statement for
//! the whole batch, its values sent as one array a column (`unnest`): a statement for each
//! referral cost the server a bind and an execution each, and most of a sync's time.

use std::borrow::Cow;
use std::collections::HashMap;

use referrals_client::types::Referral;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement, Transaction};

use super::log::{self, NewChange};
use super::schema;
use crate::columns::{Column, FIXED};
use crate::{Applied, Error};

/// The first key of the advisory locks of referrals' ids (the second is the id's hash).
pub(crate) const ID_LOCKS: i32 = i32::from_be_bytes(*b"RFid");

/// Locks the ids of `$2` until the end of the transaction, in the order of their hashes, so
/// that two writers never wait for each other in a circle.
const LOCK_SQL: &str = "SELECT count(pg_advisory_xact_lock($1, h))
    FROM (SELECT DISTINCT hashtext(id) AS h FROM unnest($2::text[]) AS id ORDER BY h) AS ids";

/// The rows of the ids of `$1` that are there, as JSON text.
const PREVIOUS_SQL: &str = "SELECT id, json::text FROM referrals WHERE id = ANY($1::text[])";

/// Appends the changes of the arrays, numbered after the counter, which it moves (and whose row
/// it locks until the commit).
const APPEND_SQL: &str = "WITH counter AS (
        UPDATE change_counter SET last = last + $1 WHERE one = 1 RETURNING last)
    INSERT INTO changes (seq, referral_id, kind, e_tag, updated_date_time, members, recorded)
    SELECT counter.last - $1 + c.ord, c.id, c.kind, c.tag, c.updated, c.members, now()
    FROM counter, unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
        WITH ORDINALITY AS c(id, kind, tag, updated, members, ord)";

/// The writes' statements, and the columns of members.
pub(crate) struct Rows {
    upsert: Statement,
    lock: Statement,
    previous: Statement,
    append: Statement,
    notify: Statement,
    record: Statement,
    columns: Vec<Column>,
    /// The member columns that builds had made when the mirror was opened.
    recorded: Vec<String>,
    /// Whether writes append to the change log (always, but for a measure of its cost).
    pub(crate) logged: bool,
}

/// What [`Rows::write`] did: each referral's outcome, and the changes to record.
pub(crate) struct Written {
    pub(crate) applied: Vec<Applied>,
    pub(crate) changes: Vec<NewChange>,
}

impl Rows {
    /// The writes of `columns` prepared on `client`; `recorded`, the member columns that
    /// builds had made when the mirror was opened ([`schema::MEMBER_COLUMNS`]).
    pub(crate) async fn prepare(
        client: &Client,
        columns: Vec<Column>,
        recorded: Vec<String>,
    ) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            upsert: client.prepare(&upsert_sql(&columns)).await?,
            lock: client.prepare(LOCK_SQL).await?,
            previous: client.prepare(PREVIOUS_SQL).await?,
            append: client.prepare(APPEND_SQL).await?,
            notify: client.prepare("SELECT pg_notify($1, '')").await?,
            record: client.prepare(schema::SETTING_SQL).await?,
            columns,
            recorded,
            logged: true,
        })
    }

    /// The same writes, prepared on another connection.
    pub(crate) async fn prepare_like(
        &self,
        client: &Client,
    ) -> Result<Self, tokio_postgres::Error> {
        let columns = self.columns.clone();
        let mut rows = Self::prepare(client, columns, self.recorded.clone()).await?;
        rows.logged = self.logged;
        Ok(rows)
    }

    /// Refuses a write when another build, of a document with other members, made member
    /// columns since the mirror was opened: this build's upserts would leave them unfilled.
    /// `record` is [`schema::MEMBER_COLUMNS`] as read in the write's transaction, after its
    /// lock of the table (a column is added under a lock that waits for the write's end).
    fn check_record(&self, record: Option<&Row>, place: &str) -> Result<(), Error> {
        let text = record.and_then(|row| row.try_get::<_, String>(0).ok());
        // What was recorded at open holds this build's own columns too.
        let columns: Vec<String> = schema::recorded_names(text.as_deref())
            .into_iter()
            .filter(|name| !self.recorded.contains(name))
            .collect();
        if columns.is_empty() {
            Ok(())
        } else {
            Err(Error::OtherBuild {
                path: place.into(),
                columns,
            })
        }
    }

    /// Locks the ids of `items` until the end of `transaction`, as [`Rows::write`] does when
    /// they are not locked yet (nothing when the writes append nothing to the log).
    pub(crate) async fn lock_ids(
        &self,
        transaction: &Transaction<'_>,
        items: &[Referral],
    ) -> Result<(), tokio_postgres::Error> {
        if !self.logged {
            return Ok(());
        }
        let ids: Vec<&str> = items.iter().filter_map(|item| item.id.as_deref()).collect();
        let locked: [&(dyn ToSql + Sync); 2] = [&ID_LOCKS, &ids];
        transaction.execute(&self.lock, &locked).await.map(drop)
    }

    /// Upserts `items` (whose JSON `jsons` holds, where it was made ahead) in `transaction`:
    /// each replaces its row only when it is newer. Their ids are locked first, unless
    /// `ids_locked` says that [`Rows::lock_ids`] did it.
    pub(crate) async fn write(
        &self,
        transaction: &Transaction<'_>,
        (items, jsons): (&[Referral], &[Option<String>]),
        ids_locked: bool,
        place: &str,
    ) -> Result<Written, Error> {
        let failed = |error| Error::postgres(place, "write a referral", error);
        let jsons = jsons_of(items, jsons, place)?;
        let ids: Vec<&str> = items.iter().filter_map(|item| item.id.as_deref()).collect();
        let upserts = upsert_all(transaction, &self.upsert, &self.columns, items, &jsons);
        // Sent after the statements below (`join` polls `written` first, and each statement
        // is sent on its first poll), which hold the table until the end: a column added by
        // another build commits before they run, or after this write.
        let record = transaction.query_opt(&self.record, &[&schema::MEMBER_COLUMNS]);
        let written = async {
            if !self.logged {
                return Ok((HashMap::new(), upserts.await?));
            }
            // Sent in this order, run in this order: the locks, the rows, the upserts.
            let read: [&(dyn ToSql + Sync); 1] = [&ids];
            let lock = async {
                if ids_locked {
                    return Ok(());
                }
                self.lock_ids(transaction, items).await
            };
            let previous = transaction.query(&self.previous, &read);
            let (_, previous, outcomes) =
                futures_util::future::try_join3(lock, previous, upserts).await?;
            let previous: HashMap<String, Cow<'_, str>> = previous
                .iter()
                .filter_map(|row| Some((row.try_get(0).ok()?, Cow::Owned(row.try_get(1).ok()?))))
                .collect();
            Ok((previous, outcomes))
        };
        let (written, record) = futures_util::future::join(written, record).await;
        let (mut previous, outcomes) = written.map_err(failed)?;
        self.check_record(record.map_err(failed)?.as_ref(), place)?;
        let mut written = Written {
            applied: Vec::with_capacity(items.len()),
            changes: Vec::new(),
        };
        for ((referral, applied), json) in items.iter().zip(outcomes).zip(&jsons) {
            written.applied.push(applied);
            let Some(id) = referral.id.as_ref().filter(|_| self.logged) else {
                continue;
            };
            let before = previous.get(id).map(AsRef::as_ref);
            if let Some(change) = NewChange::of(applied, referral, before, json, place)? {
                written.changes.push(change);
                // A later version of the same referral in this batch replaces this one.
                previous.insert(id.clone(), Cow::Borrowed(json.as_ref()));
            }
        }
        Ok(written)
    }

    /// Appends `changes` to the log, numbered after every committed change, and wakes the
    /// consumers at the commit.
    pub(crate) async fn append(
        &self,
        transaction: &Transaction<'_>,
        changes: &[NewChange],
    ) -> Result<(), tokio_postgres::Error> {
        if changes.is_empty() {
            return Ok(());
        }
        let columns = NewChange::columns(changes);
        let count = i64::try_from(changes.len()).unwrap_or(i64::MAX);
        let parameters: [&(dyn ToSql + Sync); 6] = [
            &count,
            &columns[0],
            &columns[1],
            &columns[2],
            &columns[3],
            &columns[4],
        ];
        let append = transaction.execute(&self.append, &parameters);
        let notify = transaction.execute(&self.notify, &[&log::CHANNEL]);
        futures_util::future::try_join(append, notify).await?;
        Ok(())
    }
}

/// The conditional upsert of a batch of referrals, one array (text) a column: `$1` the ids,
/// `$2` the eTags, `$3` the JSON, then the columns of members, in the order of `columns`. It
/// returns `(id, inserted)` for each row that it wrote, `inserted` true for a row that was not
/// there.
fn upsert_sql(columns: &[Column]) -> String {
    let names: Vec<&str> = FIXED
        .iter()
        .copied()
        .chain(columns.iter().map(|column| column.name.as_str()))
        .collect();
    let arrays: Vec<String> = (1..=names.len())
        .map(|index| format!("${index}::text[]"))
        .collect();
    let aliases: Vec<String> = (1..=names.len()).map(|index| format!("c{index}")).collect();
    let values: Vec<String> = ["c1".to_owned(), "c2".to_owned(), "c3::jsonb".to_owned()]
        .into_iter()
        .chain(
            columns
                .iter()
                .enumerate()
                .map(|(index, column)| format!("c{}::{}", index + 4, column.sql_type())),
        )
        .collect();
    let sets: Vec<String> = names[1..]
        .iter()
        .map(|name| format!("{name} = EXCLUDED.{name}"))
        .collect();
    format!(
        "INSERT INTO referrals AS r ({})
         SELECT {} FROM unnest({}) AS u({})
         ON CONFLICT (id) DO UPDATE SET {}
         WHERE EXCLUDED.updated_date_time > r.updated_date_time
            OR (EXCLUDED.updated_date_time = r.updated_date_time
                AND EXCLUDED.e_tag IS DISTINCT FROM r.e_tag)
            OR (r.updated_date_time IS NULL AND EXCLUDED.updated_date_time IS NOT NULL)
            OR (r.updated_date_time IS NULL AND EXCLUDED.updated_date_time IS NULL
                AND EXCLUDED.e_tag IS DISTINCT FROM r.e_tag)
         RETURNING id, (xmax = 0)",
        names.join(", "),
        values.join(", "),
        arrays.join(", "),
        aliases.join(", "),
        sets.join(", ")
    )
}

/// The JSON of each of `items`: `made` ahead, or made now.
fn jsons_of<'a>(
    items: &[Referral],
    made: &'a [Option<String>],
    place: &str,
) -> Result<Vec<Cow<'a, str>>, Error> {
    let json = |(index, referral): (usize, &Referral)| {
        let ahead = made.get(index).and_then(Option::as_deref);
        crate::reading::json_of(referral, ahead).map_err(|error| Error::Row {
            path: place.into(),
            id: referral.id.clone().unwrap_or_default(),
            error,
        })
    };
    items.iter().enumerate().map(json).collect()
}

/// Upserts `items`, whose JSON `jsons` holds, in one statement: what it did to each. Of two
/// versions of one id in the batch, only the one that the "newer" rule keeps is sent (one
/// statement cannot change a row twice); the other is [`Applied::Kept`].
async fn upsert_all(
    client: &impl tokio_postgres::GenericClient,
    statement: &Statement,
    columns: &[Column],
    items: &[Referral],
    jsons: &[Cow<'_, str>],
) -> Result<Vec<Applied>, tokio_postgres::Error> {
    let sent = crate::rows::newest_of_each_id(items);
    // The id, the eTag and the JSON are sent from where they are, not copied.
    let mut fixed: [Vec<Option<&str>>; 3] = std::array::from_fn(|_| Vec::with_capacity(sent.len()));
    let mut members: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(sent.len()); columns.len()];
    for &index in &sent {
        let referral = &items[index];
        fixed[0].push(referral.id.as_deref());
        fixed[1].push(referral.e_tag.as_deref());
        fixed[2].push(jsons.get(index).map(AsRef::as_ref));
        for (column, values) in columns.iter().zip(&mut members) {
            values.push(column.text(referral));
        }
    }
    let parameters: Vec<&(dyn ToSql + Sync)> = fixed
        .iter()
        .map(|values| values as &(dyn ToSql + Sync))
        .chain(members.iter().map(|values| values as &(dyn ToSql + Sync)))
        .collect();
    let rows = client.query(statement, &parameters).await?;
    let written: HashMap<String, bool> = rows
        .iter()
        .filter_map(|row| Some((row.try_get(0).ok()?, row.try_get(1).ok()?)))
        .collect();
    let sent: std::collections::HashSet<usize> = sent.into_iter().collect();
    Ok(items
        .iter()
        .enumerate()
        .map(
            |(index, referral)| match referral.id.as_ref().map(|id| written.get(id)) {
                None => Applied::NoId,
                Some(Some(true)) if sent.contains(&index) => Applied::Inserted,
                Some(Some(false)) if sent.contains(&index) => Applied::Updated,
                Some(_) => Applied::Kept,
            },
        )
        .collect())
}
