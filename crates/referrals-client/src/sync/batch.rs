//! A batch of a sync: its referrals, to deliver, and its commit, which moves the run past it
//! and gives the state to save.

use crate::types::Referral;

use super::{Run, SyncState};

/// The referrals of one page of a sync, to deliver, then commit.
pub struct Batch<'a> {
    /// The run; its commit's `given` holds the batch's referrals.
    pub(super) sync: &'a mut Run,
    /// Whether the referrals were taken ([`Batch::take_items`]).
    pub(super) taken: bool,
    pub(super) after: SyncState,
    /// The state to save once the batch is delivered (see `Commit::to_save`).
    pub(super) save: SyncState,
}

impl Batch<'_> {
    /// Whether this is the last batch of the run.
    pub fn is_last(&self) -> bool {
        self.after.bound.is_none()
    }

    /// The referrals to deliver, oldest change first.
    pub fn items(&self) -> &[Referral] {
        if self.taken {
            &[]
        } else {
            &self.sync.commit.given
        }
    }

    /// Takes the referrals, to deliver them. A batch of a first run in parts keeps a copy, to
    /// give it again if it is dropped without a commit; [`Batch::deliver`] takes them without.
    pub fn take_items(&mut self) -> Vec<Referral> {
        if std::mem::replace(&mut self.taken, true) {
            return Vec::new();
        }
        let commit = &mut self.sync.commit;
        if commit.pending.is_some() {
            commit.given.clone()
        } else {
            std::mem::take(&mut commit.given)
        }
    }

    /// Takes the referrals and commits the batch in one step, without a copy: the run moves
    /// past the batch at once, so it is not delivered again even if the consumer then fails
    /// to keep the referrals. A consumer that writes them with the state returned in one
    /// transaction (as the mirror does) drops the run when that write fails, and the next run
    /// starts from the state it last wrote. After [`Batch::take_items`], the referrals are
    /// empty.
    pub fn deliver(self) -> (Vec<Referral>, SyncState) {
        let items = if self.taken {
            Vec::new()
        } else {
            std::mem::take(&mut self.sync.commit.given)
        };
        (items, self.commit())
    }

    /// Marks the batch delivered: the sync moves past it, and the state to save is returned.
    /// A batch dropped without a commit is delivered again.
    pub fn commit(self) -> SyncState {
        self.sync.commit.commit(self.after, &self.save);
        self.save
    }
}
