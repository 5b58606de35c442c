//! The receiver of Partner Center's webhook events, as a library: what `referrals listen` does,
//! for a program that mounts it in its own axum router or runs it on an address, with a mirror
//! in a SQLite file or a PostgreSQL database.
//!
//! Each callback is verified ([`referrals_events::Verifier`]: 400 or 401 when refused), stored
//! in the mirror's table `events` before it is acknowledged (503 when it cannot be, so that
//! Partner Center delivers it again), then worked off by a task of its own: the referral is
//! read from the service and written only if it is newer than the row (with its change in the
//! change log). The incremental sync runs at start and every [`ReceiverBuilder::every`] into
//! the same mirror, for the events that never come. [`Running::stop`] ends both after the event
//! or the batch in hand.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use referrals_client::Client;
//! use referrals_events::Verifier;
//! use referrals_mirror::receiver::Receiver;
//!
//! let receiver = Receiver::builder(Client::from_env()?, "referrals.sqlite")
//!     .verifier(Verifier::builder().build()?) // the documented host, the platform's roots
//!     .build()
//!     .await?;
//! let app = axum::Router::new().route("/events", receiver.route());
//! let running = receiver.start(); // works the events off, and syncs every 5 minutes
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8090").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! running.stop().await;
//! # Ok(())
//! # }
//! ```

mod callback;
pub mod http;
mod store;
mod work;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::MethodRouter;
use referrals_client::Client;
use referrals_events::{MAX_BODY, Verifier};
use tokio::sync::{Notify, watch};

use crate::{Error, Opened, SyncReport};
use store::Store;

/// What a receiver tells of its work ([`ReceiverBuilder::on_notice`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Notice<'a> {
    /// A callback was refused: the status answered, the check that failed, and why.
    Refused {
        /// 400 or 401.
        status: u16,
        /// The check ([`referrals_events::Rejection::check`]).
        check: &'a str,
        /// Why.
        reason: String,
    },
    /// An event was stored and acknowledged.
    Accepted {
        /// Its name.
        event: &'a str,
        /// The referral it is about.
        referral: Option<&'a str>,
    },
    /// An event about something else than a referral was acknowledged and left alone.
    Ignored {
        /// Its name.
        event: &'a str,
    },
    /// The referral of an event no longer answers (404): the event is worked off.
    Gone {
        /// The referral.
        referral: &'a str,
    },
    /// A catch-up sync ended.
    Synced(&'a SyncReport),
    /// Something failed; the receiver goes on (an event stays to be worked off, a sync runs
    /// again at its next turn).
    Failed {
        /// What was being done.
        doing: &'static str,
        /// The error, with its causes.
        error: String,
    },
}

/// A function that hears a receiver's notices.
type Listener = Arc<dyn Fn(&Notice<'_>) + Send + Sync>;

/// How a [`Receiver`] is made.
pub struct ReceiverBuilder {
    client: Client,
    db: PathBuf,
    verifier: Option<Verifier>,
    every: Duration,
    skew: Duration,
    listener: Listener,
}

impl std::fmt::Debug for ReceiverBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverBuilder")
            .field("db", &self.db)
            .field("every", &self.every)
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

impl ReceiverBuilder {
    /// The verifier of callbacks (by default, the documented certificate host and the
    /// platform's roots; a trusted root of one's own goes to
    /// [`referrals_events::VerifierBuilder::trust_root`], as PEM or DER).
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// The catch-up sync's interval (default: 5 minutes).
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// How far behind the service's clock the sync stops (default: 2 minutes; see
    /// [`referrals_client::sync::SyncOptions::skew`]).
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// Hears what the receiver does (by default, `tracing` events: warnings for refusals and
    /// failures, information for the rest).
    pub fn on_notice(mut self, listener: impl Fn(&Notice<'_>) + Send + Sync + 'static) -> Self {
        self.listener = Arc::new(listener);
        self
    }

    /// Opens the mirror (made when it is not there) and makes the receiver.
    pub async fn build(self) -> Result<Receiver, Error> {
        let verifier = match self.verifier {
            Some(verifier) => verifier,
            None => Verifier::builder()
                .build()
                .map_err(|error| Error::Receiver(error.to_string()))?,
        };
        let store = Store::open(&self.db).await?;
        Ok(Receiver {
            shared: Arc::new(Shared {
                verifier,
                opened: store.opened(),
                store,
                stored: Notify::new(),
                client: self.client,
                db: self.db,
                every: self.every,
                skew: self.skew,
                listener: self.listener,
            }),
        })
    }
}

/// What the callbacks, the worker and the sync share.
struct Shared {
    verifier: Verifier,
    /// The connection that stores the events.
    store: Store,
    opened: Opened,
    /// Wakes the worker when an event was stored.
    stored: Notify,
    client: Client,
    db: PathBuf,
    every: Duration,
    skew: Duration,
    listener: Listener,
}

impl Shared {
    fn notice(&self, notice: &Notice<'_>) {
        (self.listener)(notice);
    }
}

/// A receiver of webhook events that keeps a mirror; cheap to clone.
#[derive(Clone)]
pub struct Receiver {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("db", &self.shared.db)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// A builder for the receiver that keeps the mirror `db` (a SQLite file, or a
    /// `postgres://` address) with `client`.
    pub fn builder(client: Client, db: impl Into<PathBuf>) -> ReceiverBuilder {
        ReceiverBuilder {
            client,
            db: db.into(),
            verifier: None,
            every: Duration::from_secs(300),
            skew: Duration::from_secs(120),
            listener: Arc::new(trace),
        }
    }

    /// The receiver of `builder`'s defaults, with `verifier`: the sync every 5 minutes,
    /// notices as `tracing` events.
    pub async fn new(
        client: Client,
        db: impl Into<PathBuf>,
        verifier: Verifier,
    ) -> Result<Self, Error> {
        Self::builder(client, db).verifier(verifier).build().await
    }

    /// What opening the mirror found.
    pub fn opened(&self) -> Opened {
        self.shared.opened
    }

    /// The handler of callbacks (POST), to mount at a path of one's own router:
    /// `Router::new().route("/events", receiver.route())`. Bodies over 1 MiB are refused.
    pub fn route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        axum::routing::post(callback::callback)
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY + 1))
            .with_state(Arc::clone(&self.shared))
    }

    /// A router that takes callbacks (POST) at any path.
    pub fn router(&self) -> axum::Router {
        axum::Router::new().fallback(self.route::<()>())
    }

    /// Starts the worker (events stored are worked off) and the catch-up sync, in tasks of
    /// their own; [`Running::stop`] ends them.
    pub fn start(&self) -> Running {
        let (stop, stopped) = watch::channel(false);
        let worker = tokio::spawn(work::work_off(Arc::clone(&self.shared), stopped.clone()));
        let syncing = tokio::spawn(work::catch_up(Arc::clone(&self.shared), stopped));
        Running {
            stop,
            tasks: vec![worker, syncing],
        }
    }

    /// Takes callbacks at any path on `listener` (plain HTTP, as behind a TLS proxy), works them
    /// off and syncs, until `shutdown` completes; then stops cleanly. A request's head must
    /// arrive within 10 s, and at most 1,024 connections are served at once ([`http`]).
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let running = self.start();
        http::serve(listener, self.router(), shutdown).await;
        running.stop().await;
        Ok(())
    }
}

/// The worker and the sync of a started [`Receiver`].
#[derive(Debug)]
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the worker after the event in hand and the sync after the batch in hand, and
    /// waits for both.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The default listener: `tracing` events.
fn trace(notice: &Notice<'_>) {
    match notice {
        Notice::Refused {
            status,
            check,
            reason,
        } => tracing::warn!(status, check, "refused a callback: {reason}"),
        Notice::Accepted { event, referral } => {
            tracing::info!(event, referral, "accepted an event");
        }
        Notice::Ignored { event } => tracing::info!(event, "ignored an event: not a referral's"),
        Notice::Gone { referral } => {
            tracing::warn!(referral, "the referral of an event does not answer (404)");
        }
        Notice::Synced(report) => tracing::info!(changed = report.changed, "synced"),
        Notice::Failed { doing, error } => tracing::warn!(doing, "failed: {error}"),
    }
}
