//! The reading of a tie by cells ([`super::cells`]): a page of the next cell a step, a cell
//! cut in two when it does not fit a page, read in passes when nothing is left to cut it by,
//! and after the last cell the service's count, which must agree with what the cells showed.
//! Each step saves the cells left in the state ([`SyncState::tie`]), and a cell done takes its
//! referrals' marks out of it.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;

use super::cells::{Cell, Split};
use super::group::{Group, Pass, Planner};
use super::{LIST, Step, SyncState, check_order, fresh_step};
use crate::error::{Error, ErrorKind};
use crate::types::Referral;

impl Planner<'_> {
    /// A page of the next cell of the tie at `instant`: read whole when it fits the page, cut
    /// in two when it does not, read in passes when nothing is left to cut it by.
    pub(super) async fn split(
        &mut self,
        mut state: SyncState,
        instant: DateTime<Utc>,
        mut split: Split,
    ) -> Result<Step, Error> {
        let Some(cell) = split.cells.pop() else {
            return self.end_split(state, instant, split).await;
        };
        if split.read >= self.requests.client.runtime().max_pages() {
            return Err(past_the_limit());
        }
        let cell = if split.plain { cell.plain() } else { cell };
        let page = match self
            .requests
            .page(&self.tie_query(instant, split.created, &cell))
            .await
        {
            Err(error) if error.status() == Some(StatusCode::BAD_REQUEST) && cell.asks_null() => {
                // Cells without `eq null` from here on; the count still checks what they show.
                tracing::info!(%error, "the service refused `eq null`; cutting with `ne` alone");
                split.plain = true;
                split.cells.push(cell);
                state.tie = Some(split.saved(None));
                self.next = Some(Group::Split(Box::new(split)));
                return Ok(Step::NothingNew(state));
            }
            page => page?,
        };
        if cell == Cell::default() {
            split.before = page.count;
        }
        split.read += 1;
        check_order(&page.items)?;
        let has_next = page.next()?.is_some();
        let shown: Vec<&Referral> = page
            .items
            .iter()
            .filter(|referral| {
                referral.updated_date_time == Some(instant)
                    && referral.created_date_time == split.created
            })
            .collect();
        // What a page delivers is seen; the page of a cell that is cut delivers nothing.
        let ids = shown.iter().filter_map(|referral| referral.id.clone());
        let cut = has_next.then(|| cell.cut(&shown));
        if !matches!(cut, Some(Some(_))) {
            split.seen.extend(ids);
        }
        match cut {
            None => {
                let held: BTreeSet<String> = (shown.iter())
                    .filter(|referral| cell.holds(referral))
                    .filter_map(|referral| referral.id.clone())
                    .collect();
                return Ok(self.cell_done(state, instant, split, &held, page.items));
            }
            Some(Some((equal, other))) => split.cells.extend([other, equal]),
            Some(None) => {
                // Every referral shown shares every value that could cut the cell.
                state.tie = Some(split.saved(Some(&cell)));
                self.next = Some(Group::Pass(Box::new(Pass {
                    created: split.created,
                    cell,
                    rest: Some(Box::new(split)),
                    ..Pass::default()
                })));
                return Ok(fresh_step(state, page.items, instant));
            }
        }
        // Cut: the cell's referrals come with the cells it is cut into, each shown whole by
        // one answer, so that the state marks none of them meanwhile.
        state.tie = Some(split.saved(None));
        self.next = Some(Group::Split(Box::new(split)));
        Ok(Step::NothingNew(state))
    }

    /// A cell shown whole by a page of `items` is done: the referrals it `held` count toward
    /// the tie, and their marks go once the page is delivered.
    fn cell_done(
        &mut self,
        mut state: SyncState,
        instant: DateTime<Utc>,
        mut split: Split,
        held: &BTreeSet<String>,
        items: Vec<Referral>,
    ) -> Step {
        split.done = split.done.saturating_add(held.len());
        state.tie = Some(split.saved(None));
        self.next = Some(Group::Split(Box::new(split)));
        let step = fresh_step(state, items, instant);
        step.map_state(|after| after.forget(held.iter().map(String::as_str)))
    }

    /// After the last cell: the tie is done, unless the service's count shows that the cells
    /// missed some of it ([`Split::short`]).
    async fn end_split(
        &mut self,
        mut state: SyncState,
        instant: DateTime<Utc>,
        split: Split,
    ) -> Result<Step, Error> {
        let after = match split.before {
            Some(_) => {
                let whole = self.tie_query(instant, split.created, &Cell::default());
                self.requests.page(&whole.top(0)).await?.count
            }
            None => None,
        };
        if let Some(size) = split.short(after) {
            state.tie = Some(split.saved(None));
            self.next = Some(Group::Pass(Box::new(Pass {
                created: split.created,
                union: split.seen,
                size: Some(size),
                ..Pass::default()
            })));
            return Ok(Step::NothingNew(state));
        }
        Ok(self.read_whole(state, split.created, None))
    }
}

/// The error of cells that passed the client's page limit.
fn past_the_limit() -> Error {
    Error::new(
        ErrorKind::PagingLoop,
        Some(LIST),
        "the cells of the group of referrals at one instant passed the page limit".to_owned(),
    )
}
