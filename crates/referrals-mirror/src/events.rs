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

    /// Marks the event `seq` worked off.
    pub fn finish_event(&self, seq: i64) -> Result<(), Error> {
        self.connection
            .execute("UPDATE events SET done = 1 WHERE seq = ?1", [seq])
            .map_err(|error| Error::sqlite(&self.path, "mark an event done", error))?;
        Ok(())
    }
}
