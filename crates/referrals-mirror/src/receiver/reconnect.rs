//! A connection to a PostgreSQL mirror that is made again when it was lost (the server
//! restarted, a proxy closed it): at the next use, at most once per pause, the pause doubling
//! from one second to thirty while the server does not answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, RwLock};

use crate::Error;
use crate::postgres::PgMirror;

/// The first pause between two attempts to connect.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause.
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// When the next attempt may be made, and the pause after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    next: Option<Instant>,
    pause: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self {
            next: None,
            pause: FIRST_PAUSE,
        }
    }

    /// Whether an attempt may be made now; if so, the next one waits longer.
    fn attempt(&mut self) -> bool {
        let now = Instant::now();
        if self.next.is_some_and(|next| now < next) {
            return false;
        }
        self.next = Some(now + self.pause);
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        true
    }

    fn succeeded(&mut self) {
        *self = Self::new();
    }
}

/// Connects to `url` if `backoff` allows it now.
pub(crate) async fn connect(url: &str, backoff: &mut Backoff) -> Result<PgMirror, Error> {
    if !backoff.attempt() {
        return Err(Error::Receiver(format!(
            "{} does not answer; connecting again shortly",
            crate::postgres::describe(url)
        )));
    }
    let mirror = PgMirror::connect(url).await?;
    backoff.succeeded();
    Ok(mirror)
}

/// A connection shared by tasks (the callbacks), made again when lost.
pub(crate) struct Shared {
    url: String,
    current: RwLock<Arc<PgMirror>>,
    backoff: Mutex<Backoff>,
}

impl Shared {
    pub(crate) fn new(url: String, mirror: PgMirror) -> Self {
        Self {
            url,
            current: RwLock::new(Arc::new(mirror)),
            backoff: Mutex::new(Backoff::new()),
        }
    }

    /// The connection, made again first if it was lost.
    pub(crate) async fn get(&self) -> Result<Arc<PgMirror>, Error> {
        let current = Arc::clone(&*self.current.read().await);
        if !current.is_closed() {
            return Ok(current);
        }
        // Another task is connecting: this one does not queue behind it (a callback is
        // answered 503 at once, and delivered again).
        let Ok(mut backoff) = self.backoff.try_lock() else {
            return Err(Error::Receiver(format!(
                "{} is being connected to again",
                crate::postgres::describe(&self.url)
            )));
        };
        // Another task may have made it again while this one waited.
        let current = Arc::clone(&*self.current.read().await);
        if !current.is_closed() {
            return Ok(current);
        }
        let mirror = Arc::new(connect(&self.url, &mut backoff).await?);
        *self.current.write().await = Arc::clone(&mirror);
        Ok(mirror)
    }
}

/// A connection of one task (the worker), made again when lost.
pub(crate) struct Owned {
    url: String,
    current: Option<PgMirror>,
    backoff: Backoff,
    /// The name of the claims, kept across connections so that the claims of events in hand
    /// stay this receiver's.
    owner: Option<String>,
}

impl Owned {
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            current: None,
            backoff: Backoff::new(),
            owner: None,
        }
    }

    /// The connection, made again first if it was lost.
    pub(crate) async fn get(&mut self) -> Result<&mut PgMirror, Error> {
        let mirror = match self.current.take() {
            Some(mirror) if !mirror.is_closed() => mirror,
            _ => {
                let mut mirror = connect(&self.url, &mut self.backoff).await?;
                match &self.owner {
                    Some(owner) => mirror.set_owner(owner.clone()),
                    None => self.owner = Some(mirror.owner().to_owned()),
                }
                mirror
            }
        };
        Ok(self.current.insert(mirror))
    }
}
