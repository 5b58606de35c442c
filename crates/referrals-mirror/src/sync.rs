//! Keeping a mirror current with the client's incremental sync: the loop of batches, the same
//! for every kind of database ([`Target`]).

use std::ops::ControlFlow;

use futures_util::StreamExt;
use referrals_client::Client;
use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::types::Referral;

use crate::reading::{Delivered, Failed, Ready, delivered};
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
    /// Writes `items` (whose JSON `jsons` holds, where it was made ahead) and `state` in one
    /// transaction, after every group written before. A database that writes in the
    /// background may return once the write started: a failure then comes from a later call
    /// or from [`Target::flush`].
    async fn write_batch(
        &mut self,
        items: Vec<Referral>,
        jsons: Vec<Option<String>>,
        state: SyncState,
    ) -> Result<(), Error>;
    /// Waits until every group given to [`Target::write_batch`] is written: the first failure.
    async fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

impl Target for Mirror {
    fn place(&self) -> std::path::PathBuf {
        self.path().to_owned()
    }

    async fn read_state(&mut self) -> Result<Option<SyncState>, Error> {
        self.state()
    }

    async fn write_batch(
        &mut self,
        items: Vec<Referral>,
        jsons: Vec<Option<String>>,
        state: SyncState,
    ) -> Result<(), Error> {
        self.write_made(&items, &jsons, &state)
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
    /// after each batch and after each write (on PostgreSQL, each write started): it may show
    /// progress, and stop the sync by
    /// returning `ControlFlow::Break` (the referrals delivered are then written with the
    /// state, and nothing is lost).
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

/// How long the batches gathered wait (from the first of them) before they are written, when
/// no more come: at most this, or until the write of the group before ends (on PostgreSQL,
/// until it started).
const GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// The batches gathered and not yet written: their referrals, the state after the last, and
/// when the group is to be written even if no batch comes.
#[derive(Default)]
struct Group {
    items: Vec<Referral>,
    jsons: Vec<Option<String>>,
    state: Option<SyncState>,
    deadline: Option<tokio::time::Instant>,
}

impl Group {
    fn add(&mut self, batch: Ready) {
        self.deadline
            .get_or_insert_with(|| tokio::time::Instant::now() + GROUP_WAIT);
        // Each JSON stays beside its referral: a batch whose JSON does not match its referrals
        // one for one has it made when written.
        if batch.jsons.len() == batch.items.len() {
            self.jsons.extend(batch.jsons);
        } else {
            self.jsons.extend(batch.items.iter().map(|_| None));
        }
        self.items.extend(batch.items);
        self.state = Some(batch.state);
    }

    /// Whether the group is to be written: it is full, or its first batch waited long enough.
    fn due(&self) -> bool {
        self.items.len() >= GROUP_ROWS
            || self
                .deadline
                .is_some_and(|deadline| deadline <= tokio::time::Instant::now())
    }

    /// Writes the group (the referrals and the state after them, in one transaction), and
    /// gives how many referrals it held.
    async fn write(&mut self, target: &mut impl Target) -> Result<u64, Error> {
        self.deadline = None;
        let Some(state) = self.state.take() else {
            return Ok(0);
        };
        let items = std::mem::take(&mut self.items);
        let jsons = std::mem::take(&mut self.jsons);
        let count = items.len() as u64;
        target.write_batch(items, jsons, state).await?;
        Ok(count)
    }

    /// Writes the group, then waits until every group given to `target` is written: how a run
    /// ends. Gives how many referrals the group held.
    async fn finish(&mut self, target: &mut impl Target) -> Result<u64, Error> {
        let count = self.write(target).await?;
        target.flush().await?;
        Ok(count)
    }
}

/// One run of the client's sync, to its end or to a stop. The batches are gathered into
/// groups of [`GROUP_ROWS`] referrals, or what came within [`GROUP_WAIT`] of the first of them
/// when the next batch is slower; each group is written with the state after its last batch in one
/// transaction, so that a stop or a failure loses nothing that the state counts as written.
/// While a group is written, the batches that come gather into the next one.
async fn run(
    target: &mut impl Target,
    client: &Client,
    options: SyncOptions,
    after_batch: &mut impl FnMut(u64) -> ControlFlow<()>,
) -> Result<SyncReport, Error> {
    let state = target.read_state().await?;
    let run = client
        .sync(state, options)
        .map_err(|source| Error::OtherFilter {
            path: target.place(),
            error: source,
        })?;
    let batches = delivered(run);
    tokio::pin!(batches);
    let (mut changed, mut group) = (0u64, Group::default());
    let mut end: Option<Delivered> = None;
    loop {
        if group.due() && end.is_none() {
            let full = std::mem::take(&mut group);
            let ahead = (&mut group, batches.as_mut(), &mut end);
            let (written, stop) = write_ahead(full, target, ahead, after_batch, changed).await?;
            changed = changed.saturating_add(written);
            let delivered = changed.saturating_add(group.items.len() as u64);
            // A run that ended (or failed) meanwhile is reported as such on the next turn.
            if stop || end.is_none() && after_batch(delivered).is_break() {
                changed = changed.saturating_add(group.finish(target).await?);
                return Ok(stopped(changed));
            }
            continue;
        }
        let batch = match (end.take(), group.deadline) {
            (Some(batch), _) => batch,
            (None, None) => batches.next().await.unwrap_or(Ok(None)),
            (None, Some(deadline)) => tokio::select! {
                biased;
                batch = batches.next() => batch.unwrap_or(Ok(None)),
                () = tokio::time::sleep_until(deadline) => continue,
            },
        };
        let batch = match batch {
            Ok(Some(batch)) => batch,
            // What was read before the end or a failure is kept: the next sync goes on from
            // there.
            Ok(None) => {
                changed = changed.saturating_add(group.finish(target).await?);
                return Ok(SyncReport {
                    changed,
                    ..SyncReport::default()
                });
            }
            Err(failed) => {
                changed = changed.saturating_add(group.finish(target).await?);
                let Failed::Run(source) = failed else {
                    return Ok(stopped(changed));
                };
                let path = target.place();
                return Err(Error::Sync {
                    path,
                    changed,
                    error: source,
                });
            }
        };
        group.add(batch);
        if after_batch(changed.saturating_add(group.items.len() as u64)).is_break() {
            changed = changed.saturating_add(group.finish(target).await?);
            return Ok(stopped(changed));
        }
    }
}

/// What a run that was stopped reports.
fn stopped(changed: u64) -> SyncReport {
    SyncReport {
        changed,
        stopped: true,
        skipped: false,
    }
}

/// Writes `full` while the batches that come meanwhile gather in `next`, up to a group: the
/// service and the decoding work while the database does. A run's end or failure met
/// meanwhile is kept in `end`, for after the write. Gives how many referrals `full` held, and
/// whether `after_batch` asked to stop (the batches gathered are then to be written too).
async fn write_ahead<S: futures_util::Stream<Item = Delivered>>(
    mut full: Group,
    target: &mut impl Target,
    (next, mut batches, end): (&mut Group, std::pin::Pin<&mut S>, &mut Option<Delivered>),
    after_batch: &mut impl FnMut(u64) -> ControlFlow<()>,
    changed: u64,
) -> Result<(u64, bool), Error> {
    let before = changed.saturating_add(full.items.len() as u64);
    let write = full.write(target);
    tokio::pin!(write);
    let mut stop = false;
    loop {
        let reading = !stop && end.is_none() && next.items.len() < GROUP_ROWS;
        tokio::select! {
            biased;
            written = &mut write => return Ok((written?, stop)),
            batch = batches.next(), if reading => match batch.unwrap_or(Ok(None)) {
                Ok(Some(batch)) => {
                    next.add(batch);
                    let delivered = before.saturating_add(next.items.len() as u64);
                    stop = after_batch(delivered).is_break();
                }
                other => *end = Some(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use referrals_sandbox::{Config, Sandbox};

    /// One write of [`Waiting`].
    #[derive(Debug)]
    struct Write {
        size: usize,
        in_run: bool,
        /// Whether the service answered a page while the write lasted.
        read_meanwhile: bool,
        /// Whether each referral came with its JSON, made ahead by the reading task.
        made_ahead: bool,
    }

    /// A database whose writes within a run last until the service has answered another
    /// page, or 10 s, and that records each write.
    struct Waiting<'a> {
        sandbox: &'a Sandbox,
        writes: Vec<Write>,
    }

    impl Target for Waiting<'_> {
        fn place(&self) -> std::path::PathBuf {
            "waiting".into()
        }

        async fn read_state(&mut self) -> Result<Option<SyncState>, Error> {
            Ok(None)
        }

        async fn write_batch(
            &mut self,
            items: Vec<Referral>,
            jsons: Vec<Option<String>>,
            state: SyncState,
        ) -> Result<(), Error> {
            let made_ahead = jsons.len() == items.len()
                && items.iter().zip(&jsons).all(|(item, json)| {
                    json.as_deref() == serde_json::to_string(item).ok().as_deref()
                });
            let before = self.sandbox.listings();
            let mut read = false;
            // A bound, not a measure: a sync that reads nothing while it writes never ends
            // the wait, and the test then fails rather than hangs.
            for _ in 0..1_000 {
                read = self.sandbox.listings() > before;
                if read || !state.in_run() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            self.writes.push(Write {
                size: items.len(),
                in_run: state.in_run(),
                read_meanwhile: read,
                made_ahead,
            });
            Ok(())
        }
    }

    /// Each JSON stays beside its referral: a batch whose JSON does not match its referrals one
    /// for one (which the reading task never gives) has none kept, each made when written.
    #[test]
    fn a_group_keeps_each_json_beside_its_referral() {
        let referral = |id: &str| -> Referral {
            serde_json::from_str(&format!(r#"{{"id":"{id}"}}"#)).unwrap()
        };
        let state = SyncState::from_json(
            r#"{"version":1,"filter":null,"watermark":null,"delivered":{},"complete":false,"bound":null}"#,
        )
        .unwrap();
        let ready = |items: Vec<Referral>, jsons: Vec<Option<String>>| Ready {
            items,
            jsons,
            state: state.clone(),
        };
        let mut group = Group::default();
        group.add(ready(
            vec![referral("a"), referral("b")],
            vec![Some("A".into())],
        ));
        group.add(ready(vec![referral("c")], vec![Some("C".into())]));
        group.add(ready(vec![referral("d")], vec![]));
        let ids: Vec<_> = group.items.iter().map(|item| item.id.clone()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"].map(|id| Some(id.to_owned())));
        assert_eq!(group.jsons, [None, None, Some("C".into()), None]);
    }

    /// While a group is written, the service is read for the next: a database's time and the
    /// service's overlap. Every referral is still written once, with the state after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_group_is_read_while_one_is_written() {
        referrals_client::install_crypto_provider();
        let sandbox = referrals_testkit::start(Config {
            seed_count: 3_498,
            ..referrals_testkit::config()
        })
        .await;
        let client = referrals_testkit::client(&sandbox.url());
        let mut target = Waiting {
            sandbox: &sandbox,
            writes: Vec::new(),
        };
        let options = SyncOptions::new().skew(std::time::Duration::ZERO);
        let report = sync_to(&mut target, &client, options, |_| ControlFlow::Continue(()));
        assert_eq!(report.await.unwrap().changed, 3_500);
        let writes = &target.writes;
        assert_eq!(writes.iter().map(|write| write.size).sum::<usize>(), 3_500);
        assert!(writes.iter().all(|write| write.size < 2 * GROUP_ROWS));
        assert!(writes.last().is_some_and(|write| !write.in_run));
        assert!(writes.iter().all(|write| write.made_ahead), "{writes:#?}");
        // Each write within the run but perhaps the last finds the service read meanwhile.
        let in_run = writes.iter().filter(|write| write.in_run).count();
        let overlapped = writes.iter().filter(|write| write.read_meanwhile).count();
        assert!(in_run >= 2 && overlapped + 1 >= in_run, "{writes:#?}");
    }
}
