//! The first run of a sync read in parts at once: disjoint ranges of `createdDateTime` (an
//! instant that never changes, so a referral updated meanwhile stays in its part), each read
//! through the service's pages by one of a few tasks, fewer while the service answers 429.
//! A part is whole when the distinct referrals that its pass saw reach the service's count of
//! it (referrals are never removed, and without a filter none leaves a part, so the count only
//! grows). A service that gives ties in a new order on every request may show a pass less than
//! that: the part is then read again as a sync of its own (its range as the filter), which
//! proves its ties whole by cells, and its referrals come again (the same id and eTag). The
//! state records which parts are done: a run that stops goes on with the others, reading a part
//! it was in from its start.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::SyncState;
use super::requests::Requests;
use crate::concurrency::Concurrency;
use crate::error::{Error, ErrorKind};
use crate::query::{self, Filter, OrderBy, Query, SortKey};
use crate::types::Referral;
use crate::{Client, Continuation, Operation, Page};

/// The fewest referrals worth a part of their own: half a page of the service.
const PER_PART: i64 = 50;

/// Where a first run in parts stands, saved in the sync's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Progress {
    /// The run's bound: the watermark that the run leaves when every part is done.
    pub(crate) bound: DateTime<Utc>,
    pub(crate) parts: Vec<Part>,
}

/// One range of creation instants, and whether all of it was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Part {
    pub(crate) from: Option<DateTime<Utc>>,
    pub(crate) until: Option<DateTime<Utc>>,
    pub(crate) done: bool,
    /// Whether referrals may be created in it while it is read (the rest of the second of the
    /// run's clock): read as a sync of its own, never by a count.
    #[serde(default)]
    pub(crate) growing: bool,
}

/// The parts of a first run with `tasks` requests at once, and the first answer (whose `Date`
/// sets the run's reach); `None` when the run is better read a page after another: the
/// service does not count, or the referrals are few. The parts end at `now`, the service's
/// clock of the first answer as `now_of` reads it, so that no part gains members while it is
/// read and its count holds; the caller adds the part from there to the run's horizon.
pub(crate) async fn plan(
    client: &Client,
    tasks: usize,
    now_of: impl Fn(&Page) -> DateTime<Utc>,
) -> Result<Option<(Vec<Part>, Page)>, Error> {
    let Some(span) = crate::concurrency::creation_span(client, &Query::new()).await? else {
        return Ok(None);
    };
    let Some(total) = span.count.filter(|total| *total >= 2 * PER_PART) else {
        return Ok(None);
    };
    let now = now_of(&span.first);
    if span.earliest >= now {
        return Ok(None);
    }
    let count = crate::concurrency::range_count(tasks, Some(total), PER_PART);
    let (earliest, latest, first) = (span.earliest, span.latest, span.first);
    let mut parts: Vec<Part> = crate::concurrency::ranges(earliest, latest.min(now), count)
        .into_iter()
        .map(|(from, until)| Part {
            from,
            until,
            done: false,
            growing: false,
        })
        .collect();
    if let Some(last) = parts.last_mut() {
        last.until = Some(now);
    }
    Ok(Some((parts, first)))
}

/// The referrals of a page of a part; `whole` on the page that ends the part's reading.
pub(crate) struct Fetched {
    pub(crate) part: usize,
    pub(crate) result: Result<(Vec<Referral>, bool), Error>,
}

/// The tasks that read the parts not done; dropping it stops them after the request in hand.
pub(crate) struct Reader {
    pub(crate) pages: mpsc::Receiver<Fetched>,
}

/// Starts `tasks` tasks on the parts of `progress` that are not done.
pub(crate) fn start(client: &Client, progress: &Progress, tasks: usize) -> Reader {
    let jobs: VecDeque<(usize, Query, bool)> = progress
        .parts
        .iter()
        .enumerate()
        .filter(|(_, part)| !part.done)
        .map(|(index, part)| (index, part_query(part), part.growing))
        .collect();
    let tasks = tasks.clamp(1, jobs.len().max(1));
    let (sender, pages) = mpsc::channel(tasks);
    let jobs = Arc::new(Mutex::new(jobs));
    let task = Task {
        client: client.clone(),
        sender,
        concurrency: Concurrency::new(tasks),
    };
    for _ in 0..tasks {
        let (task, jobs) = (task.clone(), jobs.clone());
        tokio::spawn(async move {
            loop {
                let job = jobs
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .pop_front();
                let Some((part, query, growing)) = job else {
                    return;
                };
                let read = if growing {
                    task.by_sync(part, &query).await
                } else {
                    task.read_part(part, &query).await
                };
                if !read {
                    return;
                }
            }
        });
    }
    Reader { pages }
}

/// What a reading task works with: the client, the channel its pages go to, and the
/// concurrency that the tasks share.
#[derive(Clone)]
struct Task {
    client: Client,
    sender: mpsc::Sender<Fetched>,
    concurrency: Concurrency,
}

/// The query of a part: every referral created in its range, in the order of creation.
fn part_query(part: &Part) -> Query {
    let bounds = [
        part.from.map(|from| query::created_date_time().ge(from)),
        part.until.map(|until| query::created_date_time().lt(until)),
    ];
    let mut query = Query::new().order_by(OrderBy::asc(SortKey::CreatedDateTime));
    query.filter = bounds.into_iter().flatten().reduce(Filter::and);
    query
}

impl Task {
    /// Reads a part: in one pass when the distinct referrals seen reach its count, else as a
    /// sync of its own. `false` when it stopped (an error was sent, or the receiver is gone).
    async fn read_part(&self, part: usize, query: &Query) -> bool {
        let mut seen: HashSet<String> = HashSet::new();
        match self.pass(part, query, &mut seen).await {
            Some(true) => true,
            Some(false) => self.by_sync(part, query).await,
            None => false,
        }
    }

    /// Reads a part as a sync whose filter is its range, from no state: the sequential sync reads
    /// ties whole, by cells, whatever the order of the service's pages. Each batch is committed
    /// to that sync as it is sent; the last one ends the part.
    async fn by_sync(&self, part: usize, query: &Query) -> bool {
        let mut options = super::SyncOptions::new().skew(std::time::Duration::ZERO);
        if let Some(filter) = &query.filter {
            options = options.filter(filter.clone());
        }
        let mut run = match self.client.sync(None, options) {
            Ok(run) => run,
            Err(error) => {
                self.send(part, Err(error)).await;
                return false;
            }
        };
        loop {
            let next = match self.concurrency.send(run.next()).await {
                Ok(Some(mut batch)) => {
                    let (items, last) = (batch.take_items(), batch.is_last());
                    batch.commit();
                    Ok((items, last))
                }
                Ok(None) => Ok((Vec::new(), true)),
                Err(error) => Err(error),
            };
            let end = next.as_ref().map_or(true, |(_, last)| *last);
            let failed = next.is_err();
            if !self.send(part, next).await || failed {
                return false;
            }
            if end {
                return true;
            }
        }
    }

    /// Sends a page of `part`; `false` when the receiver is gone.
    async fn send(&self, part: usize, result: Result<(Vec<Referral>, bool), Error>) -> bool {
        self.sender.send(Fetched { part, result }).await.is_ok()
    }

    /// One pass over a part's pages: `Some(true)` when it ended the part, `Some(false)` when
    /// another pass is needed, `None` when it stopped.
    async fn pass(&self, part: usize, query: &Query, seen: &mut HashSet<String>) -> Option<bool> {
        let (client, concurrency) = (&self.client, &self.concurrency);
        let (mut next, mut count): (Option<Continuation>, Option<i64>) = (None, None);
        loop {
            let page = match &next {
                None => {
                    let counted = query.clone().count(true);
                    concurrency.send(client.list_page(&counted, None)).await
                }
                Some(from) => concurrency.send(client.list_page(query, Some(from))).await,
            };
            let page = match page.and_then(|page| {
                let after = page.next()?.cloned();
                Ok((after, page))
            }) {
                Ok((after, page)) => {
                    count = count.or(page.count);
                    next = after;
                    page
                }
                Err(error) => {
                    self.send(part, Err(error)).await;
                    return None;
                }
            };
            seen.extend(page.items.iter().filter_map(|item| item.id.clone()));
            let seen_all =
                count.is_none_or(|count| i64::try_from(seen.len()).unwrap_or(i64::MAX) >= count);
            let whole = next.is_none() && seen_all;
            if !self.send(part, Ok((page.items, whole))).await {
                return None;
            }
            if next.is_none() {
                return Some(whole);
            }
        }
    }
}

/// Whether a run from no state (`working`) reads in parts: the plan splits it. The plan's
/// first answer sets the run's bound in `working`, with the parts.
pub(super) async fn plan_run(
    requests: &Requests,
    concurrency: usize,
    working: &mut SyncState,
) -> Result<bool, Error> {
    let client = &requests.client;
    let now_of = |page: &Page| -> DateTime<Utc> {
        page.date
            .unwrap_or_else(|| client.runtime().clock().now())
            .into()
    };
    let Some((mut parts, first)) = plan(client, concurrency, now_of).await? else {
        return Ok(false);
    };
    let (horizon, bound) = requests.reach(&first);
    // The rest of the second of the first answer's `Date` (which counts whole seconds):
    // a referral created in it before the run began is in this part. Referrals may be
    // created in it while it is read, so it is read as a sync of its own, which does not
    // rest on a count.
    parts.push(Part {
        from: parts.last().and_then(|last| last.until),
        until: Some(horizon),
        done: false,
        growing: true,
    });
    working.bound = Some(bound);
    working.snapshot = Some(Progress { bound, parts });
    Ok(true)
}

/// The next batch of a first run in parts from `working`: the referrals of the next page that
/// any part's reader gives, and the state after them; once every part is done, none, and the
/// state that leaves the watermark at the run's bound (what lies after it comes once more in
/// the next run). The readers start at the first call; an error stops them.
pub(super) async fn next_part(
    requests: &Requests,
    concurrency: usize,
    reader: &mut Option<Reader>,
    working: &SyncState,
) -> Result<(Vec<Referral>, SyncState), Error> {
    let Some(progress) = working.snapshot.clone() else {
        return Err(stopped());
    };
    if progress.parts.iter().all(|part| part.done) {
        return Ok((Vec::new(), after_parts(working, progress.bound)));
    }
    let pages = &mut reader
        .get_or_insert_with(|| start(&requests.client, &progress, concurrency))
        .pages;
    let Some(Fetched { part, result }) = pages.recv().await else {
        *reader = None;
        return Err(stopped());
    };
    let (items, whole) = result.inspect_err(|_| *reader = None)?;
    let mut after = working.clone();
    if let Some(progress) = after.snapshot.as_mut() {
        progress.parts[part].done |= whole;
        if progress.parts.iter().all(|part| part.done) {
            after = after_parts(working, progress.bound);
        }
    }
    Ok((items, after))
}

fn stopped() -> Error {
    Error::new(
        ErrorKind::UnexpectedAnswer,
        Some(Operation::ListReferrals),
        "the readers of the first run stopped before every part was read; the next run goes on",
    )
}

/// The state after every part: the watermark at the run's bound, nothing delivered at it
/// yet (so the next run reads from it), and the run over.
fn after_parts(working: &SyncState, bound: DateTime<Utc>) -> SyncState {
    SyncState {
        watermark: Some(bound),
        delivered: std::collections::BTreeMap::new(),
        passed: None,
        tie: None,
        complete: false,
        bound: None,
        snapshot: None,
        filter: working.filter.clone(),
    }
}
