//! What a run has delivered and what it has committed: the states of a run and the batch
//! given out last, in one value, which a batch's commit moves.

use chrono::{DateTime, Utc};

use super::SyncState;
use crate::types::Referral;

/// The states of a run, from the last committed to where the run reads.
pub(super) struct Commit {
    /// The state as last committed (or as the sync was started from).
    pub(super) committed: SyncState,
    /// Where the run reads, ahead of `committed` by steps that delivered nothing.
    pub(super) working: SyncState,
    /// The last committed state whose watermark is not past the run's bound: what is saved
    /// while the run delivers past it.
    pub(super) within_bound: SyncState,
    /// The state given to the consumer to save last.
    pub(super) last_to_save: SyncState,
    /// The batch given out last was not committed.
    pub(super) uncommitted: bool,
    /// The referrals of the batch given out last, until it is committed.
    pub(super) given: Vec<Referral>,
    /// The state after the batch of a first run in parts given out last, to give it again,
    /// as it was, if it is not committed (a batch of the other phases is read anew).
    pub(super) pending: Option<SyncState>,
}

impl Commit {
    pub(super) fn new(state: SyncState) -> Self {
        Self {
            within_bound: state.clone(),
            last_to_save: state.clone(),
            working: state.clone(),
            committed: state,
            uncommitted: false,
            given: Vec::new(),
            pending: None,
        }
    }

    /// Forgets the batch given out last, which was not committed: the run reads again from
    /// the committed state.
    pub(super) fn read_again(&mut self) {
        self.given = Vec::new();
        self.working = self.committed.clone();
        self.uncommitted = false;
    }

    /// The batch's commit: the run moves to `after`, and `save` is what the consumer saves.
    pub(super) fn commit(&mut self, after: SyncState, save: &SyncState) {
        self.given = Vec::new();
        self.pending = None;
        self.working = after.clone();
        self.committed = after;
        self.uncommitted = false;
        self.within_bound = save.clone();
        self.last_to_save = save.clone();
    }

    /// The state to save once `items` are delivered, leading to `after`: `after` itself while
    /// its watermark is not past the run's `bound`; past it, the last saved state with the
    /// deliveries of `items` up to the bound (and `after`'s run marker), so that the saved
    /// watermark trails the service's clock by the skew and what lies past the bound comes once
    /// more in the next run.
    pub(super) fn to_save(
        &self,
        bound: Option<DateTime<Utc>>,
        items: &[Referral],
        after: &SyncState,
    ) -> SyncState {
        let Some(bound) = bound else {
            return after.clone();
        };
        if after.watermark.is_none_or(|watermark| watermark <= bound) {
            return after.clone();
        }
        let mut state = self.within_bound.clone();
        for referral in items {
            if referral.updated_date_time.is_some_and(|time| time <= bound) {
                state.deliver(referral);
            }
        }
        state.bound = after.bound;
        state
    }
}
