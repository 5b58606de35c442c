//! The receiver's two tasks: the worker, which works off the events stored (reads each
//! referral and writes it only if newer), and the catch-up sync, at start and at an interval,
//! for the events that never come.

use std::sync::Arc;
use std::time::Duration;

use referrals_client::sync::SyncOptions;
use tokio::sync::watch;

use super::store::Writer;
use super::{Notice, Shared};
use crate::{Db, Error, PendingEvent};

/// How long the worker waits after a failure before it tries the event again.
const PAUSE: Duration = Duration::from_secs(1);

/// How long an event worked off is kept (pruned after each catch-up sync): a week.
pub(crate) const EVENTS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Works off the stored events, oldest first, until the stop.
pub(super) async fn work_off(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let mut writer = loop {
        match Writer::beside(&shared.store, &shared.db).await {
            Ok(writer) => break writer,
            Err(error) => {
                failed(&shared, "open the mirror for the worker", &error);
                if pause(&stop, PAUSE).await {
                    return;
                }
            }
        }
    };
    while !*stop.borrow() {
        let pending = match writer.pending(64).await {
            Ok(pending) => pending,
            Err(error) => {
                failed(&shared, "read the events", &error);
                Vec::new()
            }
        };
        for event in &pending {
            if *stop.borrow() {
                return;
            }
            if let Err(error) = apply(&shared, &mut writer, event).await {
                failed(&shared, "work an event off (it stays pending)", &error);
                if pause(&stop, PAUSE).await {
                    return;
                }
                break;
            }
        }
        if pending.is_empty() {
            let mut stop = stop.clone();
            tokio::select! {
                () = shared.stored.notified() => {}
                () = tokio::time::sleep(PAUSE) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }
}

/// Waits `wait`, or less when the stop comes: whether it came.
async fn pause(stop: &watch::Receiver<bool>, wait: Duration) -> bool {
    let mut stop = stop.clone();
    let stopped = tokio::select! {
        () = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|stop| *stop) => true,
    };
    stopped || *stop.borrow()
}

fn failed(shared: &Shared, doing: &'static str, error: &dyn std::error::Error) {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    shared.notice(&Notice::Failed { doing, error: text });
}

/// Reads the referral of `event` and writes it if it is newer; a referral that no longer
/// answers is told and its event worked off.
async fn apply(shared: &Shared, writer: &mut Writer, event: &PendingEvent) -> Result<(), Error> {
    if let Some(id) = &event.referral_id {
        match shared.client.referral(id).await {
            Ok(referral) => {
                writer.apply(&referral).await?;
            }
            Err(error) if error.is_not_found() => shared.notice(&Notice::Gone { referral: id }),
            Err(source) => {
                return Err(Error::Read {
                    id: id.clone(),
                    source,
                });
            }
        }
    }
    writer.finish(event.seq).await
}

/// The catch-up sync: at start, then every interval, into a connection of its own, until the
/// stop (which ends a sync after the batch in hand).
pub(super) async fn catch_up(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    loop {
        let synced = async {
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
            if let Err(error) = mirror.prune_events(EVENTS_KEPT).await {
                failed(&shared, "prune the events worked off", &error);
            }
            Ok::<_, Error>(report)
        }
        .await;
        match synced {
            Ok(report) => shared.notice(&Notice::Synced(&report)),
            Err(error) => failed(&shared, "the catch-up sync", &error),
        }
        if pause(&stop, shared.every).await {
            return;
        }
    }
}
