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
//! - **No waiting in a circle.** The group before never waits for the one after: a shared id's
//!   advisory lock makes the later group wait (see `log`), and the later group takes the lock of
//!   the change counter only after the earlier one committed.
//! - **Nothing half done.** A sync that is dropped aborts its writes: their connections are
//!   closed, and the server rolls back what they had not committed.

use std::collections::VecDeque;

use referrals_client::sync::SyncState;
use referrals_client::types::Referral;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;

use super::{PgMirror, STATE_SQL, log, rows};
use crate::Error;
use crate::columns::Column;
use crate::sync::Target;

/// How many groups are written at once.
const DEPTH: usize = 2;

/// A connection of the sync's writes, with its statements.
pub(crate) struct Writer {
    client: tokio_postgres::Client,
    rows: rows::Rows,
}

impl Writer {
    /// A new connection to the mirror at `url`, its writes prepared for `columns`.
    async fn connect(
        url: &str,
        place: &str,
        columns: Vec<Column>,
        logged: bool,
    ) -> Result<Self, Error> {
        let (client, connection) = super::connect(url, place, "connect a writer").await?;
        tokio::spawn(async move {
            // Ends when the writer is dropped or the server goes away.
            let _ = connection.await;
        });
        let mut rows = rows::Rows::prepare(&client, columns)
            .await
            .map_err(|error| Error::postgres(place, "prepare the writes", error))?;
        rows.logged = logged;
        Ok(Self { client, rows })
    }

    /// Writes `group` in one transaction: its rows at once, then, once `turn` says that the
    /// group before committed, its changes and its state. Gives whether it committed: not when
    /// the group before failed (this one is then rolled back).
    async fn write(
        &mut self,
        group: Group,
        place: &str,
        turn: Option<oneshot::Receiver<()>>,
    ) -> Result<bool, Error> {
        let failed = |what: &'static str| move |error| Error::postgres(place, what, error);
        let transaction = self
            .client
            .transaction()
            .await
            .map_err(failed("start a transaction"))?;
        let written = self
            .rows
            .write(&transaction, &group.items, &group.jsons, place)
            .await?;
        // Only the changes are left to write: the referrals are not kept while this waits.
        let Group { state, .. } = group;
        if let Some(turn) = turn
            && turn.await.is_err()
        {
            // The group before did not commit: dropping the transaction rolls this one back.
            return Ok(false);
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

/// Writes one group on `writer`, and says when it committed on `done`.
async fn write_group(
    mut writer: Writer,
    group: Group,
    place: String,
    turn: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
) -> (Writer, Outcome) {
    let outcome = match writer.write(group, &place, turn).await {
        Ok(true) => {
            // The next group may be waiting for this; a sync that ended has none.
            let _ = done.send(());
            Outcome::Committed
        }
        Ok(false) => Outcome::AfterFailure,
        Err(error) => Outcome::Failed(error),
    };
    (writer, outcome)
}

/// The target of one sync into `mirror`: the groups written as above.
pub(crate) struct Pipeline<'a> {
    mirror: &'a mut PgMirror,
    in_flight: VecDeque<JoinHandle<(Writer, Outcome)>>,
    /// What the next group waits for: the commit of the last group started.
    turn: Option<oneshot::Receiver<()>>,
}

impl<'a> Pipeline<'a> {
    pub(crate) fn new(mirror: &'a mut PgMirror) -> Self {
        Self {
            mirror,
            in_flight: VecDeque::new(),
            turn: None,
        }
    }

    /// A writer of the mirror's spares, or a new one.
    async fn writer(&mut self) -> Result<Writer, Error> {
        while let Some(writer) = self.mirror.writers.pop() {
            if !writer.client.is_closed() {
                return Ok(writer);
            }
        }
        let columns = self.mirror.rows.columns().to_vec();
        let logged = self.mirror.rows.logged;
        Writer::connect(&self.mirror.url, &self.mirror.place, columns, logged).await
    }

    /// Waits for the oldest write: an error when it failed, after every later write ended.
    async fn collect(&mut self) -> Result<(), Error> {
        let Some(handle) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let outcome = match self.joined(handle).await {
            Ok(Outcome::Committed) => return Ok(()),
            Ok(Outcome::Failed(error)) | Err(error) => error,
            Ok(Outcome::AfterFailure) => Error::Connect {
                place: self.mirror.place.clone(),
                reason: "a group of the sync was rolled back: the write before it failed".into(),
            },
        };
        while let Some(handle) = self.in_flight.pop_front() {
            // Later groups are rolled back; the first failure is the one to report.
            let _ = self.joined(handle).await;
        }
        Err(outcome)
    }

    /// The outcome of a write, its writer kept for the next.
    async fn joined(&mut self, handle: JoinHandle<(Writer, Outcome)>) -> Result<Outcome, Error> {
        match handle.await {
            Ok((writer, outcome)) => {
                self.mirror.writers.push(writer);
                Ok(outcome)
            }
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(Error::Connect {
                place: self.mirror.place.clone(),
                reason: format!("a write of the sync was cancelled: {error}"),
            }),
        }
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
        let writer = match self.writer().await {
            Ok(writer) => writer,
            Err(error) => {
                self.flush().await?;
                return Err(error);
            }
        };
        let (done, next) = oneshot::channel();
        let turn = self.turn.replace(next);
        let group = Group {
            items,
            jsons,
            state,
        };
        let place = self.mirror.place.clone();
        let write = write_group(writer, group, place, turn, done);
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
