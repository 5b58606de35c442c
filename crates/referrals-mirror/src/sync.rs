//! Keeping a mirror current with the client's incremental sync: the loop of batches, the same
//! for every kind of database ([`Target`]).

use std::ops::ControlFlow;

use referrals_client::Client;
use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::types::Referral;

use crate::{Error, Mirror};

/// What a [`Mirror::sync`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncReport {
    /// How many referrals the sync delivered (each written unless the mirror had a newer
    /// version).
    pub changed: u64,
    /// Whether the caller stopped it before its end ([`Mirror::sync_with`]); the next sync
    /// goes on from the last batch.
    pub stopped: bool,
    /// Whether another process was syncing the same database, so this one did nothing (a
    /// database server's mirror runs one sync at a time).
    pub skipped: bool,
}

/// A database that a sync writes to: its state, and each group of batches with the state after
/// it in one transaction.
pub(crate) trait Target {
    /// How errors name the database.
    fn place(&self) -> std::path::PathBuf;
    /// The sync's state as the database holds it, checked.
    async fn read_state(&mut self) -> Result<Option<SyncState>, Error>;
    /// Writes `items` and `state` in one transaction.
    async fn write_batch(&mut self, items: &[Referral], state: &SyncState) -> Result<(), Error>;
}

impl Target for Mirror {
    fn place(&self) -> std::path::PathBuf {
        self.path().to_owned()
    }

    async fn read_state(&mut self) -> Result<Option<SyncState>, Error> {
        self.state()
    }

    async fn write_batch(&mut self, items: &[Referral], state: &SyncState) -> Result<(), Error> {
        self.write(items, state)
    }
}

impl Mirror {
    /// Brings the mirror up to the service's present: every referral that matches `options`'
    /// filter and changed since the last sync, the batches written in groups, each with the
    /// sync's state after it in one transaction. A sync that an earlier process left unfinished is finished first.
    pub async fn sync(
        &mut self,
        client: &Client,
        options: SyncOptions,
    ) -> Result<SyncReport, Error> {
        self.sync_with(client, options, |_| ControlFlow::Continue(()))
            .await
    }

    /// [`Self::sync`], calling `after_batch` with the number of referrals delivered so far
    /// after each batch: it may show progress, and stop the sync by returning
    /// `ControlFlow::Break` (the referrals delivered are then written with the state, and
    /// nothing is lost).
    pub async fn sync_with(
        &mut self,
        client: &Client,
        options: SyncOptions,
        after_batch: impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<SyncReport, Error> {
        sync_to(self, client, options, after_batch).await
    }
}

/// A sync into `target`: the run that an earlier process left unfinished ends at the bound it
/// started with, and a second run brings the mirror up to now.
pub(crate) async fn sync_to(
    target: &mut impl Target,
    client: &Client,
    options: SyncOptions,
    mut after_batch: impl FnMut(u64) -> ControlFlow<()>,
) -> Result<SyncReport, Error> {
    let resumed = target
        .read_state()
        .await?
        .is_some_and(|state| state.in_run());
    let first = run(target, client, options.clone(), &mut after_batch).await?;
    if !resumed || first.stopped {
        return Ok(first);
    }
    let more = run(target, client, options, &mut after_batch).await?;
    Ok(SyncReport {
        changed: first.changed.saturating_add(more.changed),
        stopped: more.stopped,
        skipped: false,
    })
}

/// How many referrals a sync gathers before it writes them with its state: batches that
/// arrive together are written in one transaction, which writes each page of the database and
/// of its indexes once for all of them, not once for each batch.
const GROUP_ROWS: usize = 1_000;

/// How long the batches gathered wait at most (from the first of them) before they are
/// written, when no more come.
const GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// The batches gathered and not yet written: their referrals, the state after the last, and
/// when the group is to be written even if no batch comes.
#[derive(Default)]
struct Group {
    items: Vec<Referral>,
    state: Option<SyncState>,
    deadline: Option<tokio::time::Instant>,
}

impl Group {
    fn add(&mut self, items: Vec<Referral>, state: SyncState) {
        self.deadline
            .get_or_insert_with(|| tokio::time::Instant::now() + GROUP_WAIT);
        self.items.extend(items);
        self.state = Some(state);
    }

    /// Writes the group (the referrals and the state after them, in one transaction), and
    /// gives how many referrals it held.
    async fn write(&mut self, target: &mut impl Target) -> Result<u64, Error> {
        self.deadline = None;
        let Some(state) = self.state.take() else {
            return Ok(0);
        };
        let items = std::mem::take(&mut self.items);
        target.write_batch(&items, &state).await?;
        Ok(items.len() as u64)
    }
}

/// One run of the client's sync, to its end or to a stop. The batches are gathered into
/// groups of [`GROUP_ROWS`] referrals, or what came within [`GROUP_WAIT`] of the first of them
/// when the next batch is slower; each group is written with the state after its last batch in one
/// transaction, so that a stop or a failure loses nothing that the state counts as written.
async fn run(
    target: &mut impl Target,
    client: &Client,
    options: SyncOptions,
    after_batch: &mut impl FnMut(u64) -> ControlFlow<()>,
) -> Result<SyncReport, Error> {
    let state = target.read_state().await?;
    let mut run = client
        .sync(state, options)
        .map_err(|source| Error::OtherFilter {
            path: target.place(),
            error: source,
        })?;
    let (mut changed, mut group) = (0u64, Group::default());
    let stopped = |changed| SyncReport {
        changed,
        stopped: true,
        skipped: false,
    };
    loop {
        let next = run.next();
        tokio::pin!(next);
        let batch = match group.deadline {
            None => next.await,
            Some(deadline) => tokio::select! {
                biased;
                batch = &mut next => batch,
                () = tokio::time::sleep_until(deadline) => {
                    changed = changed.saturating_add(group.write(target).await?);
                    if after_batch(changed).is_break() {
                        return Ok(stopped(changed));
                    }
                    next.await
                }
            },
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(source) => {
                // What was read before the failure is kept: the next sync goes on from there.
                changed = changed.saturating_add(group.write(target).await?);
                let path = target.place();
                return Err(Error::Sync {
                    path,
                    changed,
                    error: source,
                });
            }
        };
        let Some(batch) = batch else {
            changed = changed.saturating_add(group.write(target).await?);
            return Ok(SyncReport {
                changed,
                ..SyncReport::default()
            });
        };
        let (items, state) = batch.deliver();
        group.add(items, state);
        let delivered = changed.saturating_add(group.items.len() as u64);
        let stop = after_batch(delivered).is_break();
        if stop || group.items.len() >= GROUP_ROWS {
            changed = changed.saturating_add(group.write(target).await?);
        }
        if stop {
            return Ok(stopped(changed));
        }
    }
}
