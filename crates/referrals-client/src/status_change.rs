//! The four status changes of a referral's life that the API names (accept, decline, close as
//! won, close as lost), as one value: what [`Client::accept`] and its siblings send, and what a
//! program or the `referrals` command decides and sends.

use crate::patch::Patch;
use crate::types::{Referral, ReferralStatus, ReferralSubstatus};
use crate::{Amount, Client, Error};

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
}

impl StatusChange {
    /// The status and substatus that the change gives.
    pub fn target(&self) -> (ReferralStatus, ReferralSubstatus) {
        match self {
            Self::Accept => (ReferralStatus::Active, ReferralSubstatus::Accepted),
            Self::Decline { .. } => (ReferralStatus::Closed, ReferralSubstatus::Declined),
            Self::CloseWon { .. } => (ReferralStatus::Closed, ReferralSubstatus::Won),
            Self::CloseLost { .. } => (ReferralStatus::Closed, ReferralSubstatus::Lost),
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
        }
    }

    /// Whether `referral` is already in the status and substatus that the change gives.
    pub fn is_done(&self, referral: &Referral) -> bool {
        let (status, substatus) = self.target();
        referral.status.as_ref() == Some(&status) && referral.substatus.as_ref() == Some(&substatus)
    }
}

impl Client {
    /// Sends `change` for `referral`, after checking it against the document's status rules,
    /// with `If-Match` from the referral's eTag (see [`Client::change_status`]).
    pub async fn change(
        &self,
        referral: &Referral,
        change: &StatusChange,
    ) -> Result<Referral, Error> {
        let (status, substatus) = change.target();
        self.change_status(referral, status, substatus, change.extra())
            .await
    }
}
