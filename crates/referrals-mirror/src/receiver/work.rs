//! The worker: works off the stored events, oldest first. The events of one referral taken
//! together cost one read (a burst of events for a referral is merged); reads run at most
//! [`super::ReceiverBuilder::read_concurrency`] at once and
//! [`super::ReceiverBuilder::reads_per_second`] a second, so that no flood of events can spend
//! the partner's rate limit faster; each referral read is written only if newer. An event whose
//! work fails is tried again later with a growing pause (a 404 too, or a version older than the
//! event announced, since the service may not yet answer with what it has just announced), and
//! after [`MAX_ATTEMPTS`] is set aside,
//! where `referrals events` lists and retries it; it never holds back the events after it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use referrals_client::types::Referral;
use referrals_client::webhooks::types::WebhookEventName;
use tokio::sync::watch;
use tokio::time::Instant;

use super::store::Writer;
use super::{Notice, Shared};
use crate::PendingEvent;

/// How long the worker waits after a failure of the mirror, and at most between two looks at
/// the events when none is stored meanwhile.
pub(super) const PAUSE: Duration = Duration::from_secs(1);

/// How many events the worker takes at once.
const BATCH: usize = 64;

/// How many times an event is tried before it is set aside.
pub const MAX_ATTEMPTS: u32 = 10;

/// How many times a referral that does not answer (404) is read before its event is worked
/// off as gone: the waits between them (2, 4, 8 s) cover the service's read-after-write lag.
const NOT_FOUND_TRIES: u32 = 4;

/// How often the claims of the events in hand are renewed (a third of their lease).
const RENEW_EVERY: Duration = Duration::from_secs(20);

/// The pause before the next try of an event that failed `attempts` times (counting this one):
/// 2 s doubling, at most 5 minutes.
fn backoff(attempts: u32) -> Duration {
    let seconds = 2u64.saturating_pow(attempts.min(16));
    Duration::from_secs(seconds.min(300))
}

/// The reads' pace: one read a slot, slots `interval` apart.
pub(super) struct Pace {
    interval: Duration,
    next: std::sync::Mutex<Instant>,
}

impl Pace {
    pub(super) fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next free slot.
    async fn wait(&self) {
        let slot = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// The events of one referral, taken together.
struct Group {
    referral: Option<String>,
    events: Vec<PendingEvent>,
}

impl Group {
    /// The most attempts among the events, with this one.
    fn attempts(&self) -> u32 {
        let most = self.events.iter().map(|event| event.attempts).max();
        most.unwrap_or(0).saturating_add(1)
    }

    /// Whether `referral` is older than the latest change of its own that its events announced
    /// (by more than a second, for instants written to another precision): the service's
    /// read-after-write lag, as a 404 for a referral just created. Only the document's
    /// `own-change-events` announce a change of the referral they name; a `related-` event
    /// carries the instant of another referral's change.
    fn is_stale(&self, referral: &Referral) -> bool {
        let own = |event: &&PendingEvent| {
            let names = WebhookEventName::OWN_CHANGE_EVENTS.iter();
            names
                .map(WebhookEventName::as_str)
                .any(|name| name == event.name)
        };
        let announced = self
            .events
            .iter()
            .filter(own)
            .filter_map(|event| event.announced)
            .max();
        match (referral.updated_date_time, announced) {
            (Some(updated), Some(announced)) => updated + chrono::Duration::seconds(1) < announced,
            _ => false,
        }
    }
}

/// The events grouped by referral, in the order of each referral's first event.
fn groups(pending: Vec<PendingEvent>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for event in pending {
        let same = groups
            .iter_mut()
            .find(|group| group.referral.is_some() && group.referral == event.referral_id);
        match same {
            Some(group) => group.events.push(event),
            None => groups.push(Group {
                referral: event.referral_id.clone(),
                events: vec![event],
            }),
        }
    }
    groups
}

/// What reading a group's referral gave.
enum Read {
    Referral(Box<Referral>),
    NotFound,
    Failed(String),
    Nothing,
}

async fn read(shared: &Shared, group: &Group) -> Read {
    let Some(id) = &group.referral else {
        return Read::Nothing;
    };
    shared.pace.wait().await;
    let read = match shared.client.referral(id).await {
        Ok(referral) => Read::Referral(Box::new(referral)),
        Err(error) if error.is_not_found() => Read::NotFound,
        Err(error) => Read::Failed(super::with_causes(&error)),
    };
    shared.metrics.read(match &read {
        Read::Referral(_) | Read::Nothing => "read",
        Read::NotFound => "not_found",
        Read::Failed(_) => "failed",
    });
    read
}

/// Works off the stored events until the stop.
pub(super) async fn work_off(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let mut writer = Writer::beside(&shared.store, &shared.db);
    loop {
        if *stop.borrow() {
            return;
        }
        let pending = match writer.pending(BATCH).await {
            Ok(pending) => pending,
            Err(error) => {
                super::failed(&shared, "read the events", &error);
                if super::pause(&stop, PAUSE).await {
                    return;
                }
                continue;
            }
        };
        if pending.is_empty() {
            let mut stop = stop.clone();
            tokio::select! {
                () = shared.stored.notified() => {}
                () = tokio::time::sleep(PAUSE) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            continue;
        }
        let worked = work_batch(&shared, &mut writer, groups(pending), &stop).await;
        if !worked && super::pause(&stop, PAUSE).await {
            return;
        }
    }
}

/// Reads the groups' referrals (at the pace, so many at once) and settles each group in order,
/// renewing the claims meanwhile; whether the mirror took every write (the events left are
/// taken again at the next turn, or by another receiver when the claims lapse). A stop ends it
/// after the group in hand.
async fn work_batch(
    shared: &Shared,
    writer: &mut Writer,
    groups: Vec<Group>,
    stop: &watch::Receiver<bool>,
) -> bool {
    let reads = futures_util::stream::iter(groups)
        .map(|group| async move {
            let read = read(shared, &group).await;
            (group, read)
        })
        .buffered(shared.read_concurrency.max(1));
    tokio::pin!(reads);
    let mut renew = tokio::time::interval_at(Instant::now() + RENEW_EVERY, RENEW_EVERY);
    let mut stop = stop.clone();
    // `()` rather than the guard that `wait_for` gives, which may not be held across an await.
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            next = reads.next() => {
                let Some((group, read)) = next else { return true };
                if let Err(error) = settle(shared, writer, &group, read).await {
                    super::failed(shared, "work an event off (it stays to be worked off)", &error);
                    return false;
                }
            }
            _ = renew.tick() => {
                if let Err(error) = writer.renew().await {
                    super::failed(shared, "renew the claims of events", &error);
                }
            }
            () = &mut stopped => return true,
        }
    }
}

/// Writes what was read and marks the group's events done, or counts their failure.
async fn settle(
    shared: &Shared,
    writer: &mut Writer,
    group: &Group,
    read: Read,
) -> Result<(), crate::Error> {
    let attempts = group.attempts();
    let failure = match read {
        Read::Referral(referral) if attempts < NOT_FOUND_TRIES && group.is_stale(&referral) => {
            Some("the service answers a version older than the event announced".to_owned())
        }
        Read::Referral(referral) => match writer.apply(&referral).await {
            Ok(_) => None,
            Err(error) => Some(super::with_causes(&error)),
        },
        Read::Nothing => None,
        Read::NotFound if attempts < NOT_FOUND_TRIES => {
            Some("the referral does not answer yet (404)".to_owned())
        }
        Read::NotFound => {
            let referral = group.referral.as_deref().unwrap_or_default();
            shared.notice(&Notice::Gone { referral });
            None
        }
        Read::Failed(error) => Some(error),
    };
    let Some(error) = failure else {
        for event in &group.events {
            writer.finish(event.seq).await?;
        }
        return Ok(());
    };
    let retry = (attempts < MAX_ATTEMPTS).then(|| backoff(attempts));
    for event in &group.events {
        // An event that another receiver holds now is its to tell.
        if !writer.fail(event.seq, error.clone(), retry).await? {
            continue;
        }
        shared.metrics.event_failed();
        let referral = group.referral.as_deref();
        shared.notice(&match retry {
            Some(wait) => Notice::Retrying {
                seq: event.seq,
                referral,
                attempts,
                wait,
                error: &error,
            },
            None => Notice::SetAside {
                seq: event.seq,
                referral,
                attempts,
                error: &error,
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, referral: Option<&str>, attempts: u32) -> PendingEvent {
        PendingEvent {
            seq,
            name: "referral-updated".to_owned(),
            referral_id: referral.map(str::to_owned),
            attempts,
            announced: None,
        }
    }

    #[test]
    fn events_of_one_referral_are_one_group_in_the_order_of_the_first() {
        let pending = vec![
            event(1, Some("a"), 0),
            event(2, Some("b"), 0),
            event(3, Some("a"), 3),
            event(4, None, 0),
            event(5, None, 0),
        ];
        let groups = groups(pending);
        let seqs: Vec<Vec<i64>> = groups
            .iter()
            .map(|group| group.events.iter().map(|event| event.seq).collect())
            .collect();
        assert_eq!(seqs, [vec![1, 3], vec![2], vec![4], vec![5]]);
        assert_eq!(groups[0].attempts(), 4);
    }

    #[test]
    fn the_pause_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(9), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn reads_keep_their_pace() {
        let pace = Pace::new(10);
        let start = Instant::now();
        for _ in 0..21 {
            pace.wait().await;
        }
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[test]
    fn a_referral_older_than_its_events_announced_is_stale() {
        let at = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        let mut later = event(1, Some("a"), 0);
        later.announced = Some(at("2026-01-01T00:00:10.5485487Z"));
        let group = Group {
            referral: Some("a".to_owned()),
            events: vec![event(2, Some("a"), 0), later],
        };
        let read = |updated: &str| -> Referral {
            serde_json::from_str(&format!(r#"{{"id":"a","updatedDateTime":"{updated}"}}"#)).unwrap()
        };
        assert!(group.is_stale(&read("2026-01-01T00:00:05Z")));
        // Within a second: instants of another precision.
        assert!(!group.is_stale(&read("2026-01-01T00:00:10Z")));
        assert!(!group.is_stale(&read("2026-01-01T00:00:11Z")));
    }

    #[test]
    fn a_related_event_announces_no_version_of_the_referral_it_names() {
        let at = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        let mut own = event(1, Some("a"), 0);
        own.announced = Some(at("2026-01-01T00:00:05Z"));
        let mut related = event(2, Some("a"), 0);
        related.name = WebhookEventName::RelatedReferralUpdated.as_str().to_owned();
        related.announced = Some(at("2026-01-01T00:01:00Z"));
        let read = |updated: &str| -> Referral {
            serde_json::from_str(&format!(r#"{{"id":"a","updatedDateTime":"{updated}"}}"#)).unwrap()
        };
        let alone = Group {
            referral: Some("a".to_owned()),
            events: vec![related.clone()],
        };
        assert!(!alone.is_stale(&read("2026-01-01T00:00:00Z")));
        let both = Group {
            referral: Some("a".to_owned()),
            events: vec![own, related],
        };
        assert!(!both.is_stale(&read("2026-01-01T00:00:05Z")));
        assert!(both.is_stale(&read("2026-01-01T00:00:01Z")));
    }
}
