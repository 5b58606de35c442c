//! The status changes that the API allows, as the document's `x-status-rules` states them:
//! the client's update helpers check them before sending, and the sandbox enforces them, from
//! the one generated table ([`crate::facts::STATUS_RULES`]).

use crate::facts::{STATUS_RULES, Status, StatusRule, Substatus};

/// A status change that the API does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransitionError {
    /// Which rule is broken, in a sentence.
    pub message: String,
}

fn rule(status: &Status) -> Option<&'static StatusRule> {
    STATUS_RULES.iter().find(|rule| rule.from == *status)
}

/// The statuses that a referral in `status` may move to; `None` for a status whose rules the
/// document does not state.
pub fn next_statuses(status: &Status) -> Option<&'static [Status]> {
    rule(status).map(|rule| rule.to)
}

/// The substatuses that go with `status`, the first being the one given to a referral that
/// enters it without one; `None` for a status whose rules the document does not state.
pub fn substatuses(status: &Status) -> Option<&'static [Substatus]> {
    rule(status).map(|rule| rule.substatus)
}

/// The substatus that a referral entering `status` without one gets: the first of its rule.
pub fn entering_substatus(status: &Status) -> Option<&'static Substatus> {
    substatuses(status).and_then(<[Substatus]>::first)
}

/// The substatus after a change from status `from` with substatus `current` to status `to`,
/// when the change names `named` (or no substatus): the one named; else the current one when
/// the status stays; else the first of `to`'s rule, which a referral entering a status without
/// a substatus gets.
pub fn substatus_after(
    from: &Status,
    current: Option<&Substatus>,
    to: &Status,
    named: Option<&Substatus>,
) -> Option<Substatus> {
    match named {
        Some(named) => Some(named.clone()),
        None if from == to => current.cloned(),
        None => entering_substatus(to).cloned().or_else(|| current.cloned()),
    }
}

/// Checks a change from `from` to (`to`, `substatus`).
pub fn check(
    from: &Status,
    to: &Status,
    substatus: Option<&Substatus>,
) -> Result<(), TransitionError> {
    let refuse = |message: String| Err(TransitionError { message });
    let Some(next) = next_statuses(from) else {
        let known: Vec<&str> = STATUS_RULES.iter().map(|rule| rule.from.as_str()).collect();
        return refuse(format!(
            "the status `{from}` is not one whose rules the document states ({})",
            known.join(", ")
        ));
    };
    if !next.contains(to) {
        let allowed: Vec<&str> = next.iter().map(Status::as_str).collect();
        return refuse(format!(
            "a referral in status {from} may move to {} only, not to {to}",
            allowed.join(" or ")
        ));
    }
    if let Some(substatus) = substatus {
        // Every status that a rule moves to has a rule of its own (the generator checks it).
        let allowed = substatuses(to).unwrap_or_default();
        if !allowed.contains(substatus) {
            let names: Vec<&str> = allowed.iter().map(Substatus::as_str).collect();
            return refuse(format!(
                "the substatus of a referral in status {to} is {}, not {substatus}",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every change that the table allows passes, with each substatus of its target; the
    /// checks read the table, so a rule added to the document needs no edit here.
    #[test]
    fn every_change_that_the_table_allows_passes() {
        for rule in STATUS_RULES {
            for to in rule.to {
                assert!(check(&rule.from, to, None).is_ok(), "{} → {to}", rule.from);
                for substatus in substatuses(to).unwrap() {
                    assert!(check(&rule.from, to, Some(substatus)).is_ok());
                }
            }
        }
    }

    /// Every change that the table leaves out is refused, saying which rule it breaks.
    #[test]
    fn every_change_that_the_table_leaves_out_is_refused_with_the_rule() {
        for rule in STATUS_RULES {
            for other in STATUS_RULES
                .iter()
                .filter(|other| !rule.to.contains(&other.from))
            {
                let error = check(&rule.from, &other.from, None).unwrap_err();
                assert!(
                    error
                        .message
                        .starts_with(&format!("a referral in status {} may move to", rule.from)),
                    "{error}"
                );
                assert!(
                    error
                        .message
                        .ends_with(&format!("only, not to {}", other.from)),
                    "{error}"
                );
            }
            for to in rule.to {
                let foreign = STATUS_RULES
                    .iter()
                    .flat_map(|other| other.substatus)
                    .find(|substatus| !substatuses(to).unwrap().contains(substatus));
                if let Some(foreign) = foreign {
                    let error = check(&rule.from, to, Some(foreign)).unwrap_err();
                    assert!(
                        error.message.ends_with(&format!(", not {foreign}")),
                        "{error}"
                    );
                }
            }
        }
        let error = check(&Status::from("Archived"), &Status::from("Closed"), None).unwrap_err();
        assert!(error.message.contains("`Archived`"), "{error}");
    }
}
