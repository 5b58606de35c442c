//! The cells of a tie: a group of referrals that share both their update and their creation
//! instant, more than a page of them, cut by the values of the members that `$filter` compares
//! with both `eq` and `ne` (the document's `x-filterable`, through the generated table).
//!
//! No sort key tells such referrals apart, and a service may give them in a new order on every
//! request, so that the service's pages show some twice and others never. A cell that fits one
//! page is read whole in one answer, whatever that order. A cell that does not is cut in two,
//! `member eq 'value'` and `(member ne 'value' or member eq null)`, with a value that its
//! first page showed, so that the two cells hold the cell's referrals between them. In OData
//! a member that is absent is `ne` every value and the `or` adds nothing; a service that
//! follows SQL there (an absent member compares with nothing) still gives the referrals that
//! lack the member, through `eq null`. A service that refuses `eq null` (400) gets cells of
//! `ne` alone from then on. The cost is a few requests for each page of the tie; only a cell
//! whose referrals share every such value too is read in passes. When the service counts, the
//! cells must show as many referrals as it counts in the tie ([`Split::short`]). The sync
//! comes here only after a first pass through the service's pages failed to prove the tie
//! whole: a service whose pages keep their order reads a tie in that one pass.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use referrals_odata::{CompareOp, Expr, Literal};

use crate::facts::{FILTERABLE, Filterable, Kind, Scalar};
use crate::query::Filter;
use crate::types::Referral;

/// A condition of a cell: a member of [`FILTERABLE`] (by its index) is, or is not, a value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Condition {
    member: usize,
    equal: bool,
    value: String,
    /// For `ne`: `or member eq null` too (see the module's docs).
    null: bool,
}

/// The referrals of a tie that meet every condition; no condition: the whole tie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Cell(Vec<Condition>);

/// The members that can cut a cell: texts and values of a set that compare with `eq` and `ne`.
fn cutting() -> impl Iterator<Item = (usize, &'static Filterable)> {
    FILTERABLE.iter().enumerate().filter(|(_, member)| {
        matches!(member.kind, Kind::Text | Kind::Set)
            && member.operators.contains(CompareOp::Eq)
            && member.operators.contains(CompareOp::Ne)
    })
}

impl Cell {
    /// The cell's conditions as a filter; `None` for the whole tie.
    pub(super) fn filter(&self) -> Option<Filter> {
        self.0
            .iter()
            .map(|condition| {
                let path = FILTERABLE[condition.member].path;
                let value = Literal::String(condition.value.clone());
                Filter::expr(match (condition.equal, condition.null) {
                    (true, _) => Expr::compare(path, CompareOp::Eq, value),
                    (false, false) => Expr::compare(path, CompareOp::Ne, value),
                    (false, true) => Expr::compare(path, CompareOp::Ne, value).or(Expr::compare(
                        path,
                        CompareOp::Eq,
                        Literal::Null,
                    )),
                })
            })
            .reduce(Filter::and)
    }

    fn with(&self, member: usize, equal: bool, value: &str) -> Cell {
        let mut conditions = self.0.clone();
        conditions.push(Condition {
            member,
            equal,
            value: value.to_owned(),
            null: !equal,
        });
        Cell(conditions)
    }

    /// Whether the cell's filter has an `eq null`.
    pub(super) fn asks_null(&self) -> bool {
        self.0.iter().any(|condition| condition.null)
    }

    /// The same cell without `or member eq null`, for a service that refuses it.
    pub(super) fn plain(mut self) -> Cell {
        for condition in &mut self.0 {
            condition.null = false;
        }
        self
    }

    /// Whether `referral` meets the cell's conditions (an absent member is `ne` every value).
    fn holds(&self, referral: &Referral) -> bool {
        self.0.iter().all(|condition| {
            let value = match (FILTERABLE[condition.member].get)(referral) {
                Scalar::Text(value) => Some(value),
                _ => None,
            };
            (value == Some(condition.value.as_str())) == condition.equal
        })
    }

    /// The two cells that this one is cut into, from the referrals of its first page that it
    /// holds: by the value that is nearest to holding half of them, preferring one that some
    /// of them lack. `None` when no member is left to cut by: every referral shown shares
    /// every value that the cell does not already fix.
    pub(super) fn cut(&self, shown: &[&Referral]) -> Option<(Cell, Cell)> {
        let shown: Vec<&Referral> = shown
            .iter()
            .copied()
            .filter(|referral| self.holds(referral))
            .collect();
        let mut best: Option<((bool, usize), usize, &str)> = None;
        for (index, member) in cutting() {
            let fixed = |condition: &&Condition| condition.member == index;
            if self.0.iter().filter(fixed).any(|condition| condition.equal) {
                continue;
            }
            let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
            for referral in &shown {
                if let Scalar::Text(value) = (member.get)(referral) {
                    *tally.entry(value).or_default() += 1;
                }
            }
            for (value, times) in tally {
                if self.0.iter().filter(fixed).any(|c| c.value == value) {
                    continue;
                }
                let score = (times == shown.len(), shown.len().abs_diff(2 * times));
                if best.is_none_or(|(known, ..)| score < known) {
                    best = Some((score, index, value));
                }
            }
        }
        let (_, member, value) = best?;
        Some((
            self.with(member, true, value),
            self.with(member, false, value),
        ))
    }
}

/// How far the reading of a tie by cells has come.
pub(super) struct Split {
    /// The creation instant that the tie's referrals share.
    pub(super) created: Option<DateTime<Utc>>,
    /// The cells still to read, the next one last.
    pub(super) cells: Vec<Cell>,
    /// The service's count of the whole tie at the first request, when it gives one.
    pub(super) before: Option<i64>,
    /// The ids of the tie's referrals that the cells' pages showed.
    pub(super) seen: BTreeSet<String>,
    /// How many cells were read.
    pub(super) read: usize,
    /// Whether the service refused a cell's `eq null` (400): the cells are then plain `ne`.
    pub(super) plain: bool,
}

impl Split {
    /// The reading of the tie created at `created`, from the whole tie.
    pub(super) fn new(created: Option<DateTime<Utc>>) -> Self {
        Self {
            created,
            cells: vec![Cell::default()],
            before: None,
            seen: BTreeSet::new(),
            read: 0,
            plain: false,
        }
    }

    /// Whether the cells showed fewer referrals than the service counted in the tie, when
    /// its count `after` the cells is the one it gave `before` them (no referral left the
    /// tie meanwhile). A service whose `ne` does not hold for an absent member would do that;
    /// the tie is then read in passes, and what the cells showed counts.
    pub(super) fn short(&self, after: Option<i64>) -> Option<usize> {
        let size = usize::try_from(self.before?).ok()?;
        (after == self.before && self.seen.len() < size).then_some(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ReferralDirection, ReferralStatus};

    fn referral(status: ReferralStatus, direction: ReferralDirection) -> Referral {
        Referral {
            status: Some(status),
            direction: Some(direction),
            ..Referral::default()
        }
    }

    fn text(cell: &Cell) -> Option<String> {
        cell.filter().map(|filter| filter.to_string())
    }

    #[test]
    fn a_cell_is_cut_by_the_value_nearest_to_half() {
        use ReferralDirection::{Incoming, Outgoing};
        use ReferralStatus::{Active, New};
        let shown = [
            referral(New, Incoming),
            referral(New, Outgoing),
            referral(Active, Incoming),
            referral(Active, Incoming),
        ];
        let shown: Vec<&Referral> = shown.iter().collect();
        // Status splits the four two to two, direction three to one.
        let (equal, other) = Cell::default().cut(&shown).expect("two values of a member");
        assert_eq!(text(&Cell::default()), None);
        assert_eq!(text(&equal).as_deref(), Some("status eq 'Active'"));
        assert_eq!(
            text(&other).as_deref(),
            Some("status ne 'Active' or status eq null")
        );
        // Three to three beats four to two.
        let six = [
            referral(New, Incoming),
            referral(New, Incoming),
            referral(New, Outgoing),
            referral(Active, Incoming),
            referral(Active, Incoming),
            referral(Active, Outgoing),
        ];
        let six: Vec<&Referral> = six.iter().collect();
        let (half, _) = Cell::default().cut(&six).expect("two members");
        assert_eq!(text(&half).as_deref(), Some("status eq 'Active'"));
        let (deeper, _) = other.cut(&shown).expect("direction is left");
        assert_eq!(
            text(&deeper).as_deref(),
            Some("(status ne 'Active' or status eq null) and direction eq 'Incoming'")
        );
    }

    #[test]
    fn a_cell_is_not_cut_twice_by_one_condition() {
        let uniform = [
            referral(ReferralStatus::New, ReferralDirection::Incoming),
            referral(ReferralStatus::New, ReferralDirection::Incoming),
        ];
        let uniform: Vec<&Referral> = uniform.iter().collect();
        // Values that all share cut too: the cell may hold others than its first page shows.
        let (equal, other) = Cell::default().cut(&uniform).expect("a value all share");
        assert_eq!(text(&equal).as_deref(), Some("status eq 'New'"));
        let (both, _) = equal.cut(&uniform).expect("direction is left");
        assert_eq!(
            text(&both).as_deref(),
            Some("status eq 'New' and direction eq 'Incoming'")
        );
        assert!(both.cut(&uniform).is_none(), "nothing left to cut by");
        // Referrals that the cell does not hold (from a service that ignored a condition) do
        // not choose its cut; a member fixed by `ne` may still cut by another value.
        assert!(other.cut(&uniform).is_none(), "none of them is in the cell");
        let mixed = [
            referral(ReferralStatus::Active, ReferralDirection::Incoming),
            referral(ReferralStatus::New, ReferralDirection::Outgoing),
        ];
        let mixed: Vec<&Referral> = mixed.iter().collect();
        let (again, _) = other.cut(&mixed).expect("the Active one is in the cell");
        assert_eq!(
            text(&again).as_deref(),
            Some("(status ne 'New' or status eq null) and status eq 'Active'")
        );
        assert!(Cell::default().cut(&[]).is_none(), "nothing shown");
    }
}
