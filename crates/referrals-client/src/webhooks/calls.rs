//! The calls of the webhook registration API, each returning the crate's [`Error`].

use progenitor_client::ClientInfo;

use super::types::{
    ValidationEvent, ValidationEventDelivery, WebhookEventName, WebhookRegistration,
};
use super::{Client, ClientRegistrationExt, servers};
use crate::calls::run_call;
use crate::env::{self, EnvError};
use crate::{ClientBuilder, Error};

/// The variable that holds the registration API's root (the document's server when unset).
pub const ROOT_VARIABLE: &str = "PARTNER_WEBHOOKS_ROOT";

impl Client {
    /// A client of `PARTNER_WEBHOOKS_ROOT` (the document's server when it is not set) with the
    /// bearer token of `PARTNER_TOKEN`.
    pub fn from_env() -> Result<Self, EnvError> {
        let token = std::env::var(env::TOKEN_VARIABLE).map_err(|_| EnvError::NoToken)?;
        let root = std::env::var(ROOT_VARIABLE).ok();
        let root = match root.as_deref() {
            Some(root) => root,
            None => servers::ALL.first().copied().ok_or(EnvError::NoRoot)?,
        };
        Ok(crate::Client::builder(root, env::token(&token)?)
            .allow_http_to_loopback(true)
            .build_webhooks()?)
    }

    /// A builder of this client, as [`crate::Client::builder`] makes one.
    pub fn builder(root: &str, tokens: impl crate::TokenProvider + 'static) -> ClientBuilder {
        crate::Client::builder(root, tokens)
    }

    /// The names of the events that can be registered.
    pub async fn events(&self) -> Result<Vec<WebhookEventName>, Error> {
        let call = self.list_webhook_events().send();
        Ok(run_call(self.inner(), call).await?.0.into_inner())
    }

    /// The partner's registration ([`ErrorKind::Service`](crate::ErrorKind::Service) with
    /// status 404 when there is none).
    pub async fn registration(&self) -> Result<WebhookRegistration, Error> {
        let call = self.get_webhook_registration().send();
        Ok(run_call(self.inner(), call).await?.0.into_inner())
    }

    /// Registers a URL for events; the answer carries the `SubscriberId`.
    pub async fn register(
        &self,
        registration: &WebhookRegistration,
    ) -> Result<WebhookRegistration, Error> {
        let call = self.register_webhook().body(registration.clone()).send();
        Ok(run_call(self.inner(), call).await?.0.into_inner())
    }

    /// Replaces the registration.
    pub async fn replace(
        &self,
        registration: &WebhookRegistration,
    ) -> Result<WebhookRegistration, Error> {
        let call = self
            .replace_webhook_registration()
            .body(registration.clone())
            .send();
        Ok(run_call(self.inner(), call).await?.0.into_inner())
    }

    /// Sends a `test-created` event to the registered URL (the registration must include it).
    pub async fn send_validation(&self) -> Result<ValidationEvent, Error> {
        let call = self.send_validation_event().send();
        Ok(run_call(self.inner(), call).await?.0.into_inner())
    }

    /// Each delivery attempt of the validation event `correlation_id`.
    pub async fn validation_deliveries(
        &self,
        correlation_id: &str,
    ) -> Result<Vec<ValidationEventDelivery>, Error> {
        let call = self
            .get_validation_event_deliveries()
            .correlation_id(correlation_id)
            .send();
        Ok(run_call(self.inner(), call).await?.0.into_inner())
    }
}
