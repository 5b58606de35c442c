//! The reading of a group of referrals that share the watermark's instant and do not fit a
//! page: by `createdDateTime` (which never changes), and, for a tie that shares its creation
//! instant too, through the service's pages in passes checked against `$count`, or by cells
//! ([`super::split`], the reading by cells of [`super::cells`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::cells::{Cell, Split};
use super::requests::Requests;
use super::{
    LIST, MAX_PASSES, Step, SyncState, check_order, delivery, fresh_step, stuck, text, undelivered,
    unordered, with_filter,
};
use crate::error::{Error, ErrorKind};
use crate::query::{self, Filter, OrderBy, Query, SortKey};
use crate::types::Referral;
use crate::{Continuation, Page};

/// The largest tie (by the service's count) read in a first pass through the service's pages:
/// such a pass keeps the id of every referral it delivers in the state until the tie is whole,
/// and a state saved with each batch would grow with the tie. A larger tie goes to cells at
/// once ([`split`]), which keep the state near a page or two.
const TRIAL_MOST: i64 = 1_000;

/// The reading of a group of referrals that share the watermark's instant and do not fit a
/// page.
pub(super) enum Group {
    /// By `createdDateTime`, which never changes: each request asks the group's referrals
    /// created from the last instant delivered on (`None`: from the start; `past`: after that
    /// instant, whose referrals were read whole), in that order, so a referral that leaves the
    /// group moves no other one.
    Created {
        from: Option<DateTime<Utc>>,
        past: bool,
    },
    /// By cells ([`split`]): for referrals that share their creation instant too, more than a
    /// page of them.
    Split(Box<Split>),
    /// Through the service's pages, with passes checked against `$count`: for a cell whose
    /// referrals share every value that could cut it, or a tie that its cells did not show
    /// whole.
    Pass(Box<Pass>),
}

/// A pass over the pages of the group of referrals at the watermark's instant.
#[derive(Default)]
pub(super) struct Pass {
    /// How many pages of the pass were read.
    pub(super) pages: usize,
    /// Where the pass goes on; `None` once its last page was read.
    pub(super) next: Option<Continuation>,
    /// The creation instant that the group's referrals share, when they do.
    pub(super) created: Option<DateTime<Utc>>,
    /// The cell of the group that the passes read (the whole group by default).
    pub(super) cell: Cell,
    /// The reading by cells to go on with once the passes are over.
    pub(super) rest: Option<Box<Split>>,
    /// A first pass over a whole tie, which gives way to its cells ([`split`]) at the first
    /// sign that the service's pages will not prove it whole in one pass: no count, or a
    /// referral shown twice. A service whose pages keep their order reads a tie in one pass.
    pub(super) trial: bool,
    /// The ids that the pass saw.
    pub(super) seen: BTreeSet<String>,
    /// How many referrals its pages held, repeats included.
    pub(super) rows: usize,
    /// The service's count of the group when the pass began.
    pub(super) before: Option<i64>,
    /// The ids seen by the passes that found the group of the same size as this one: the
    /// service may give referrals of equal keys in another order on every request, and then a
    /// pass sees some twice and others not at all, but the passes together see them all.
    pub(super) union: BTreeSet<String>,
    /// The size of the group that the previous pass found.
    pub(super) size: Option<usize>,
    /// How many passes ended without seeing the whole group.
    pub(super) failed: usize,
}

impl Pass {
    /// The referrals of a page of the pass to deliver: those still at `instant` that `state`
    /// has not delivered, each once. Every id of the page counts as seen.
    fn undelivered(
        &mut self,
        items: Vec<Referral>,
        state: &SyncState,
        instant: DateTime<Utc>,
    ) -> Vec<Referral> {
        self.rows = self.rows.saturating_add(items.len());
        for referral in &items {
            if let Some(id) = &referral.id {
                self.seen.insert(id.clone());
            }
        }
        undelivered(items, state, instant)
    }
}

/// What the passes over a group found at the end of one.
pub(super) enum Passes {
    /// They saw the whole group, of this size.
    Whole(usize),
    /// The next pass.
    Again(Box<Pass>),
}

/// Whether `items` show a referral twice, or one of `seen`.
fn repeats(seen: &BTreeSet<String>, items: &[Referral]) -> bool {
    let mut ids = BTreeSet::new();
    items
        .iter()
        .filter_map(|referral| referral.id.as_deref())
        .any(|id| seen.contains(id) || !ids.insert(id))
}

/// Reads the group of referrals at the watermark's instant, which does not fit a page, one
/// page a step: the step, and how the group's reading goes on (`None`: it is over).
pub(super) async fn read(
    requests: &Requests,
    state: SyncState,
    group: Group,
) -> Result<(Step, Option<Group>), Error> {
    let mut planner = Planner {
        requests,
        next: None,
    };
    let Some(instant) = state.watermark else {
        return Err(stuck(&state));
    };
    let step = match group {
        Group::Created { from, past } => planner.by_creation(state, instant, from, past).await,
        Group::Split(split) => planner.split(state, instant, *split).await,
        Group::Pass(pass) => planner.pass(state, instant, *pass).await,
    }?;
    Ok((step, planner.next))
}

/// A step of a group's reading: the run's requests, and what the step leaves to read next.
pub(super) struct Planner<'a> {
    pub(super) requests: &'a Requests,
    /// How the reading goes on after the step; `None`: the group is done.
    pub(super) next: Option<Group>,
}

impl Planner<'_> {
    /// The first page of the group at `instant` created from `from` on (after it when `past`),
    /// in the order of creation, which it must keep.
    async fn creation_page(
        &self,
        instant: DateTime<Utc>,
        from: Option<DateTime<Utc>>,
        past: bool,
    ) -> Result<Page, Error> {
        let created_from = from.map(|from| {
            if past {
                query::created_date_time().gt(from)
            } else {
                query::created_date_time().ge(from)
            }
        });
        let filter = [Some(query::updated_date_time().eq(instant)), created_from]
            .into_iter()
            .flatten()
            .reduce(Filter::and);
        let page = self
            .requests
            .page(&with_filter(
                Query::new().order_by(OrderBy::asc(SortKey::CreatedDateTime)),
                self.requests.filter(filter, None),
            ))
            .await?;
        let created = |referral: &Referral| referral.created_date_time;
        if page
            .items
            .windows(2)
            .any(|pair| created(&pair[0]) > created(&pair[1]))
        {
            return Err(unordered("createdDateTime"));
        }
        Ok(page)
    }

    /// A page of the group by `createdDateTime`.
    async fn by_creation(
        &mut self,
        mut state: SyncState,
        instant: DateTime<Utc>,
        from: Option<DateTime<Utc>>,
        past: bool,
    ) -> Result<Step, Error> {
        let page = self.creation_page(instant, from, past).await?;
        let created = |referral: &Referral| referral.created_date_time;
        let has_next = page.next()?.is_some();
        let first = page.items.first().and_then(created);
        let last = page.items.last().and_then(created);
        if has_next
            && !page.items.is_empty()
            && page.items.iter().all(|item| created(item) == first)
        {
            // More than a page of referrals share the creation instant too: read them through
            // the service's pages, or by cells if these do not show them whole.
            self.next = Some(Group::Pass(Box::new(Pass {
                created: first,
                trial: true,
                ..Pass::default()
            })));
            return Ok(Step::NothingNew(state));
        }
        state.learn(&page.items);
        let fresh: Vec<Referral> = page
            .items
            .into_iter()
            .filter(|referral| {
                referral.updated_date_time == Some(instant) && !state.already_delivered(referral)
            })
            .collect();
        for referral in &fresh {
            state.deliver(referral);
        }
        if has_next {
            // From the last creation instant of the page on, again: what was delivered there is
            // marked and passed over; what was created before it is done, and only its
            // instant stays in the state.
            self.next = Some(Group::Created {
                from: last.or(from),
                past: last.is_none() && past,
            });
            if let Some(last) = last {
                state.pass_created(last);
            }
        } else {
            self.next = None;
            state.finish_instant();
        }
        if fresh.is_empty() {
            return Ok(Step::NothingNew(state));
        }
        Ok(Step::Deliver {
            items: fresh,
            after: state,
            last: false,
        })
    }

    /// The query of the referrals of the group at `instant`, created at `created`, in `cell`,
    /// with their count.
    pub(super) fn tie_query(
        &self,
        instant: DateTime<Utc>,
        created: Option<DateTime<Utc>>,
        cell: &Cell,
    ) -> Query {
        let created = created.map(|created| query::created_date_time().eq(created));
        let group = [
            Some(query::updated_date_time().eq(instant)),
            created,
            cell.filter(),
        ]
        .into_iter()
        .flatten()
        .reduce(Filter::and);
        with_filter(
            Query::new().order_by(OrderBy::asc(SortKey::UpdatedDateTime)),
            self.requests.filter(group, None),
        )
        .count(true)
    }

    /// A page of a pass over the group through the service's pages; see [`Self::finish_pass`]
    /// for when the passes saw the whole group.
    async fn pass(
        &mut self,
        mut state: SyncState,
        instant: DateTime<Utc>,
        mut pass: Pass,
    ) -> Result<Step, Error> {
        let (created_instant, trial) = (pass.created, pass.trial);
        let counted = self.tie_query(instant, created_instant, &pass.cell);
        let by_cells = |sync: &mut Self| {
            sync.next = Some(Group::Split(Box::new(Split::new(created_instant))));
        };
        loop {
            let page = match (pass.pages, pass.next.take()) {
                (0, _) => {
                    let page = self.requests.page(&counted).await?;
                    pass.before = page.count;
                    page
                }
                (pages, Some(_)) if pages >= self.requests.client.runtime().max_pages() => {
                    return Err(Error::new(
                        ErrorKind::PagingLoop,
                        Some(LIST),
                        "the group of referrals at one instant passed the page limit".to_owned(),
                    ));
                }
                (_, Some(next)) => {
                    self.requests
                        .client
                        .list_page(&counted, Some(&next))
                        .await?
                }
                (_, None) => {
                    let mut rest = pass.rest.take();
                    let mut ids = BTreeSet::new();
                    if let Some(split) = rest.as_mut() {
                        // What the passes over a cell saw is of the cells' union too.
                        ids.extend(pass.seen.union(&pass.union).cloned());
                        split.seen.extend(ids.iter().cloned());
                    }
                    match self.finish_pass(instant, pass, &counted).await? {
                        Passes::Whole(size) => {
                            if let Some(split) = rest.as_mut() {
                                // The cell is done: its size counts toward the tie's.
                                split.done = split.done.saturating_add(size);
                                state.forget(ids.iter().map(String::as_str));
                            }
                            return Ok(self.read_whole(state, created_instant, rest));
                        }
                        Passes::Again(_) if trial => {
                            by_cells(self);
                            return Ok(Step::NothingNew(state));
                        }
                        Passes::Again(again) => {
                            pass = Pass { rest, ..*again };
                            continue;
                        }
                    }
                }
            };
            pass.pages += 1;
            check_order(&page.items)?;
            pass.next = page.next()?.cloned();
            let large = pass.before.is_none_or(|count| count > TRIAL_MOST);
            if trial && (large || repeats(&pass.seen, &page.items)) {
                by_cells(self);
                return Ok(fresh_step(state, page.items, instant));
            }
            state.learn(&page.items);
            let fresh = pass.undelivered(page.items, &state, instant);
            if !fresh.is_empty() {
                self.next = Some(Group::Pass(Box::new(pass)));
                return Ok(delivery(state, fresh, false));
            }
        }
    }

    /// After the passes that read a whole cell: the reading by cells goes on with the `rest`.
    /// After a whole tie: the referrals created at `created` are done, and the reading by
    /// creation goes on after them; without one, the watermark's instant is done.
    pub(super) fn read_whole(
        &mut self,
        mut state: SyncState,
        created: Option<DateTime<Utc>>,
        rest: Option<Box<Split>>,
    ) -> Step {
        if let Some(split) = rest {
            state.tie = Some(split.saved(None));
            self.next = Some(Group::Split(split));
            return Step::NothingNew(state);
        }
        match created {
            Some(created) => {
                self.next = Some(Group::Created {
                    from: Some(created),
                    past: true,
                });
                state.pass_created(created);
            }
            None => state.finish_instant(),
        }
        Step::NothingNew(state)
    }

    /// The end of a full pass over the group at `instant`: whether the passes saw the whole
    /// group, and its size, or the next pass. The group's size is the service's count when it is
    /// the same before and after the pass (the group did not change meanwhile: a group only
    /// loses referrals, to later instants), or, without a count, the rows of the pass; the ids
    /// of the passes that found the same size count together. Without a count, two passes in
    /// a row must find the same size.
    async fn finish_pass(
        &mut self,
        instant: DateTime<Utc>,
        pass: Pass,
        counted: &Query,
    ) -> Result<Passes, Error> {
        let after = match pass.before {
            Some(_) => self.requests.page(&counted.clone().top(0)).await?.count,
            None => None,
        };
        let size = match (pass.before, after) {
            (Some(before), Some(after)) if before == after => usize::try_from(after).ok(),
            (Some(_), Some(_)) => None,
            _ => Some(pass.rows),
        };
        let verified = pass.before.is_some() && size.is_some();
        let mut union = pass.seen.clone();
        if let Some(size) = size {
            if pass.size == Some(size) {
                union.extend(pass.union);
            }
            if union.len() > size {
                // Referrals seen before left the group meanwhile: this pass alone counts.
                union.clone_from(&pass.seen);
            }
            if union.len() == size && (verified || pass.size == Some(size)) {
                return Ok(Passes::Whole(size));
            }
        }
        let failed = pass.failed + 1;
        if failed >= MAX_PASSES {
            return Err(Error::new(
                ErrorKind::UnexpectedAnswer,
                Some(LIST),
                format!(
                    "the service's pages of the referrals whose updatedDateTime is {} did not \
                     show the whole group in {MAX_PASSES} passes (its count, or its rows, kept \
                     changing); the sync stops rather than pass over any, and the next run \
                     goes on from what was delivered",
                    text(instant)
                ),
            ));
        }
        Ok(Passes::Again(Box::new(Pass {
            created: pass.created,
            cell: pass.cell,
            union,
            size,
            failed,
            ..Pass::default()
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_repeats_a_referral_it_shows_twice_or_one_seen_before() {
        let item = |id: &str| Referral {
            id: Some(id.to_owned()),
            ..Referral::default()
        };
        let seen: BTreeSet<String> = ["a".to_owned()].into();
        assert!(!repeats(&seen, &[item("b"), item("c")]));
        assert!(repeats(&seen, &[item("b"), item("a")]), "seen before");
        assert!(repeats(&BTreeSet::new(), &[item("b"), item("b")]), "twice");
        assert!(!repeats(
            &BTreeSet::new(),
            &[Referral::default(), Referral::default()]
        ));
    }
}
