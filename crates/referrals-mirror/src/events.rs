//! The events a receiver acknowledged, stored before the acknowledgement and worked off after
//! it: a receiver killed between the two loses none.

use rusqlite::params;

use crate::{Error, Mirror};

/// An event stored and not yet worked off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    /// Its place in the order of arrival.
    pub seq: i64,
    /// The event's name.
    pub name: String,
    /// The referral it is about.
    pub referral_id: Option<String>,
}

impl Mirror {
    /// Stores an event (its name, referral and body as received) in its own transaction; once
    /// this returns, the event survives a crash. Returns its place.
    pub fn store_event(
        &self,
        name: &str,
        referral_id: Option<&str>,
        body: &str,
    ) -> Result<i64, Error> {
        self.connection
            .execute(
                "INSERT INTO events (received, name, referral_id, body) VALUES (?1, ?2, ?3, ?4)",
                params![chrono::Utc::now().to_rfc3339(), name, referral_id, body],
            )
            .map_err(|error| Error::sqlite(&self.path, "store an event", error))?;
        Ok(self.connection.last_insert_rowid())
    }

    /// The events stored and not worked off, oldest first, at most `limit`.
    pub fn pending_events(&self, limit: usize) -> Result<Vec<PendingEvent>, Error> {
        let read = |error| Error::sqlite(&self.path, "read the events", error);
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT seq, name, referral_id FROM events WHERE done = 0 ORDER BY seq LIMIT ?1",
            )
            .map_err(read)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement
            .query_map([limit], |row| {
                Ok(PendingEvent {
                    seq: row.get(0)?,
                    name: row.get(1)?,
                    referral_id: row.get(2)?,
                })
            })
            .map_err(read)?;
        rows.collect::<Result<_, _>>().map_err(read)
    }

    /// Deletes the events worked off that were received more than `age` ago; returns how many.
    /// (An event not worked off stays, whatever its age.)
    pub fn prune_events(&self, age: std::time::Duration) -> Result<u64, Error> {
        let seconds = format!("-{} seconds", age.as_secs());
        let deleted = self
            .connection
            .execute(
                "DELETE FROM events WHERE done = 1 \
                 AND julianday(received) < julianday('now', ?1)",
                [seconds],
            )
            .map_err(|error| Error::sqlite(&self.path, "prune the events", error))?;
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }

    /// Marks the event `seq` worked off.
    pub fn finish_event(&self, seq: i64) -> Result<(), Error> {
        self.connection
            .execute("UPDATE events SET done = 1 WHERE seq = ?1", [seq])
            .map_err(|error| Error::sqlite(&self.path, "mark an event done", error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::Mirror;

    #[test]
    fn events_worked_off_are_pruned_after_their_age_and_pending_ones_stay() {
        let folder = tempfile::tempdir().unwrap();
        let mirror = Mirror::open(folder.path().join("m.sqlite")).unwrap();
        let old_done = mirror
            .store_event("referral-updated", Some("a"), "{}")
            .unwrap();
        let old_pending = mirror
            .store_event("referral-updated", Some("b"), "{}")
            .unwrap();
        let new_done = mirror
            .store_event("referral-updated", Some("c"), "{}")
            .unwrap();
        mirror.finish_event(old_done).unwrap();
        mirror.finish_event(new_done).unwrap();
        let ten_days_ago = (chrono::Utc::now() - chrono::Duration::days(10)).to_rfc3339();
        mirror
            .connection
            .execute(
                "UPDATE events SET received = ?1 WHERE seq IN (?2, ?3)",
                rusqlite::params![ten_days_ago, old_done, old_pending],
            )
            .unwrap();
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(mirror.prune_events(week).unwrap(), 1);
        let left: Vec<i64> = mirror
            .connection
            .prepare("SELECT seq FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(left, [old_pending, new_done]);
        assert_eq!(mirror.prune_events(week).unwrap(), 0);
    }
}
