//! What can go wrong with a mirror.

use std::path::PathBuf;

/// An error of a mirror. Its `Display` names the file and says why, with every cause (a refused
/// connection and a 401 read differently wherever the error is written); nothing was changed
/// in it unless it says so (a client's error holds its own cause, such as the reason of a failed
/// connection). The causes are in the text, not behind `source()`, so that a
/// reporter that prints the chain does not repeat them; [`Self::client_error`] gives the
/// client's error of a failed sync or read.
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
        "{}: {error}; nothing in it was changed. Use another file for another filter, or a new file to start again",
        path.display()
    )]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        error: referrals_client::sync::StateError,
    },
    /// The mirror was made with another filter than the sync's. Nothing was changed.
    #[error(
        "{}: {error}; nothing in it was changed. A mirror keeps the filter it was made with: use another file for another filter",
        path.display()
    )]
    OtherFilter {
        /// The file.
        path: PathBuf,
        /// The client's refusal, which names both filters.
        error: referrals_client::Error,
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
    /// A build of the mirror from a document with other members changed the member columns
    /// since this mirror was opened: it made columns that this build would leave unfilled,
    /// or dropped some that this build fills. The write was not made.
    #[error(
        "{}: another build of the mirror, from a document with other members, changed its member columns ({}) since this program opened it; this write was not made: stop this program and run one build on a mirror at a time",
        path.display(),
        columns.join(", ")
    )]
    OtherBuild {
        /// The file.
        path: PathBuf,
        /// The columns made or dropped by the other build.
        columns: Vec<String>,
    },
    /// SQLite failed to read or write the file.
    #[error("{}: cannot {what}: {}", path.display(), with_causes(error))]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// SQLite's error.
        error: rusqlite::Error,
    },
    /// The PostgreSQL server failed, or could not be reached; the transaction in hand was
    /// rolled back.
    #[cfg(feature = "postgres")]
    #[error("{place}: cannot {what}: {}", postgres_text(error))]
    Postgres {
        /// The server and database, without a password.
        place: String,
        /// What was being done.
        what: String,
        /// The server's or the connection's error.
        error: tokio_postgres::Error,
    },
    /// A row's `json` is not a referral (written by hand?).
    #[error("{}: the row of {id} does not hold a referral: {error}", path.display())]
    Row {
        /// The file.
        path: PathBuf,
        /// The row's id.
        id: String,
        /// Why it does not decode.
        error: serde_json::Error,
    },
    /// A file could not be written.
    #[error("{}: cannot {what}: {}", path.display(), with_causes(error))]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// Why.
        error: std::io::Error,
    },
    /// A consumer's name that is not letters, digits, `-` and `_` (at most 64, starting with a
    /// letter or a digit).
    #[error(
        "`{name}` cannot name a consumer: use letters, digits, - and _ (at most 64, starting with a letter or a digit)"
    )]
    ConsumerName {
        /// The name given.
        name: String,
    },
    /// Changes after the consumer's position were pruned (older than the log's retention, or
    /// a start before changes that every other consumer had read): it would miss them. Nothing
    /// was delivered; start it again from a snapshot.
    #[error(
        "the consumer {consumer} is at change {position}, but the changes up to {pruned_through} were pruned; start it again from a snapshot (Feed::restart(Start::Snapshot), or `referrals changes --restart --from snapshot`)"
    )]
    Pruned {
        /// The consumer.
        consumer: String,
        /// Its position.
        position: i64,
        /// The last change pruned.
        pruned_through: i64,
    },
    /// A start after a change that is not written yet (or before the first: a negative one).
    #[error(
        "the consumer {consumer} cannot start after change {seq}: the last change written is {last}"
    )]
    Start {
        /// The consumer.
        consumer: String,
        /// The change asked for.
        seq: i64,
        /// The last change written.
        last: i64,
    },
    /// A row of the change log cannot be read (written by hand?).
    #[error("{}: the change {seq} of the log cannot be read: {what}", path.display())]
    Log {
        /// The database.
        path: PathBuf,
        /// The change's sequence number.
        seq: i64,
        /// What is wrong.
        what: String,
    },
    /// A change kept failing and the delivery stopped there ([`crate::feed::OnFailure::Stop`]): the
    /// consumer's position is before it, so the next delivery starts with it.
    #[error(
        "the consumer {consumer} stopped at change {seq} (referral {id}) after {attempts} attempts: {message}"
    )]
    Delivery {
        /// The consumer.
        consumer: String,
        /// The change.
        seq: i64,
        /// Its referral.
        id: String,
        /// How many times it was tried.
        attempts: u32,
        /// The last failure.
        message: String,
    },
    /// An endpoint of [`crate::feed::Endpoint`] cannot be used as given.
    #[error("the endpoint: {0}")]
    Endpoint(String),
    /// A PostgreSQL server could not be connected to: its address, TLS or password.
    #[error("{place}: {reason}")]
    Connect {
        /// The server, without its password.
        place: String,
        /// Why, with the cause (the certificate's fault, the setting to add).
        reason: String,
    },
    /// A receiver could not be made or could not serve.
    #[error("the receiver: {0}")]
    Receiver(String),
    /// A referral could not be read from the service.
    #[error("cannot read the referral {id}: {error}")]
    Read {
        /// The referral.
        id: String,
        /// The client's error.
        error: referrals_client::Error,
    },
    /// The sync failed; what it committed before stays, and the next sync goes on from there.
    #[error(
        "the sync of {} stopped after {changed} referrals: {error}; the next sync goes on from there",
        path.display()
    )]
    Sync {
        /// The file.
        path: PathBuf,
        /// How many referrals were written before it stopped.
        changed: u64,
        /// The client's error.
        error: referrals_client::Error,
    },
}

impl Error {
    /// The client's error of a sync or a read that failed (a refused connection, a 401...),
    /// to inspect it ([`referrals_client::Error::status`], its kind).
    pub fn client_error(&self) -> Option<&referrals_client::Error> {
        match self {
            Self::Sync { error, .. }
            | Self::Read { error, .. }
            | Self::OtherFilter { error, .. } => Some(error),
            _ => None,
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(place: &str, what: &str, source: tokio_postgres::Error) -> Self {
        Self::Postgres {
            place: place.to_owned(),
            what: what.to_owned(),
            error: source,
        }
    }

    pub(crate) fn sqlite(path: &std::path::Path, what: &str, source: rusqlite::Error) -> Self {
        Self::Sqlite {
            path: path.to_owned(),
            what: what.to_owned(),
            error: source,
        }
    }
}

/// A PostgreSQL error with what its `Display` leaves out: the server's message, or the cause
/// of a failed connection (a handshake's, a socket's).
#[cfg(feature = "postgres")]
fn postgres_text(error: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match (error.as_db_error(), error.source()) {
        (Some(db), _) => format!("{}: {}", db.severity(), db.message()),
        (None, Some(cause)) => format!("{error}: {cause}"),
        (None, None) => error.to_string(),
    }
}

/// An error with its causes, on one line; a cause whose text the error just above it already
/// holds (as a client's error holds the reason of a failed connection) is not repeated.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut above = text.clone();
    let mut cause = error.source();
    while let Some(next) = cause {
        let next_text = next.to_string();
        if !above.contains(&next_text) {
            text.push_str(": ");
            text.push_str(&next_text);
        }
        above = next_text;
        cause = next.source();
    }
    text
}
