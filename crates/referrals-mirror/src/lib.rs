#![deny(missing_docs)]
//! The partner's copy of the referrals: a SQLite file (or a PostgreSQL database, [`postgres`])
//! kept by the client's incremental sync ([`referrals_client::sync`]) and by webhook events
//! ([`receiver`]), that a program reads and writes with a few calls, and whose changes the
//! partner's own systems follow ([`feed`], [`Table`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use referrals_client::Client;
//! use referrals_client::sync::SyncOptions;
//! use referrals_mirror::Mirror;
//!
//! let client = Client::from_env()?; // PARTNER_ROOT and PARTNER_TOKEN
//! let mut mirror = Mirror::open("referrals.sqlite")?;
//! let report = mirror.sync(&client, SyncOptions::new()).await?;
//! println!("{} referrals changed, {} in the mirror", report.changed, mirror.count()?);
//! if let Some(lead) = mirror.get("61c65491-2f2c-461a-84b4-3654499bc1d9")? {
//!     println!("{:?} in {:?}", lead.customer_name(), lead.country());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What it promises:
//! - **Nothing lost, nothing twice.** The sync's batches are gathered in groups (1,000
//!   referrals, or what came before the next batch kept them waiting a quarter of a second),
//!   and each group and the sync's state after it are written in one transaction: a kill at any
//!   moment leaves the state of the last committed group beside exactly the rows of that group
//!   and those before, and the next
//!   [`Mirror::sync`] goes on from there. A batch delivered again changes nothing.
//! - **Never backwards.** A row is replaced only by a version that is not older
//!   ([`Mirror::apply`] for one referral read by a program, such as after an event, and every
//!   batch of the sync): a late write never undoes a newer one.
//! - **Ours, or refused.** The file is marked as a mirror (SQLite's `application_id`) with the
//!   version of its tables (`user_version`): a file that is not a database, a database of
//!   another program, of a later version, or whose state is damaged is refused with an
//!   [`Error`] that names it, and nothing in it is changed. A mirror keeps the filter it was
//!   made with; another is refused.
//!
//! The tables, for reading with any SQLite tool:
//! - `referrals`: one row per id: `id`, `eTag`, `status`, `substatus`, `updatedDateTime`
//!   (RFC 3339, as the service sent it) and `json`, the referral as the client read it. Money
//!   in `json` keeps the digits the service sent: read it as text with `json -> '$.details.dealValue'`
//!   (SQLite's `->` gives JSON text), not with `->>` or `json_extract`, which make a float of it.
//!   Beside them, a column for each member that the document lists as filterable or
//!   sortable (written with each row, the value that `json ->>` reads, money as `json ->`
//!   reads it), named in snake case after it (`country`, `direction`,
//!   `created_date_time`...), the sort keys indexed: `SELECT id FROM referrals WHERE country =
//!   'US' AND status = 'New'`. A member added to the document gets its column the next time a
//!   mirror is opened; the column of a member that it no longer lists is dropped then.
//! - `sync_state`: one row, the sync's state.
//! - `events`: the webhook events that a receiver stored before it acknowledged them
//!   ([`Mirror::store_event`]), each marked `done` once its referral was read and applied,
//!   or `aside` (with its last `error`) once it failed too often.
//! - `changes`: the change log ([`feed`]): a row per write that changed a referral's row,
//!   appended in the write's transaction (`seq`, `referral_id`, `kind`, `e_tag`,
//!   `updated_date_time`, `members` as JSON, `recorded`), and the rows of a consumer's
//!   snapshot (`consumer` names it); `consumers`, each consumer's position;
//!   `failed_changes`, the changes that a consumer set aside; `mirror_settings`, the log's
//!   retention and how far it was pruned, and the member columns that the mirror made.
//!
//! A mirror of an earlier version is taken to this one (5) when it is opened: version 1 gets
//! `events`, version 2 the change log, which starts empty ([`Mirror::opened`] says so),
//! version 3 the events' digests, attempts and the mark of those set aside, version 4 member
//! columns of their own in place of the ones SQLite computed from `json`.

mod address;
mod change;
mod columns;
mod csv_file;
mod db;
mod error;
mod events;
pub mod feed;
mod log;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod private;
mod reading;
#[cfg(feature = "receiver")]
pub mod receiver;
mod rows;
mod schema;
mod sqlite_columns;
mod sync;
mod table;
mod wake;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// The SQLite crate behind [`Mirror::connection`] and [`Error::Sqlite`], at the version this
/// crate is built with (0.41): use it rather than a `rusqlite` of your own, whose types would
/// differ.
pub use rusqlite;
/// The PostgreSQL crate behind [`postgres::PgMirror::client`] and [`Error::Postgres`], at the
/// version this crate is built with (0.7).
#[cfg(feature = "postgres")]
pub use tokio_postgres;

pub use address::is_server;
pub use change::{Change, ChangeKind, MemberChange};
pub use db::Db;
pub use error::Error;
pub use events::{AsideEvent, EventCounts, PendingEvent, Stored};
pub use feed::{Feed, Start};
pub use rows::Applied;
pub use schema::Opened;
pub use sync::SyncReport;
pub use table::Table;

/// A mirror: an open SQLite file of referrals and the sync's state.
#[derive(Debug)]
pub struct Mirror {
    path: PathBuf,
    connection: Connection,
    /// The state as this process last read or wrote it: another writer is told apart by it.
    state: Option<String>,
    /// What opening found.
    opened: Opened,
    /// Whether writes append to the change log (always, but for a measure of its cost).
    logged: bool,
    /// The file's `PRAGMA schema_version` when its member columns were last found to be this
    /// build's (see [`rows`]' check before each write).
    schema_version: i64,
}

impl Mirror {
    /// Opens the mirror at `path`, or creates it when no file is there. A file that is not a
    /// mirror of this version is refused, unchanged.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let (connection, opened) = schema::open(path)?;
        let mut mirror = Self {
            path: path.to_owned(),
            connection,
            state: None,
            opened,
            logged: true,
            schema_version: 0,
        };
        mirror.state = mirror.stored_state()?;
        Ok(mirror)
    }

    /// The file of the mirror.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SQLite connection, to read the tables with SQL of one's own. Writing through it
    /// outside the mirror's calls voids its promises.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// This mirror, whose writes append nothing to the change log: only to measure what the
    /// log costs (`referrals-bench`). Its changes reach no consumer.
    #[cfg(feature = "unlogged")]
    #[doc(hidden)]
    pub fn without_change_log(mut self) -> Self {
        self.logged = false;
        self
    }

    /// What opening the file found: a new mirror, one of this version, or one upgraded (whose
    /// change log starts empty).
    pub fn opened(&self) -> Opened {
        self.opened
    }

    /// The change feed of the consumer `name` (letters, digits, `-`, `_`), with a connection of
    /// its own: the changes after its saved position, or, for a consumer that the mirror does
    /// not know yet, from `start`. See [`feed`].
    pub fn feed(&self, name: &str, start: Start) -> Result<Feed, Error> {
        feed::check_name(name)?;
        Feed::file(feed::FileLog::open(&self.path)?, name, start)
    }
}

/// The examples of README.md (the client's and the mirror's), compiled as doctests of this
/// crate, which depends on both.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
