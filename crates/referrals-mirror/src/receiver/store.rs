//! The receiver's connections to the mirror: one that stores the events as they come, and the
//! worker's, which works them off. A SQLite file has one connection for both (a write takes
//! milliseconds); a PostgreSQL database one each, so that a callback never waits for the
//! worker's transaction.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use referrals_client::types::Referral;

use crate::{Applied, Db, Error, Mirror, Opened, PendingEvent};

/// The connection that stores the events.
#[allow(clippy::large_enum_variant, reason = "one of each per receiver")]
pub(crate) enum Store {
    File(Arc<Mutex<Mirror>>),
    #[cfg(feature = "postgres")]
    Server(crate::postgres::PgMirror),
}

fn file(mirror: &Mutex<Mirror>) -> MutexGuard<'_, Mirror> {
    mirror
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store {
    pub(crate) async fn open(db: &Path) -> Result<Self, Error> {
        Ok(match Db::open(db).await? {
            Db::File(mirror) => Self::File(Arc::new(Mutex::new(mirror))),
            #[cfg(feature = "postgres")]
            Db::Server(mirror) => Self::Server(mirror),
        })
    }

    pub(crate) fn opened(&self) -> Opened {
        match self {
            Self::File(mirror) => file(mirror).opened(),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.opened(),
        }
    }

    /// Stores an event; once this returns, it survives a crash.
    pub(crate) async fn store_event(
        &self,
        name: &str,
        referral_id: Option<&str>,
        body: &str,
    ) -> Result<i64, Error> {
        match self {
            Self::File(mirror) => file(mirror).store_event(name, referral_id, body),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.store_event(name, referral_id, body).await,
        }
    }
}

/// The worker's connection.
#[allow(clippy::large_enum_variant, reason = "one of each per receiver")]
pub(crate) enum Writer {
    File(Arc<Mutex<Mirror>>),
    #[cfg(feature = "postgres")]
    Server(crate::postgres::PgMirror),
}

impl Writer {
    /// The worker's connection beside `store`, to the mirror `db`.
    pub(crate) async fn beside(store: &Store, db: &Path) -> Result<Self, Error> {
        #[cfg(not(feature = "postgres"))]
        let _ = db;
        Ok(match store {
            Store::File(mirror) => Self::File(Arc::clone(mirror)),
            #[cfg(feature = "postgres")]
            Store::Server(_) => match Db::open(db).await? {
                Db::Server(mirror) => Self::Server(mirror),
                Db::File(mirror) => Self::File(Arc::new(Mutex::new(mirror))),
            },
        })
    }

    /// The events to work off next, oldest first: on a server, those that this receiver
    /// claimed, which no other receiver works off meanwhile.
    pub(crate) async fn pending(&self, limit: usize) -> Result<Vec<PendingEvent>, Error> {
        match self {
            Self::File(mirror) => file(mirror).pending_events(limit),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.claim_events(limit).await,
        }
    }

    /// Writes the referral if it is newer than its row.
    pub(crate) async fn apply(&mut self, referral: &Referral) -> Result<Applied, Error> {
        match self {
            Self::File(mirror) => file(mirror).apply(referral),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.apply(referral).await,
        }
    }

    /// Marks the event worked off.
    pub(crate) async fn finish(&self, seq: i64) -> Result<(), Error> {
        match self {
            Self::File(mirror) => file(mirror).finish_event(seq),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.finish_event(seq).await,
        }
    }
}
