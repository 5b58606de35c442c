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

    #[test]
    fn the_rules() {
        assert!(check(&Status::New, &Status::Active, Some(&Substatus::Accepted)).is_ok());
        assert!(check(&Status::New, &Status::New, Some(&Substatus::Received)).is_ok());
        assert!(check(&Status::New, &Status::Closed, Some(&Substatus::Declined)).is_ok());
        assert!(check(&Status::Active, &Status::Closed, Some(&Substatus::Won)).is_ok());
        assert!(check(&Status::Closed, &Status::Closed, Some(&Substatus::Lost)).is_ok());
        let error =
            check(&Status::Closed, &Status::Active, Some(&Substatus::Accepted)).unwrap_err();
        assert_eq!(
            error.message,
            "a referral in status Closed may move to Closed only, not to Active"
        );
        let error = check(&Status::Active, &Status::New, None).unwrap_err();
        assert!(error.message.contains("Active or Closed only"), "{error}");
        let error = check(&Status::New, &Status::Active, Some(&Substatus::Won)).unwrap_err();
        assert_eq!(
            error.message,
            "the substatus of a referral in status Active is Accepted, not Won"
        );
        let error = check(&Status::from("Archived"), &Status::Closed, None).unwrap_err();
        assert!(error.message.contains("`Archived`"), "{error}");
    }
}
