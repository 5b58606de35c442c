//! The change log of a SQLite mirror as a consumer reads it, with a connection of its own. A
//! consumer is served by one process at a time: the process holds an exclusive lock on the
//! file `<mirror>.consumer-<name>.lock` (the system's file lock, released when the process
//! ends, however it ends); another process for the same name tries again every 100 ms.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::terms::{Held, SetAside, Start};
use crate::log::{self, Row};
use crate::{Change, Error};

/// How often a process waiting for a consumer that another serves tries again.
const TAKE_OVER: Duration = Duration::from_millis(100);

pub(crate) struct FileLog {
    path: PathBuf,
    connection: Connection,
    /// The consumer's lock file, locked while this process serves it.
    lock: Option<File>,
    /// SQLite's `data_version` when last read: another connection wrote when it changed.
    data_version: i64,
}

impl FileLog {
    /// A connection of its own to the mirror at `path` (a mirror already checked).
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let mut connection = Connection::open(path)
            .map_err(|error| Error::sqlite(path, "open it for a consumer", error))?;
        crate::schema::set_connection(&mut connection, path)?;
        Ok(Self {
            path: path.to_owned(),
            connection,
            lock: None,
            data_version: 0,
        })
    }

    fn failed<'a>(&'a self, what: &'a str) -> impl Fn(rusqlite::Error) -> Error + 'a {
        move |error| Error::sqlite(&self.path, what, error)
    }

    /// Takes the consumer's lock file, waiting while another process holds it.
    async fn lock(&mut self, name: &str) -> Result<(), Error> {
        if self.lock.is_some() {
            return Ok(());
        }
        let mut lock_path = self.path.as_os_str().to_owned();
        lock_path.push(format!(".consumer-{name}.lock"));
        let lock_path = PathBuf::from(lock_path);
        let io = |source| Error::Io {
            path: lock_path.clone(),
            what: "lock the consumer".to_owned(),
            error: source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => tokio::time::sleep(TAKE_OVER).await,
                Err(std::fs::TryLockError::Error(error)) => return Err(io(error)),
            }
        }
        self.lock = Some(file);
        Ok(())
    }

    pub(crate) async fn hold(&mut self, name: &str, start: Start) -> Result<Held, Error> {
        self.lock(name).await?;
        let path = self.path.clone();
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| Error::sqlite(&path, "start a transaction", error))?;
        let known: Option<i64> = transaction
            .query_row(
                "SELECT position FROM consumers WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()
            .map_err(|error| Error::sqlite(&path, "read the consumers", error))?;
        let held = match known {
            Some(position) => Held {
                position,
                new: false,
            },
            None => {
                let position = place(&transaction, &path, name, start)?;
                transaction
                    .execute(
                        "INSERT INTO consumers (name, position, created) VALUES (?1, ?2, ?3)",
                        params![name, position, crate::change::now_text()],
                    )
                    .map_err(|error| Error::sqlite(&path, "make the consumer", error))?;
                Held {
                    position,
                    new: true,
                }
            }
        };
        transaction
            .commit()
            .map_err(|error| Error::sqlite(&path, "commit", error))?;
        Ok(held)
    }

    pub(crate) async fn read(
        &mut self,
        name: &str,
        after: i64,
        max: usize,
    ) -> Result<Vec<Change>, Error> {
        self.data_version = self.data_version()?;
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|error| Error::sqlite(&self.path, "start a transaction", error))?;
        let rows = {
            let mut statement = transaction
                .prepare_cached(
                    "SELECT c.seq, c.kind, c.referral_id, c.e_tag, c.updated_date_time,
                            c.recorded, c.members, r.json
                     FROM changes c LEFT JOIN referrals r ON r.id = c.referral_id
                     WHERE c.seq > ?1 AND (c.consumer IS NULL OR c.consumer = ?2)
                     ORDER BY c.seq LIMIT ?3",
                )
                .map_err(|error| Error::sqlite(&self.path, "read the changes", error))?;
            let limit = i64::try_from(max).unwrap_or(i64::MAX);
            statement
                .query_map(params![after, name, limit], Row::from_sqlite)
                .and_then(Iterator::collect::<Result<Vec<Row>, _>>)
                .map_err(|error| Error::sqlite(&self.path, "read the changes", error))?
        };
        // In the same read transaction: changes pruned before the ones read are seen.
        log::check_not_pruned(&transaction, &self.path, name, after)?;
        drop(transaction);
        rows.into_iter().map(|row| row.change(&self.path)).collect()
    }

    /// Waits until another connection wrote to the file (or a while has passed).
    pub(crate) async fn wait(&mut self) -> Result<(), Error> {
        for _ in 0..100 {
            if self.data_version()? != self.data_version {
                return Ok(());
            }
            crate::wake::a_while().await;
        }
        Ok(())
    }

    fn data_version(&self) -> Result<i64, Error> {
        self.connection
            .pragma_query_value(None, "data_version", |row| row.get(0))
            .map_err(self.failed("read the data version"))
    }

    pub(crate) async fn position(&mut self, name: &str) -> Result<i64, Error> {
        self.connection
            .query_row(
                "SELECT position FROM consumers WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .map_err(self.failed("read the consumer's position"))
    }

    pub(crate) async fn ack(&mut self, name: &str, seq: i64) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "UPDATE consumers SET position = max(position, ?2), acknowledged = ?3
                 WHERE name = ?1",
            )
            .and_then(|mut ack| ack.execute(params![name, seq, crate::change::now_text()]))
            .map_err(self.failed("save the consumer's position"))?;
        log::prune_now_and_then(&self.connection, &self.path);
        Ok(())
    }

    pub(crate) async fn restart(&mut self, name: &str, start: Start) -> Result<i64, Error> {
        let path = self.path.clone();
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| Error::sqlite(&path, "start a transaction", error))?;
        transaction
            .execute(
                "DELETE FROM changes WHERE consumer = ?1 AND kind = 'snapshot'",
                [name],
            )
            .map_err(|error| Error::sqlite(&path, "remove the consumer's snapshot", error))?;
        let position = place(&transaction, &path, name, start)?;
        transaction
            .execute(
                "UPDATE consumers SET position = ?2, acknowledged = ?3 WHERE name = ?1",
                params![name, position, crate::change::now_text()],
            )
            .map_err(|error| Error::sqlite(&path, "move the consumer", error))?;
        transaction
            .commit()
            .map_err(|error| Error::sqlite(&path, "commit", error))?;
        Ok(position)
    }

    pub(crate) async fn set_aside(
        &mut self,
        name: &str,
        change: &Change,
        error: &str,
        attempts: u32,
    ) -> Result<(), Error> {
        let text = log::set_aside_text(change, &self.path)?;
        self.connection
            .execute(
                "INSERT INTO failed_changes (consumer, seq, change, error, attempts, failed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (consumer, seq) DO UPDATE SET
                     change = ?3, error = ?4, attempts = ?5, failed = ?6",
                params![
                    name,
                    change.seq,
                    text,
                    error,
                    attempts,
                    crate::change::now_text()
                ],
            )
            .map_err(self.failed("set a change aside"))?;
        Ok(())
    }

    pub(crate) async fn set_aside_list(&mut self, name: &str) -> Result<Vec<SetAside>, Error> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT change, error, attempts, failed FROM failed_changes
                 WHERE consumer = ?1 ORDER BY seq",
            )
            .map_err(self.failed("read the changes set aside"))?;
        let rows = statement
            .query_map([name], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, u32>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|error| Error::sqlite(&self.path, "read the changes set aside", error))?;
        rows.into_iter()
            .map(|(change, error, attempts, failed)| {
                log::set_aside_of(&self.path, &change, error, attempts, &failed)
            })
            .collect()
    }

    pub(crate) async fn forget(&mut self, name: &str) -> Result<(), Error> {
        self.connection
            .execute_batch("BEGIN IMMEDIATE;")
            .map_err(self.failed("start a transaction"))?;
        let forgotten = [
            "DELETE FROM changes WHERE consumer = ?1",
            "DELETE FROM failed_changes WHERE consumer = ?1",
            "DELETE FROM consumers WHERE name = ?1",
        ]
        .iter()
        .try_for_each(|sql| self.connection.execute(sql, [name]).map(drop));
        let end = if forgotten.is_ok() {
            "COMMIT;"
        } else {
            "ROLLBACK;"
        };
        self.connection
            .execute_batch(end)
            .map_err(self.failed("forget the consumer"))?;
        forgotten.map_err(self.failed("forget the consumer"))
    }

    pub(crate) async fn forget_set_aside(&mut self, name: &str, seq: i64) -> Result<(), Error> {
        self.connection
            .execute(
                "DELETE FROM failed_changes WHERE consumer = ?1 AND seq = ?2",
                params![name, seq],
            )
            .map_err(self.failed("forget a change set aside"))?;
        Ok(())
    }
}

/// The position of a consumer placed at `start`, in `transaction`: for a snapshot, the rows of
/// the mirror are appended to the log for `name` alone, after the position.
fn place(
    transaction: &rusqlite::Transaction<'_>,
    path: &Path,
    name: &str,
    start: Start,
) -> Result<i64, Error> {
    let failed = |error| Error::sqlite(path, "place the consumer", error);
    let last: i64 = transaction
        .query_row(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
            [],
            |row| row.get(0),
        )
        .map_err(failed)?;
    match start {
        Start::Now => Ok(last),
        Start::After(seq) => {
            log::check_start(transaction, path, name, seq, last)?;
            Ok(seq)
        }
        Start::Snapshot => {
            transaction
                .execute(
                    "INSERT INTO changes
                         (referral_id, kind, e_tag, updated_date_time, members, recorded, consumer)
                     SELECT id, 'snapshot', eTag, updatedDateTime, '[]', ?1, ?2
                     FROM referrals ORDER BY id",
                    params![crate::change::now_text(), name],
                )
                .map_err(failed)?;
            Ok(last)
        }
    }
}
