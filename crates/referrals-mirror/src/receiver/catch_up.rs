//! The catch-up sync: at start, then every interval, into a connection of its own, for the
//! events that never come; the events worked off are pruned after it.

use std::sync::Arc;
use std::time::Duration;

use referrals_client::sync::SyncOptions;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Notice, Shared};
use crate::{Db, Error};

/// How long an event worked off is kept (pruned after each catch-up sync): a week, or the
/// window of replays when it is longer, so that a replay is still told within it.
pub(crate) const EVENTS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Syncs until the stop (which ends a sync after the batch in hand).
pub(super) async fn catch_up(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    loop {
        let began = Instant::now();
        let synced = off_the_workers(&shared, &stop).await;
        let took = began.elapsed();
        match synced {
            Ok(report) => {
                shared.metrics.sync.ran(took, Some(&report));
                shared.notice(&Notice::Synced(&report));
            }
            Err(error) => {
                shared.metrics.sync.ran(took, None);
                super::failed(&shared, "the catch-up sync", &error);
            }
        }
        if super::pause(&stop, shared.every).await {
            return;
        }
    }
}

/// [`sync_once`] on a blocking thread: a SQLite mirror's writes (and the waits of its lock)
/// block the thread that runs them, which must not be one of the workers that answer the
/// callbacks. The network calls still go through the runtime's reactor.
async fn off_the_workers(
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
) -> Result<crate::SyncReport, Error> {
    let (shared, stop) = (Arc::clone(shared), stop.clone());
    let runtime = tokio::runtime::Handle::current();
    let synced =
        tokio::task::spawn_blocking(move || runtime.block_on(sync_once(&shared, &stop))).await;
    synced.unwrap_or_else(|error| {
        Err(Error::Receiver(format!(
            "the catch-up sync failed: {error}"
        )))
    })
}

async fn sync_once(
    shared: &Shared,
    stop: &watch::Receiver<bool>,
) -> Result<crate::SyncReport, Error> {
    let mut mirror = Db::open(&shared.db).await?;
    let options = SyncOptions::new().skew(shared.skew);
    let report = mirror
        .sync_with(&shared.client, options, |_| {
            if *stop.borrow() {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .await?;
    // A pruning that fails is said on its own; the sync stands.
    if let Err(error) = mirror.prune_events(EVENTS_KEPT.max(shared.replays)).await {
        super::failed(shared, "prune the events worked off", &error);
    }
    Ok(report)
}
