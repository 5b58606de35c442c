//! The cells of a tie: a group of referrals that share both their update and their creation
//! instant, more than a page of them, cut by the values of the members that `$filter` compares
//! with both `eq` and `ne` (the document's `x-filterable`, through the generated table).
//!
//! No sort key tells such referrals apart, and a service may give them in a new order on every
//! request, so that the service's pages show some twice and others never. A cell that fits one
//! page is read whole in one answer, whatever that order. A cell that does not is cut in two
//! by some values of one member that its first page showed, those that hold nearest to half
//! of it: `member eq 'a' or member eq 'b'`, and `member ne 'a' and member ne 'b' or member eq
//! null`, so that the two cells hold the cell's referrals between them and each is about half
//! of it (a cut by one value of many would take off a few referrals at a time, at two requests
//! a cut). A cell holds one condition a member, and its filter at most [`MAX_COMPARISONS`]
//! comparisons. In OData
//! a member that is absent is `ne` every value and the `or` adds nothing; a service that
//! follows SQL there (an absent member compares with nothing) still gives the referrals that
//! lack the member, through `eq null`. A service that refuses `eq null` (400) gets cells of
//! `ne` alone from then on. The cost is a few requests for each page of the tie; only a cell
//! whose referrals share every such value too is read in passes. When the service counts, the
//! cells must show as many referrals as it counts in the tie ([`Split::short`]). The sync
//! comes here only after a first pass through the service's pages failed to prove the tie
//! whole: a service whose pages keep their order reads a tie in that one pass, unless the tie
//! is too large for the ids of that pass to be kept in the state.
//!
//! The sync's state keeps a tie's reading by cells ([`Tie`]): the cells still to read, not the
//! ids that the cells done delivered, so that a tie costs state of the size of a page or two
//! and time that grows linearly with it, however large, and a stopped run goes on with the
//! cells left.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use referrals_odata::{CompareOp, Expr, Literal};
use serde::{Deserialize, Serialize};

use crate::facts::{FILTERABLE, Filterable, Kind, Scalar};
use crate::query::Filter;
use crate::types::Referral;

/// A condition of a cell on a member of [`FILTERABLE`] (by its index): its value is one of
/// `values` (`equal`), or none of them. A cell has at most one condition a member. Saved by
/// the member's path, which a later version of the document keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredCondition", into = "StoredCondition")]
struct Condition {
    member: usize,
    equal: bool,
    values: BTreeSet<String>,
    /// For `ne`: `or member eq null` too (see the module's docs).
    null: bool,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCondition {
    member: String,
    equal: bool,
    values: BTreeSet<String>,
    null: bool,
}

impl From<Condition> for StoredCondition {
    fn from(condition: Condition) -> Self {
        Self {
            member: FILTERABLE[condition.member].path.to_owned(),
            equal: condition.equal,
            values: condition.values,
            null: condition.null,
        }
    }
}

impl TryFrom<StoredCondition> for Condition {
    type Error = String;

    fn try_from(stored: StoredCondition) -> Result<Self, String> {
        let member = cutting()
            .find(|(_, member)| member.path == stored.member)
            .map(|(index, _)| index)
            .ok_or_else(|| format!("`{}` is not a member that cuts a tie", stored.member))?;
        if stored.values.is_empty() {
            return Err(format!("a condition on `{}` has no value", stored.member));
        }
        Ok(Self {
            member,
            equal: stored.equal,
            values: stored.values,
            null: stored.null,
        })
    }
}

impl Condition {
    /// `member eq 'a' or member eq 'b'`; `(member ne 'a' and member ne 'b') or member eq null`.
    fn expr(&self) -> Option<Expr> {
        let path = FILTERABLE[self.member].path;
        let (op, join): (_, fn(Expr, Expr) -> Expr) = if self.equal {
            (CompareOp::Eq, Expr::or)
        } else {
            (CompareOp::Ne, Expr::and)
        };
        let values = self.values.iter();
        let compared = values.map(|value| Expr::compare(path, op, Literal::String(value.clone())));
        let expr = compared.reduce(join)?;
        Some(match self.null && !self.equal {
            true => expr.or(Expr::compare(path, CompareOp::Eq, Literal::Null)),
            false => expr,
        })
    }

    /// Whether a member of `value` meets the condition (an absent member is `ne` every value).
    fn holds(&self, value: Option<&str>) -> bool {
        value.is_some_and(|value| self.values.contains(value)) == self.equal
    }
}

/// The referrals of a tie that meet every condition; no condition: the whole tie.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct Cell(Vec<Condition>);

/// The members that can cut a cell: texts and values of a set that compare with `eq` and `ne`.
fn cutting() -> impl Iterator<Item = (usize, &'static Filterable)> {
    FILTERABLE.iter().enumerate().filter(|(_, member)| {
        matches!(member.kind, Kind::Text | Kind::Set)
            && member.operators.contains(CompareOp::Eq)
            && member.operators.contains(CompareOp::Ne)
    })
}

/// The text value of the member at `index` of [`FILTERABLE`] in `referral`.
fn text_of(index: usize, referral: &Referral) -> Option<&str> {
    match (FILTERABLE[index].get)(referral) {
        Scalar::Text(value) => Some(value),
        _ => None,
    }
}

/// The most comparisons of a cell's filter, so that its request stays short (a service may
/// refuse a long URL or a long filter): a cut that would make more is not made.
const MAX_COMPARISONS: usize = 48;

/// A cut of a cell by one member: the values of one side, and how near to half of the
/// referrals shown they are (lower is better; one that every referral shown shares is last).
type Choice = ((bool, usize), usize, BTreeSet<String>);

impl Cell {
    /// The cell's conditions as a filter; `None` for the whole tie.
    pub(super) fn filter(&self) -> Option<Filter> {
        (self.0.iter())
            .filter_map(Condition::expr)
            .map(Filter::expr)
            .reduce(Filter::and)
    }

    /// The cell with the condition on `member` made `condition`.
    fn with(&self, condition: Condition) -> Cell {
        let mut conditions = self.0.clone();
        match conditions.iter_mut().find(|c| c.member == condition.member) {
            Some(known) => *known = condition,
            None => conditions.push(condition),
        }
        Cell(conditions)
    }

    /// The two cells that this one is cut into by `values` of `member`: those of the values,
    /// and the others (and those that lack the member), each with one condition on it.
    fn split_by(&self, member: usize, values: BTreeSet<String>) -> (Cell, Cell) {
        let known = self.0.iter().find(|c| c.member == member);
        let other = match known {
            Some(known) if known.equal => Condition {
                values: known.values.difference(&values).cloned().collect(),
                ..known.clone()
            },
            _ => Condition {
                member,
                equal: false,
                values: (known.iter().flat_map(|c| c.values.iter().cloned()))
                    .chain(values.iter().cloned())
                    .collect(),
                null: true,
            },
        };
        let equal = Condition {
            member,
            equal: true,
            values,
            null: false,
        };
        (self.with(equal), self.with(other))
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
    pub(super) fn holds(&self, referral: &Referral) -> bool {
        (self.0.iter()).all(|condition| condition.holds(text_of(condition.member, referral)))
    }

    /// How many comparisons the cell's filter makes, but for its condition on `member`.
    fn comparisons_besides(&self, member: usize) -> usize {
        (self.0.iter())
            .filter(|condition| condition.member != member)
            .map(|condition| condition.values.len() + usize::from(condition.null))
            .sum()
    }

    /// The best cut of the cell by the member at `index`, from the referrals `shown` that it
    /// holds: the values held most, added one by one while they come nearer to half of them.
    /// Only values shown twice or more join a set: one shown once may be the only referral
    /// of its value (an id), and says nothing of the rest of the cell, so it cuts alone, as a
    /// last resort. A member that the cell holds to some values is cut into fewer of them
    /// only; the other side of a cut excludes the values, and its filter must stay within
    /// [`MAX_COMPARISONS`].
    fn choose(&self, index: usize, shown: &[&Referral]) -> Option<Choice> {
        let known = self.0.iter().find(|condition| condition.member == index);
        let limit = known
            .filter(|condition| condition.equal)
            .map(|condition| condition.values.len());
        let excluded = known
            .filter(|condition| !condition.equal)
            .map_or(0, |condition| condition.values.len());
        let budget = MAX_COMPARISONS.saturating_sub(self.comparisons_besides(index) + excluded + 1);
        let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
        for referral in shown {
            if let Some(value) = text_of(index, referral) {
                *tally.entry(value).or_default() += 1;
            }
        }
        let mut by_count: Vec<(&str, usize)> = tally.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let (mut values, mut sum, mut best) = (BTreeSet::new(), 0usize, None::<Choice>);
        for (value, times) in by_count {
            let alone = times < 2;
            if alone && !values.is_empty() || values.len() >= budget {
                break;
            }
            values.insert(value.to_owned());
            sum = sum.saturating_add(times);
            if limit.is_some_and(|limit| values.len() >= limit) {
                break;
            }
            let score = (
                sum == shown.len(),
                shown.len().abs_diff(sum.saturating_mul(2)),
            );
            if best.as_ref().is_none_or(|(known, ..)| score < *known) {
                best = Some((score, index, values.clone()));
            }
            if alone {
                break;
            }
        }
        best
    }

    /// The two cells that this one is cut into, from the referrals of its first page that it
    /// holds: by the values of one member that are nearest to holding half of them, preferring
    /// values that some of them lack. `None` when no member is left to cut by: every referral
    /// shown shares every value that the cell does not already fix.
    pub(super) fn cut(&self, shown: &[&Referral]) -> Option<(Cell, Cell)> {
        let shown: Vec<&Referral> = shown
            .iter()
            .copied()
            .filter(|referral| self.holds(referral))
            .collect();
        let best = cutting()
            .filter_map(|(index, _)| self.choose(index, &shown))
            .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)))?;
        let (_, member, values) = best;
        Some(self.split_by(member, values))
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
    /// How many referrals the cells done held, counted once each: those of a cell that one
    /// page showed whole, or the size that passes proved of a cell. Cells do not overlap.
    pub(super) done: usize,
    /// The ids of the tie's referrals that the cells' pages showed in this run.
    pub(super) seen: BTreeSet<String>,
    /// How many cells were read in this run.
    pub(super) read: usize,
    /// Whether the service refused a cell's `eq null` (400): the cells are then plain `ne`.
    pub(super) plain: bool,
}

/// A tie's reading by cells as the sync's state saves it ([`Split`] without what only this
/// run needs): enough to go on with the cells left after a stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tie {
    created: Option<DateTime<Utc>>,
    /// The cells still to read, the next one last; the cell being read among them.
    cells: Vec<Cell>,
    before: Option<i64>,
    done: usize,
    plain: bool,
}

impl Tie {
    /// Why a saved tie cannot be one that a sync wrote, if it cannot: a cell with two
    /// conditions on one member, an `eq` with `or eq null`, a filter past
    /// [`MAX_COMPARISONS`], or a count below zero.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.before.is_some_and(|count| count < 0) {
            return Err("its tie has a count below zero".to_owned());
        }
        for Cell(conditions) in &self.cells {
            let members: BTreeSet<usize> = conditions.iter().map(|c| c.member).collect();
            let comparisons = (conditions.iter())
                .map(|condition| condition.values.len() + usize::from(condition.null))
                .sum::<usize>();
            if members.len() < conditions.len()
                || conditions.iter().any(|c| c.equal && c.null)
                || comparisons > MAX_COMPARISONS
            {
                return Err("a cell of its tie is not one that a sync makes".to_owned());
            }
        }
        Ok(())
    }
}

impl Split {
    /// The reading of the tie created at `created`, from the whole tie.
    pub(super) fn new(created: Option<DateTime<Utc>>) -> Self {
        Self {
            created,
            cells: vec![Cell::default()],
            before: None,
            done: 0,
            seen: BTreeSet::new(),
            read: 0,
            plain: false,
        }
    }

    /// The reading saved in a state, going on.
    pub(super) fn resume(tie: Tie) -> Self {
        Self {
            created: tie.created,
            cells: tie.cells,
            before: tie.before,
            done: tie.done,
            seen: BTreeSet::new(),
            read: 0,
            plain: tie.plain,
        }
    }

    /// The reading as a state saves it, with the `current` cell still to read.
    pub(super) fn saved(&self, current: Option<&Cell>) -> Tie {
        let mut cells = self.cells.clone();
        cells.extend(current.cloned());
        Tie {
            created: self.created,
            cells,
            before: self.before,
            done: self.done,
            plain: self.plain,
        }
    }

    /// Whether the cells done held fewer referrals than the service counts in the tie `after`
    /// them: the tie's size then. A tie only loses referrals (to later instants), and each
    /// that is still in it was in its cell when the cell was read, so a service that keeps to
    /// the cells' filters shows at least that many. One whose `ne` does not hold for an absent
    /// member would show fewer; the tie is then read in passes, and what the cells delivered
    /// counts. A referral that the cells missed while another left the tie after its cell is
    /// not seen by the counts.
    pub(super) fn short(&self, after: Option<i64>) -> Option<usize> {
        self.before?;
        let size = usize::try_from(after?).ok()?;
        (self.done < size).then_some(size)
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
        let (again, rest) = other.cut(&mixed).expect("the Active one is in the cell");
        // One condition a member: `eq 'Active'` says `ne 'New'` already.
        assert_eq!(text(&again).as_deref(), Some("status eq 'Active'"));
        assert_eq!(
            text(&rest).as_deref(),
            Some("status ne 'Active' and status ne 'New' or status eq null")
        );
        assert!(Cell::default().cut(&[]).is_none(), "nothing shown");
    }

    fn engaged(id: &str) -> Referral {
        Referral {
            engagement_id: Some(id.to_owned()),
            ..Referral::default()
        }
    }

    /// A member of many values cuts by a set of them that holds half of what was shown, so
    /// that a cell halves at each cut rather than losing one value's referrals.
    #[test]
    fn a_cell_is_cut_by_the_set_of_values_nearest_to_half() {
        let shown: Vec<Referral> = ["a", "a", "b", "b", "c", "c", "d", "d"]
            .into_iter()
            .map(engaged)
            .collect();
        let shown: Vec<&Referral> = shown.iter().collect();
        let (some, others) = Cell::default().cut(&shown).expect("four values");
        assert_eq!(
            text(&some).as_deref(),
            Some("engagementId eq 'a' or engagementId eq 'b'")
        );
        assert_eq!(
            text(&others).as_deref(),
            Some("engagementId ne 'a' and engagementId ne 'b' or engagementId eq null")
        );
        assert!(shown.iter().all(|r| some.holds(r) != others.holds(r)));
        // Cut again, each side keeps one condition on the member.
        let (one, other) = some.cut(&shown).expect("two values left");
        assert_eq!(text(&one).as_deref(), Some("engagementId eq 'a'"));
        assert_eq!(text(&other).as_deref(), Some("engagementId eq 'b'"));
        let (three, rest) = others.cut(&shown).expect("c and d");
        assert_eq!(text(&three).as_deref(), Some("engagementId eq 'c'"));
        assert_eq!(
            text(&rest).as_deref(),
            Some(
                "engagementId ne 'a' and engagementId ne 'b' and engagementId ne 'c' \
                 or engagementId eq null"
            )
        );
        assert!(one.cut(&shown).is_none(), "one value: no cut");
        // Values shown once (ids, perhaps) cut one at a time: a set of them says nothing of
        // the referrals not shown.
        let once: Vec<Referral> = ["w", "x", "y", "z"].into_iter().map(engaged).collect();
        let once: Vec<&Referral> = once.iter().collect();
        let (alone, _) = Cell::default().cut(&once).expect("four values");
        assert_eq!(text(&alone).as_deref(), Some("engagementId eq 'w'"));
        // A cell saved and read back is the same cell.
        let saved = serde_json::to_string(&rest).unwrap();
        assert_eq!(serde_json::from_str::<Cell>(&saved).unwrap(), rest);
        let empty = r#"[{"member":"status","equal":true,"values":[],"null":false}]"#;
        assert!(serde_json::from_str::<Cell>(empty).is_err(), "no value");
    }

    /// The comparisons of a cell's filter.
    fn comparisons(cell: &Cell) -> usize {
        let text = text(cell).unwrap_or_default();
        text.matches(" eq ").count() + text.matches(" ne ").count()
    }

    /// The side of each cut that excludes the values grows, with the cell's other conditions,
    /// up to the most comparisons and no further: then the member cuts no more.
    #[test]
    fn a_cut_never_makes_a_filter_of_more_than_the_most_comparisons() {
        let status = cutting()
            .find(|(_, member)| member.path == "status")
            .map(|(index, _)| index)
            .unwrap();
        let others = (0..20).map(|n| format!("s{n}")).collect();
        let mut cell = Cell(vec![Condition {
            member: status,
            equal: false,
            values: others,
            null: true,
        }]);
        let mut cuts = 0;
        for round in 0..100 {
            // Eight values new to the cell, each shown twice.
            let shown: Vec<Referral> = (0..16)
                .map(|n| engaged(&format!("{round}-{}", n / 2)))
                .collect();
            let shown: Vec<&Referral> = shown.iter().collect();
            let Some((some, rest)) = cell.cut(&shown) else {
                break;
            };
            for side in [&some, &rest] {
                let made = comparisons(side);
                assert!(made <= MAX_COMPARISONS, "{made} comparisons");
            }
            (cell, cuts) = (rest, cuts + 1);
        }
        // The status's 21 comparisons and `eq null` leave room for 26 values: four a cut (half
        // of the eight shown), then the two that fit.
        assert_eq!(cuts, 7, "the cuts before the filter is full");
        assert_eq!(comparisons(&cell), MAX_COMPARISONS);
    }
}
