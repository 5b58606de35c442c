//! What the feed and the change logs of both backends share: where a consumer starts, what
//! holding it found, a change set aside, and how long the log keeps changes (with the pace of
//! its pruning). Below the feed and the logs, so that neither reaches up to the other.

use std::time::Duration;

use crate::Change;

/// Where a consumer that the mirror does not know yet starts. A consumer that it knows goes on
/// from its saved position; [`Feed::restart`](super::Feed::restart) moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After the last change written so far: only what changes from now on.
    Now,
    /// After the change of this sequence number (0: from the oldest change the log holds,
    /// if it was never pruned).
    After(i64),
    /// Every referral of the mirror first, each as a change of kind
    /// [`Snapshot`](crate::ChangeKind::Snapshot) delivered to this consumer only, then every
    /// change written after them.
    Snapshot,
}

/// What [`Feed::hold`](super::Feed::hold) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The consumer's saved position: the last change acknowledged.
    pub position: i64,
    /// Whether the consumer was made now, from its [`Start`].
    pub new: bool,
}

/// A change that a consumer set aside after it kept failing
/// ([`OnFailure::SetAside`](super::OnFailure::SetAside)).
#[derive(Debug, Clone, PartialEq)]
pub struct SetAside {
    /// The change, as it was when it failed (its referral as then).
    pub change: Change,
    /// The last failure.
    pub error: String,
    /// How many times it was tried.
    pub attempts: u32,
    /// When it was set aside.
    pub failed: chrono::DateTime<chrono::Utc>,
}

/// How long the log keeps a change that some consumer has not read, unless the mirror says
/// otherwise ([`crate::Mirror::set_change_retention`]).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest retention kept: a longer one is taken as this.
pub const MAX_RETENTION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How often a process prunes the log of one mirror, at most.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Whether this process should prune the log of the mirror `place` now: not in the last
/// minute.
pub(crate) fn prune_due(place: &str) -> bool {
    /// When each mirror was last pruned by this process.
    static LAST: std::sync::Mutex<Vec<(String, std::time::Instant)>> =
        std::sync::Mutex::new(Vec::new());
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let now = std::time::Instant::now();
    match last.iter_mut().find(|(known, _)| known == place) {
        Some((_, at)) if now.duration_since(*at) < PRUNE_EVERY => false,
        Some((_, at)) => {
            *at = now;
            true
        }
        None => {
            last.push((place.to_owned(), now));
            true
        }
    }
}
