//! Incremental sync: the referrals that changed since a saved state, for a job that keeps a
//! copy (a CRM, a database) and runs every few minutes, with nothing missed.
//!
//! ```no_run
//! # async fn run(client: referrals_client::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use referrals_client::query;
//! use referrals_client::sync::{SyncOptions, SyncState};
//! use referrals_client::types::ReferralDirection;
//!
//! // The state saved by the last run, if any (a file, a row of the CRM's database...).
//! let saved: Option<SyncState> = match std::fs::read_to_string("sync-state.json") {
//!     Ok(text) => Some(SyncState::from_json(&text)?),
//!     Err(_) => None,
//! };
//! let options = SyncOptions::new().filter(query::direction().eq(ReferralDirection::Incoming));
//! let mut run = client.sync(saved, options)?;
//! while let Some(batch) = run.next().await? {
//!     for referral in batch.items() {
//!         // Upsert by id: a referral may come twice, with the same id and eTag.
//!         println!("{:?} at eTag {:?}", referral.id, referral.e_tag);
//!     }
//!     std::fs::write("sync-state.json", batch.commit().to_json())?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # What it guarantees
//!
//! - **At least once.** Every referral that matches the filter, in every version that exists at
//!   the end of a run, is delivered in that run or an earlier one. The state moves only when the
//!   consumer commits a batch ([`Batch::commit`]); after a crash between delivery and commit, the
//!   next run delivers that batch again, and nothing else twice. A duplicate carries the same id
//!   and eTag as the first delivery: an upsert by id absorbs it.
//! - **Nothing missed, whatever the service's paging does.** A run asks the service for the
//!   referrals with `updatedDateTime ge <watermark> and updatedDateTime le <reach>`, ordered by
//!   `updatedDateTime asc`, and takes only the first page of each answer: the next request starts
//!   again from the last instant delivered, and drops what was already delivered at that
//!   instant. A `$skiptoken` is never trusted to stay valid, nor to be a key rather than an
//!   offset: a referral that changes during a run leaves the result set without shifting any
//!   other out of it. A group of referrals that share one instant and do not fit a page is read
//!   the same way by `createdDateTime`, which never changes (`updatedDateTime eq <instant> and
//!   createdDateTime ge <last delivered>`). Referrals that share their creation instant too,
//!   more than a page of them (a tie), are read through the service's pages in one pass when
//!   these show each once and the service's count (`$count`) confirms them. Otherwise (a
//!   service that gives ties in a new order on every request, or does not count) the tie is cut
//!   into cells by the values of other members until each cell fits a page, which one answer
//!   shows whole: requests grow with the size of the tie, not with passes over it. Only a cell
//!   whose referrals share every value that could cut it, or a tie whose cells showed fewer
//!   referrals than the service counts, is read in passes. Its size is the service's count
//!   when it is the same before and after a pass (a group only loses referrals, to later
//!   instants, so a referral that left it meanwhile cannot have hidden another); a service that
//!   leaves the count out gives the rows of a pass, and two passes in a row must find the same.
//!   The reading is complete when the passes that found the same size saw that many distinct
//!   referrals.
//! - **A run holds back nothing it saw.** A run reads up to the service's clock when it began
//!   (the `Date` header of its first answer, to the end of that second): after a run, the copy
//!   holds every matching referral that the service held when the run began, in that version
//!   or a later one. Only the saved watermark trails, by [`SyncOptions::skew`] (two minutes): a
//!   change that a service node stamps a little late is not passed over, and what lies between
//!   the watermark and the run's reach is delivered now and may come once more in the next run
//!   (the same id and eTag). A referral that changes during the run, after its reach, comes in
//!   the next one. Without a `Date` header, the client's clock is used.
//! - **A first run in parts, at once.** With [`SyncOptions::concurrency`] above 1, a run from
//!   no state and without a filter reads disjoint ranges of `createdDateTime` (up to the
//!   service's clock when it began) with that many requests at once, fewer while the service
//!   answers 429, and delivers the pages as they come. A range is done when the distinct
//!   referrals that its pass saw reach the service's count of it; otherwise (a service that
//!   gives ties in a new order on every request) the range is read again as a sync of its own,
//!   filtered to it, which reads its ties by cells, and its referrals come again. The
//!   state records the ranges done, so a stopped run goes on with the others. The last batch
//!   leaves the watermark at the run's bound: what changed meanwhile comes in the next run.
//! - **Resumable.** A [`SyncState`] is a small versioned value: the watermark (an instant), the
//!   ids and eTags already delivered at that instant, and, during a run, its bound. In a group
//!   read by `createdDateTime` it holds the creation instant that the reading passed and the
//!   ids delivered from there on, so its size stays near a page however large the group: a
//!   bulk change that stamps many referrals with one instant costs time and state that grow
//!   linearly with their number. A state
//!   that is corrupt, from another version or for another filter is refused with an error that
//!   says so; nothing is delivered under a misread state.
//!
//! # Odd answers
//!
//! - A referral without `updatedDateTime` is delivered when it comes (it cannot come again with
//!   a watermark, as no `ge` holds for it) and does not move the watermark.
//! - A referral after the run's reach is left for the next run; one before the watermark is
//!   delivered and does not move the watermark back.
//! - A page that is not in ascending order of `updatedDateTime` ends the run with an error:
//!   going on could pass over referrals.
//! - A wrong token, a failed connection or a throttled service end the run with the error,
//!   after the client's retries; the next run starts from the last committed batch.

mod batch;
mod group;
mod snapshot;
mod split;
mod state;

use group::{Group, Pass};
use state::text;

pub use batch::Batch;
pub use state::{StateError, SyncState};

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, ErrorKind};
use crate::query::{self, Filter, OrderBy, Query, SortKey};
use crate::types::Referral;
use crate::{Client, Operation, Page};

const LIST: Operation = Operation::ListReferrals;

/// How many full passes over a group of referrals that share both instants may end without
/// the whole group before the run gives up with an error (the next run goes on from what was
/// delivered).
const MAX_PASSES: usize = 20;

/// How a sync runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    filter: Option<Filter>,
    skew: Duration,
    concurrency: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl SyncOptions {
    /// Every referral, with a skew of two minutes.
    pub fn new() -> Self {
        Self {
            filter: None,
            skew: Duration::from_secs(120),
            concurrency: 1,
        }
    }

    /// How many requests a first run (from no state, without a filter) keeps in flight at
    /// most (default 1: a page after another). Above 1, the first run reads disjoint ranges of
    /// `createdDateTime` at once, fewer while the service answers 429, and its batches come
    /// in the order that pages arrive; the state records which ranges are done, so a run that
    /// stops goes on with the others. A service that does not count (`$count`), a filter, or
    /// fewer than a hundred referrals are read a page after another.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Only the referrals that `filter` keeps (such as `direction eq 'Incoming'`). A state is
    /// tied to its filter: another filter starts from scratch.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// How far behind the service's clock a run stops (default: two minutes). A change that the
    /// service stamps later than it makes it visible, by up to this much, is still delivered;
    /// every change arrives this much later.
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }
}

/// A run of a sync: [`Self::next`] gives the next batch of changed referrals, until the run is
/// over.
pub struct Run {
    client: Client,
    user_filter: Option<Filter>,
    skew: Duration,
    committed: SyncState,
    /// Where the sync is, which may be ahead of `committed` by steps that delivered nothing.
    working: SyncState,
    /// The batch given out last was not committed: start again from `committed`.
    uncommitted: bool,
    /// The batch given out last is the run's last.
    last_given: bool,
    /// The run is over.
    done: bool,
    /// How the group of referrals at the watermark's instant is being read, if it is.
    group: Option<Group>,
    /// The run's reach: the service's clock when the run began. A run reads and delivers every
    /// change up to it.
    horizon: Option<DateTime<Utc>>,
    /// The run's bound: the horizon less the skew. The saved watermark never passes it, so
    /// what lies between the bound and the horizon comes once more in the next run.
    run_bound: Option<DateTime<Utc>>,
    /// The last committed state whose watermark is not past the bound: what is saved while the
    /// run delivers past it.
    within_bound: SyncState,
    /// The state given to the consumer to save last.
    last_to_save: SyncState,
    /// Requests at once for a first run in parts; 1: none.
    concurrency: usize,
    /// Whether this run may still start a first run in parts (decided at its first request).
    may_split: bool,
    /// The readers of a first run in parts.
    reader: Option<snapshot::Reader>,
    /// The referrals of the batch given out last, until it is committed (a batch of a first
    /// run in parts that is not committed is given again).
    given: Vec<Referral>,
    /// The state after the batch of a first run in parts given out last, to give it again if
    /// it is not committed.
    pending: Option<SyncState>,
}

/// The referrals of `items` still at `instant` that `state` has not delivered, each once.
fn undelivered(items: Vec<Referral>, state: &SyncState, instant: DateTime<Utc>) -> Vec<Referral> {
    let mut fresh: Vec<Referral> = Vec::new();
    for referral in items {
        if referral.updated_date_time == Some(instant)
            && !state.already_delivered(&referral)
            && !fresh.iter().any(|known| known.id == referral.id)
        {
            fresh.push(referral);
        }
    }
    fresh
}

impl Client {
    /// A sync of the referrals that changed since `state` (`None`: every referral), as
    /// [`crate::sync`] describes. A state made with another filter than `options`' is refused.
    pub fn sync(&self, state: Option<SyncState>, options: SyncOptions) -> Result<Run, Error> {
        let filter_text = options.filter.as_ref().map(ToString::to_string);
        let state = match state {
            Some(state) if state.filter != filter_text => {
                return Err(Error::new(
                    ErrorKind::InvalidContinuation,
                    Some(LIST),
                    format!(
                        "the saved sync state is for the filter {}, not {}; start from no state \
                         to sync with another filter",
                        describe(state.filter.as_deref()),
                        describe(filter_text.as_deref())
                    ),
                ));
            }
            Some(state) => state,
            None => SyncState::fresh(filter_text),
        };
        let skew = chrono::Duration::from_std(options.skew).unwrap_or(chrono::Duration::MAX);
        let may_split = options.concurrency > 1 && options.filter.is_none();
        Ok(Run {
            client: self.clone(),
            user_filter: options.filter,
            skew: options.skew,
            horizon: state
                .bound
                .and_then(|bound| bound.checked_add_signed(skew))
                .and_then(|now| now.checked_add_signed(chrono::Duration::seconds(1))),
            run_bound: state.bound,
            within_bound: state.clone(),
            last_to_save: state.clone(),
            working: state.clone(),
            committed: state,
            uncommitted: false,
            last_given: false,
            done: false,
            group: None,
            concurrency: options.concurrency,
            may_split,
            reader: None,
            given: Vec::new(),
            pending: None,
        })
    }
}

fn describe(filter: Option<&str>) -> String {
    filter.map_or_else(|| "(none)".to_owned(), |text| format!("`{text}`"))
}

impl Run {
    /// The state as last committed (or as the sync was started from).
    pub fn state(&self) -> &SyncState {
        &self.committed
    }

    /// The next batch of changed referrals; `None` when the run is over. The last batch of a
    /// run may be empty: its commit is the state that says the run is over. An error ends the
    /// run; the next run starts from the last committed batch.
    pub async fn next(&mut self) -> Result<Option<Batch<'_>>, Error> {
        if self.in_parts().await? {
            return self.next_part().await;
        }
        if self.uncommitted {
            // The last batch was not committed: it comes again, read anew.
            self.given = Vec::new();
            self.working = self.committed.clone();
            self.uncommitted = false;
            self.last_given = false;
            self.done = false;
            self.group = None;
        }
        if self.last_given {
            self.last_given = false;
            self.done = true;
        }
        if self.done {
            return Ok(None);
        }
        loop {
            let step = if self.group.is_some() {
                self.group(self.working.clone()).await?
            } else {
                self.step().await?
            };
            match step {
                Step::Deliver { items, after, last } => {
                    self.uncommitted = true;
                    self.last_given = last;
                    let save = self.to_save(&items, &after);
                    return Ok(Some(self.give(items, after, save)));
                }
                Step::NothingNew(after) => self.working = after,
                Step::Done(after) if self.to_save(&[], &after) == self.last_to_save => {
                    self.done = true;
                    return Ok(None);
                }
                Step::Done(after) => {
                    // The run is over, and the state to save says so: an empty batch, whose
                    // commit is the state that the next run starts from.
                    self.working = after.clone();
                    self.uncommitted = true;
                    self.last_given = true;
                    let save = self.to_save(&[], &after);
                    return Ok(Some(self.give(Vec::new(), after, save)));
                }
            }
        }
    }

    /// The batch of `items`, after which the state is `after`, and `save` the state to save.
    fn give(&mut self, items: Vec<Referral>, after: SyncState, save: SyncState) -> Batch<'_> {
        self.given = items;
        Batch {
            sync: self,
            taken: false,
            after,
            save,
        }
    }

    /// The filter of a request: the user's, and the bounds on `updatedDateTime`.
    fn filter(&self, lower: Option<Filter>, upper: Option<DateTime<Utc>>) -> Option<Filter> {
        let bounds = [
            lower,
            upper.map(|bound| query::updated_date_time().le(bound)),
        ];
        self.user_filter
            .clone()
            .into_iter()
            .chain(bounds.into_iter().flatten())
            .reduce(Filter::and)
    }

    fn lower_bound(state: &SyncState) -> Option<Filter> {
        state.watermark.map(|watermark| {
            if state.complete {
                query::updated_date_time().gt(watermark)
            } else {
                query::updated_date_time().ge(watermark)
            }
        })
    }

    async fn page(&self, query: &Query) -> Result<Page, Error> {
        self.client.list_page(query, None).await
    }

    /// The state to save once `items` are delivered, leading to `after`: `after` itself while
    /// its watermark is not past the run's bound; past it, the last saved state with the
    /// deliveries of `items` up to the bound (and `after`'s run marker), so that the saved
    /// watermark trails the service's clock by the skew and what lies past the bound comes once
    /// more in the next run.
    fn to_save(&self, items: &[Referral], after: &SyncState) -> SyncState {
        let Some(bound) = self.run_bound else {
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

    /// One request of the run, from the watermark to the horizon, and what it leads to.
    async fn step(&mut self) -> Result<Step, Error> {
        let mut state = self.working.clone();
        let query = with_filter(
            Query::new().order_by(OrderBy::asc(SortKey::UpdatedDateTime)),
            self.filter(Self::lower_bound(&state), self.horizon),
        );
        let page = self.page(&query).await?;
        let horizon = match self.horizon {
            Some(horizon) => horizon,
            None => {
                let (horizon, bound) = self.reach(&page);
                (self.horizon, self.run_bound) = (Some(horizon), Some(bound));
                horizon
            }
        };
        state.bound = state.bound.or(self.run_bound);
        check_order(&page.items)?;
        let has_next = page.next()?.is_some();

        // The referrals of the page up to the horizon; those after it come in the next run.
        let received = page.items.len();
        let within: Vec<Referral> = page
            .items
            .into_iter()
            .filter(|referral| {
                referral
                    .updated_date_time
                    .is_none_or(|time| time <= horizon)
            })
            .collect();
        let beyond = received > within.len();

        // A page of nothing but the watermark's instant, with more to come: the group does
        // not fit a page, and is read through the service's pages.
        let at_watermark = |referral: &Referral| {
            referral.updated_date_time.is_some() && referral.updated_date_time == state.watermark
        };
        if state.watermark.is_some()
            && !state.complete
            && has_next
            && !beyond
            && !within.is_empty()
            && within.iter().all(at_watermark)
        {
            // From where a reading by creation saved in the state had come, if it had.
            self.group = Some(Group::Created {
                from: state.passed,
                past: false,
            });
            return self.group(state).await;
        }

        Self::deliver_within(state, within, !has_next || beyond)
    }

    /// The run's horizon, the end of the second of the service's clock in its first answer (a
    /// `Date` header counts whole seconds), and its bound, that clock less the skew.
    fn reach(&self, page: &Page) -> (DateTime<Utc>, DateTime<Utc>) {
        let now: DateTime<Utc> = page
            .date
            .unwrap_or_else(|| self.client.runtime().clock().now())
            .into();
        let skew = chrono::Duration::from_std(self.skew).unwrap_or(chrono::Duration::MAX);
        let bound = now
            .checked_sub_signed(skew)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let horizon = now
            .checked_add_signed(chrono::Duration::seconds(1))
            .unwrap_or(now);
        (horizon, bound)
    }

    /// What a request of the run delivers: the referrals `within` the bound not delivered yet.
    /// `last` when the request saw everything from the watermark to the bound.
    fn deliver_within(state: SyncState, within: Vec<Referral>, last: bool) -> Result<Step, Error> {
        let fresh: Vec<Referral> = within
            .into_iter()
            .filter(|referral| !state.already_delivered(referral))
            .collect();
        let mut after = state.clone();
        for referral in &fresh {
            after.deliver(referral);
        }
        if after.watermark.is_none() && !fresh.is_empty() {
            // Only referrals without `updatedDateTime` so far: they cannot be asked for again
            // by instant, and the next request starts after them.
            after.watermark = Some(FLOOR);
        }
        // This request saw everything from the watermark to the bound: the run is over.
        if last {
            after.bound = None;
            if fresh.is_empty() {
                return Ok(Step::Done(after));
            }
            return Ok(Step::Deliver {
                items: fresh,
                after,
                last: true,
            });
        }
        if fresh.is_empty() {
            return Err(stuck(&state));
        }
        Ok(Step::Deliver {
            items: fresh,
            after,
            last: false,
        })
    }
}

/// Delivers `items`, with the state after them.
fn delivery(state: SyncState, items: Vec<Referral>, last: bool) -> Step {
    let mut after = state;
    for referral in &items {
        after.deliver(referral);
    }
    Step::Deliver { items, after, last }
}

/// `query` with `filter`, when there is one.
fn with_filter(query: Query, filter: Option<Filter>) -> Query {
    match filter {
        Some(filter) => query.filter(filter),
        None => query,
    }
}

/// The watermark after referrals without `updatedDateTime`, before any instant of the data.
const FLOOR: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

/// The outcome of a request.
enum Step {
    /// New referrals to deliver, the state once they are, and whether they end the run.
    Deliver {
        items: Vec<Referral>,
        after: SyncState,
        last: bool,
    },
    /// A step that delivered nothing, and the state after it.
    NothingNew(SyncState),
    /// The run is over, in this state.
    Done(SyncState),
}

/// A page must be in ascending order of `updatedDateTime` (those without one first).
fn check_order(items: &[Referral]) -> Result<(), Error> {
    if items
        .windows(2)
        .any(|pair| pair[0].updated_date_time > pair[1].updated_date_time)
    {
        return Err(unordered("updatedDateTime"));
    }
    Ok(())
}

fn unordered(member: &str) -> Error {
    Error::new(
        ErrorKind::UnexpectedAnswer,
        Some(LIST),
        format!(
            "the service's page is not in ascending order of {member}; the sync stops rather \
             than pass over referrals"
        ),
    )
}

fn stuck(state: &SyncState) -> Error {
    Error::new(
        ErrorKind::UnexpectedAnswer,
        Some(LIST),
        format!(
            "the service answered a page of referrals already delivered, before the end of the \
             changes from {}; the sync stops rather than loop",
            state.watermark.map_or_else(|| "the start".to_owned(), text)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_keep_what_they_are_given() {
        let defaults = SyncOptions::new();
        assert_eq!(
            (
                defaults.skew,
                defaults.concurrency,
                defaults.filter.is_none()
            ),
            (Duration::from_secs(120), 1, true)
        );
        let filter = query::status().eq(crate::types::ReferralStatus::New);
        let options = SyncOptions::new()
            .skew(Duration::from_secs(5))
            .concurrency(6)
            .filter(filter.clone());
        assert_eq!(options.skew, Duration::from_secs(5));
        assert_eq!(options.concurrency, 6);
        assert_eq!(
            options.filter.map(|f| f.to_string()),
            Some(filter.to_string())
        );
        assert_eq!(
            SyncOptions::new().concurrency(0).concurrency,
            1,
            "at least one"
        );
    }
}
