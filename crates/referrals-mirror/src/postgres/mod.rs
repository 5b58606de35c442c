//! The mirror on a PostgreSQL server, for a partner whose receivers and jobs run on several
//! machines: the same promises as the SQLite file, with any number of writers at once.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use referrals_client::Client;
//! use referrals_client::sync::SyncOptions;
//! use referrals_mirror::postgres::PgMirror;
//!
//! let client = Client::from_env()?;
//! let mut mirror = PgMirror::connect("postgres://crm@db.internal/referrals").await?;
//! let report = mirror.sync(&client, SyncOptions::new()).await?;
//! if report.skipped {
//!     println!("another process is syncing this database");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! - **One truth, several writers.** A row is written only when the incoming version is newer
//!   (a later `updatedDateTime`, or the same instant and another eTag): a conditional upsert
//!   decided by the server, so that two writers racing on one referral leave the newer.
//! - **One sync at a time.** A sync holds an advisory lock of the database's session for its
//!   run; a sync that finds it held does nothing and says so ([`SyncReport::skipped`]). The
//!   sync's state is written with each group of batches in one transaction, and only forward: a state
//!   whose watermark is earlier than the stored one is refused with nothing written.
//! - **Two groups at once.** A sync writes on up to two connections of its own besides this
//!   one (made when first needed, kept for the next sync): the server parses one group's JSON
//!   while it writes the other's, and the groups still commit in their order (see
//!   `pipeline`).
//! - **Ours, or refused.** The table `referrals_mirror` marks the tables as a mirror's, with
//!   their version: a database with tables of these names and no mark, or of a later version,
//!   is refused, unchanged. Other tables of the database are left alone.
//! - **A copy people can query.** Beside `json` (`jsonb`: money keeps its digits), the table
//!   `referrals` has a column for each member that the document lists as filterable or
//!   sortable, typed after it (`status`, `country`, `updated_date_time`...), the sort keys
//!   indexed: `SELECT id FROM referrals WHERE country = 'US' AND status = 'New'`. A member added
//!   to the document gets its column when a mirror is next opened, filled from the rows' JSON.
//!
//! The connection is over TLS as libpq's `sslmode` says (`prefer` by default; `verify-full`
//! with `sslrootcert` for a managed server; see the README), the password from the address,
//! `PGPASSWORD` or the password file.
//! Errors name the server as `postgres://user@host:port/database`, never with a password.

mod events;
pub use events::LEASE;
pub(crate) mod feed;
mod log;
mod pipeline;
mod rows;
mod schema;
mod settings;
mod tls;

use std::ops::ControlFlow;

use referrals_client::Client;
use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::types::Referral;

use crate::sync::SyncReport;
use crate::{Applied, Error, Feed, Opened, Start};

/// The key of the advisory lock that a sync holds for its run (`pg_advisory_lock`): a job
/// that must not run beside a sync may hold it too, taken before the job touches the tables
/// (the sync's writes run on connections other than the one that holds it, so a job that
/// waits for it while holding rows that a write waits for would wait for ever).
pub const SYNC_LOCK: i64 = i64::from_be_bytes(*b"RFRLsync");

/// The row of `pg_locks` of the exclusive advisory lock of the bigint key `$1` when this
/// session holds it (the key in two halves of 32 bits, `objsubid` 1 for a bigint key).
const HELD: &str = "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
    AND pid = pg_backend_pid() AND mode = 'ExclusiveLock' AND objsubid = 1 \
    AND classid = (($1::bigint >> 32) & 4294967295)::oid \
    AND objid = ($1::bigint & 4294967295)::oid";

/// A mirror in a PostgreSQL database.
pub struct PgMirror {
    client: tokio_postgres::Client,
    /// The address it was connected with (a password included: never shown).
    url: String,
    place: String,
    /// The statements of the writes, prepared once.
    rows: rows::Rows,
    opened: Opened,
    /// What names this connection's claims of events.
    owner: String,
    /// The connections of a sync's writes, kept for the next sync (see [`pipeline`]).
    writers: Vec<pipeline::Writer>,
    /// Whether this connection may hold [`SYNC_LOCK`] from a sync that was dropped before it
    /// gave the lock back (a timeout around it, a `select!`): the next sync keeps that hold
    /// as its own instead of taking a second one, which would stay held once it ends.
    sync_locked: bool,
}

impl std::fmt::Debug for PgMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgMirror")
            .field("place", &self.place)
            .finish()
    }
}

/// `postgres://user@host:port/database`, from a connection string in either form, without
/// its password.
pub fn describe(url: &str) -> String {
    let Ok(config) = settings::read(url, None, None).map(|settings| settings.config) else {
        return "the PostgreSQL server (its address does not parse)".to_owned();
    };
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or_default(),
        config.get_dbname().unwrap_or_default()
    )
}

/// A connection to the database at `url`, plain or over TLS as its `sslmode` says
/// ([`tls`]); without a password in it, the password is the environment's `PGPASSWORD`, else
/// the password file's ([`settings`]): it need not stand on a command line that every user of
/// the machine sees. `what` names the connection in errors.
pub(crate) async fn connect(
    url: &str,
    place: &str,
    what: &str,
) -> Result<(tokio_postgres::Client, Connection), Error> {
    let refused = |reason: String| Error::Connect {
        place: place.to_owned(),
        reason,
    };
    let password = std::env::var("PGPASSWORD").ok();
    let settings = settings::read(url, password, settings::passfile()).map_err(refused)?;
    let tls = tls::client_config(settings.check, &settings.roots).map_err(refused)?;
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
    settings.config.connect(tls).await.map_err(|error| {
        let message = error
            .as_db_error()
            .map(tokio_postgres::error::DbError::message);
        if message.is_some_and(|message| message.contains("no encryption")) {
            // What a server that takes only TLS answers a plain connection.
            refused(format!(
                "cannot {what}: the server takes only TLS connections; add \
                 sslmode=verify-full&sslrootcert=FILE (or sslmode=require) to the address: {}",
                message.unwrap_or_default()
            ))
        } else {
            Error::postgres(place, what, error)
        }
    })
}

/// A connection's half that does the I/O, to be spawned.
pub(crate) type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <tokio_postgres_rustls::MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<
        tokio_postgres::Socket,
    >>::Stream,
>;

impl PgMirror {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or
    /// `host=... user=...`; without a password there, `PGPASSWORD`'s), and makes the mirror's
    /// tables when it has none.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let place = describe(url);
        let (mut client, connection) = connect(url, &place, "connect").await?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the server goes away; the client's calls
            // then fail with the error.
            let _ = connection.await;
        });
        let (columns, recorded, opened) = schema::prepare(&mut client, &place).await?;
        let rows = rows::Rows::prepare(&client, columns, recorded)
            .await
            .map_err(|error| Error::postgres(&place, "prepare the writes", error))?;
        Ok(Self {
            rows,
            client,
            url: url.to_owned(),
            place,
            opened,
            owner: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
            writers: Vec::new(),
            sync_locked: false,
        })
    }

    /// This mirror, whose writes append nothing to the change log: only to measure what the
    /// log costs (`referrals-bench`). Its changes reach no consumer.
    #[cfg(feature = "unlogged")]
    #[doc(hidden)]
    pub async fn without_change_log(mut self) -> Result<Self, Error> {
        self.rows.logged = false;
        // Writers made before would go on appending.
        self.writers.clear();
        Ok(self)
    }

    /// What connecting found: tables made now, of this version, or upgraded (whose change log
    /// starts empty).
    pub fn opened(&self) -> Opened {
        self.opened
    }

    /// The change feed of the consumer `name`, on a connection of its own; see
    /// [`crate::feed`]. One process serves a consumer at a time, on any machine: it holds a
    /// session advisory lock of the database, which the server releases when the process's
    /// connection ends.
    pub async fn feed(&self, name: &str, start: Start) -> Result<Feed, Error> {
        crate::feed::check_name(name)?;
        let log = feed::PgLog::connect(&self.url, &self.place).await?;
        Feed::new(crate::feed::Backend::Server(log), name, start)
    }

    /// How long the change log keeps a change that some consumer has not read (a week unless
    /// set).
    pub async fn change_retention(&self) -> Result<std::time::Duration, Error> {
        log::retention(&self.client)
            .await
            .map_err(|error| Error::postgres(&self.place, "read the settings", error))
    }

    /// Sets [`PgMirror::change_retention`], for every process that uses this database.
    pub async fn set_change_retention(&self, retention: std::time::Duration) -> Result<(), Error> {
        log::set_retention(&self.client, retention)
            .await
            .map_err(|error| Error::postgres(&self.place, "write the settings", error))
    }

    /// Removes the changes that every consumer acknowledged, and those older than the
    /// retention (the writes and the consumers do it at most once a minute).
    pub async fn prune_changes(&mut self) -> Result<(), Error> {
        log::prune(&mut self.client)
            .await
            .map_err(|error| Error::postgres(&self.place, "prune the change log", error))
    }

    /// Whether the connection ended (the server went away or closed it): a mirror that is
    /// closed must be connected again.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// What names this connection's claims of events.
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    /// Names this connection's claims `owner` (a connection made again for the same work).
    pub(crate) fn set_owner(&mut self, owner: String) {
        self.owner = owner;
    }

    /// Each consumer of the change feed, with how many changes were logged after its
    /// position: how far behind the copy it is.
    pub async fn consumer_lags(&self) -> Result<Vec<(String, u64)>, Error> {
        let rows = self
            .client
            .query(
                "SELECT name, greatest(0, (SELECT last FROM change_counter) - position)
                 FROM consumers WHERE position >= 0 ORDER BY name",
                &[],
            )
            .await
            .map_err(|error| Error::postgres(&self.place, "read the consumers", error))?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), u64::try_from(row.get::<_, i64>(1)).unwrap_or(0)))
            .collect())
    }

    /// How errors name the database: `postgres://user@host:port/database`.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// The client, to read the tables with SQL of one's own.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// Brings the mirror up to the service's present, as [`crate::Mirror::sync`] does; when
    /// another process is syncing this database, returns at once with
    /// [`SyncReport::skipped`]. A sync dropped before its end leaves [`SYNC_LOCK`] held by
    /// this mirror (other processes' syncs are skipped) until the end of its next sync, which
    /// takes the hold as its own, or until the mirror is dropped.
    pub async fn sync(
        &mut self,
        client: &Client,
        options: SyncOptions,
    ) -> Result<SyncReport, Error> {
        self.sync_with(client, options, |_| ControlFlow::Continue(()))
            .await
    }

    /// [`Self::sync`] with a call after each batch and each write, as
    /// [`crate::Mirror::sync_with`].
    pub async fn sync_with(
        &mut self,
        client: &Client,
        options: SyncOptions,
        after_batch: impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<SyncReport, Error> {
        if !self.take_sync_lock().await? {
            return Ok(SyncReport {
                skipped: true,
                ..SyncReport::default()
            });
        }
        let mut pipeline = pipeline::Pipeline::new(self);
        let result = crate::sync::sync_to(&mut pipeline, client, options, after_batch).await;
        drop(pipeline);
        let unlocked = self.give_sync_lock_back().await;
        let report = result?;
        unlocked?;
        Ok(report)
    }

    /// Takes [`SYNC_LOCK`] unless another session holds it. A hold that a dropped sync left
    /// on this session is kept as this sync's own rather than taken again (a session's
    /// advisory locks stack: a lock taken twice and given back once stays held).
    async fn take_sync_lock(&mut self) -> Result<bool, Error> {
        let take = if self.sync_locked {
            // CASE, unlike OR, evaluates in order: no second hold when one is there.
            format!("SELECT CASE WHEN EXISTS ({HELD}) THEN true ELSE pg_try_advisory_lock($1) END")
        } else {
            "SELECT pg_try_advisory_lock($1)".to_owned()
        };
        // Said before the request: a sync dropped while it waits for the answer may hold it.
        self.sync_locked = true;
        let locked: bool = self
            .client
            .query_one(&take, &[&SYNC_LOCK])
            .await
            .map_err(|error| Error::postgres(&self.place, "take the sync's lock", error))?
            .get(0);
        self.sync_locked = locked;
        Ok(locked)
    }

    /// Gives [`SYNC_LOCK`] back once, when this session holds it (`pg_advisory_unlock` of a
    /// lock not held warns).
    async fn give_sync_lock_back(&mut self) -> Result<(), Error> {
        let give = format!("SELECT pg_advisory_unlock($1) FROM ({HELD}) AS held");
        self.client
            .execute(&give, &[&SYNC_LOCK])
            .await
            .map_err(|error| Error::postgres(&self.place, "give the sync's lock back", error))?;
        self.sync_locked = false;
        Ok(())
    }

    /// Writes one referral if it is newer than the row of its id (see [`Applied`]), with its
    /// change in the change log; the sync's state is left as it is.
    pub async fn apply(&mut self, referral: &Referral) -> Result<Applied, Error> {
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
        let written = self
            .rows
            .write(
                &transaction,
                (std::slice::from_ref(referral), &[]),
                false,
                &place,
            )
            .await?;
        let applied = written.applied.first().copied().unwrap_or(Applied::NoId);
        self.rows
            .append(&transaction, &written.changes)
            .await
            .map_err(failed("record a change"))?;
        transaction.commit().await.map_err(failed("commit"))?;
        log::prune_now_and_then(&mut self.client, &self.place).await;
        Ok(applied)
    }

    /// How many referrals the mirror holds.
    pub async fn count(&self) -> Result<u64, Error> {
        let count: i64 = self
            .client
            .query_one("SELECT count(*) FROM referrals", &[])
            .await
            .map_err(|error| Error::postgres(&self.place, "count the referrals", error))?
            .get(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The mirror's version of the referral `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Referral>, Error> {
        let row = self
            .client
            .query_opt("SELECT json::text FROM referrals WHERE id = $1", &[&id])
            .await
            .map_err(|error| Error::postgres(&self.place, "read a referral", error))?;
        row.map(|row| {
            serde_json::from_str(row.get::<_, &str>(0)).map_err(|source| Error::Row {
                path: self.place.clone().into(),
                id: id.to_owned(),
                error: source,
            })
        })
        .transpose()
    }
}

impl PgMirror {
    /// Writes the sync's state alone, only forward (as each group of batches does): refused, with nothing
    /// written, when the stored state has a later watermark.
    pub async fn write_state(&self, state: &SyncState) -> Result<(), Error> {
        let moved = self
            .client
            .execute(STATE_SQL, &[&state.to_json(), &state.watermark()])
            .await
            .map_err(|error| Error::postgres(&self.place, "write the sync state", error))?;
        if moved == 0 {
            return Err(Error::OtherWriter {
                path: self.place.clone().into(),
            });
        }
        Ok(())
    }
}

/// Writes the sync's state when the stored one is not ahead of it.
const STATE_SQL: &str =
    "INSERT INTO sync_state (one, state, watermark, written) VALUES (1, $1, $2, now())
     ON CONFLICT (one) DO UPDATE SET state = $1, watermark = $2, written = now()
     WHERE sync_state.watermark IS NULL OR sync_state.watermark <= $2";

impl PgMirror {
    /// The sync's state as the database holds it, checked.
    async fn read_state(&self) -> Result<Option<SyncState>, Error> {
        let row = self
            .client
            .query_opt("SELECT state FROM sync_state WHERE one = 1", &[])
            .await
            .map_err(|error| Error::postgres(&self.place, "read the sync state", error))?;
        row.map(|row| {
            SyncState::from_json(row.get::<_, &str>(0)).map_err(|source| Error::State {
                path: self.place.clone().into(),
                error: source,
            })
        })
        .transpose()
    }
}
