//! The receiver's connections to the mirror: one that stores the events as they come, and the
//! worker's, which works them off. A SQLite file has one connection for both (a write takes
//! milliseconds), used on blocking threads so that a long write never stalls the callbacks; a
//! PostgreSQL database one each, so that a callback never waits for the worker's transaction,
//! each made again when it was lost ([`super::reconnect`]).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use referrals_client::types::Referral;

#[cfg(feature = "postgres")]
use super::reconnect;
use crate::{Applied, Db, Error, EventCounts, Mirror, Opened, PendingEvent, Stored};

/// How long storing an event on a server may take before the callback is answered 503.
#[cfg(feature = "postgres")]
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

fn file(mirror: &Mutex<Mirror>) -> MutexGuard<'_, Mirror> {
    mirror
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `work` on the file on a blocking thread.
async fn blocking<T: Send + 'static>(
    mirror: &Arc<Mutex<Mirror>>,
    work: impl FnOnce(&mut Mirror) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let mirror = Arc::clone(mirror);
    tokio::task::spawn_blocking(move || work(&mut file(&mirror)))
        .await
        .map_err(|error| Error::Receiver(format!("a task on the mirror's file failed: {error}")))?
}

/// What the metrics show of the mirror.
pub(crate) struct Gauges {
    pub(crate) events: EventCounts,
    pub(crate) rows: u64,
    pub(crate) lags: Vec<(String, u64)>,
}

/// The connection that stores the events.
pub(crate) enum Store {
    File(Arc<Mutex<Mirror>>),
    #[cfg(feature = "postgres")]
    Server(Box<reconnect::Shared>),
}

impl Store {
    /// Opens the mirror `db`; returns what opening found.
    pub(crate) async fn open(db: &Path) -> Result<(Self, Opened), Error> {
        let db_text = db.to_string_lossy().into_owned();
        #[cfg(not(feature = "postgres"))]
        let _ = db_text;
        Ok(match Db::open(db).await? {
            Db::File(mirror) => {
                let opened = mirror.opened();
                (Self::File(Arc::new(Mutex::new(mirror))), opened)
            }
            #[cfg(feature = "postgres")]
            Db::Server(mirror) => {
                let opened = mirror.opened();
                let shared = reconnect::Shared::new(db_text, mirror);
                (Self::Server(Box::new(shared)), opened)
            }
        })
    }

    /// Stores an event unless its body was received within `replays`; once this returns, it
    /// survives a crash.
    pub(crate) async fn store_event(
        &self,
        name: &str,
        referral_id: Option<&str>,
        body: &str,
        replays: Duration,
    ) -> Result<Stored, Error> {
        match self {
            Self::File(mirror) => {
                let (name, body) = (name.to_owned(), body.to_owned());
                let referral_id = referral_id.map(str::to_owned);
                blocking(mirror, move |mirror| {
                    mirror.store_event(&name, referral_id.as_deref(), &body, replays)
                })
                .await
            }
            #[cfg(feature = "postgres")]
            Self::Server(shared) => {
                // A server that does not answer costs a callback 10 s at most (then 503).
                let stored = async {
                    let mirror = shared.get().await?;
                    mirror.store_event(name, referral_id, body, replays).await
                };
                tokio::time::timeout(STORE_TIMEOUT, stored)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::Receiver(
                            "the database did not answer within 10 s".into(),
                        ))
                    })
            }
        }
    }

    /// What the metrics show of the mirror: the events counted, the referrals, and each
    /// consumer's lag.
    pub(crate) async fn gauges(&self) -> Result<Gauges, Error> {
        match self {
            Self::File(mirror) => {
                blocking(mirror, |mirror| {
                    Ok(Gauges {
                        events: mirror.event_counts()?,
                        rows: mirror.count()?,
                        lags: mirror.consumer_lags()?,
                    })
                })
                .await
            }
            #[cfg(feature = "postgres")]
            Self::Server(shared) => {
                let mirror = shared.get().await?;
                Ok(Gauges {
                    events: mirror.event_counts().await?,
                    rows: mirror.count().await?,
                    lags: mirror.consumer_lags().await?,
                })
            }
        }
    }

    /// The events counted.
    pub(crate) async fn event_counts(&self) -> Result<EventCounts, Error> {
        match self {
            Self::File(mirror) => blocking(mirror, |mirror| mirror.event_counts()).await,
            #[cfg(feature = "postgres")]
            Self::Server(shared) => shared.get().await?.event_counts().await,
        }
    }
}

/// The worker's connection.
#[allow(clippy::large_enum_variant, reason = "one per receiver")]
pub(crate) enum Writer {
    File(Arc<Mutex<Mirror>>),
    #[cfg(feature = "postgres")]
    Server(reconnect::Owned),
}

impl Writer {
    /// The worker's connection beside `store`, to the mirror `db` (a server's is made at its
    /// first use).
    pub(crate) fn beside(store: &Store, db: &Path) -> Self {
        #[cfg(not(feature = "postgres"))]
        let _ = db;
        match store {
            Store::File(mirror) => Self::File(Arc::clone(mirror)),
            #[cfg(feature = "postgres")]
            Store::Server(_) => {
                Self::Server(reconnect::Owned::new(db.to_string_lossy().into_owned()))
            }
        }
    }

    /// The events to work off next, oldest first: on a server, those that this receiver
    /// claimed, which no other receiver works off meanwhile.
    pub(crate) async fn pending(&mut self, limit: usize) -> Result<Vec<PendingEvent>, Error> {
        match self {
            Self::File(mirror) => {
                blocking(mirror, move |mirror| mirror.pending_events(limit)).await
            }
            #[cfg(feature = "postgres")]
            Self::Server(owned) => owned.get().await?.claim_events(limit).await,
        }
    }

    /// Writes the referral if it is newer than its row.
    pub(crate) async fn apply(&mut self, referral: &Referral) -> Result<Applied, Error> {
        match self {
            Self::File(mirror) => {
                let referral = referral.clone();
                blocking(mirror, move |mirror| mirror.apply(&referral)).await
            }
            #[cfg(feature = "postgres")]
            Self::Server(owned) => owned.get().await?.apply(referral).await,
        }
    }

    /// Marks the event worked off (unless another receiver holds it now).
    pub(crate) async fn finish(&mut self, seq: i64) -> Result<(), Error> {
        match self {
            Self::File(mirror) => blocking(mirror, move |mirror| mirror.finish_event(seq)).await,
            #[cfg(feature = "postgres")]
            Self::Server(owned) => owned.get().await?.finish_event(seq).await.map(|_| ()),
        }
    }

    /// Counts a failure of the event: tried again after `retry`, or set aside; whether it was
    /// counted (not when another receiver holds it now).
    pub(crate) async fn fail(
        &mut self,
        seq: i64,
        error: String,
        retry: Option<Duration>,
    ) -> Result<bool, Error> {
        match self {
            Self::File(mirror) => {
                blocking(mirror, move |mirror| {
                    mirror.fail_event(seq, &error, retry).map(|()| true)
                })
                .await
            }
            #[cfg(feature = "postgres")]
            Self::Server(owned) => owned.get().await?.fail_event(seq, &error, retry).await,
        }
    }

    /// Renews the claims of the events in hand (a file has none).
    pub(crate) async fn renew(&mut self) -> Result<(), Error> {
        match self {
            Self::File(_) => Ok(()),
            #[cfg(feature = "postgres")]
            Self::Server(owned) => owned.get().await?.renew_claims().await.map(|_| ()),
        }
    }
}
