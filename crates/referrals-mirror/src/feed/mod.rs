//! The change feed: a named consumer follows the change log from its saved position, in order,
//! and acknowledges what it handled; killed at any point, it starts again after its last
//! acknowledgement (at least once: [`Change::seq`] is the key to deduplicate). One process
//! serves a consumer at a time: another waits, and takes over when the first stops or dies.
//!
//! ```no_run
//! # async fn run() -> Result<(), referrals_mirror::Error> {
//! use referrals_mirror::{Mirror, Start};
//!
//! let mirror = Mirror::open("referrals.sqlite")?;
//! let mut feed = mirror.feed("crm", Start::Snapshot)?;
//! loop {
//!     let changes = feed.next(100).await?; // waits for at least one
//!     for change in &changes {
//!         println!("{} {} {}", change.seq, change.kind, change.id);
//!     }
//!     if let Some(last) = changes.last() {
//!         feed.ack(last.seq).await?;
//!     }
//! }
//! # }
//! ```

mod deliver;
mod file;
mod post;
pub(crate) mod terms;

pub use deliver::{Delivery, DeliveryReport, Failure, OnFailure};
pub(crate) use file::FileLog;
pub use post::{Endpoint, secret_key, signature};
pub use terms::{DEFAULT_RETENTION, Held, MAX_RETENTION, SetAside, Start};

use crate::{Change, Error};

/// The longest name of a consumer.
const MAX_NAME: usize = 64;

/// Checks a consumer's name: letters, digits, `-` and `_`, at most 64, starting with a letter
/// or a digit, so that it needs no quoting in a file name, SQL or a shell.
pub fn check_name(name: &str) -> Result<(), Error> {
    let mut characters = name.chars();
    let fine = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && characters.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= MAX_NAME;
    if fine {
        return Ok(());
    }
    Err(Error::ConsumerName {
        name: name.to_owned(),
    })
}

/// A consumer's way through the change log of one mirror, with its own connection.
pub struct Feed {
    backend: Backend,
    name: String,
    start: Start,
    /// The position when held; `None` until then.
    held: Option<Held>,
    /// The last change handed out.
    read: i64,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("name", &self.name)
            .field("held", &self.held)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

/// The log of a SQLite file or of a PostgreSQL database.
pub(crate) enum Backend {
    File(file::FileLog),
    #[cfg(feature = "postgres")]
    Server(crate::postgres::feed::PgLog),
}

/// Calls the same method of whichever backend.
macro_rules! on_backend {
    ($feed:expr, $log:ident => $call:expr) => {
        match &mut $feed.backend {
            Backend::File($log) => $call,
            #[cfg(feature = "postgres")]
            Backend::Server($log) => $call,
        }
    };
}

impl Feed {
    pub(crate) fn new(backend: Backend, name: &str, start: Start) -> Result<Self, Error> {
        check_name(name)?;
        Ok(Self {
            backend,
            name: name.to_owned(),
            start,
            held: None,
            read: 0,
        })
    }

    pub(crate) fn file(log: file::FileLog, name: &str, start: Start) -> Result<Self, Error> {
        Self::new(Backend::File(log), name, start)
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until this process serves the consumer (while another process serves it, until
    /// that one stops or dies), makes the consumer from its [`Start`] if the mirror does not
    /// know it, and gives its position (the last change acknowledged). The other calls hold it
    /// first; this one tells when.
    pub async fn hold(&mut self) -> Result<Held, Error> {
        if let Some(held) = self.held {
            return Ok(held);
        }
        let (name, start) = (self.name.clone(), self.start);
        let held = on_backend!(self, log => log.hold(&name, start).await)?;
        self.read = held.position;
        self.held = Some(held);
        Ok(held)
    }

    /// The changes after the last one handed out, at most `max`, each with its referral as the
    /// mirror holds it now; none when there is nothing new. An error when changes this
    /// consumer has not acknowledged were pruned ([`Error::Pruned`]).
    pub async fn changes(&mut self, max: usize) -> Result<Vec<Change>, Error> {
        self.hold().await?;
        let (name, after) = (self.name.clone(), self.read);
        let changes = on_backend!(self, log => log.read(&name, after, max).await)?;
        if let Some(last) = changes.last() {
            self.read = last.seq;
        }
        Ok(changes)
    }

    /// [`Feed::changes`], waiting until there is at least one: woken at once by a write of
    /// this process, or of another on PostgreSQL, and within 10 ms by another process's write
    /// to a SQLite file.
    pub async fn next(&mut self, max: usize) -> Result<Vec<Change>, Error> {
        loop {
            let changes = self.changes(max).await?;
            if !changes.is_empty() {
                return Ok(changes);
            }
            self.wait_for_writes().await?;
        }
    }

    /// Waits until the mirror was written to (or a second passed).
    pub(crate) async fn wait_for_writes(&mut self) -> Result<(), Error> {
        on_backend!(self, log => log.wait().await)
    }

    /// Saves the consumer's position: the changes up to `seq` are handled, and a process that
    /// serves it next starts after `seq`. A position never moves back, nor past the last change
    /// handed out ([`Feed::restart`] moves it anywhere).
    pub async fn ack(&mut self, seq: i64) -> Result<(), Error> {
        self.hold().await?;
        let seq = seq.min(self.read);
        let name = self.name.clone();
        on_backend!(self, log => log.ack(&name, seq).await)?;
        self.read = self.read.max(seq);
        if let Some(held) = &mut self.held {
            held.position = held.position.max(seq);
        }
        Ok(())
    }

    /// Hands out again the changes after the last acknowledged one (after a failure that the
    /// caller wants to retry).
    pub async fn rewind(&mut self) -> Result<(), Error> {
        let name = self.name.clone();
        self.hold().await?;
        let position = on_backend!(self, log => log.position(&name).await)?;
        self.read = position;
        if let Some(held) = &mut self.held {
            held.position = position;
        }
        Ok(())
    }

    /// Moves the consumer to `start` (after it was pruned away, or to read everything again),
    /// and gives its new position.
    pub async fn restart(&mut self, start: Start) -> Result<i64, Error> {
        self.hold().await?;
        let name = self.name.clone();
        let position = on_backend!(self, log => log.restart(&name, start).await)?;
        self.read = position;
        self.held = Some(Held {
            position,
            new: false,
        });
        Ok(position)
    }

    /// Sets `change` aside, as failed after `attempts` with `error`: [`Feed::set_aside_list`]
    /// lists it until [`Feed::forget_set_aside`].
    pub async fn set_aside(
        &mut self,
        change: &Change,
        error: &str,
        attempts: u32,
    ) -> Result<(), Error> {
        self.hold().await?;
        let name = self.name.clone();
        on_backend!(self, log => log.set_aside(&name, change, error, attempts).await)
    }

    /// The changes this consumer set aside, oldest first.
    pub async fn set_aside_list(&mut self) -> Result<Vec<SetAside>, Error> {
        let name = self.name.clone();
        on_backend!(self, log => log.set_aside_list(&name).await)
    }

    /// Removes the change `seq` from the changes set aside (once it was handled).
    pub async fn forget_set_aside(&mut self, seq: i64) -> Result<(), Error> {
        let name = self.name.clone();
        on_backend!(self, log => log.forget_set_aside(&name, seq).await)
    }

    /// Removes the consumer from the mirror, once this process serves it: its position, its
    /// snapshot and the changes it set aside. The log is then pruned without waiting for it;
    /// the name starts anew from its [`Start`] if it is used again.
    pub async fn forget(mut self) -> Result<(), Error> {
        self.hold().await?;
        let name = self.name.clone();
        on_backend!(self, log => log.forget(&name).await)
    }
}
