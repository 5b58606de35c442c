//! The events a receiver acknowledged, stored before the acknowledgement and worked off after
//! it: a receiver killed between the two loses none.

use rusqlite::{OptionalExtension, params};

use crate::{Error, Mirror};

/// An event stored and not yet worked off.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingEvent {
    /// Its place in the order of arrival.
    pub seq: i64,
    /// The event's name.
    pub name: String,
    /// The referral it is about.
    pub referral_id: Option<String>,
    /// How many times working it off failed.
    pub attempts: u32,
    /// The instant of the change that the event announced (its `ResourceChangeUtcDate`).
    pub announced: Option<chrono::DateTime<chrono::Utc>>,
}

/// What storing an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// It was stored, at this place.
    New(i64),
    /// A body byte for byte the same was received within the window: the event is not stored
    /// again (it is a replay, or a delivery made again); the earlier one's place.
    Replay(i64),
}

impl Stored {
    /// The place of the event stored, or of the earlier one that this one replays.
    pub fn seq(self) -> i64 {
        match self {
            Self::New(seq) | Self::Replay(seq) => seq,
        }
    }
}

/// An event set aside after it failed too often ([`Mirror::aside_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AsideEvent {
    /// Its place in the order of arrival.
    pub seq: i64,
    /// The event's name.
    pub name: String,
    /// The referral it is about.
    pub referral_id: Option<String>,
    /// When it was received (RFC 3339).
    pub received: String,
    /// How many times working it off failed.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
}

/// The events of a mirror, counted ([`Mirror::event_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct EventCounts {
    /// Events to work off (set aside ones not counted).
    pub pending: u64,
    /// Events set aside.
    pub aside: u64,
    /// How long ago the oldest event to work off was received, in seconds (0 when none).
    pub oldest_pending_seconds: f64,
}

/// The SHA-256 of a body, in hexadecimal: what tells a replay.
pub(crate) fn digest(body: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The instant of the change that the event `body` announces (`ResourceChangeUtcDate`), in
/// RFC 3339 UTC; `None` when it says none.
pub(crate) fn announced(body: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    #[derive(serde::Deserialize)]
    struct Announced {
        #[serde(rename = "ResourceChangeUtcDate")]
        at: Option<chrono::DateTime<chrono::Utc>>,
    }
    serde_json::from_str::<Announced>(body).ok()?.at
}

/// `-N seconds`, an SQLite date modifier for `age` ago, at most 100 years (as on PostgreSQL:
/// SQLite reads no modifier of any `Duration`).
fn ago(age: std::time::Duration) -> String {
    const CENTURY: u64 = 100 * 366 * 86_400;
    format!("-{} seconds", age.as_secs().min(CENTURY))
}

impl Mirror {
    /// Stores an event (its name, referral and body as received) in its own transaction; once
    /// this returns, the event survives a crash. A body that was received within `replays`
    /// is not stored again ([`Stored::Replay`]).
    pub fn store_event(
        &self,
        name: &str,
        referral_id: Option<&str>,
        body: &str,
        replays: std::time::Duration,
    ) -> Result<Stored, Error> {
        let failed = |error| Error::sqlite(&self.path, "store an event", error);
        let digest = digest(body);
        let earlier: Option<i64> = self
            .connection
            .prepare_cached(
                "SELECT seq FROM events WHERE digest = ?1 \
                 AND julianday(received) >= julianday('now', ?2) LIMIT 1",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![digest, ago(replays)], |row| row.get(0))
                    .optional()
            })
            .map_err(failed)?;
        if let Some(seq) = earlier {
            return Ok(Stored::Replay(seq));
        }
        self.connection
            .execute(
                "INSERT INTO events (received, name, referral_id, body, digest, announced) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    chrono::Utc::now().to_rfc3339(),
                    name,
                    referral_id,
                    body,
                    digest,
                    announced(body).map(|at| at.to_rfc3339())
                ],
            )
            .map_err(failed)?;
        Ok(Stored::New(self.connection.last_insert_rowid()))
    }

    /// The events to work off now (stored, not done, not set aside, their next try due),
    /// oldest first, at most `limit`.
    pub fn pending_events(&self, limit: usize) -> Result<Vec<PendingEvent>, Error> {
        let read = |error| Error::sqlite(&self.path, "read the events", error);
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT seq, name, referral_id, attempts, announced FROM events \
                 WHERE done = 0 AND aside = 0 \
                 AND (next_try IS NULL OR julianday(next_try) <= julianday('now')) \
                 ORDER BY seq LIMIT ?1",
            )
            .map_err(read)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement
            .query_map([limit], |row| {
                Ok(PendingEvent {
                    seq: row.get(0)?,
                    name: row.get(1)?,
                    referral_id: row.get(2)?,
                    attempts: row.get(3)?,
                    announced: row
                        .get::<_, Option<String>>(4)?
                        .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
                        .map(|at| at.with_timezone(&chrono::Utc)),
                })
            })
            .map_err(read)?;
        rows.collect::<Result<_, _>>().map_err(read)
    }

    /// Deletes the events worked off that were received more than `age` ago; returns how many.
    /// (An event not worked off stays, whatever its age.)
    pub fn prune_events(&self, age: std::time::Duration) -> Result<u64, Error> {
        let deleted = self
            .connection
            .execute(
                "DELETE FROM events WHERE done = 1 \
                 AND julianday(received) < julianday('now', ?1)",
                [ago(age)],
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

    /// Counts a failure of the event `seq`: it is tried again after `retry`, or, when `retry`
    /// is `None`, set aside until [`Mirror::retry_events`].
    pub fn fail_event(
        &self,
        seq: i64,
        error: &str,
        retry: Option<std::time::Duration>,
    ) -> Result<(), Error> {
        let next = retry.map(|wait| {
            let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            chrono::Utc::now()
                .checked_add_signed(wait)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
                .to_rfc3339()
        });
        self.connection
            .execute(
                "UPDATE events SET attempts = attempts + 1, error = ?2, next_try = ?3, \
                 aside = ?4 WHERE seq = ?1",
                params![seq, error, next, retry.is_none()],
            )
            .map_err(|error| Error::sqlite(&self.path, "count an event's failure", error))?;
        Ok(())
    }

    /// The events set aside, oldest first.
    pub fn aside_events(&self) -> Result<Vec<AsideEvent>, Error> {
        let read = |error| Error::sqlite(&self.path, "read the events set aside", error);
        let mut statement = self
            .connection
            .prepare(
                "SELECT seq, name, referral_id, received, attempts, coalesce(error, '') \
                 FROM events WHERE aside = 1 AND done = 0 ORDER BY seq",
            )
            .map_err(read)?;
        let rows = statement
            .query_map([], |row| {
                Ok(AsideEvent {
                    seq: row.get(0)?,
                    name: row.get(1)?,
                    referral_id: row.get(2)?,
                    received: row.get(3)?,
                    attempts: row.get(4)?,
                    error: row.get(5)?,
                })
            })
            .map_err(read)?;
        rows.collect::<Result<_, _>>().map_err(read)
    }

    /// Puts the events set aside (all, or the one `seq`) back to be worked off, their attempts
    /// counted from zero; returns how many.
    pub fn retry_events(&self, seq: Option<i64>) -> Result<u64, Error> {
        let changed = self
            .connection
            .execute(
                "UPDATE events SET aside = 0, attempts = 0, next_try = NULL \
                 WHERE aside = 1 AND done = 0 AND (?1 IS NULL OR seq = ?1)",
                [seq],
            )
            .map_err(|error| Error::sqlite(&self.path, "retry the events set aside", error))?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    /// The events to work off and those set aside, counted.
    pub fn event_counts(&self) -> Result<EventCounts, Error> {
        self.connection
            .query_row(
                "SELECT count(*) FILTER (WHERE aside = 0), count(*) FILTER (WHERE aside = 1), \
                 coalesce(max(0.0, (julianday('now') - min(julianday(received)) \
                 FILTER (WHERE aside = 0)) * 86400.0), 0.0) \
                 FROM events WHERE done = 0",
                [],
                |row| {
                    Ok(EventCounts {
                        pending: row.get::<_, i64>(0)?.try_into().unwrap_or(0),
                        aside: row.get::<_, i64>(1)?.try_into().unwrap_or(0),
                        oldest_pending_seconds: row.get(2)?,
                    })
                },
            )
            .map_err(|error| Error::sqlite(&self.path, "count the events", error))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Stored;
    use crate::Mirror;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn events_worked_off_are_pruned_after_their_age_and_pending_ones_stay() {
        let folder = tempfile::tempdir().unwrap();
        let mirror = Mirror::open(folder.path().join("m.sqlite")).unwrap();
        let old_done = mirror
            .store_event("referral-updated", Some("a"), "a", DAY)
            .unwrap()
            .seq();
        let old_pending = mirror
            .store_event("referral-updated", Some("b"), "b", DAY)
            .unwrap()
            .seq();
        let new_done = mirror
            .store_event("referral-updated", Some("c"), "c", DAY)
            .unwrap()
            .seq();
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

    #[test]
    fn a_body_received_again_within_the_window_is_not_stored_again() {
        let folder = tempfile::tempdir().unwrap();
        let mirror = Mirror::open(folder.path().join("m.sqlite")).unwrap();
        let first = mirror.store_event("referral-updated", Some("a"), "x", DAY);
        let first = first.unwrap();
        assert!(matches!(first, Stored::New(_)));
        for _ in 0..100 {
            let again = mirror.store_event("referral-updated", Some("a"), "x", DAY);
            assert_eq!(again.unwrap(), Stored::Replay(first.seq()));
        }
        let other = mirror.store_event("referral-updated", Some("a"), "y", DAY);
        assert!(matches!(other.unwrap(), Stored::New(_)));
        assert_eq!(mirror.event_counts().unwrap().pending, 2);
        // Outside the window, the same body is an event again.
        let later = mirror.store_event("referral-updated", Some("a"), "x", Duration::ZERO);
        assert!(matches!(later.unwrap(), Stored::New(_)));
    }

    #[test]
    fn a_failed_event_waits_its_turn_then_is_set_aside_until_retried() {
        let folder = tempfile::tempdir().unwrap();
        let mirror = Mirror::open(folder.path().join("m.sqlite")).unwrap();
        let failing = mirror.store_event("referral-updated", Some("a"), "1", DAY);
        let failing = failing.unwrap().seq();
        let next = mirror.store_event("referral-updated", Some("b"), "2", DAY);
        let next = next.unwrap().seq();
        mirror.fail_event(failing, "503", Some(DAY)).unwrap();
        let pending = mirror.pending_events(10).unwrap();
        assert_eq!(
            pending.iter().map(|event| event.seq).collect::<Vec<_>>(),
            [next]
        );
        mirror.fail_event(failing, "503 again", None).unwrap();
        let aside = mirror.aside_events().unwrap();
        assert_eq!(aside.len(), 1);
        assert_eq!((aside[0].seq, aside[0].attempts), (failing, 2));
        assert_eq!(aside[0].error, "503 again");
        let counts = mirror.event_counts().unwrap();
        assert_eq!((counts.pending, counts.aside), (1, 1));
        assert_eq!(mirror.retry_events(Some(failing)).unwrap(), 1);
        let pending = mirror.pending_events(10).unwrap();
        assert_eq!(
            pending.iter().map(|event| event.seq).collect::<Vec<_>>(),
            [failing, next]
        );
        assert_eq!(pending[0].attempts, 0);
        assert!(mirror.aside_events().unwrap().is_empty());
    }

    #[test]
    fn a_window_of_any_length_still_tells_a_replay() {
        let folder = tempfile::tempdir().unwrap();
        let mirror = Mirror::open(folder.path().join("m.sqlite")).unwrap();
        let first = mirror.store_event("referral-updated", Some("a"), "x", Duration::MAX);
        let first = first.unwrap().seq();
        let again = mirror.store_event("referral-updated", Some("a"), "x", Duration::MAX);
        assert_eq!(again.unwrap(), Stored::Replay(first));
        assert_eq!(mirror.prune_events(Duration::MAX).unwrap(), 0);
    }
}
