//! Keeping the mirror current with the client's incremental sync.

use std::ops::ControlFlow;

use referrals_client::Client;
use referrals_client::sync::SyncOptions;

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
}

impl Mirror {
    /// Brings the mirror up to the service's present: every referral that matches `options`'
    /// filter and changed since the last sync, each batch written with the sync's state in one
    /// transaction. A sync that an earlier process left unfinished is finished first.
    pub async fn sync(
        &mut self,
        client: &Client,
        options: SyncOptions,
    ) -> Result<SyncReport, Error> {
        self.sync_with(client, options, |_| ControlFlow::Continue(()))
            .await
    }

    /// [`Self::sync`], calling `after_batch` with the number of referrals delivered so far
    /// after each batch is committed: it may show progress, and stop the sync (there, with
    /// nothing lost) by returning `ControlFlow::Break`.
    pub async fn sync_with(
        &mut self,
        client: &Client,
        options: SyncOptions,
        mut after_batch: impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<SyncReport, Error> {
        // A run that an earlier process left unfinished ends at the bound it started with;
        // a second run brings the mirror up to now.
        let resumed = self.state()?.is_some_and(|state| state.in_run());
        let first = self.run(client, options.clone(), &mut after_batch).await?;
        if !resumed || first.stopped {
            return Ok(first);
        }
        let more = self.run(client, options, &mut after_batch).await?;
        Ok(SyncReport {
            changed: first.changed.saturating_add(more.changed),
            stopped: more.stopped,
        })
    }

    /// One run of the client's sync, to its end or to a stop.
    async fn run(
        &mut self,
        client: &Client,
        options: SyncOptions,
        after_batch: &mut impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<SyncReport, Error> {
        let state = self.state()?;
        let mut run = client
            .sync(state, options)
            .map_err(|source| Error::OtherFilter {
                path: self.path.clone(),
                source,
            })?;
        let mut changed = 0u64;
        loop {
            let batch = run.next().await.map_err(|source| Error::Sync {
                path: self.path.clone(),
                changed,
                source,
            })?;
            let Some(mut batch) = batch else {
                return Ok(SyncReport {
                    changed,
                    stopped: false,
                });
            };
            let items = batch.take_items();
            let state = batch.commit();
            self.write(&items, &state)?;
            changed = changed.saturating_add(items.len() as u64);
            if after_batch(changed).is_break() {
                return Ok(SyncReport {
                    changed,
                    stopped: true,
                });
            }
        }
    }
}
