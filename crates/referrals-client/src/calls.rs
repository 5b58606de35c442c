//! The client's calls: one obvious method per operation, each returning the crate's [`Error`].
//!
//! The generated builders stay reachable for what these calls do not cover, through the
//! extension traits of [`crate::generated`] (`use referrals_client::generated::ClientReferralsExt`);
//! they go through the same runtime (auth, request ids, retries), and [`Client::run`] turns their
//! errors into [`Error`] with everything that a call of this module keeps.

use std::future::Future;

use progenitor_client::{ClientInfo, ResponseValue};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::context::{self, Call};
use crate::convert::{ErrorBody, GeneratedError, convert};
use crate::error::{Error, ErrorKind};
use crate::generated::ClientReferralsExt;
use crate::patch::Patch;
use crate::transitions;
use crate::types::{
    JsonPatch, NewReferral, PreferReturn, Referral, ReferralStatus, ReferralSubstatus,
    ReferralType, Target,
};
use crate::{Amount, Client, ClientBuilder, Operation, Runtime, StatusChange, TokenProvider};

const UPDATE: Operation = Operation::UpdateReferral;

impl Client {
    /// Starts building a client of the service at `root` (such as
    /// `https://api.partner.microsoft.com`) whose bearer tokens come from `tokens`.
    pub fn builder(root: &str, tokens: impl TokenProvider + 'static) -> ClientBuilder {
        ClientBuilder::new(root, tokens)
    }

    /// The client's runtime: root, correlation id, retry policy.
    pub fn runtime(&self) -> &Runtime {
        self.inner()
    }

    /// Runs a call of a generated builder (from the extension traits of
    /// [`crate::generated`]) and turns its failure into an [`Error`] that keeps the
    /// operation, its method and URL, the status, the service's error body, the request ids and
    /// the attempts.
    ///
    /// ```no_run
    /// # async fn run(client: referrals_client::Client) -> Result<(), referrals_client::Error> {
    /// use referrals_client::generated::ClientLegacyExt;
    /// use referrals_client::types::ReferralStatus;
    ///
    /// let answer = client
    ///     .run(client.list_referrals_legacy().status(ReferralStatus::Closed).send())
    ///     .await?;
    /// println!("{} closed referrals", answer.into_inner().value.unwrap_or_default().len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run<T, F>(&self, call: F) -> Result<ResponseValue<T>, Error>
    where
        T: DeserializeOwned,
        F: Future<Output = Result<ResponseValue<T>, GeneratedError>>,
    {
        self.run_recorded(call).await.map(|(answer, _)| answer)
    }

    /// [`Self::run`], with what the hooks recorded of the call.
    pub(crate) async fn run_recorded<T, F>(
        &self,
        call: F,
    ) -> Result<(ResponseValue<T>, Call), Error>
    where
        T: DeserializeOwned,
        F: Future<Output = Result<ResponseValue<T>, GeneratedError>>,
    {
        run_call(self.runtime(), call).await
    }

    /// One referral, by id.
    pub async fn referral(&self, id: &str) -> Result<Referral, Error> {
        self.run(self.get_referral().id(id).send())
            .await
            .map(ResponseValue::into_inner)
    }

    /// Creates a referral and returns it as the service stored it.
    ///
    /// ```no_run
    /// # async fn run(client: referrals_client::Client) -> Result<(), referrals_client::Error> {
    /// use referrals_client::types::{
    ///     Address, Consent, CustomerProfile, NewReferral, ReferralDetails, ReferralType,
    /// };
    ///
    /// let customer = CustomerProfile {
    ///     name: Some("Fabrikam".into()),
    ///     address: Some(Address { country: Some("US".into()), ..Address::default() }),
    ///     ..CustomerProfile::default()
    /// };
    /// let consent = Consent { consent_to_contact: Some(true), ..Consent::default() };
    /// let details = ReferralDetails {
    ///     deal_value: Some("25000.50".parse().expect("an amount")),
    ///     currency: Some("USD".into()),
    ///     ..ReferralDetails::default()
    /// };
    /// // The four members that the document requires, and then any other.
    /// let mut new = NewReferral::new(ReferralType::Independent, customer, consent, details);
    /// new.name = Some("Fabrikam: Azure migration".into());
    /// let created = client.create(&new).await?;
    /// println!("created {:?} with eTag {:?}", created.id, created.e_tag);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create(&self, referral: &NewReferral) -> Result<Referral, Error> {
        self.run(self.create_referral().body(referral.clone()).send())
            .await
            .map(ResponseValue::into_inner)
    }

    /// The second step of a shared (co-sell) referral: creates, from `referral` (the body of the
    /// first step), the referral of the engagement `engagement_id` (the first step's
    /// `engagementId`) that invites Microsoft: its `target` is [`Target::microsoft`] (the document's
    /// `x-microsoft`). The first step is [`Client::create`] of a referral of type `Shared`.
    ///
    /// ```no_run
    /// # async fn run(client: referrals_client::Client, new: referrals_client::types::NewReferral) -> Result<(), referrals_client::Error> {
    /// let first = client.create(&new).await?;
    /// let engagement = first.engagement_id.as_deref().unwrap_or_default();
    /// let invitation = client.invite_microsoft(&new, engagement).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn invite_microsoft(
        &self,
        referral: &NewReferral,
        engagement_id: &str,
    ) -> Result<Referral, Error> {
        if referral.type_ != ReferralType::Shared {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                Some(Operation::CreateReferral),
                format!(
                    "only a referral of type Shared invites Microsoft; this one is of type {}",
                    referral.type_
                ),
            ));
        }
        let mut invitation = referral.clone();
        invitation.engagement_id = Some(engagement_id.to_owned());
        invitation.target = Some(vec![Target::microsoft()]);
        self.create(&invitation).await
    }

    /// Applies `patch` to `referral`, only if it is still the version read (`If-Match` from its
    /// eTag): if it changed since, the error is [`ErrorKind::PreconditionFailed`] and nothing
    /// was applied. Returns the referral as the service stored it.
    ///
    /// ```no_run
    /// # async fn run(client: referrals_client::Client, lead: referrals_client::types::Referral) -> Result<(), referrals_client::Error> {
    /// use referrals_client::patch::Patch;
    ///
    /// let patch = Patch::new()
    ///     .set_external_reference_id("CRM-000042")
    ///     .set_details_notes("Call back on Monday.");
    /// let updated = client.update(&lead, patch).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update(&self, referral: &Referral, patch: Patch) -> Result<Referral, Error> {
        let (id, etag) = identity(referral)?;
        self.send_update(id, Some(etag), patch).await
    }

    /// Applies `patch` to the referral `id` whatever its version (no `If-Match`): the last
    /// writer wins. Prefer [`Self::update`].
    pub async fn update_unconditionally(&self, id: &str, patch: Patch) -> Result<Referral, Error> {
        self.send_update(id, None, patch).await
    }

    pub(crate) async fn send_update(
        &self,
        id: &str,
        if_match: Option<&str>,
        patch: Patch,
    ) -> Result<Referral, Error> {
        let patch: JsonPatch = patch.into_json_patch().map_err(|error| {
            Error::new(ErrorKind::InvalidRequest, Some(UPDATE), error.to_string())
        })?;
        let mut builder = self
            .update_referral()
            .id(id)
            .body(patch)
            .prefer(PreferReturn::ReturnRepresentation);
        if let Some(tag) = if_match {
            builder = builder.if_match(tag);
        }
        self.run(builder.send())
            .await
            .map(ResponseValue::into_inner)
    }

    /// Accepts a lead: status Active, substatus Accepted ([`StatusChange::Accept`]), in one
    /// attempt ([`Client::decide`] decides again when the lead changed meanwhile).
    pub async fn accept(&self, referral: &Referral) -> Result<Referral, Error> {
        self.change(referral, &StatusChange::Accept).await
    }

    /// Declines a lead, saying why: status Closed, substatus Declined, `statusReason`
    /// ([`StatusChange::Decline`]).
    pub async fn decline(&self, referral: &Referral, reason: &str) -> Result<Referral, Error> {
        let reason = reason.to_owned();
        self.change(referral, &StatusChange::Decline { reason })
            .await
    }

    /// Closes a referral as won, with the final deal value when given
    /// ([`StatusChange::CloseWon`]).
    pub async fn close_won(
        &self,
        referral: &Referral,
        deal_value: Option<&Amount>,
    ) -> Result<Referral, Error> {
        let deal_value = deal_value.cloned();
        self.change(referral, &StatusChange::CloseWon { deal_value })
            .await
    }

    /// Closes a referral as lost, saying why ([`StatusChange::CloseLost`]).
    pub async fn close_lost(&self, referral: &Referral, reason: &str) -> Result<Referral, Error> {
        let reason = reason.to_owned();
        self.change(referral, &StatusChange::CloseLost { reason })
            .await
    }

    /// Sends a status change after checking it against the document's status rules
    /// ([`transitions`]), with `If-Match` from the referral's eTag. Nothing is sent when the
    /// rules refuse it ([`ErrorKind::InvalidTransition`]).
    pub async fn change_status(
        &self,
        referral: &Referral,
        status: ReferralStatus,
        substatus: ReferralSubstatus,
        and: Patch,
    ) -> Result<Referral, Error> {
        identity(referral)?;
        let from = referral.status.as_ref().ok_or_else(|| missing("status"))?;
        transitions::check(from, &status, Some(&substatus)).map_err(|error| {
            Error::new(ErrorKind::InvalidTransition, Some(UPDATE), error.message)
        })?;
        let patch = Patch::new()
            .set_status(status)
            .set_substatus(substatus)
            .and(and);
        self.update(referral, patch).await
    }
}

/// Runs a call of any generated builder of `runtime`, gathering what the hooks record of it,
/// and turns its failure into an [`Error`].
pub(crate) async fn run_call<T, E, F>(
    runtime: &Runtime,
    call: F,
) -> Result<(ResponseValue<T>, Call), Error>
where
    T: DeserializeOwned,
    E: ErrorBody,
    F: Future<Output = Result<ResponseValue<T>, progenitor_client::Error<E>>>,
{
    let span = tracing::info_span!(
        "referrals.call",
        operation = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    let (result, call) = context::gather(call).instrument(span).await;
    match result {
        Ok(answer) => Ok((answer, call)),
        Err(error) => Err(convert::<T, E>(error, call, runtime).await),
    }
}

fn missing(member: &str) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        Some(UPDATE),
        format!("the referral has no `{member}`; read it with `Client::referral` first"),
    )
}

/// The id and eTag of a referral read from the service.
fn identity(referral: &Referral) -> Result<(&str, &str), Error> {
    let id = referral.id.as_deref().ok_or_else(|| missing("id"))?;
    let etag = referral.e_tag.as_deref().ok_or_else(|| missing("eTag"))?;
    Ok((id, etag))
}
