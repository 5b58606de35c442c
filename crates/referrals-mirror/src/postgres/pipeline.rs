//! The writes of a sync into a PostgreSQL mirror, two groups at once on two connections of
//! their own, committed in the order of the groups.
//!
//! One connection is one server process, which parses each referral's JSON into `jsonb`,
//! checks and fills the indexes, one group after the other: alone it was most of a first
//! sync's time. Here the next group's ids are locked, its rows read and upserted on the second
//! connection while the group before is still being written on the first; it then waits for
//! that group's commit before it appends its changes, writes its state and commits.
//!
//! - **Order.** A group appends its changes and writes its state only after the group before
//!   committed: the change log's numbers follow the groups, and the state never runs ahead of
//!   rows that are not committed. When a group fails, every group after it is rolled back, and
//!   the sync reports the first failure.
//! - **No waiting in a circle.** A group starts only once the group before holds its locks:
//!   the table's, its number's, and its ids' (in the order of their hashes, see `log`). The
//!   group before then never waits for the one after: a shared id makes the later group wait,
//!   a schema change of another process queues behind the earlier group (and the later group
//!   behind it), and the later group takes the lock of the change counter only after the
//!   earlier one ended. The later group waits for that end on the server, on the lock of the
//!   earlier one's number, so that a circle of waits among the writes is one the server sees,
//!   breaks and reports (`deadlock detected`). One wait it cannot see: the sync's lock is held
//!   by the mirror's own connection, not by the writers, so a job that holds rows or ids and
//!   then waits for [`super::SYNC_LOCK`] would wait for ever; such a job takes that lock first.
//! - **Nothing half done.** A sync that is dropped aborts its writes, which never commit: their
//!   connections close (once the server answers what they had sent) and the server rolls back
//!   what they had done. The numbers of a sync's groups start at random, so that a sync that
//!   follows at once does not wait for the locks of a write still closing. A sync whose own
//!   connection, which holds the sync's lock, was closed starts no more groups.

use std::collections::VecDeque;

use referrals_client::sync::SyncState;
use referrals_client::types::Referral;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

use super::{PgMirror, STATE_SQL, log, rows};
use crate::Error;
use crate::sync::Target;

/// How many groups are written at once.
const DEPTH: usize = 2;

/// The first key of the advisory locks that each group holds until its end, the second being
/// the group's number: the group after it waits for this lock on the server (where a circle of
/// waits is seen and broken) before it asks how the group ended.
const TURNS: i32 = i32::from_be_bytes(*b"RFtn");

/// What a group of the sync takes first, before the group after it may start.
const TABLE_SQL: &str = "LOCK TABLE referrals IN ROW EXCLUSIVE MODE";

/// A connection of the sync's writes, with its statements.
pub(crate) struct Writer {
    client: tokio_postgres::Client,
    rows: rows::Rows,
    table: Statement,
    turn: Statement,
}

/// A group's place in the order: its number, what it says when it holds its locks and when it
/// committed, and the number and the commit of the group before it.
struct Order {
    key: i32,
    locked: oneshot::Sender<()>,
    done: oneshot::Sender<()>,
    before: Option<(i32, oneshot::Receiver<()>)>,
}

impl Writer {
    /// A new connection to the mirror at `url`, its writes prepared as those of `like`.
    async fn connect(url: &str, place: &str, like: &rows::Rows) -> Result<Self, Error> {
        let (client, connection) = super::connect(url, place, "connect a writer").await?;
        tokio::spawn(async move {
            // Ends when the writer is dropped or the server goes away.
            let _ = connection.await;
        });
        let failed = |error| Error::postgres(place, "prepare the writes", error);
        let rows = like.prepare_like(&client).await.map_err(failed)?;
        let table = client.prepare(TABLE_SQL).await.map_err(failed)?;
        let turn = client
            .prepare("SELECT pg_advisory_xact_lock($1, $2)")
            .await
            .map_err(failed)?;
        Ok(Self {
            client,
            rows,
            table,
            turn,
        })
    }

    /// Writes `group` in one transaction. It takes the table, its number's lock and its ids'
    /// locks, and says so (the group after it starts then, and waits for whatever of these it
    /// shares); upserts its rows; waits for the group before to end and, when that committed,
    /// writes its changes and its state. Gives whether it committed: not when the group before
    /// failed (this one is then rolled back).
    async fn write(&mut self, group: Group, place: &str, order: Order) -> Result<bool, Error> {
        let failed = |what: &'static str| move |error| Error::postgres(place, what, error);
        let transaction = self
            .client
            .transaction()
            .await
            .map_err(failed("start a transaction"))?;
        let Order {
            key,
            locked,
            done,
            before,
        } = order;
        let mine: [&(dyn ToSql + Sync); 2] = [&TURNS, &key];
        let table = transaction.execute(&self.table, &[]);
        let mine = transaction.execute(&self.turn, &mine);
        let ids = self.rows.lock_ids(&transaction, &group.items);
        futures_util::future::try_join3(table, mine, ids)
            .await
            .map_err(failed("lock the group's rows"))?;
        let mut locked = Some(locked);
        let mut say_locked = || {
            if let Some(locked) = locked.take() {
                let _ = locked.send(());
            }
        };
        // Without the change log no id is locked: the rows are, once upserted.
        if self.rows.logged {
            say_locked();
        }
        let written = self
            .rows
            .write(&transaction, (&group.items, &group.jsons), true, place)
            .await?;
        say_locked();
        // Only the changes are left to write: the referrals are not kept while this waits.
        let Group {
            items,
            jsons,
            state,
        } = group;
        drop((items, jsons));
        if let Some((key, before)) = before {
            transaction
                .execute(&self.turn, &[&TURNS, &key])
                .await
                .map_err(failed("wait for the group before"))?;
            if before.await.is_err() {
                // The group before did not commit: dropping the transaction rolls this back.
                return Ok(false);
            }
        }
        let (text, watermark) = (state.to_json(), state.watermark());
        let parameters: [&(dyn ToSql + Sync); 2] = [&text, &watermark];
        let moved = transaction.execute(STATE_SQL, &parameters);
        let appended = self.rows.append(&transaction, &written.changes);
        let (moved, appended) = futures_util::future::join(moved, appended).await;
        if moved.map_err(failed("write the sync state"))? == 0 {
            // The stored state is ahead of this one: another writer; nothing is written.
            return Err(Error::OtherWriter { path: place.into() });
        }
        appended.map_err(failed("record the changes"))?;
        transaction.commit().await.map_err(failed("commit"))?;
        // The group after may go on while this prunes.
        let _ = done.send(());
        log::prune_now_and_then(&mut self.client, place).await;
        Ok(true)
    }
}

/// A group of referrals to write, with the state after it.
struct Group {
    items: Vec<Referral>,
    jsons: Vec<Option<String>>,
    state: SyncState,
}

/// How a group's write ended.
enum Outcome {
    Committed,
    Failed(Error),
    /// Rolled back, as the group before did not commit.
    AfterFailure,
}

/// Writes one group on `writer`, in its `order`.
async fn write_group(
    mut writer: Writer,
    group: Group,
    place: String,
    order: Order,
) -> (Writer, Outcome) {
    let outcome = match writer.write(group, &place, order).await {
        Ok(true) => Outcome::Committed,
        Ok(false) => Outcome::AfterFailure,
        Err(error) => Outcome::Failed(error),
    };
    (writer, outcome)
}

/// The target of one sync into `mirror`: the groups written as above.
pub(crate) struct Pipeline<'a> {
    mirror: &'a mut PgMirror,
    in_flight: VecDeque<JoinHandle<(Writer, Outcome)>>,
    /// The last group started: its number, and what says when it holds its locks and when
    /// it committed.
    last: Option<(i32, oneshot::Receiver<()>, oneshot::Receiver<()>)>,
}

impl<'a> Pipeline<'a> {
    pub(crate) fn new(mirror: &'a mut PgMirror) -> Self {
        Self {
            mirror,
            in_flight: VecDeque::new(),
            last: None,
        }
    }

    /// A writer of the mirror's spares, or a new one.
    async fn writer(&mut self) -> Result<Writer, Error> {
        while let Some(writer) = self.mirror.writers.pop() {
            if !writer.client.is_closed() {
                return Ok(writer);
            }
        }
        Writer::connect(&self.mirror.url, &self.mirror.place, &self.mirror.rows).await
    }

    /// The order of the next group: after the last one started, once that holds its locks
    /// (or ended).
    async fn order(&mut self) -> Order {
        let (locked, locked_here) = oneshot::channel();
        let (done, done_here) = oneshot::channel();
        let (key, before) = match self.last.take() {
            Some((key, locked, done)) => {
                let _ = locked.await;
                (key.wrapping_add(1), Some((key, done)))
            }
            None => (fastrand::i32(..), None),
        };
        self.last = Some((key, locked_here, done_here));
        Order {
            key,
            locked,
            done,
            before,
        }
    }

    /// Waits for the oldest write: an error when it failed, after every later write ended.
    async fn collect(&mut self) -> Result<(), Error> {
        let outcome = match self.joined().await {
            None | Some(Ok(Outcome::Committed)) => return Ok(()),
            Some(Ok(Outcome::Failed(error)) | Err(error)) => error,
            Some(Ok(Outcome::AfterFailure)) => Error::Connect {
                place: self.mirror.place.clone(),
                reason: "a group of the sync was rolled back: the write before it failed".into(),
            },
        };
        // Later groups are rolled back; the first failure is the one to report.
        while self.joined().await.is_some() {}
        Err(outcome)
    }

    /// The outcome of the oldest write, its writer kept for the next. Its handle stays in
    /// `in_flight` while it is awaited: a sync dropped meanwhile aborts it.
    async fn joined(&mut self) -> Option<Result<Outcome, Error>> {
        let joined = self.in_flight.front_mut()?.await;
        self.in_flight.pop_front();
        Some(match joined {
            Ok((writer, outcome)) => {
                self.mirror.writers.push(writer);
                Ok(outcome)
            }
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(Error::Connect {
                place: self.mirror.place.clone(),
                reason: format!("a write of the sync was cancelled: {error}"),
            }),
        })
    }
}

impl Drop for Pipeline<'_> {
    fn drop(&mut self) {
        for handle in &self.in_flight {
            handle.abort();
        }
    }
}

impl Target for Pipeline<'_> {
    fn place(&self) -> std::path::PathBuf {
        self.mirror.place.clone().into()
    }

    async fn read_state(&mut self) -> Result<Option<SyncState>, Error> {
        self.mirror.read_state().await
    }

    /// Starts the write of the group, once fewer than [`DEPTH`] are being written: its outcome
    /// comes from a later call or from [`Target::flush`].
    async fn write_batch(
        &mut self,
        items: Vec<Referral>,
        jsons: Vec<Option<String>>,
        state: SyncState,
    ) -> Result<(), Error> {
        while self.in_flight.len() >= DEPTH {
            self.collect().await?;
        }
        if self.mirror.client.is_closed() {
            // The sync's lock went with the mirror's connection: another sync may be running.
            self.flush().await?;
            return Err(Error::Connect {
                place: self.mirror.place.clone(),
                reason: "the connection that holds the sync's lock was closed".into(),
            });
        }
        let writer = match self.writer().await {
            Ok(writer) => writer,
            Err(error) => {
                self.flush().await?;
                return Err(error);
            }
        };
        let order = self.order().await;
        let group = Group {
            items,
            jsons,
            state,
        };
        let place = self.mirror.place.clone();
        let write = write_group(writer, group, place, order);
        self.in_flight.push_back(tokio::spawn(write));
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Error> {
        while !self.in_flight.is_empty() {
            self.collect().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use referrals_testkit::postgres::Server;

    fn version(id: &str, second: u32) -> Referral {
        serde_json::from_str(&format!(
            r#"{{"id":"{id}","eTag":"e{second}","updatedDateTime":"2024-05-01T00:00:{second:02}Z"}}"#
        ))
        .unwrap()
    }

    fn state() -> SyncState {
        SyncState::from_json(
            r#"{"version":1,"filter":null,"watermark":null,"delivered":{},"complete":false,"bound":null}"#,
        )
        .unwrap()
    }

    /// A new database of `server`, and a connection of its own to it.
    async fn database(server: &Server, name: &str) -> (String, tokio_postgres::Client) {
        let connect = |url: String| async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
        };
        let admin = connect(server.url()).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = server.database_url(name);
        (url.clone(), connect(url).await)
    }

    /// Two ids, the first of which a group locks first (in the order of their hashes).
    async fn in_lock_order(client: &tokio_postgres::Client) -> (String, String) {
        let hash = |id: &'static str| async move {
            let row = client.query_one("SELECT hashtext($1)", &[&id]).await;
            row.unwrap().get::<_, i32>(0)
        };
        let (a, b) = ("a", "b");
        if hash(a).await < hash(b).await {
            (a.to_owned(), b.to_owned())
        } else {
            (b.to_owned(), a.to_owned())
        }
    }

    /// A group whose locks wait for another writer does not let the group after it take an id
    /// that both write: the later group would hold it while it waits for the earlier one, in a
    /// circle that the server cannot see. The later group starts once the earlier one holds
    /// its locks, and both commit, in their order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_group_after_starts_once_the_group_before_holds_its_locks() {
        let Some(server) = Server::start() else {
            return;
        };
        let (url, other) = database(&server, "circle").await;
        let mut mirror = PgMirror::connect(&url).await.unwrap();
        let (first, second) = in_lock_order(&other).await;
        // Another writer holds the lock of the id that the first group locks first.
        other.batch_execute("BEGIN").await.unwrap();
        let lock = "SELECT pg_advisory_xact_lock($1, hashtext($2))";
        let id_locks = rows::ID_LOCKS;
        other.execute(lock, &[&id_locks, &first]).await.unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            other.batch_execute("COMMIT").await.unwrap();
            other
        });
        let mut pipeline = Pipeline::new(&mut mirror);
        let groups = [
            vec![version(&first, 1), version(&second, 1)],
            vec![version(&second, 2)],
        ];
        let written = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            for group in groups {
                pipeline.write_batch(group, Vec::new(), state()).await?;
            }
            pipeline.flush().await
        })
        .await;
        drop(pipeline);
        assert!(matches!(written, Ok(Ok(()))), "{written:?}");
        let other = release.await.unwrap();
        let changes = other
            .query(
                "SELECT referral_id, kind, e_tag FROM changes ORDER BY seq",
                &[],
            )
            .await
            .unwrap();
        let changes: Vec<(String, String, String)> = changes
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
        let change = |id: &str, kind: &str, tag: &str| (id.into(), kind.into(), tag.into());
        let expected = [
            change(&first, "new", "e1"),
            change(&second, "new", "e1"),
            change(&second, "changed", "e2"),
        ];
        assert_eq!(changes, expected);
    }
}
