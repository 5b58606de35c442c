//! How a [`Receiver`] is made, and its settings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use referrals_client::Client;
use referrals_events::Verifier;
use tokio::sync::Notify;

use super::metrics::Metrics;
use super::notice::{Listener, Notice};
use super::store::Store;
use super::work::Pace;
use super::{Receiver, Shared};
use crate::Error;

/// How a [`Receiver`] is made.
pub struct ReceiverBuilder {
    pub(super) client: Client,
    pub(super) db: PathBuf,
    pub(super) verifier: Option<Verifier>,
    pub(super) every: Duration,
    pub(super) skew: Duration,
    pub(super) replays: Duration,
    pub(super) reads_per_second: u32,
    pub(super) read_concurrency: usize,
    pub(super) max_connections: usize,
    pub(super) listener: Listener,
}

impl std::fmt::Debug for ReceiverBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverBuilder")
            .field("db", &super::shown(&self.db))
            .field("every", &self.every)
            .field("skew", &self.skew)
            .field("replays", &self.replays)
            .field("reads_per_second", &self.reads_per_second)
            .field("read_concurrency", &self.read_concurrency)
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

    /// The window of replays (default: a day): a callback whose body is byte for byte one
    /// received within it is acknowledged and not stored again. A callback carries no
    /// timestamp or nonce, so a captured one can be sent again by anyone; within the window
    /// it costs a digest and a lookup, never a read of the referral.
    pub fn replay_window(mut self, window: Duration) -> Self {
        self.replays = window;
        self
    }

    /// At most how many referrals the worker reads a second for events (default: 200, at
    /// least 1), whatever the events that arrive.
    pub fn reads_per_second(mut self, reads: u32) -> Self {
        self.reads_per_second = reads.max(1);
        self
    }

    /// At most how many referrals the worker reads at once (default: 4, at least 1).
    pub fn read_concurrency(mut self, reads: usize) -> Self {
        self.read_concurrency = reads.max(1);
        self
    }

    /// At most how many connections [`Receiver::serve`] serves at once (default: 4,096, at
    /// least 1); a connection beyond is answered 503 and closed.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
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
        let (store, opened) = Store::open(&self.db).await?;
        Ok(Receiver {
            shared: Arc::new(Shared {
                verifier,
                opened,
                store,
                stored: Notify::new(),
                client: self.client,
                db: self.db,
                every: self.every,
                skew: self.skew,
                replays: self.replays,
                pace: Pace::new(self.reads_per_second),
                read_concurrency: self.read_concurrency,
                max_connections: self.max_connections,
                metrics: Metrics::try_new(self.every)
                    .map_err(|error| Error::Receiver(format!("the metrics: {error}")))?,
                listener: self.listener,
            }),
        })
    }
}
