//! What can go wrong with a mirror.

use std::path::PathBuf;

/// An error of a mirror. Its `Display` names the file; nothing was changed in it unless it
/// says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is not a mirror of this version: another program's database, a later version,
    /// tables of another shape, or not a database at all. Nothing in it was changed.
    #[error(
        "{} {reason}; nothing in it was changed. Give another file to start a mirror",
        path.display()
    )]
    Refused {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// The saved sync state cannot be used (damaged, of another version, or of another
    /// filter). Nothing was changed.
    #[error(
        "{}: {source}; nothing in it was changed. Use another file for another filter, or a new file to start again",
        path.display()
    )]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        source: referrals_client::sync::StateError,
    },
    /// The mirror was made with another filter than the sync's. Nothing was changed.
    #[error(
        "{}: {source}; nothing in it was changed. A mirror keeps the filter it was made with: use another file for another filter",
        path.display()
    )]
    OtherFilter {
        /// The file.
        path: PathBuf,
        /// The client's refusal, which names both filters.
        source: referrals_client::Error,
    },
    /// Another program changed the sync's state while this one synced; the batch in hand was
    /// not written.
    #[error(
        "{} was changed by another program while this sync ran (is another sync writing to it?); this batch was not written",
        path.display()
    )]
    OtherWriter {
        /// The file.
        path: PathBuf,
    },
    /// SQLite failed to read or write the file.
    #[error("{}: cannot {what}: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The PostgreSQL server failed, or could not be reached; the transaction in hand was
    /// rolled back.
    #[cfg(feature = "postgres")]
    #[error("{place}: cannot {what}: {source}")]
    Postgres {
        /// The server and database, without a password.
        place: String,
        /// What was being done.
        what: String,
        /// The server's or the connection's error.
        source: tokio_postgres::Error,
    },
    /// A row's `json` is not a referral (written by hand?).
    #[error("{}: the row of {id} does not hold a referral: {source}", path.display())]
    Row {
        /// The file.
        path: PathBuf,
        /// The row's id.
        id: String,
        /// Why it does not decode.
        source: serde_json::Error,
    },
    /// A file could not be written.
    #[error("{}: cannot {what}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The sync failed; what it committed before stays, and the next sync goes on from there.
    #[error("the sync of {} stopped after {changed} referrals; the next sync goes on from there", path.display())]
    Sync {
        /// The file.
        path: PathBuf,
        /// How many referrals were written before it stopped.
        changed: u64,
        /// The client's error.
        source: referrals_client::Error,
    },
}

impl Error {
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(place: &str, what: &str, source: tokio_postgres::Error) -> Self {
        Self::Postgres {
            place: place.to_owned(),
            what: what.to_owned(),
            source,
        }
    }

    pub(crate) fn sqlite(path: &std::path::Path, what: &str, source: rusqlite::Error) -> Self {
        Self::Sqlite {
            path: path.to_owned(),
            what: what.to_owned(),
            source,
        }
    }
}
