//! A mirror named as a command line names it: a SQLite file, or a PostgreSQL database given by
//! its `postgres://` address, with the calls that both have.

use std::ops::ControlFlow;
use std::path::Path;

use referrals_client::Client;
use referrals_client::sync::SyncOptions;
use referrals_client::types::Referral;

#[cfg(feature = "postgres")]
use crate::address::is_server;
#[cfg(feature = "postgres")]
use crate::postgres::PgMirror;
use crate::{Applied, AsideEvent, Error, EventCounts, Feed, Mirror, Opened, Start, SyncReport};

/// A mirror in a SQLite file or in a PostgreSQL database.
#[derive(Debug)]
pub enum Db {
    /// A SQLite file.
    File(Mirror),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Server(PgMirror),
}

impl Db {
    /// The mirror that `db` names: a `postgres://` or `postgresql://` address (with the
    /// feature `postgres`), or a file, made when it is not there.
    pub async fn open(db: impl AsRef<Path>) -> Result<Self, Error> {
        let db = db.as_ref();
        #[cfg(feature = "postgres")]
        if let Some(url) = db.to_str().filter(|text| is_server(text)) {
            return Ok(Self::Server(PgMirror::connect(url).await?));
        }
        Ok(Self::File(Mirror::open(db)?))
    }

    /// How messages name it: the file, or the server without its password.
    pub fn name(&self) -> String {
        match self {
            Self::File(mirror) => mirror.path().display().to_string(),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.place().to_owned(),
        }
    }

    /// What opening it found.
    pub fn opened(&self) -> Opened {
        match self {
            Self::File(mirror) => mirror.opened(),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.opened(),
        }
    }

    /// A sync, as [`Mirror::sync_with`] (on PostgreSQL, skipped while another process syncs).
    pub async fn sync_with(
        &mut self,
        client: &Client,
        options: SyncOptions,
        after_batch: impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<SyncReport, Error> {
        match self {
            Self::File(mirror) => mirror.sync_with(client, options, after_batch).await,
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.sync_with(client, options, after_batch).await,
        }
    }

    /// Writes one referral if it is newer than its row, as [`Mirror::apply`].
    pub async fn apply(&mut self, referral: &Referral) -> Result<Applied, Error> {
        match self {
            Self::File(mirror) => mirror.apply(referral),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.apply(referral).await,
        }
    }

    /// The mirror's version of the referral `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Referral>, Error> {
        match self {
            Self::File(mirror) => mirror.get(id),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.get(id).await,
        }
    }

    /// How many referrals it holds.
    pub async fn count(&self) -> Result<u64, Error> {
        match self {
            Self::File(mirror) => mirror.count(),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.count().await,
        }
    }

    /// The change feed of the consumer `name`, as [`Mirror::feed`].
    pub async fn feed(&self, name: &str, start: Start) -> Result<Feed, Error> {
        match self {
            Self::File(mirror) => mirror.feed(name, start),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.feed(name, start).await,
        }
    }

    /// Deletes the events worked off that were received more than `age` ago, as
    /// [`Mirror::prune_events`]. (`&mut`: the future is `Send`, as a SQLite connection is not
    /// `Sync`.)
    pub async fn prune_events(&mut self, age: std::time::Duration) -> Result<u64, Error> {
        match self {
            Self::File(mirror) => mirror.prune_events(age),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.prune_events(age).await,
        }
    }

    /// How long the change log keeps a change that some consumer has not read.
    pub async fn change_retention(&self) -> Result<std::time::Duration, Error> {
        match self {
            Self::File(mirror) => mirror.change_retention(),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.change_retention().await,
        }
    }

    /// Sets how long the change log keeps a change that some consumer has not read.
    pub async fn set_change_retention(&self, retention: std::time::Duration) -> Result<(), Error> {
        match self {
            Self::File(mirror) => mirror.set_change_retention(retention),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.set_change_retention(retention).await,
        }
    }

    /// The events set aside, as [`Mirror::aside_events`].
    pub async fn aside_events(&mut self) -> Result<Vec<AsideEvent>, Error> {
        match self {
            Self::File(mirror) => mirror.aside_events(),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.aside_events().await,
        }
    }

    /// Puts events set aside back to be worked off, as [`Mirror::retry_events`].
    pub async fn retry_events(&mut self, seq: Option<i64>) -> Result<u64, Error> {
        match self {
            Self::File(mirror) => mirror.retry_events(seq),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.retry_events(seq).await,
        }
    }

    /// The events to work off and those set aside, counted, as [`Mirror::event_counts`].
    pub async fn event_counts(&mut self) -> Result<EventCounts, Error> {
        match self {
            Self::File(mirror) => mirror.event_counts(),
            #[cfg(feature = "postgres")]
            Self::Server(mirror) => mirror.event_counts().await,
        }
    }
}
