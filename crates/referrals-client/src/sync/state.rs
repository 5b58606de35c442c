//! The saved state of a sync ([`SyncState`]): the watermark, what was delivered at it, the
//! creation instant that a reading by `createdDateTime` passed, the cells left of a tie read by
//! cells, and during a run its bound; and its versioned JSON form.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::types::Referral;
use crate::versioned;

/// The version of the serialized form of [`SyncState`]. Versions 1 (without `passed`) and 2
/// (without `tie`) are read too: they mean the same as version 3 without those, and a state
/// without them is written in the oldest version that holds it, which older clients read.
const STATE_VERSION: u32 = 3;

/// Where a sync stands: what has been delivered and committed.
///
/// Save it after each [`super::Batch::commit`] ([`Self::to_json`]) and give it to the next
/// [`crate::Client::sync`]. It holds the watermark (an instant of `updatedDateTime`), the ids and eTags
/// delivered at exactly that instant, whether all of them have been, and during a run its upper
/// bound. While a group of referrals at the watermark is read by `createdDateTime`, it holds the
/// creation instant that the reading has passed, and only the ids delivered from there on; and
/// while a tie of referrals that share both instants is read by cells, the cells left rather
/// than the ids that the cells done delivered: its size stays near a page or two, however many
/// referrals share the instants (but for the readings that [`crate::sync`] names, which keep
/// the ids they deliver until they end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub(super) filter: Option<String>,
    pub(super) watermark: Option<DateTime<Utc>>,
    pub(super) delivered: BTreeMap<String, Mark>,
    /// Every referral at the watermark created before this instant was delivered.
    pub(super) passed: Option<DateTime<Utc>>,
    /// A tie at the watermark being read by cells: the cells left. The ids that the cells done
    /// delivered are not kept: those cells are not read again.
    pub(super) tie: Option<super::cells::Tie>,
    pub(super) complete: bool,
    pub(super) bound: Option<DateTime<Utc>>,
    /// A first run in parts under way ([`super::SyncOptions::concurrency`]).
    pub(super) snapshot: Option<super::snapshot::Progress>,
}

/// What a state knows of a referral delivered at the watermark.
#[derive(Debug, Clone)]
pub(super) struct Mark {
    e_tag: String,
    /// Its creation instant, when known: not for a state read back from its JSON until a page
    /// shows the referral again ([`SyncState::learn`]).
    created: Option<DateTime<Utc>>,
}

/// Two marks are equal when they hold the same eTag: the creation instant is a cache.
impl PartialEq for Mark {
    fn eq(&self, other: &Self) -> bool {
        self.e_tag == other.e_tag
    }
}

impl Eq for Mark {}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredState {
    version: u32,
    filter: Option<String>,
    watermark: Option<String>,
    delivered: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tie: Option<super::cells::Tie>,
    complete: bool,
    bound: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot: Option<super::snapshot::Progress>,
}

/// Why a saved state cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the saved sync state cannot be used: {0}")]
pub struct StateError(String);

fn instant(text: &str) -> Result<DateTime<Utc>, StateError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| StateError(format!("`{text}` is not a date-time: {error}")))
}

/// A state of version 1 or 2 read as version 3: the same members, without `passed` (1) and
/// `tie` (1 and 2).
fn upgrade(value: &mut serde_json::Value) -> Result<(), StateError> {
    let version = value
        .get(versioned::VERSION)
        .and_then(serde_json::Value::as_u64);
    let absent: &[&str] = match version {
        Some(1) => &["passed", "tie"],
        Some(2) => &["tie"],
        _ => return Ok(()),
    };
    if let Some(member) = absent.iter().find(|member| value.get(**member).is_some()) {
        return Err(StateError(format!(
            "it is damaged: a state of version {} has no `{member}`",
            version.unwrap_or_default()
        )));
    }
    value[versioned::VERSION] = STATE_VERSION.into();
    Ok(())
}

pub(super) fn text(time: DateTime<Utc>) -> String {
    referrals_model::instant_text(&time)
}

impl SyncState {
    /// The state as JSON text, to save.
    pub fn to_json(&self) -> String {
        // The oldest version that says all: an older client that shares the state reads it.
        let version = match (&self.tie, self.passed) {
            (Some(_), _) => STATE_VERSION,
            (None, Some(_)) => 2,
            (None, None) => 1,
        };
        let stored = StoredState {
            version,
            filter: self.filter.clone(),
            watermark: self.watermark.map(text),
            delivered: (self.delivered.iter())
                .map(|(id, mark)| (id.clone(), mark.e_tag.clone()))
                .collect(),
            passed: self.passed.map(text),
            tie: self.tie.clone(),
            complete: self.complete,
            bound: self.bound.map(text),
            snapshot: self.snapshot.clone(),
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// A state saved by [`Self::to_json`]. Text that is not one, or of another version, is
    /// refused with an error that says what is wrong.
    pub fn from_json(text: &str) -> Result<Self, StateError> {
        let mut value: serde_json::Value = serde_json::from_str(text)
            .map_err(|error| StateError(format!("it is not JSON: {error}")))?;
        upgrade(&mut value)?;
        let stored: StoredState =
            versioned::read(value, STATE_VERSION, "a sync state").map_err(StateError)?;
        let marks = stored.delivered.into_iter().map(|(id, e_tag)| {
            let mark = Mark {
                e_tag,
                created: None,
            };
            (id, mark)
        });
        if let Some(tie) = &stored.tie {
            tie.check()
                .map_err(|reason| StateError(format!("it is damaged: {reason}")))?;
        }
        let state = Self {
            filter: stored.filter,
            watermark: stored.watermark.as_deref().map(instant).transpose()?,
            delivered: marks.collect(),
            passed: stored.passed.as_deref().map(instant).transpose()?,
            tie: stored.tie,
            complete: stored.complete,
            bound: stored.bound.as_deref().map(instant).transpose()?,
            snapshot: stored.snapshot,
        };
        if state.watermark.is_none()
            && (!state.delivered.is_empty()
                || state.complete
                || state.passed.is_some()
                || state.tie.is_some())
        {
            return Err(StateError(
                "it lists delivered referrals without a watermark".into(),
            ));
        }
        Ok(state)
    }

    /// The instant up to which every change has been delivered and committed; `None` before
    /// the first commit.
    pub fn watermark(&self) -> Option<DateTime<Utc>> {
        self.watermark
    }

    /// Whether a run was in progress when the state was saved. A sync started from such a
    /// state finishes that run, up to the bound it started with; start another run after it
    /// to reach the service's present.
    pub fn in_run(&self) -> bool {
        self.bound.is_some()
    }

    pub(super) fn fresh(filter: Option<String>) -> Self {
        Self {
            filter,
            watermark: None,
            delivered: BTreeMap::new(),
            passed: None,
            tie: None,
            complete: false,
            bound: None,
            snapshot: None,
        }
    }

    /// Whether `referral` was delivered already at the watermark, in this version: created
    /// before the instant that the reading by creation passed, or marked. Before `passed` no
    /// eTag is kept: a new version of a referral gets a later `updatedDateTime` than the one it
    /// replaces, so a version at the watermark created before `passed` is the one delivered.
    pub(super) fn already_delivered(&self, referral: &Referral) -> bool {
        let passed = matches!(
            (referral.created_date_time, self.passed),
            (Some(created), Some(passed)) if created < passed
        );
        referral.updated_date_time.is_some()
            && referral.updated_date_time == self.watermark
            && (passed
                || referral.id.as_ref().is_some_and(|id| {
                    self.delivered.get(id).map(|mark| mark.e_tag.as_str())
                        == Some(referral.e_tag.as_deref().unwrap_or_default())
                }))
    }

    /// Every referral at the watermark created before `created` was delivered: their marks go.
    /// A tie read by cells ends there.
    pub(super) fn pass_created(&mut self, created: DateTime<Utc>) {
        self.tie = None;
        if self.passed.is_some_and(|passed| passed >= created) {
            return;
        }
        self.passed = Some(created);
        self.delivered
            .retain(|_, mark| mark.created.is_none_or(|at| at >= created));
    }

    /// The creation instants of marked referrals that `items` show at the watermark, so that
    /// the marks of a state read back can go once the reading passes them.
    pub(super) fn learn(&mut self, items: &[Referral]) {
        for referral in items {
            if referral.updated_date_time != self.watermark {
                continue;
            }
            let Some(id) = &referral.id else { continue };
            if let Some(mark) = self.delivered.get_mut(id) {
                mark.created = mark.created.or(referral.created_date_time);
            }
        }
    }

    /// Every referral at the watermark was delivered: the next request asks for later ones.
    pub(super) fn finish_instant(&mut self) {
        self.complete = true;
        self.passed = None;
        self.tie = None;
        self.delivered.clear();
    }

    /// The marks of `ids`, whose cell of a tie is done: its referrals are not read again.
    pub(super) fn forget<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) {
        for id in ids {
            self.delivered.remove(id);
        }
    }

    /// Records the delivery of `referral`: the watermark moves to its instant when that is later.
    pub(super) fn deliver(&mut self, referral: &Referral) {
        let (Some(time), Some(id)) = (referral.updated_date_time, referral.id.as_ref()) else {
            return;
        };
        match self.watermark {
            Some(watermark) if time < watermark => return,
            Some(watermark) if time == watermark => {}
            _ => {
                self.watermark = Some(time);
                self.delivered.clear();
                self.passed = None;
                self.tie = None;
                self.complete = false;
            }
        }
        let mark = Mark {
            e_tag: referral.e_tag.clone().unwrap_or_default(),
            created: referral.created_date_time,
        };
        self.delivered.insert(id.clone(), mark);
    }
}
