//! The client's runtime: the settings that every request reads.

use std::fmt;
use std::sync::Arc;

use reqwest::Url;
use uuid::Uuid;

use crate::auth::TokenProvider;
use crate::retry::{Clock, RetryPolicy};

/// The client's runtime: its service root, token provider, request ids, retry policy and
/// clock. It is the `inner` value of the generated [`Client`](crate::Client); make one
/// with [`Client::builder`](crate::Client::builder).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Settings>,
}

/// What [`crate::ClientBuilder`] decided.
pub(crate) struct Settings {
    pub(crate) root: Url,
    pub(crate) tokens: Arc<dyn TokenProvider>,
    pub(crate) correlation_id: Uuid,
    pub(crate) retry: RetryPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_pages: usize,
    pub(crate) max_error_body: usize,
    pub(crate) max_response_body: usize,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token provider is left out: it may hold a secret.
        f.debug_struct("Runtime")
            .field("root", &self.inner.root.as_str())
            .field("correlation_id", &self.inner.correlation_id)
            .field("retry", &self.inner.retry)
            .field("max_pages", &self.inner.max_pages)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            inner: Arc::new(settings),
        }
    }

    /// The service root that every request goes to.
    pub fn root(&self) -> &Url {
        &self.inner.root
    }

    /// The `MS-CorrelationId` sent with every request.
    pub fn correlation_id(&self) -> Uuid {
        self.inner.correlation_id
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    pub(crate) fn tokens(&self) -> &dyn TokenProvider {
        &*self.inner.tokens
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    /// The most pages that one listing may follow (`ClientBuilder::max_pages`).
    pub fn max_pages(&self) -> usize {
        self.inner.max_pages
    }

    pub(crate) fn max_error_body(&self) -> usize {
        self.inner.max_error_body
    }

    pub(crate) fn max_response_body(&self) -> usize {
        self.inner.max_response_body
    }
}
