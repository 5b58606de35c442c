//! The events that receivers acknowledged, in the database that they share: each stored in its
//! own transaction before the acknowledgement (a body received again within the window is not
//! stored again), then claimed by one receiver at a time and marked done. A claim names its
//! receiver (the connection's owner), lasts a minute, is renewed while the receiver works
//! ([`PgMirror::renew_claims`]) and can be finished only by it; it is taken with `FOR UPDATE
//! SKIP LOCKED`, so that two receivers never work off the same event at once, and the events of
//! a receiver that died are claimed again when its lease ends.

use std::time::Duration;

use super::PgMirror;
use crate::Error;
use crate::events::{AsideEvent, EventCounts, PendingEvent, Stored, announced, digest};

/// How long a receiver may hold the events it claimed without renewing the claim.
pub const LEASE: Duration = Duration::from_secs(60);

/// Seconds of `duration`, at most 100 years: an interval of any `Duration` would overflow.
fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64().min(100.0 * 365.25 * 86_400.0)
}

impl PgMirror {
    /// Stores an event (its name, referral and body as received); once this returns, the event
    /// survives a crash. A body that was received within `replays` is not stored again
    /// ([`Stored::Replay`]).
    pub async fn store_event(
        &self,
        name: &str,
        referral_id: Option<&str>,
        body: &str,
        replays: Duration,
    ) -> Result<Stored, Error> {
        let digest = digest(body);
        // One statement: the earlier copy if there is one, else the row inserted.
        let row = self
            .client
            .query_one(
                "WITH earlier AS (
                     SELECT seq FROM events
                     WHERE digest = $4 AND received >= now() - make_interval(secs => $5)
                     LIMIT 1),
                 inserted AS (
                     INSERT INTO events (name, referral_id, body, digest, announced)
                     SELECT $1, $2, $3, $4, $6 WHERE NOT EXISTS (SELECT 1 FROM earlier)
                     RETURNING seq)
                 SELECT (SELECT seq FROM inserted), (SELECT seq FROM earlier)",
                &[
                    &name,
                    &referral_id,
                    &body,
                    &digest,
                    &seconds(replays),
                    &announced(body),
                ],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "store an event", error))?;
        match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
            (Some(seq), _) => Ok(Stored::New(seq)),
            (None, Some(seq)) => Ok(Stored::Replay(seq)),
            (None, None) => Err(Error::Receiver(
                "an event was neither stored nor found".into(),
            )),
        }
    }

    /// Claims for this connection at most `limit` events to work off now (not done, not set
    /// aside, their next try due, held by no other receiver), oldest first, for [`LEASE`].
    /// Events that this connection's owner claimed before and did not finish (its connection
    /// was lost meanwhile) are among them.
    pub async fn claim_events(&self, limit: usize) -> Result<Vec<PendingEvent>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                "UPDATE events SET claimed_until = now() + make_interval(secs => $2),
                     claimed_by = $3
                 WHERE seq IN (
                     SELECT seq FROM events
                     WHERE NOT done AND NOT aside
                       AND (claimed_until IS NULL OR claimed_until < now()
                            OR claimed_by = $3)
                       AND (next_try IS NULL OR next_try <= now())
                     ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING seq, name, referral_id, attempts, announced",
                &[&limit, &seconds(LEASE), &self.owner],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "claim events", error))?;
        let mut events: Vec<PendingEvent> = rows
            .iter()
            .map(|row| PendingEvent {
                seq: row.get(0),
                name: row.get(1),
                referral_id: row.get(2),
                attempts: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
                announced: row.get(4),
            })
            .collect();
        events.sort_by_key(|event| event.seq);
        Ok(events)
    }

    /// Renews for [`LEASE`] the claims that this connection holds on events not done; returns
    /// how many.
    pub async fn renew_claims(&self) -> Result<u64, Error> {
        self.client
            .execute(
                "UPDATE events SET claimed_until = now() + make_interval(secs => $1)
                 WHERE claimed_by = $2 AND NOT done AND claimed_until >= now()",
                &[&seconds(LEASE), &self.owner],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "renew the claims of events", error))
    }

    /// Deletes the events worked off that were received more than `age` ago; returns how many.
    /// (An event not worked off stays, whatever its age.)
    pub async fn prune_events(&self, age: Duration) -> Result<u64, Error> {
        self.client
            .execute(
                "DELETE FROM events WHERE done AND received < now() - make_interval(secs => $1)",
                &[&seconds(age)],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "prune the events", error))
    }

    /// Marks the event `seq` worked off, unless another receiver holds it; returns whether it
    /// was marked.
    pub async fn finish_event(&self, seq: i64) -> Result<bool, Error> {
        let marked = self
            .client
            .execute(
                "UPDATE events SET done = true, claimed_until = NULL
                 WHERE seq = $1 AND (claimed_by IS NULL OR claimed_by = $2
                                     OR claimed_until IS NULL OR claimed_until < now())",
                &[&seq, &self.owner],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "mark an event done", error))?;
        Ok(marked == 1)
    }

    /// Counts a failure of the event `seq` (unless another receiver holds it): it is tried
    /// again after `retry`, or, when `retry` is `None`, set aside until
    /// [`PgMirror::retry_events`]; returns whether it was counted.
    pub async fn fail_event(
        &self,
        seq: i64,
        error: &str,
        retry: Option<Duration>,
    ) -> Result<bool, Error> {
        let wait = retry.map(seconds);
        let counted = self
            .client
            .execute(
                "UPDATE events SET attempts = attempts + 1, error = $2, claimed_until = NULL,
                     next_try = now() + make_interval(secs => coalesce($3::float8, 0)),
                     aside = $3::float8 IS NULL
                 WHERE seq = $1 AND (claimed_by IS NULL OR claimed_by = $4
                                     OR claimed_until IS NULL OR claimed_until < now())",
                &[&seq, &error, &wait, &self.owner],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "count an event's failure", error))?;
        Ok(counted == 1)
    }

    /// The events set aside, oldest first.
    pub async fn aside_events(&self) -> Result<Vec<AsideEvent>, Error> {
        let rows = self
            .client
            .query(
                "SELECT seq, name, referral_id, received, attempts, coalesce(error, '')
                 FROM events WHERE aside AND NOT done ORDER BY seq",
                &[],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "read the events set aside", error))?;
        Ok(rows
            .iter()
            .map(|row| AsideEvent {
                seq: row.get(0),
                name: row.get(1),
                referral_id: row.get(2),
                received: row.get::<_, chrono::DateTime<chrono::Utc>>(3).to_rfc3339(),
                attempts: u32::try_from(row.get::<_, i32>(4)).unwrap_or(0),
                error: row.get(5),
            })
            .collect())
    }

    /// Puts the events set aside (all, or the one `seq`) back to be worked off, their attempts
    /// counted from zero; returns how many.
    pub async fn retry_events(&self, seq: Option<i64>) -> Result<u64, Error> {
        self.client
            .execute(
                "UPDATE events SET aside = false, attempts = 0, next_try = NULL
                 WHERE aside AND NOT done AND ($1::bigint IS NULL OR seq = $1)",
                &[&seq],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "retry the events set aside", error))
    }

    /// The events to work off and those set aside, counted.
    pub async fn event_counts(&self) -> Result<EventCounts, Error> {
        let row = self
            .client
            .query_one(
                "SELECT count(*) FILTER (WHERE NOT aside), count(*) FILTER (WHERE aside),
                     coalesce(extract(epoch FROM now() - min(received) FILTER (WHERE NOT aside))
                              ::float8, 0)
                 FROM events WHERE NOT done",
                &[],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "count the events", error))?;
        Ok(EventCounts {
            pending: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
            aside: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
            oldest_pending_seconds: row.get::<_, f64>(2).max(0.0),
        })
    }
}
