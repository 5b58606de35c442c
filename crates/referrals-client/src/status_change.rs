//! Changes decided by a rule that holds: the four status changes of a referral's life that the
//! API names (accept, decline, close as won, close as lost) as one value, [`StatusChange`], and
//! [`Client::decide`], which applies what a rule decides for a referral and, when the referral
//! changed meanwhile (412), decides again on the version the service has.

use crate::patch::Patch;
use crate::transitions;
use crate::types::{Referral, ReferralStatus, ReferralSubstatus};
use crate::{Amount, Client, Error, ErrorKind};

/// How many times [`Client::decide`] sends a change, at most, when the referral keeps changing.
pub const DECIDE_ATTEMPTS: u32 = 5;

/// A change of a referral's status, checked against the document's status rules before it is
/// sent ([`Client::change`]).
///
/// ```
/// use referrals_client::StatusChange;
/// use referrals_client::types::{ReferralStatus, ReferralSubstatus};
///
/// let decline = StatusChange::Decline { reason: "Out of our region".into() };
/// assert_eq!(decline.target(), (ReferralStatus::Closed, ReferralSubstatus::Declined));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum StatusChange {
    /// Accepts a lead: status Active, substatus Accepted.
    Accept,
    /// Declines a lead, saying why: status Closed, substatus Declined, `statusReason`.
    Decline {
        /// Why (the referral's `statusReason`).
        reason: String,
    },
    /// Closes a referral as won: status Closed, substatus Won, with the final deal value when
    /// given.
    CloseWon {
        /// The final value of the deal.
        deal_value: Option<Amount>,
    },
    /// Closes a referral as lost, saying why: status Closed, substatus Lost, `statusReason`.
    CloseLost {
        /// Why (the referral's `statusReason`).
        reason: String,
    },
    /// Any status that the document's `x-status-rules` allow, such as one added after this
    /// crate was written: with the substatus named, or else the first that the rules give the
    /// status (the one a referral entering it without a substatus gets); and a `statusReason`
    /// when given.
    To {
        /// The status.
        status: ReferralStatus,
        /// The substatus; `None` for the first of the status's rule.
        substatus: Option<ReferralSubstatus>,
        /// Why (the referral's `statusReason`), if said.
        reason: Option<String>,
    },
}

impl StatusChange {
    /// The status and substatus that the change gives.
    pub fn target(&self) -> (ReferralStatus, ReferralSubstatus) {
        match self {
            Self::Accept => (ReferralStatus::Active, ReferralSubstatus::Accepted),
            Self::Decline { .. } => (ReferralStatus::Closed, ReferralSubstatus::Declined),
            Self::CloseWon { .. } => (ReferralStatus::Closed, ReferralSubstatus::Won),
            Self::CloseLost { .. } => (ReferralStatus::Closed, ReferralSubstatus::Lost),
            Self::To {
                status, substatus, ..
            } => {
                let substatus = substatus
                    .clone()
                    .or_else(|| transitions::entering_substatus(status).cloned())
                    // The codegen gives every status of the rules at least one substatus; a
                    // status without a rule is refused when the change is checked.
                    .unwrap_or(ReferralSubstatus::None);
                (status.clone(), substatus)
            }
        }
    }

    /// What the change sets besides the status and substatus.
    pub fn extra(&self) -> Patch {
        match self {
            Self::Accept | Self::CloseWon { deal_value: None } => Patch::new(),
            Self::Decline { reason } | Self::CloseLost { reason } => {
                Patch::new().set_status_reason(reason)
            }
            Self::CloseWon {
                deal_value: Some(value),
            } => Patch::new().set_details_deal_value(value.clone()),
            Self::To { reason: None, .. } => Patch::new(),
            Self::To {
                reason: Some(reason),
                ..
            } => Patch::new().set_status_reason(reason),
        }
    }

    /// The status and substatus that the change gives `referral`: as [`Self::target`], but
    /// a [`Self::To`] without a substatus keeps the referral's own when its status stays (a
    /// referral only gets the first substatus of a status that it enters).
    pub fn target_for(&self, referral: &Referral) -> (ReferralStatus, ReferralSubstatus) {
        let (status, substatus) = self.target();
        match (self, referral.status.as_ref()) {
            (
                Self::To {
                    substatus: None, ..
                },
                Some(current),
            ) => {
                let kept = transitions::substatus_after(
                    current,
                    referral.substatus.as_ref(),
                    &status,
                    None,
                );
                (status, kept.unwrap_or(substatus))
            }
            _ => (status, substatus),
        }
    }

    /// Whether `referral` is already in the status and substatus that the change gives it.
    pub fn is_done(&self, referral: &Referral) -> bool {
        let (status, substatus) = self.target_for(referral);
        referral.status.as_ref() == Some(&status) && referral.substatus.as_ref() == Some(&substatus)
    }
}

/// What a rule decides for one version of a referral.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A status change, checked against the document's status rules before it is sent.
    Change(StatusChange),
    /// Any change that `x-patchable` allows.
    Patch(Patch),
    /// Nothing: the referral stays as it is.
    Leave,
}

impl From<StatusChange> for Decision {
    fn from(change: StatusChange) -> Self {
        Self::Change(change)
    }
}

impl From<Patch> for Decision {
    fn from(patch: Patch) -> Self {
        Self::Patch(patch)
    }
}

/// What [`Client::decide`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decided {
    /// The change was applied, on the version that the rule last judged.
    Applied {
        /// The referral as the service stored it.
        referral: Referral,
        /// How many times the change was sent (more than once when the referral changed
        /// meanwhile).
        attempts: u32,
    },
    /// The rule decided to leave the referral as it is.
    Left {
        /// The version that the rule last judged.
        referral: Referral,
    },
    /// The rule decided a status change whose status and substatus the referral has already:
    /// nothing was sent.
    AlreadyDone {
        /// The version that the rule last judged.
        referral: Referral,
    },
}

impl Decided {
    /// The referral: as stored after the change, or as last read.
    pub fn referral(&self) -> &Referral {
        match self {
            Self::Applied { referral, .. }
            | Self::Left { referral }
            | Self::AlreadyDone { referral } => referral,
        }
    }

    /// Whether a change was applied.
    pub fn applied(&self) -> bool {
        matches!(self, Self::Applied { .. })
    }
}

impl Client {
    /// Sends `change` for `referral`, after checking it against the document's status rules,
    /// with `If-Match` from the referral's eTag (see [`Client::change_status`]). One attempt:
    /// a referral changed meanwhile is [`ErrorKind::PreconditionFailed`]; [`Self::decide`]
    /// decides again instead.
    pub async fn change(
        &self,
        referral: &Referral,
        change: &StatusChange,
    ) -> Result<Referral, Error> {
        let (status, substatus) = change.target_for(referral);
        self.change_status(referral, status, substatus, change.extra())
            .await
    }

    /// Sends `change` for the referral `id` only if its eTag is still `etag` (`If-Match`),
    /// without reading it first: for a program that decided on a version it read itself. The
    /// status rules are the service's to check (400 when they refuse); a referral changed
    /// meanwhile is [`ErrorKind::PreconditionFailed`].
    pub async fn change_if_match(
        &self,
        id: &str,
        etag: &str,
        change: &StatusChange,
    ) -> Result<Referral, Error> {
        let (status, substatus) = change.target();
        // Without the referral at hand, a change to a status without a substatus sends the
        // status alone: the service gives the substatus that its rules say.
        let patch = match change {
            StatusChange::To {
                substatus: None, ..
            } => Patch::new().set_status(status),
            _ => Patch::new().set_status(status).set_substatus(substatus),
        };
        self.send_update(id, Some(etag), patch.and(change.extra()))
            .await
    }

    /// Applies what `rule` decides for `referral`, with `If-Match` from its eTag. When the
    /// referral changed meanwhile (412), it is read again and `rule` decides again on the
    /// version the service has, at most [`DECIDE_ATTEMPTS`] times; then the error is
    /// [`ErrorKind::PreconditionFailed`]. A status change that the rules refuse is
    /// [`ErrorKind::InvalidTransition`], and nothing is sent.
    ///
    /// ```no_run
    /// # async fn run(client: referrals_client::Client, lead: referrals_client::types::Referral) -> Result<(), referrals_client::Error> {
    /// use referrals_client::{Decision, StatusChange};
    ///
    /// // Accept the US leads, decline the others; decided again on the version the service has
    /// // if someone changes the lead meanwhile.
    /// let decided = client
    ///     .decide(&lead, |lead| match lead.country() {
    ///         Some("US") => StatusChange::Accept.into(),
    ///         Some(_) => StatusChange::Decline { reason: "Outside our region".into() }.into(),
    ///         None => Decision::Leave,
    ///     })
    ///     .await?;
    /// println!("{:?}: applied {}", decided.referral().id, decided.applied());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn decide(
        &self,
        referral: &Referral,
        rule: impl FnMut(&Referral) -> Decision,
    ) -> Result<Decided, Error> {
        self.decide_within(referral, DECIDE_ATTEMPTS, rule).await
    }

    /// [`Self::decide`], with at most `attempts` sends (1: a 412 is the answer).
    pub async fn decide_within(
        &self,
        referral: &Referral,
        attempts: u32,
        mut rule: impl FnMut(&Referral) -> Decision,
    ) -> Result<Decided, Error> {
        let mut current = referral.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = match rule(&current) {
                Decision::Leave => return Ok(Decided::Left { referral: current }),
                Decision::Change(change) if change.is_done(&current) => {
                    return Ok(Decided::AlreadyDone { referral: current });
                }
                Decision::Change(change) => self.change(&current, &change).await,
                Decision::Patch(patch) => self.update(&current, patch).await,
            };
            match sent {
                Ok(referral) => {
                    return Ok(Decided::Applied {
                        referral,
                        attempts: attempt,
                    });
                }
                Err(error)
                    if error.kind() == ErrorKind::PreconditionFailed && attempt < attempts =>
                {
                    let id = current.id.clone().unwrap_or_default();
                    current = self.referral(&id).await?;
                }
                Err(error) => return Err(error),
            }
        }
    }
}
