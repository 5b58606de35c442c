//! Where `listen` keeps what it receives: the events and the referrals, in a SQLite file (one
//! receiver) or a PostgreSQL database (any number of receivers at once, each event worked off
//! by one of them).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use referrals_client::types::Referral;
use referrals_mirror::postgres::PgMirror;
use referrals_mirror::{Applied, Error, Mirror, PendingEvent};

/// The receiver's connection to the mirror (the catch-up sync has its own).
pub(crate) enum Store {
    File(Mutex<Mirror>),
    Server(PgMirror),
}

impl Store {
    /// The mirror that `--db` names (see [`crate::mirror::Db::open`]).
    pub(crate) async fn open(db: &Path) -> anyhow::Result<Self> {
        Ok(match crate::mirror::Db::open(db).await? {
            crate::mirror::Db::File(mirror) => Self::File(Mutex::new(mirror)),
            crate::mirror::Db::Server(mirror) => Self::Server(mirror),
        })
    }

    fn file(mirror: &Mutex<Mirror>) -> MutexGuard<'_, Mirror> {
        mirror
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores an event before it is acknowledged.
    pub(crate) async fn store_event(
        &self,
        name: &str,
        referral_id: Option<&str>,
        body: &str,
    ) -> Result<i64, Error> {
        match self {
            Self::File(mirror) => Self::file(mirror).store_event(name, referral_id, body),
            Self::Server(mirror) => mirror.store_event(name, referral_id, body).await,
        }
    }

    /// The events to work off next, oldest first: on a server, those that this receiver
    /// claimed, which no other receiver works off meanwhile.
    pub(crate) async fn pending(&self, limit: usize) -> Result<Vec<PendingEvent>, Error> {
        match self {
            Self::File(mirror) => Self::file(mirror).pending_events(limit),
            Self::Server(mirror) => mirror.claim_events(limit).await,
        }
    }

    /// Writes the referral if it is newer than its row.
    pub(crate) async fn apply(&self, referral: &Referral) -> Result<Applied, Error> {
        match self {
            Self::File(mirror) => Self::file(mirror).apply(referral),
            Self::Server(mirror) => mirror.apply(referral).await,
        }
    }

    /// Marks the event worked off.
    pub(crate) async fn finish(&self, seq: i64) -> Result<(), Error> {
        match self {
            Self::File(mirror) => Self::file(mirror).finish_event(seq),
            Self::Server(mirror) => mirror.finish_event(seq).await,
        }
    }
}
