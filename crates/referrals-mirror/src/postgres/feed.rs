//! The change log of a PostgreSQL mirror as a consumer reads it, on a connection of its own:
//! `LISTEN` wakes it at each commit with changes; a session advisory lock keyed by the
//! consumer's row makes one process at a time serve it, on any machine (another waits in
//! `pg_advisory_lock` and takes over as soon as the first one's connection ends).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

use super::log;
use crate::feed::terms::{Held, SetAside, Start};
use crate::log::Row;
use crate::{Change, Error};

/// The first key of the advisory locks of consumers (the second is the consumer's row id).
const CONSUMER_LOCKS: i32 = i32::from_be_bytes(*b"RFcn");

/// The longest wait for a notification: a change whose notification was lost (the connection
/// was replaced) is read within it.
const WAIT: Duration = Duration::from_secs(1);

/// A position that means "not placed yet": a consumer row made before its process held it.
const UNPLACED: i64 = -1;

pub(crate) struct PgLog {
    client: tokio_postgres::Client,
    place: String,
    /// Notifications received, counted; and a wake-up at each.
    heard: Arc<(AtomicU64, Notify)>,
    /// The count when the last read began.
    seen: u64,
    held: bool,
}

impl PgLog {
    /// A connection of its own to the database at `url`, listening for changes.
    pub(crate) async fn connect(url: &str, place: &str) -> Result<Self, Error> {
        let (client, mut connection) = super::connect(url, place, "connect a consumer").await?;
        let heard = Arc::new((AtomicU64::new(0), Notify::new()));
        let ears = Arc::clone(&heard);
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            // Ends when the client is dropped or the server goes away.
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(_) = message {
                    ears.0.fetch_add(1, Ordering::SeqCst);
                    ears.1.notify_waiters();
                }
            }
            // Whoever waits reads again, and meets the connection's error.
            ears.0.fetch_add(1, Ordering::SeqCst);
            ears.1.notify_waiters();
        });
        client
            .batch_execute(&format!("LISTEN {}", log::CHANNEL))
            .await
            .map_err(|error| Error::postgres(place, "listen for changes", error))?;
        Ok(Self {
            client,
            place: place.to_owned(),
            heard,
            seen: 0,
            held: false,
        })
    }

    fn failed(&self, what: &'static str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
        move |error| Error::postgres(&self.place, what, error)
    }

    /// Takes the lock of the consumer `name` (made, unplaced, when the database has no row of
    /// it), waiting while another session holds it; `false` when the row was forgotten and
    /// made again meanwhile (its lock is another one: try again).
    async fn lock(&mut self, name: &str) -> Result<bool, Error> {
        self.client
            .execute(
                "INSERT INTO consumers (name, position) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &UNPLACED],
            )
            .await
            .map_err(self.failed("make the consumer"))?;
        let id: i32 = self
            .client
            .query_one("SELECT id FROM consumers WHERE name = $1", &[&name])
            .await
            .map_err(self.failed("read the consumer"))?
            .get(0);
        // Waits while another session holds it.
        self.client
            .execute("SELECT pg_advisory_lock($1, $2)", &[&CONSUMER_LOCKS, &id])
            .await
            .map_err(self.failed("hold the consumer"))?;
        let same = self
            .client
            .query_opt(
                "SELECT 1 FROM consumers WHERE name = $1 AND id = $2",
                &[&name, &id],
            )
            .await
            .map_err(self.failed("read the consumer"))?
            .is_some();
        if !same {
            self.client
                .execute("SELECT pg_advisory_unlock($1, $2)", &[&CONSUMER_LOCKS, &id])
                .await
                .map_err(self.failed("give the consumer back"))?;
        }
        Ok(same)
    }

    pub(crate) async fn hold(&mut self, name: &str, start: Start) -> Result<Held, Error> {
        while !self.held {
            self.held = self.lock(name).await?;
        }
        let place = self.place.clone();
        let failed = |what: &'static str| {
            let place = place.clone();
            move |error| Error::postgres(&place, what, error)
        };
        let transaction = self
            .client
            .transaction()
            .await
            .map_err(failed("start a transaction"))?;
        let position: i64 = transaction
            .query_one(
                "SELECT position FROM consumers WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await
            .map_err(failed("read the consumer"))?
            .get(0);
        let held = if position == UNPLACED {
            let position = place_at(&transaction, &place, name, start).await?;
            Held {
                position,
                new: true,
            }
        } else {
            Held {
                position,
                new: false,
            }
        };
        transaction.commit().await.map_err(failed("commit"))?;
        Ok(held)
    }

    pub(crate) async fn read(
        &mut self,
        name: &str,
        after: i64,
        max: usize,
    ) -> Result<Vec<Change>, Error> {
        self.seen = self.heard.0.load(Ordering::SeqCst);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                "SELECT c.seq, c.kind, c.referral_id, c.e_tag, c.updated_date_time,
                        c.recorded, c.members, r.json::text
                 FROM changes c LEFT JOIN referrals r ON r.id = c.referral_id
                 WHERE c.seq > $1 AND (c.consumer IS NULL OR c.consumer = $2)
                 ORDER BY c.seq LIMIT $3",
                &[&after, &name, &limit],
            )
            .await
            .map_err(self.failed("read the changes"))?;
        // Read after the changes: a pruning that came before them is seen.
        let pruned = log::pruned_through(&self.client)
            .await
            .map_err(self.failed("read the settings"))?;
        if pruned > after {
            return Err(Error::Pruned {
                consumer: name.to_owned(),
                position: after,
                pruned_through: pruned,
            });
        }
        let place = std::path::PathBuf::from(&self.place);
        rows.iter()
            .map(|row| {
                let recorded: chrono::DateTime<chrono::Utc> = row.get(5);
                Row {
                    seq: row.get(0),
                    kind: row.get(1),
                    id: row.get(2),
                    e_tag: row.get(3),
                    updated: row.get(4),
                    recorded: recorded.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    members: row.get(6),
                    referral: row.get(7),
                }
                .change(&place)
            })
            .collect()
    }

    /// Waits for a notification heard since the last read began (or a second).
    pub(crate) async fn wait(&mut self) -> Result<(), Error> {
        let notified = self.heard.1.notified();
        if self.heard.0.load(Ordering::SeqCst) != self.seen {
            return Ok(());
        }
        let _ = tokio::time::timeout(WAIT, notified).await;
        Ok(())
    }

    pub(crate) async fn position(&mut self, name: &str) -> Result<i64, Error> {
        Ok(self
            .client
            .query_one("SELECT position FROM consumers WHERE name = $1", &[&name])
            .await
            .map_err(self.failed("read the consumer's position"))?
            .get(0))
    }

    pub(crate) async fn ack(&mut self, name: &str, seq: i64) -> Result<(), Error> {
        self.client
            .execute(
                "UPDATE consumers SET position = greatest(position, $2), acknowledged = now()
                 WHERE name = $1",
                &[&name, &seq],
            )
            .await
            .map_err(self.failed("save the consumer's position"))?;
        log::prune_now_and_then(&mut self.client, &self.place).await;
        Ok(())
    }

    pub(crate) async fn restart(&mut self, name: &str, start: Start) -> Result<i64, Error> {
        let place = self.place.clone();
        let failed = |what: &'static str| {
            let place = place.clone();
            move |error| Error::postgres(&place, what, error)
        };
        let transaction = self
            .client
            .transaction()
            .await
            .map_err(failed("start a transaction"))?;
        transaction
            .execute(
                "DELETE FROM changes WHERE consumer = $1 AND kind = 'snapshot'",
                &[&name],
            )
            .await
            .map_err(failed("remove the consumer's snapshot"))?;
        let position = place_at(&transaction, &place, name, start).await?;
        transaction.commit().await.map_err(failed("commit"))?;
        Ok(position)
    }

    pub(crate) async fn set_aside(
        &mut self,
        name: &str,
        change: &Change,
        error: &str,
        attempts: u32,
    ) -> Result<(), Error> {
        let text = crate::log::set_aside_text(change, std::path::Path::new(&self.place))?;
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        self.client
            .execute(
                "INSERT INTO failed_changes (consumer, seq, change, error, attempts)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (consumer, seq) DO UPDATE SET
                     change = $3, error = $4, attempts = $5, failed = now()",
                &[&name, &change.seq, &text, &error, &attempts],
            )
            .await
            .map_err(self.failed("set a change aside"))?;
        Ok(())
    }

    pub(crate) async fn set_aside_list(&mut self, name: &str) -> Result<Vec<SetAside>, Error> {
        let rows = self
            .client
            .query(
                "SELECT change, error, attempts, failed FROM failed_changes
                 WHERE consumer = $1 ORDER BY seq",
                &[&name],
            )
            .await
            .map_err(self.failed("read the changes set aside"))?;
        let place = std::path::PathBuf::from(&self.place);
        rows.iter()
            .map(|row| {
                let failed: chrono::DateTime<chrono::Utc> = row.get(3);
                let attempts: i32 = row.get(2);
                crate::log::set_aside_of(
                    &place,
                    row.get(0),
                    row.get(1),
                    u32::try_from(attempts).unwrap_or(0),
                    &failed.to_rfc3339(),
                )
            })
            .collect()
    }

    pub(crate) async fn forget(&mut self, name: &str) -> Result<(), Error> {
        let transaction = self
            .client
            .transaction()
            .await
            .map_err(|error| Error::postgres(&self.place, "start a transaction", error))?;
        for sql in [
            "DELETE FROM changes WHERE consumer = $1",
            "DELETE FROM failed_changes WHERE consumer = $1",
            "DELETE FROM consumers WHERE name = $1",
        ] {
            transaction
                .execute(sql, &[&name])
                .await
                .map_err(|error| Error::postgres(&self.place, "forget the consumer", error))?;
        }
        transaction
            .commit()
            .await
            .map_err(|error| Error::postgres(&self.place, "commit", error))
    }

    pub(crate) async fn forget_set_aside(&mut self, name: &str, seq: i64) -> Result<(), Error> {
        self.client
            .execute(
                "DELETE FROM failed_changes WHERE consumer = $1 AND seq = $2",
                &[&name, &seq],
            )
            .await
            .map_err(self.failed("forget a change set aside"))?;
        Ok(())
    }
}

/// Places the consumer `name` at `start` in `transaction`, which holds the counter's lock from
/// its first statement: no change commits meanwhile, so a snapshot is exact.
async fn place_at(
    transaction: &tokio_postgres::Transaction<'_>,
    place: &str,
    name: &str,
    start: Start,
) -> Result<i64, Error> {
    let failed = |error| Error::postgres(place, "place the consumer", error);
    let last: i64 = transaction
        .query_one(
            "SELECT last FROM change_counter WHERE one = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0);
    let position = match start {
        Start::Now => last,
        Start::After(seq) => {
            let pruned = log::pruned_through(transaction).await.map_err(failed)?;
            if seq < 0 || seq > last {
                return Err(Error::Start {
                    consumer: name.to_owned(),
                    seq,
                    last,
                });
            }
            if pruned > seq {
                return Err(Error::Pruned {
                    consumer: name.to_owned(),
                    position: seq,
                    pruned_through: pruned,
                });
            }
            seq
        }
        Start::Snapshot => {
            let rows = transaction
                .execute(
                    "INSERT INTO changes
                         (seq, referral_id, kind, e_tag, updated_date_time, members, recorded,
                          consumer)
                     SELECT $1 + row_number() OVER (ORDER BY id), id, 'snapshot', e_tag,
                            json ->> 'updatedDateTime', '[]', now(), $2
                     FROM referrals",
                    &[&last, &name],
                )
                .await
                .map_err(failed)?;
            let rows = i64::try_from(rows).unwrap_or(i64::MAX);
            transaction
                .execute(
                    "UPDATE change_counter SET last = last + $1 WHERE one = 1",
                    &[&rows],
                )
                .await
                .map_err(failed)?;
            last
        }
    };
    transaction
        .execute(
            "UPDATE consumers SET position = $2, acknowledged = now() WHERE name = $1",
            &[&name, &position],
        )
        .await
        .map_err(failed)?;
    Ok(position)
}
