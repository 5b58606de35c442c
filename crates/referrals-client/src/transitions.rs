//! The status changes that the API allows. The update helpers of the client check them before
//! sending, and the sandbox enforces them, from this one place.
//!
//! - New may go to New, Active or Closed; while New, the substatus is Pending or Received.
//! - Active may go to Active or Closed; while Active, the substatus is Accepted.
//! - Closed stays Closed; while Closed, the substatus is Won, Lost, Declined or Expired.

use crate::types::{ReferralStatus as Status, ReferralSubstatus as Substatus};

/// A status change that the API does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransitionError {
    /// Which rule is broken, in a sentence.
    pub message: String,
}

/// The statuses that a referral in `status` may move to; `None` for a status this client does
/// not know the rules of.
pub fn next_statuses(status: &Status) -> Option<&'static [Status]> {
    match status {
        Status::New => Some(&[Status::New, Status::Active, Status::Closed]),
        Status::Active => Some(&[Status::Active, Status::Closed]),
        Status::Closed => Some(&[Status::Closed]),
        _ => None,
    }
}

/// The substatuses that go with `status`; `None` for a status this client does not know the
/// rules of.
pub fn substatuses(status: &Status) -> Option<&'static [Substatus]> {
    match status {
        Status::New => Some(&[Substatus::Pending, Substatus::Received]),
        Status::Active => Some(&[Substatus::Accepted]),
        Status::Closed => Some(&[
            Substatus::Won,
            Substatus::Lost,
            Substatus::Declined,
            Substatus::Expired,
        ]),
        _ => None,
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
        return refuse(format!(
            "the status `{from}` is not one whose rules this client knows (New, Active, Closed)"
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
        let allowed = substatuses(to).expect("every status in a rule has substatuses");
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
