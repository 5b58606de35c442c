//! The events that receivers acknowledged, in the database that they share: each stored in its
//! own transaction before the acknowledgement, then claimed by one receiver at a time (a lease,
//! taken with `FOR UPDATE SKIP LOCKED`, so that two receivers never work off the same event at
//! once) and marked done; the event of a receiver that died is claimed again when its lease
//! ends.

use super::PgMirror;
use crate::{Error, PendingEvent};

/// How long a receiver may take to work off the events it claimed before another may.
const LEASE_SECONDS: f64 = 60.0;

impl PgMirror {
    /// Stores an event (its name, referral and body as received); once this returns, the event
    /// survives a crash. Returns its place.
    pub async fn store_event(
        &self,
        name: &str,
        referral_id: Option<&str>,
        body: &str,
    ) -> Result<i64, Error> {
        let row = self
            .client
            .query_one(
                "INSERT INTO events (name, referral_id, body) VALUES ($1, $2, $3) RETURNING seq",
                &[&name, &referral_id, &body],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "store an event", error))?;
        Ok(row.get(0))
    }

    /// Claims at most `limit` events that are not done and that no other receiver holds,
    /// oldest first, for a minute.
    pub async fn claim_events(&self, limit: usize) -> Result<Vec<PendingEvent>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                "UPDATE events SET claimed_until = now() + make_interval(secs => $2)
                 WHERE seq IN (
                     SELECT seq FROM events
                     WHERE NOT done AND (claimed_until IS NULL OR claimed_until < now())
                     ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING seq, name, referral_id",
                &[&limit, &LEASE_SECONDS],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "claim events", error))?;
        let mut events: Vec<PendingEvent> = rows
            .iter()
            .map(|row| PendingEvent {
                seq: row.get(0),
                name: row.get(1),
                referral_id: row.get(2),
            })
            .collect();
        events.sort_by_key(|event| event.seq);
        Ok(events)
    }

    /// Deletes the events worked off that were received more than `age` ago; returns how many.
    /// (An event not worked off stays, whatever its age.)
    pub async fn prune_events(&self, age: std::time::Duration) -> Result<u64, Error> {
        // At most 100 years: an interval of any `Duration` would overflow.
        let seconds = age.as_secs_f64().min(100.0 * 365.25 * 86_400.0);
        self.client
            .execute(
                "DELETE FROM events WHERE done AND received < now() - make_interval(secs => $1)",
                &[&seconds],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "prune the events", error))
    }

    /// Marks the event `seq` worked off.
    pub async fn finish_event(&self, seq: i64) -> Result<(), Error> {
        self.client
            .execute("UPDATE events SET done = true WHERE seq = $1", &[&seq])
            .await
            .map_err(|error| Error::postgres(&self.place, "mark an event done", error))?;
        Ok(())
    }
}
