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
//!   these show each once and the service's count (`$count`) confirms them, up to a thousand
//!   of them. Otherwise (a larger tie, a service that gives ties in a new order on every
//!   request, or one that does not count) the tie is cut
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
//!   ids delivered from there on; while a tie is read by cells, the cells left rather than the
//!   ids that the cells done delivered. Its size stays near a page or two however large the
//!   group or the tie: a bulk change that stamps many referrals with one instant, or an
//!   import that creates them at one, costs time and state that grow linearly with their
//!   number. Three readings keep the ids they deliver until they end, and the state grows
//!   with them: a tie of up to a thousand read through the service's pages, a cell that no
//!   member cuts, and a tie whose cells the service's count shows incomplete. A state
//!   that is corrupt, from another version or for another filter is refused with an error that
//!   says so; nothing is delivered under a misread state.
//!
//! # How a run proceeds
//!
//! A run is in one phase at a time (`Phase` in the code); [`Run::next`] sends the requests of
//! its phase until a batch is ready. The reading of a group (phase 4) is planned in
//! `sync/group.rs` and `sync/split.rs`, a first run in parts (phase 2) in `sync/snapshot.rs`;
//! the states of the run and the batch given out last are one value, `sync/commit.rs`.
//!
//! | # | Phase | Requests | Exits |
//! |---|---|---|---|
//! | 1 | Start: a run from no state, without a filter, with [`SyncOptions::concurrency`] above 1 | `$top=1` in each order of `createdDateTime`, the first with `$count` | 2 when the plan cuts parts; 3 when the service does not count, the referrals are fewer than two parts' worth, or the plan fails |
//! | 2 | In parts | each part's pages (`createdDateTime ge <from> and createdDateTime lt <until>`), several at once | 5 with the batch that completes the last part (the watermark at the run's bound) |
//! | 3 | Watermark | the first page of `updatedDateTime ge <watermark> and updatedDateTime le <horizon>` by `updatedDateTime asc` | 4 when a page holds nothing but the watermark's instant and more follows; 5 when a page reaches the horizon or the end with something to save; 6 when it has nothing to save; else 3 again, from the new watermark |
//! | 4 | Group | by creation (`updatedDateTime eq <instant> and createdDateTime ge <passed>`); for a tie, passes checked by `$count`, or cells | 3 once the instant is read whole |
//! | 5 | Last batch given | none | 6 once the batch is committed |
//! | 6 | Over | none | [`Run::next`] gives `None` |
//!
//! From any phase, a batch that is not committed before the next call is given again: a batch
//! of phase 2 as it was, one of the others read anew from the committed state (phase 3).
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
mod cells;
mod commit;
mod group;
mod options;
mod requests;
mod snapshot;
mod split;
mod state;

use commit::Commit;
use group::Group;
use requests::Requests;
use state::text;

pub use batch::Batch;
pub use options::SyncOptions;
pub use state::{StateError, SyncState};

use chrono::{DateTime, Utc};

use crate::error::{Error, ErrorKind};
use crate::query::{self, Filter, OrderBy, Query, SortKey};
use crate::types::Referral;
use crate::{Client, Operation};

const LIST: Operation = Operation::ListReferrals;

/// How many full passes over a group of referrals that share both instants may end without
/// the whole group before the run gives up with an error (the next run goes on from what was
/// delivered).
const MAX_PASSES: usize = 20;

/// A run of a sync: [`Self::next`] gives the next batch of changed referrals, until the run is
/// over.
pub struct Run {
    /// What the run asks the service with, and its reach.
    requests: Requests,
    /// The states of the run and the batch given out last.
    commit: Commit,
    /// Where the run is (the table in [`crate::sync`]'s docs).
    phase: Phase,
    /// Requests at once for a first run in parts; 1: none.
    concurrency: usize,
}

/// Where a run is. Each phase says which request it sends and what comes after it; the
/// numbers are those of the table in the module's docs.
enum Phase {
    /// 1. Before the first request of a run that may read in parts: the plan decides.
    Start,
    /// 2. A first run in parts, and its readers once started ([`snapshot`]).
    InParts(Option<snapshot::Reader>),
    /// 3. Pages from the watermark to the horizon.
    Watermark,
    /// 4. A group at the watermark's instant that does not fit a page ([`group`]).
    Group(Group),
    /// 5. The run's last batch is out: the next call ends the run once it is committed.
    LastGiven,
    /// 6. The run is over.
    Over,
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
        let may_split = options.concurrency > 1 && options.filter.is_none();
        let phase = if state.snapshot.is_some() {
            Phase::InParts(None)
        } else if may_split && state.watermark.is_none() && state.bound.is_none() {
            Phase::Start
        } else {
            Phase::Watermark
        };
        Ok(Run {
            requests: Requests::new(self.clone(), options.filter, options.skew, &state),
            commit: Commit::new(state),
            phase,
            concurrency: options.concurrency,
        })
    }
}

fn describe(filter: Option<&str>) -> String {
    filter.map_or_else(|| "(none)".to_owned(), |text| format!("`{text}`"))
}

impl Run {
    /// The state as last committed (or as the sync was started from).
    pub fn state(&self) -> &SyncState {
        &self.commit.committed
    }

    /// The next batch of changed referrals; `None` when the run is over. The last batch of a
    /// run may be empty: its commit is the state that says the run is over. An error ends the
    /// run; the next run starts from the last committed batch.
    pub async fn next(&mut self) -> Result<Option<Batch<'_>>, Error> {
        if self.commit.uncommitted {
            if let Some(after) = self.commit.pending.clone() {
                // A batch of a first run in parts comes again as it was.
                let items = std::mem::take(&mut self.commit.given);
                return Ok(Some(self.part_batch(items, after)));
            }
            // The last batch was not committed: it comes again, read anew.
            self.commit.read_again();
            self.phase = Phase::Watermark;
        }
        match self.phase {
            Phase::Start => {
                // A plan that fails is not tried again: the run goes on by the watermark.
                self.phase = Phase::Watermark;
                let (requests, working) = (&self.requests, &mut self.commit.working);
                if Box::pin(snapshot::plan_run(requests, self.concurrency, working)).await? {
                    self.phase = Phase::InParts(None);
                }
            }
            Phase::LastGiven | Phase::Over => {
                self.phase = Phase::Over;
                return Ok(None);
            }
            Phase::InParts(_) | Phase::Watermark | Phase::Group(_) => {}
        }
        if let Phase::InParts(reader) = &mut self.phase {
            let (requests, working) = (&self.requests, &self.commit.working);
            let next = snapshot::next_part(requests, self.concurrency, reader, working);
            let (items, after) = Box::pin(next).await?;
            return Ok(Some(self.part_batch(items, after)));
        }
        self.next_by_watermark().await
    }

    /// The next batch of phases 3 and 4: steps until one delivers, or the run is over.
    async fn next_by_watermark(&mut self) -> Result<Option<Batch<'_>>, Error> {
        loop {
            let step = match std::mem::replace(&mut self.phase, Phase::Watermark) {
                Phase::Group(group) => self.group(self.commit.working.clone(), group).await?,
                _ => self.step().await?,
            };
            match step {
                Step::Deliver { items, after, last } => {
                    if last {
                        self.phase = Phase::LastGiven;
                    }
                    return Ok(Some(self.give(items, after)));
                }
                Step::NothingNew(after) => self.commit.working = after,
                Step::Done(after) if self.to_save(&[], &after) == self.commit.last_to_save => {
                    self.phase = Phase::Over;
                    return Ok(None);
                }
                Step::Done(after) => {
                    // The run is over, and the state to save says so: an empty batch, whose
                    // commit is the state that the next run starts from.
                    self.commit.working = after.clone();
                    self.phase = Phase::LastGiven;
                    return Ok(Some(self.give(Vec::new(), after)));
                }
            }
        }
    }

    /// A step of the group at the watermark's instant; the phase goes on with what the
    /// group's reading leaves, or back to the watermark's pages.
    async fn group(&mut self, state: SyncState, group: Group) -> Result<Step, Error> {
        // Boxed, as the other phases' futures in `next`: their states together would
        // otherwise make one future too large for a reader task's stack in a debug build.
        let (step, next) = Box::pin(group::read(&self.requests, state, group)).await?;
        if let Some(next) = next {
            self.phase = Phase::Group(next);
        }
        Ok(step)
    }

    /// The batch of `items`, after which the state is `after`.
    fn give(&mut self, items: Vec<Referral>, after: SyncState) -> Batch<'_> {
        let save = self.to_save(&items, &after);
        self.commit.uncommitted = true;
        self.commit.given = items;
        Batch {
            sync: self,
            taken: false,
            after,
            save,
        }
    }

    /// A batch of the run in parts, kept until it is committed; the last leaves the phase.
    fn part_batch(&mut self, items: Vec<Referral>, after: SyncState) -> Batch<'_> {
        if after.snapshot.is_none() {
            self.phase = Phase::LastGiven;
        }
        self.commit.uncommitted = true;
        self.commit.pending = Some(after.clone());
        self.commit.given = items;
        let save = after.clone();
        Batch {
            sync: self,
            taken: false,
            after,
            save,
        }
    }

    fn to_save(&self, items: &[Referral], after: &SyncState) -> SyncState {
        self.commit.to_save(self.requests.bound, items, after)
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

    /// One request of phase 3, from the watermark to the horizon, and what it leads to.
    async fn step(&mut self) -> Result<Step, Error> {
        let mut state = self.commit.working.clone();
        let query = with_filter(
            Query::new().order_by(OrderBy::asc(SortKey::UpdatedDateTime)),
            self.requests
                .filter(Self::lower_bound(&state), self.requests.horizon),
        );
        let page = self.requests.page(&query).await?;
        let horizon = match self.requests.horizon {
            Some(horizon) => horizon,
            None => {
                let (horizon, bound) = self.requests.reach(&page);
                (self.requests.horizon, self.requests.bound) = (Some(horizon), Some(bound));
                horizon
            }
        };
        state.bound = state.bound.or(self.requests.bound);
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
        // not fit a page, and is read through the service's pages (phase 4).
        let at_watermark = |referral: &Referral| {
            referral.updated_date_time.is_some() && referral.updated_date_time == state.watermark
        };
        let group = has_next && !beyond && !within.is_empty() && within.iter().all(at_watermark);
        // A tie whose reading by cells a stopped run left goes on by its cells, even if what
        // is left of it now fits a page: its cells done are not read again.
        let tie = state.tie.is_some() && within.first().is_some_and(at_watermark);
        if state.watermark.is_some() && !state.complete && (group || tie) {
            // From where a reading by creation, or by the cells of a tie, saved in the state
            // had come, if it had.
            let group = match state.tie.clone() {
                Some(tie) => Group::Split(Box::new(cells::Split::resume(tie))),
                None => Group::Created {
                    from: state.passed,
                    past: false,
                },
            };
            return self.group(state, group).await;
        }

        Self::deliver_within(state, within, !has_next || beyond)
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

/// The step that delivers what `items` hold of the group at `instant` not delivered yet.
fn fresh_step(mut state: SyncState, items: Vec<Referral>, instant: DateTime<Utc>) -> Step {
    state.learn(&items);
    let fresh = undelivered(items, &state, instant);
    if fresh.is_empty() {
        return Step::NothingNew(state);
    }
    delivery(state, fresh, false)
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

impl Step {
    /// The step with `change` made to its state.
    fn map_state(mut self, change: impl FnOnce(&mut SyncState)) -> Self {
        match &mut self {
            Step::Deliver { after, .. } | Step::NothingNew(after) | Step::Done(after) => {
                change(after);
            }
        }
        self
    }
}

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
