//! `$filter` and `$orderby` on the store, from the document's tables alone
//! (`referrals_model::facts`): a member that `x-filterable` or `x-sortable` does not list is
//! refused with 400 and the list of those it does.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use referrals_model::facts::{
    self, Filterable, Kind, Lambda, Operators, Resource, Scalar, Sortable, Value,
};
use referrals_model::parameters::list_referrals as list_params;
use referrals_odata::{CompareOp, Expr, LambdaKind, Literal, Operand, OrderItem};

use crate::error::ApiError;

/// A filter checked against the tables, ready to run on referrals.
pub enum Compiled {
    /// `member op value`.
    Compare {
        /// The member.
        member: &'static Filterable,
        /// The operator, with the member on its left.
        op: CompareOp,
        /// The value.
        value: Value,
    },
    /// Both.
    And(Box<Compiled>, Box<Compiled>),
    /// Either.
    Or(Box<Compiled>, Box<Compiled>),
    /// Not.
    Not(Box<Compiled>),
    /// A lambda over an array of the resource.
    Lambda {
        /// The array.
        lambda: &'static Lambda,
        /// `any` or `all`.
        kind: LambdaKind,
        /// The predicate on an item.
        predicate: Box<ItemCompiled>,
    },
}

/// A predicate on one item of an array: on its row of values (see `Lambda::rows`).
pub enum ItemCompiled {
    /// `x/member op value`, the member by its index in the row.
    Compare(usize, CompareOp, Value),
    /// Both.
    And(Box<ItemCompiled>, Box<ItemCompiled>),
    /// Either.
    Or(Box<ItemCompiled>, Box<ItemCompiled>),
    /// Not.
    Not(Box<ItemCompiled>),
}

fn filter_error(message: String) -> ApiError {
    ApiError::bad_request(message).target(list_params::FILTER)
}

/// Checks a parsed filter against the tables.
pub fn compile(expr: &Expr) -> Result<Compiled, ApiError> {
    Ok(match expr {
        Expr::And(a, b) => Compiled::And(Box::new(compile(a)?), Box::new(compile(b)?)),
        Expr::Or(a, b) => Compiled::Or(Box::new(compile(a)?), Box::new(compile(b)?)),
        Expr::Not(a) => Compiled::Not(Box::new(compile(a)?)),
        Expr::Compare { left, op, right } => {
            let (path, op, literal) = sides(left, *op, right)?;
            let member = facts::filterable(&path.path()).ok_or_else(|| unknown_member(path))?;
            check_operator(member.operators, op, &path.path(), path.position)?;
            let value = literal_value(member.kind, op, literal, path)?;
            Compiled::Compare { member, op, value }
        }
        Expr::Lambda {
            collection,
            kind,
            variable,
            predicate,
        } => {
            let lambda = facts::lambda(&collection.path())
                .filter(|lambda| lambda.lambda == *kind)
                .ok_or_else(|| {
                    filter_error(format!(
                        "at position {}: `{}/{}` is not a lambda that can be filtered on; the members \
                         that can be are: {}",
                        collection.position + 1,
                        collection.path(),
                        match kind {
                            LambdaKind::Any => "any",
                            LambdaKind::All => "all",
                        },
                        facts::filterable_paths().join(", ")
                    ))
                })?;
            Compiled::Lambda {
                lambda,
                kind: *kind,
                predicate: Box::new(compile_item(predicate, variable, lambda)?),
            }
        }
    })
}

fn compile_item(expr: &Expr, variable: &str, lambda: &Lambda) -> Result<ItemCompiled, ApiError> {
    Ok(match expr {
        Expr::And(a, b) => ItemCompiled::And(
            Box::new(compile_item(a, variable, lambda)?),
            Box::new(compile_item(b, variable, lambda)?),
        ),
        Expr::Or(a, b) => ItemCompiled::Or(
            Box::new(compile_item(a, variable, lambda)?),
            Box::new(compile_item(b, variable, lambda)?),
        ),
        Expr::Not(a) => ItemCompiled::Not(Box::new(compile_item(a, variable, lambda)?)),
        Expr::Compare { left, op, right } => {
            let (path, op, literal) = sides(left, *op, right)?;
            let found = match path.segments.split_first() {
                Some((first, rest)) if first == variable => {
                    let inner = rest.join("/");
                    lambda
                        .members
                        .iter()
                        .position(|member| member.path == inner)
                }
                _ => None,
            };
            let index = found.ok_or_else(|| {
                let names: Vec<String> = lambda
                    .members
                    .iter()
                    .map(|member| format!("{variable}/{}", member.path))
                    .collect();
                filter_error(format!(
                    "at position {}: `{}` is not a member of the lambda's items that can be filtered \
                     on ({})",
                    path.position + 1,
                    path.path(),
                    names.join(", ")
                ))
            })?;
            let member = &lambda.members[index];
            check_operator(member.operators, op, &path.path(), path.position)?;
            let value = literal_value(member.kind, op, literal, path)?;
            ItemCompiled::Compare(index, op, value)
        }
        Expr::Lambda { collection, .. } => {
            return Err(filter_error(format!(
                "at position {}: lambdas cannot be nested",
                collection.position + 1
            )));
        }
    })
}

/// The member, the operator (turned so that the member is on its left) and the literal.
fn sides<'a>(
    left: &'a Operand,
    op: CompareOp,
    right: &'a Operand,
) -> Result<(&'a referrals_odata::Member, CompareOp, &'a Literal), ApiError> {
    match (left, right) {
        (Operand::Member(member), Operand::Literal(literal)) => Ok((member, op, literal)),
        (Operand::Literal(literal), Operand::Member(member)) => {
            let turned = match op {
                CompareOp::Gt => CompareOp::Lt,
                CompareOp::Ge => CompareOp::Le,
                CompareOp::Lt => CompareOp::Gt,
                CompareOp::Le => CompareOp::Ge,
                other => other,
            };
            Ok((member, turned, literal))
        }
        (Operand::Member(member), Operand::Member(_)) => Err(filter_error(format!(
            "at position {}: a member can be compared with a literal only",
            member.position + 1
        ))),
        (Operand::Literal(_), Operand::Literal(_)) => Err(filter_error(
            "a comparison needs a member on one side".into(),
        )),
    }
}

fn unknown_member(path: &referrals_odata::Member) -> ApiError {
    filter_error(format!(
        "at position {}: `{}` is not a member that can be filtered on; the members that can be are: {}",
        path.position + 1,
        path.path(),
        facts::filterable_paths().join(", ")
    ))
}

fn check_operator(
    operators: Operators,
    op: CompareOp,
    path: &str,
    position: usize,
) -> Result<(), ApiError> {
    if operators.contains(op) {
        return Ok(());
    }
    Err(filter_error(format!(
        "at position {}: `{path}` compares with {} only, not {}",
        position + 1,
        operators.keywords().join(", "),
        op.keyword()
    )))
}

fn literal_value(
    kind: Kind,
    op: CompareOp,
    literal: &Literal,
    path: &referrals_odata::Member,
) -> Result<Value, ApiError> {
    let wrong = || {
        filter_error(format!(
            "at position {}: `{}` holds {}, and `{literal}` is not one",
            path.position + 1,
            path.path(),
            kind.describe()
        ))
    };
    match literal {
        Literal::Null if matches!(op, CompareOp::Eq | CompareOp::Ne) => Ok(Value::Null),
        Literal::Null => Err(filter_error(format!(
            "at position {}: `{}` compares with null using eq or ne only",
            path.position + 1,
            path.path()
        ))),
        literal => kind.value_of_literal(literal).ok_or_else(wrong),
    }
}

fn holds(op: CompareOp, found: &Scalar<'_>, value: &Value) -> bool {
    let wanted = value.scalar();
    match (found, &wanted) {
        (Scalar::Null, Scalar::Null) => op == CompareOp::Eq,
        (Scalar::Null, _) | (_, Scalar::Null) => op == CompareOp::Ne,
        _ => {
            let ordering = found.compare(&wanted);
            match op {
                CompareOp::Eq => ordering == Ordering::Equal,
                CompareOp::Ne => ordering != Ordering::Equal,
                CompareOp::Gt => ordering == Ordering::Greater,
                CompareOp::Ge => ordering != Ordering::Less,
                CompareOp::Lt => ordering == Ordering::Less,
                CompareOp::Le => ordering != Ordering::Greater,
            }
        }
    }
}

impl Compiled {
    /// Whether `referral` passes the filter.
    pub fn matches(&self, referral: &Resource) -> bool {
        match self {
            Compiled::Compare { member, op, value } => holds(*op, &(member.get)(referral), value),
            Compiled::And(a, b) => a.matches(referral) && b.matches(referral),
            Compiled::Or(a, b) => a.matches(referral) || b.matches(referral),
            Compiled::Not(a) => !a.matches(referral),
            Compiled::Lambda {
                lambda,
                kind,
                predicate,
            } => {
                let rows = (lambda.rows)(referral);
                match kind {
                    LambdaKind::Any => rows.iter().any(|row| predicate.matches(row)),
                    LambdaKind::All => rows.iter().all(|row| predicate.matches(row)),
                }
            }
        }
    }

    /// The bounds that the filter puts on a date-time member when it is an `and` of
    /// comparisons, at least one of which bounds it: (lower, upper), each with whether it is
    /// included. A store reads only that range of its index for the member.
    pub fn time_range(&self, path: &str) -> Option<(Bound, Bound)> {
        let mut range = (Bound::Unbounded, Bound::Unbounded);
        self.narrow(path, &mut range);
        (range != (Bound::Unbounded, Bound::Unbounded)).then_some(range)
    }

    fn narrow(&self, path: &str, range: &mut (Bound, Bound)) {
        match self {
            Compiled::And(a, b) => {
                a.narrow(path, range);
                b.narrow(path, range);
            }
            Compiled::Compare {
                member,
                op,
                value: Value::Time(time),
            } if member.path == path => match op {
                CompareOp::Gt => tighten_lower(range, Bound::Excluded(*time)),
                CompareOp::Ge => tighten_lower(range, Bound::Included(*time)),
                CompareOp::Lt => tighten_upper(range, Bound::Excluded(*time)),
                CompareOp::Le => tighten_upper(range, Bound::Included(*time)),
                CompareOp::Eq => {
                    tighten_lower(range, Bound::Included(*time));
                    tighten_upper(range, Bound::Included(*time));
                }
                CompareOp::Ne => {}
            },
            _ => {}
        }
    }
}

/// One end of a range of instants.
pub type Bound = std::ops::Bound<DateTime<Utc>>;

fn tighten_lower(range: &mut (Bound, Bound), bound: Bound) {
    use std::ops::Bound::*;
    let tighter = match (&range.0, &bound) {
        (Unbounded, _) => true,
        (_, Unbounded) => false,
        (Included(a) | Excluded(a), Included(b)) => b > a,
        (Included(a), Excluded(b)) => b >= a,
        (Excluded(a), Excluded(b)) => b > a,
    };
    if tighter {
        range.0 = bound;
    }
}

fn tighten_upper(range: &mut (Bound, Bound), bound: Bound) {
    use std::ops::Bound::*;
    let tighter = match (&range.1, &bound) {
        (Unbounded, _) => true,
        (_, Unbounded) => false,
        (Included(a) | Excluded(a), Included(b)) => b < a,
        (Included(a), Excluded(b)) => b <= a,
        (Excluded(a), Excluded(b)) => b < a,
    };
    if tighter {
        range.1 = bound;
    }
}

impl ItemCompiled {
    fn matches(&self, row: &[Scalar<'_>]) -> bool {
        match self {
            ItemCompiled::Compare(index, op, value) => row
                .get(*index)
                .is_some_and(|found| holds(*op, found, value)),
            ItemCompiled::And(a, b) => a.matches(row) && b.matches(row),
            ItemCompiled::Or(a, b) => a.matches(row) || b.matches(row),
            ItemCompiled::Not(a) => !a.matches(row),
        }
    }
}

/// An `$orderby` checked against the tables; the id ends every order, so it is total.
pub struct Order {
    /// The keys, each with `true` for descending.
    pub keys: Vec<(&'static Sortable, bool)>,
    /// Whether the id, which ends the order, runs descending.
    pub id_descending: bool,
    /// Whether the request gave the order (`$orderby`), rather than the sandbox.
    pub asked: bool,
}

/// The most keys that one `$orderby` may have.
const MAX_KEYS: usize = 16;

impl Order {
    /// The order of `items`; the sandbox's own order when empty (the first sortable member,
    /// ascending, then the id).
    pub fn new(items: &[OrderItem]) -> Result<Self, ApiError> {
        if items.len() > MAX_KEYS {
            return Err(ApiError::bad_request(format!(
                "{} takes at most {MAX_KEYS} keys",
                list_params::ORDERBY
            ))
            .target(list_params::ORDERBY));
        }
        let mut keys = Vec::new();
        for item in items {
            let found = facts::sortable(&item.member.path()).ok_or_else(|| {
                let known: Vec<&str> = facts::SORTABLE.iter().map(|member| member.path).collect();
                ApiError::bad_request(format!(
                    "at position {}: `{}` is not a member that can order a list; the members that \
                     can are: {}",
                    item.member.position + 1,
                    item.member.path(),
                    known.join(", ")
                ))
                .target(list_params::ORDERBY)
            })?;
            keys.push((found, item.descending));
        }
        let asked = !keys.is_empty();
        if keys.is_empty()
            && let Some(first) = facts::SORTABLE.first()
        {
            keys.push((first, false));
        }
        // The tie-breaker runs the way of the last key, so that `createdDateTime desc` is
        // exactly the creation index walked backwards.
        let id_descending = keys.last().is_some_and(|(_, descending)| *descending);
        Ok(Self {
            keys,
            id_descending,
            asked,
        })
    }

    /// `Some(descending)` when the order is the one member `path` alone (then the id): the order
    /// of the store's index on that member.
    pub fn by_single(&self, path: &str) -> Option<bool> {
        match self.keys.as_slice() {
            [(only, descending)] if only.path == path => Some(*descending),
            _ => None,
        }
    }

    /// The values of the keys for `referral`, the id last.
    pub fn key<'a>(&self, referral: &'a Resource) -> Vec<Scalar<'a>> {
        self.keys
            .iter()
            .map(|(member, _)| (member.get)(referral))
            .chain(std::iter::once(facts::scalar(referral.id.as_ref())))
            .collect()
    }

    /// The kinds of the values of [`Self::key`].
    pub fn kinds(&self) -> Vec<Kind> {
        self.keys
            .iter()
            .map(|(member, _)| member.kind)
            .chain(std::iter::once(Kind::Text))
            .collect()
    }

    /// Orders two keys.
    pub fn compare(&self, a: &[Scalar<'_>], b: &[Scalar<'_>]) -> Ordering {
        let directions = self
            .keys
            .iter()
            .map(|(_, descending)| *descending)
            .chain(std::iter::once(self.id_descending));
        for ((left, right), descending) in a.iter().zip(b).zip(directions) {
            let ordering = left.compare(right);
            if ordering != Ordering::Equal {
                return if descending {
                    ordering.reverse()
                } else {
                    ordering
                };
            }
        }
        Ordering::Equal
    }
}
