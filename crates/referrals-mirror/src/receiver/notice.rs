//! What a receiver tells of its work, and its default listener: `tracing` events.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Shared;
use crate::SyncReport;

/// What a receiver tells of its work ([`super::ReceiverBuilder::on_notice`]).
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
    /// A callback whose body was received within the window of replays was acknowledged
    /// and not stored again.
    Replayed {
        /// Its name.
        event: &'a str,
        /// The place of the event stored first.
        seq: i64,
    },
    /// An event about something else than a referral was acknowledged and left alone.
    Ignored {
        /// Its name.
        event: &'a str,
    },
    /// The referral of an event still does not answer (404) after the tries that cover the
    /// service's lag: the event is worked off.
    Gone {
        /// The referral.
        referral: &'a str,
    },
    /// Working an event off failed; it is tried again after `wait`.
    Retrying {
        /// The event's place.
        seq: i64,
        /// Its referral.
        referral: Option<&'a str>,
        /// The tries so far.
        attempts: u32,
        /// The pause before the next.
        wait: Duration,
        /// Why.
        error: &'a str,
    },
    /// An event failed too often and was set aside (`referrals events` lists and retries it).
    SetAside {
        /// The event's place.
        seq: i64,
        /// Its referral.
        referral: Option<&'a str>,
        /// The tries.
        attempts: u32,
        /// The last failure.
        error: &'a str,
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
pub(super) type Listener = Arc<dyn Fn(&Notice<'_>) + Send + Sync>;

pub(super) use crate::error::with_causes;

/// Tells that `doing` failed.
pub(super) fn failed(shared: &Shared, doing: &'static str, error: &dyn std::error::Error) {
    let error = with_causes(error);
    shared.notice(&Notice::Failed { doing, error });
}

/// Waits `wait`, or less when the stop comes: whether it came.
pub(super) async fn pause(stop: &watch::Receiver<bool>, wait: Duration) -> bool {
    let mut stop = stop.clone();
    let stopped = tokio::select! {
        () = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|stop| *stop) => true,
    };
    stopped || *stop.borrow()
}

/// The default listener: `tracing` events.
pub(super) fn trace(notice: &Notice<'_>) {
    match notice {
        Notice::Refused {
            status,
            check,
            reason,
        } => tracing::warn!(status, check, "refused a callback: {reason}"),
        Notice::Accepted { event, referral } => {
            tracing::info!(event, referral, "accepted an event");
        }
        Notice::Replayed { event, seq } => {
            tracing::info!(event, seq, "a callback received before: not stored again");
        }
        Notice::Ignored { event } => tracing::info!(event, "ignored an event: not a referral's"),
        Notice::Gone { referral } => {
            tracing::warn!(referral, "the referral of an event does not answer (404)");
        }
        Notice::Retrying {
            seq,
            referral,
            attempts,
            wait,
            error,
        } => tracing::warn!(
            seq,
            referral,
            attempts,
            wait_seconds = wait.as_secs(),
            "an event failed; tried again later: {error}"
        ),
        Notice::SetAside {
            seq,
            referral,
            attempts,
            error,
        } => tracing::error!(seq, referral, attempts, "an event was set aside: {error}"),
        Notice::Synced(report) => tracing::info!(changed = report.changed, "synced"),
        Notice::Failed { doing, error } => tracing::warn!(doing, "failed: {error}"),
    }
}
