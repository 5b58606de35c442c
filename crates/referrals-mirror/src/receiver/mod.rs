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

mod builder;
mod callback;
mod catch_up;
pub mod http;
mod metrics;
mod notice;
mod observe;
#[cfg(feature = "postgres")]
mod reconnect;
mod store;
mod sync_health;
mod work;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::MethodRouter;
use referrals_client::Client;
use referrals_events::{MAX_BODY, Verifier};
use tokio::sync::{Notify, watch};

pub use builder::ReceiverBuilder;
pub use notice::Notice;
use notice::{Listener, failed, pause, with_causes};
use store::Store;
pub use sync_health::SyncObserver;
pub use work::MAX_ATTEMPTS;

use crate::{Error, Opened};

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
    /// The window of replays.
    replays: Duration,
    /// The pace of the worker's reads.
    pace: work::Pace,
    read_concurrency: usize,
    /// The most connections that [`Receiver::serve`] serves at once.
    max_connections: usize,
    metrics: metrics::Metrics,
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
            .field("db", &self.name())
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
            replays: Duration::from_secs(86_400),
            reads_per_second: 200,
            read_concurrency: 4,
            max_connections: http::MAX_CONNECTIONS,
            listener: Arc::new(notice::trace),
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

    /// How messages name its mirror: the file, or the server without its password.
    pub fn name(&self) -> String {
        shown(&self.shared.db)
    }

    /// The handler of callbacks (POST), to mount at a path of one's own router:
    /// `Router::new().route("/events", receiver.route())`. Bodies over 1 MiB are refused.
    pub fn route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        axum::routing::post(callback::callback)
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY + 1))
            .with_state(Arc::clone(&self.shared))
    }

    /// A router of `GET /healthz` (200 while the process answers), `GET /readyz` (200 when the
    /// mirror answers and the last catch-up sync ended well within twice its interval, else
    /// 503 with the reason) and `GET /metrics` (the Prometheus text format; the metrics are
    /// listed in the crate's README), to mount where the operator's probes reach it.
    pub fn observer<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        axum::Router::new()
            .route("/healthz", axum::routing::get(observe::healthz))
            .route("/readyz", axum::routing::get(observe::readyz))
            .route("/metrics", axum::routing::get(observe::metrics))
            .with_state(Arc::clone(&self.shared))
    }

    /// Whether the receiver is ready (what `/readyz` answers), or why not.
    pub async fn readiness(&self) -> Result<(), String> {
        observe::readiness(&self.shared).await
    }

    /// A router that takes callbacks (POST) at any path, with [`Receiver::observer`]'s
    /// `GET /healthz`, `/readyz` and `/metrics`.
    pub fn router(&self) -> axum::Router {
        self.observer().fallback(self.route::<()>())
    }

    /// Starts the worker (events stored are worked off) and the catch-up sync, in tasks of
    /// their own; [`Running::stop`] ends them.
    pub fn start(&self) -> Running {
        let (stop, stopped) = watch::channel(false);
        let worker = tokio::spawn(work::work_off(Arc::clone(&self.shared), stopped.clone()));
        let syncing = tokio::spawn(catch_up::catch_up(Arc::clone(&self.shared), stopped));
        Running {
            stop,
            tasks: vec![worker, syncing],
        }
    }

    /// Takes callbacks at any path on `listener` (plain HTTP, as behind a TLS proxy), works them
    /// off and syncs, until `shutdown` completes; then stops cleanly. A request's head must
    /// arrive within 10 s, and at most [`ReceiverBuilder::max_connections`] (4,096) are served
    /// at once ([`http`]).
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let running = self.start();
        let max = self.shared.max_connections;
        http::serve_with(listener, self.router(), shutdown, max).await;
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

/// `db` as messages name it: a server without its password.
fn shown(db: &std::path::Path) -> String {
    let text = db.to_string_lossy();
    #[cfg(feature = "postgres")]
    if crate::is_server(&text) {
        return crate::postgres::describe(&text);
    }
    text.into_owned()
}
