//! The client's calls with typed errors, paging and the update rules, on top of the generated
//! builders.
//!
//! The generated builders (`client.list_referrals()`, `client.get_referral()`...) stay
//! available: they go through the same runtime (auth, request ids, retries) and return
//! progenitor's error. The methods here return [`Error`], follow next links safely, and check
//! status changes before sending them.

use std::collections::HashSet;
use std::future::Future;

use futures_util::stream::{self, Stream, TryStreamExt};
use progenitor_client::{ClientInfo, ResponseValue};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{Error, ErrorKind};
use crate::query::Query;
use crate::runtime::{REQUEST_ID, Refusal, context, same_origin};
use crate::transitions;
use crate::types::{
    self, JsonPatch, JsonPatchOp, JsonPatchOperation, NewReferral, PreferReturn, Referral,
    ReferralStatus, ReferralSubstatus,
};
use crate::{Amount, Client, ClientBuilder, PatchValue, Runtime, TokenProvider};

type GeneratedError = progenitor_client::Error<types::ErrorResponse>;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The referrals of the page (at most 100 from the service).
    pub items: Vec<Referral>,
    /// `@odata.count`, when the query asked for it.
    pub count: Option<i64>,
    /// `@odata.nextLink` as the service sent it; `None` on the last page.
    pub next_link: Option<String>,
    /// The `MS-RequestId` of the page's request.
    pub request_id: Uuid,
    /// The service's `Request-ID` of the page's answer.
    pub service_request_id: Option<String>,
    next: Result<Option<Continuation>, (ErrorKind, String)>,
}

impl Page {
    /// Where the listing goes on: `Ok(None)` on the last page, or an error when the next link
    /// cannot be followed safely ([`ErrorKind::UntrustedNextLink`]). The page's items are good
    /// either way.
    pub fn next(&self) -> Result<Option<&Continuation>, Error> {
        match &self.next {
            Ok(next) => Ok(next.as_ref()),
            Err((kind, message)) => {
                let mut error = Error::new(*kind, "list_referrals", message.clone());
                error.inner_mut().request_id = Some(self.request_id);
                Err(error)
            }
        }
    }
}

/// Where a listing goes on: the query parameters of the next page's request, made from the
/// page's `@odata.nextLink`.
///
/// It serializes, so that a sync job can store it as a checkpoint and resume with
/// [`Client::list_page`] after a restart.
///
/// The client never sends a request to a next link's address as written; the link's query is
/// sent to the configured service root, on the list operation's path:
/// - a link of the same scheme, host and port as the root gives all of its query parameters;
/// - a link of the same host with another scheme or port (the service's published links use
///   `http://` and a path without `/engagements`) gives only its `$skiptoken`, which is added to
///   the original query (less `$skip`);
/// - a link to another host is refused: the listing ends with [`ErrorKind::UntrustedNextLink`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    /// The query parameters of the next request, by their OData names.
    pub parameters: Vec<(String, String)>,
    /// The `@odata.nextLink` as the service sent it.
    pub link: String,
}

impl Continuation {
    /// The `$skiptoken` of the next request.
    pub fn skiptoken(&self) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(name, _)| name == "$skiptoken")
            .map(|(_, value)| value.as_str())
    }
}

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

    /// One referral, by id.
    pub async fn referral(&self, id: &str) -> Result<Referral, Error> {
        self.call("get_referral", |request_id| {
            self.get_referral().id(id).ms_request_id(request_id).send()
        })
        .await
        .map(ResponseValue::into_inner)
    }

    /// Creates a referral and returns it as the service stored it.
    pub async fn create(&self, referral: &NewReferral) -> Result<Referral, Error> {
        self.call("create_referral", |request_id| {
            self.create_referral()
                .body(referral.clone())
                .ms_request_id(request_id)
                .send()
        })
        .await
        .map(ResponseValue::into_inner)
    }

    /// Applies `patch` to the referral `id` and returns the result. With `if_match` (the
    /// referral's eTag), the change applies only to that version: if the referral changed
    /// since, the error is [`ErrorKind::PreconditionFailed`] and nothing was applied.
    pub async fn update(
        &self,
        id: &str,
        if_match: Option<&str>,
        patch: JsonPatch,
    ) -> Result<Referral, Error> {
        self.call("update_referral", |request_id| {
            let mut builder = self
                .update_referral()
                .id(id)
                .body(patch)
                .prefer(PreferReturn::ReturnRepresentation)
                .ms_request_id(request_id);
            if let Some(tag) = if_match {
                builder = builder.if_match(tag);
            }
            builder.send()
        })
        .await
        .map(ResponseValue::into_inner)
    }

    /// Accepts a lead: status Active, substatus Accepted. The referral must be New or Active.
    pub async fn accept(&self, referral: &Referral) -> Result<Referral, Error> {
        self.change_status(
            referral,
            ReferralStatus::Active,
            ReferralSubstatus::Accepted,
            Vec::new(),
        )
        .await
    }

    /// Declines a lead, saying why: status Closed, substatus Declined, `statusReason`.
    pub async fn decline(&self, referral: &Referral, reason: &str) -> Result<Referral, Error> {
        let reason = replace("/statusReason", &reason)?;
        self.change_status(
            referral,
            ReferralStatus::Closed,
            ReferralSubstatus::Declined,
            vec![reason],
        )
        .await
    }

    /// Closes a referral as won, with the final deal value when given.
    pub async fn close_won(
        &self,
        referral: &Referral,
        deal_value: Option<&Amount>,
    ) -> Result<Referral, Error> {
        let extra = match deal_value {
            Some(value) => vec![replace("/details/dealValue", value)?],
            None => Vec::new(),
        };
        self.change_status(
            referral,
            ReferralStatus::Closed,
            ReferralSubstatus::Won,
            extra,
        )
        .await
    }

    /// Closes a referral as lost, saying why.
    pub async fn close_lost(&self, referral: &Referral, reason: &str) -> Result<Referral, Error> {
        let reason = replace("/statusReason", &reason)?;
        self.change_status(
            referral,
            ReferralStatus::Closed,
            ReferralSubstatus::Lost,
            vec![reason],
        )
        .await
    }

    /// Sends a status change after checking it against the rules of [`transitions`], with
    /// `If-Match` from the referral's eTag.
    async fn change_status(
        &self,
        referral: &Referral,
        status: ReferralStatus,
        substatus: ReferralSubstatus,
        extra: Vec<JsonPatchOperation>,
    ) -> Result<Referral, Error> {
        const OPERATION: &str = "update_referral";
        let missing = |member: &str| {
            Error::new(
                ErrorKind::InvalidRequest,
                OPERATION,
                format!("the referral has no `{member}`; read it with `Client::referral` first"),
            )
        };
        let id = referral.id.as_deref().ok_or_else(|| missing("id"))?;
        let etag = referral.e_tag.as_deref().ok_or_else(|| missing("eTag"))?;
        let from = referral.status.as_ref().ok_or_else(|| missing("status"))?;
        transitions::check(from, &status, Some(&substatus))
            .map_err(|error| Error::new(ErrorKind::InvalidTransition, OPERATION, error.message))?;
        let mut operations = vec![
            replace("/status", &status)?,
            replace("/substatus", &substatus)?,
        ];
        operations.extend(extra);
        self.update(id, Some(etag), JsonPatch(operations)).await
    }

    /// One page of a listing: the first one for `query` when `from` is `None`, else the page
    /// that `from` (a previous page's [`Page::next`]) leads to.
    pub async fn list_page(
        &self,
        query: &Query,
        from: Option<&Continuation>,
    ) -> Result<Page, Error> {
        let parameters = match from {
            Some(continuation) => continuation.parameters.clone(),
            None => query.parameters(),
        };
        let mut request_id = Uuid::nil();
        let answer = self
            .call("list_referrals", |id| {
                request_id = id;
                let builder = parameters.iter().fold(
                    self.list_referrals().ms_request_id(id),
                    |builder, (name, value)| match name.as_str() {
                        "$filter" => builder.filter(value.as_str()),
                        "$orderby" => builder.orderby(value.as_str()),
                        "$select" => builder.select(value.as_str()),
                        "$top" => builder.top(value.parse::<i64>().unwrap_or(-1)),
                        "$skip" => builder.skip(value.parse::<i64>().unwrap_or(-1)),
                        "$count" => builder.count(value == "true"),
                        "$skiptoken" => builder.skiptoken(value.as_str()),
                        _ => builder,
                    },
                );
                builder.send()
            })
            .await?;
        let service_request_id = header(answer.headers(), &REQUEST_ID);
        let list = answer.into_inner();
        let next = match &list.odata_next_link {
            Some(link) => self.continuation(&parameters, link).map(Some),
            None => Ok(None),
        };
        Ok(Page {
            items: list.value.unwrap_or_default(),
            count: list.odata_count,
            next_link: list.odata_next_link,
            request_id,
            service_request_id,
            next,
        })
    }

    /// Every page of a listing, fetched one at a time as the stream is read. A next link seen
    /// twice, or more pages than the client's `max_pages`, ends the stream with
    /// [`ErrorKind::PagingLoop`]; an untrusted next link with [`ErrorKind::UntrustedNextLink`].
    pub fn pages(&self, query: Query) -> impl Stream<Item = Result<Page, Error>> + '_ {
        struct State {
            query: Query,
            next: Option<Continuation>,
            started: bool,
            /// Hashes of the skiptokens followed: 8 bytes a page, to catch a circle.
            seen: HashSet<u64>,
            pages: usize,
            pending: Option<Error>,
            done: bool,
        }
        let state = State {
            query,
            next: None,
            started: false,
            seen: HashSet::new(),
            pages: 0,
            pending: None,
            done: false,
        };
        stream::unfold(state, move |mut state| async move {
            if state.done {
                return None;
            }
            if let Some(error) = state.pending.take() {
                state.done = true;
                return Some((Err(error), state));
            }
            if state.started && state.next.is_none() {
                return None;
            }
            if state.pages >= self.runtime().max_pages() {
                state.done = true;
                let error = Error::new(
                    ErrorKind::PagingLoop,
                    "list_referrals",
                    format!(
                        "the listing passed {} pages; raise `max_pages` if that is expected",
                        state.pages
                    ),
                );
                return Some((Err(error), state));
            }
            let result = self.list_page(&state.query, state.next.as_ref()).await;
            state.started = true;
            state.pages += 1;
            match &result {
                Ok(page) => {
                    state.next = match page.next() {
                        Ok(next) => next.cloned(),
                        Err(error) => {
                            state.pending = Some(error);
                            None
                        }
                    };
                    let repeated = state.next.as_ref().and_then(|next| {
                        let key = next.skiptoken().unwrap_or(&next.link);
                        let mut hasher = std::collections::hash_map::DefaultHasher::new();
                        std::hash::Hash::hash(key, &mut hasher);
                        let hash = std::hash::Hasher::finish(&hasher);
                        (!state.seen.insert(hash)).then(|| next.link.clone())
                    });
                    if let Some(link) = repeated {
                        state.next = None;
                        state.pending = Some(Error::new(
                            ErrorKind::PagingLoop,
                            "list_referrals",
                            format!(
                                "the next link {link} was already followed: the listing would go in a circle"
                            ),
                        ));
                    }
                }
                Err(_) => state.done = true,
            }
            Some((result, state))
        })
    }

    /// Every referral of a listing, page after page: memory holds one page at a time.
    ///
    /// ```no_run
    /// # async fn run(client: referrals_client::Client) -> Result<(), referrals_client::Error> {
    /// use futures_util::TryStreamExt;
    /// use referrals_client::query::{self, OrderBy, Query};
    /// use referrals_client::types::ReferralStatus;
    ///
    /// let query = Query::new().filter(query::status().eq(ReferralStatus::New)).order_by(OrderBy::newest_first());
    /// let mut referrals = std::pin::pin!(client.list_all(query));
    /// while let Some(referral) = referrals.try_next().await? {
    ///     println!("{:?}", referral.id);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn list_all(&self, query: Query) -> impl Stream<Item = Result<Referral, Error>> + '_ {
        self.pages(query)
            .map_ok(|page| stream::iter(page.items.into_iter().map(Ok)))
            .try_flatten()
    }

    /// The continuation that a page's next link gives (see [`Continuation`]), or why it
    /// cannot be followed.
    fn continuation(
        &self,
        current: &[(String, String)],
        link: &str,
    ) -> Result<Continuation, (ErrorKind, String)> {
        let root = self.runtime().root();
        let refuse = |kind: ErrorKind, message: String| (kind, message);
        let url = reqwest::Url::parse(link)
            .or_else(|_| root.join(link))
            .map_err(|error| {
                refuse(
                    ErrorKind::UnexpectedAnswer,
                    format!("the next link `{link}` is not a URL: {error}"),
                )
            })?;
        let link_parameters: Vec<(String, String)> = url.query_pairs().into_owned().collect();

        let parameters = if same_origin(&url, root) {
            if let Some((name, _)) = link_parameters.iter().find(|(name, _)| {
                !crate::Operation::ListReferrals
                    .query_parameters()
                    .any(|known| known == name.as_str())
            }) {
                return Err(refuse(
                    ErrorKind::UnexpectedAnswer,
                    format!(
                        "the next link `{link}` carries the parameter `{name}`, which the list operation does not have"
                    ),
                ));
            }
            link_parameters
        } else if url.host() == root.host() {
            let Some((_, token)) = link_parameters
                .iter()
                .find(|(name, _)| name == "$skiptoken")
            else {
                return Err(refuse(
                    ErrorKind::UntrustedNextLink,
                    format!(
                        "the next link `{link}` is not on the service root {root} and has no $skiptoken to carry there"
                    ),
                ));
            };
            let mut parameters: Vec<(String, String)> = current
                .iter()
                .filter(|(name, _)| name != "$skiptoken" && name != "$skip")
                .cloned()
                .collect();
            parameters.push(("$skiptoken".to_owned(), token.clone()));
            parameters
        } else {
            return Err(refuse(
                ErrorKind::UntrustedNextLink,
                format!(
                    "the next link `{link}` points to another host than the service root {root}; the listing stops \
                     rather than follow it"
                ),
            ));
        };
        Ok(Continuation {
            parameters,
            link: link.to_owned(),
        })
    }

    /// Runs one call of a generated builder with a fresh `MS-RequestId`, in a span, and turns
    /// its failure into an [`Error`].
    async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        send: F,
    ) -> Result<ResponseValue<T>, Error>
    where
        T: DeserializeOwned,
        F: FnOnce(Uuid) -> Fut,
        Fut: Future<Output = Result<ResponseValue<T>, GeneratedError>>,
    {
        let request_id = Uuid::new_v4();
        let span = tracing::info_span!("referrals.call", operation, request_id = %request_id);
        let (result, call) = context::gather(send(request_id)).instrument(span).await;
        match result {
            Ok(answer) => Ok(answer),
            Err(error) => Err(self.convert::<T>(error, operation, request_id, call).await),
        }
    }

    async fn convert<T: DeserializeOwned>(
        &self,
        error: GeneratedError,
        operation: &'static str,
        request_id: Uuid,
        call: context::Call,
    ) -> Error {
        let max_body = self.runtime().max_error_body();
        let mut out = match error {
            GeneratedError::ErrorResponse(answer) => {
                let status = answer.status();
                let service_request_id = header(answer.headers(), &REQUEST_ID);
                let mut error = service_error(operation, status);
                let inner = error.inner_mut();
                inner.service_request_id = service_request_id;
                inner.service_error = Some(answer.into_inner().error);
                error
            }
            GeneratedError::UnexpectedResponse(response) => {
                let status = response.status();
                let service_request_id = header(response.headers(), &REQUEST_ID);
                let body = read_capped(response, max_body).await;
                let mut error = if status.is_success()
                    || status.is_informational()
                    || status.is_redirection()
                {
                    Error::new(
                        ErrorKind::UnexpectedAnswer,
                        operation,
                        format!(
                            "the service answered {status}, which the document does not list for this operation"
                        ),
                    )
                } else {
                    service_error(operation, status)
                };
                let inner = error.inner_mut();
                inner.status = Some(status);
                inner.service_request_id = service_request_id;
                match serde_json::from_str::<types::ErrorResponse>(&body) {
                    Ok(parsed) => inner.service_error = Some(parsed.error),
                    Err(_) if !body.is_empty() => inner.raw_body = Some(body),
                    Err(_) => {}
                }
                error
            }
            GeneratedError::InvalidResponsePayload(bytes, json_error) => match call.status {
                Some(status) if status.is_client_error() || status.is_server_error() => {
                    let mut error = service_error(operation, status);
                    error.inner_mut().raw_body = Some(capped_text(&bytes, max_body));
                    error
                }
                _ => {
                    // Decoded again to name the JSON path where the answer leaves the document.
                    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
                    let detail = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
                        Err(error) => format!("at {}: {}", error.path(), error.inner()),
                        Ok(_) => json_error.to_string(),
                    };
                    let mut error = Error::new(
                        ErrorKind::UnexpectedAnswer,
                        operation,
                        format!("the answer does not match the document: {detail}"),
                    );
                    error.inner_mut().raw_body = Some(capped_text(&bytes, max_body));
                    error.inner_mut().source = Some(Box::new(json_error));
                    error
                }
            },
            GeneratedError::CommunicationError(source)
            | GeneratedError::ResponseBodyError(source)
            | GeneratedError::InvalidUpgrade(source) => {
                let mut error =
                    Error::new(ErrorKind::Transport, operation, transport_message(&source));
                error.inner_mut().retryable = source.is_connect() || source.is_timeout();
                error.inner_mut().source = Some(Box::new(source));
                error
            }
            GeneratedError::Custom(message) => match call.refusal {
                Some(Refusal::Token(source)) => {
                    let mut error = Error::new(ErrorKind::Token, operation, source.to_string());
                    error.inner_mut().source = Some(Box::new(ArcError(source)));
                    error
                }
                Some(refusal) => Error::new(ErrorKind::Refused, operation, refusal.to_string()),
                None => Error::new(ErrorKind::InvalidRequest, operation, message),
            },
            GeneratedError::InvalidRequest(message) => {
                Error::new(ErrorKind::InvalidRequest, operation, message)
            }
        };
        let inner = out.inner_mut();
        inner.request_id = Some(request_id);
        inner.correlation_id = Some(self.runtime().correlation_id());
        inner.attempts = call.attempts;
        if inner.status.is_none() {
            inner.status = call.status;
        }
        if inner.service_request_id.is_none() {
            inner.service_request_id = call.service_request_id;
        }
        if let Some(status) = inner.status {
            inner.retryable |= matches!(status.as_u16(), 408 | 429 | 502 | 503 | 504);
        }
        out
    }
}

/// A JSON Patch `replace` of `path` with `value`.
fn replace(path: &str, value: &impl Serialize) -> Result<JsonPatchOperation, Error> {
    let value = PatchValue::from_serialize(value).map_err(|error| {
        Error::new(
            ErrorKind::InvalidRequest,
            "update_referral",
            error.to_string(),
        )
    })?;
    Ok(JsonPatchOperation {
        op: JsonPatchOp::Replace,
        path: path.to_owned(),
        value,
        extra: Default::default(),
    })
}

fn service_error(operation: &'static str, status: StatusCode) -> Error {
    let (kind, message) = if status == StatusCode::PRECONDITION_FAILED {
        (
            ErrorKind::PreconditionFailed,
            "the referral changed since it was read (its eTag no longer matches); read it again and retry the change",
        )
    } else {
        (ErrorKind::Service, "the service refused the request")
    };
    let mut error = Error::new(kind, operation, message);
    error.inner_mut().status = Some(status);
    error
}

fn transport_message(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        "the connection to the service failed".to_owned()
    } else {
        "the exchange with the service failed".to_owned()
    }
}

fn header(headers: &HeaderMap, name: &reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Reads at most `limit` bytes of a body, as text.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= limit {
            break;
        }
    }
    capped_text(&body, limit)
}

fn capped_text(bytes: &[u8], limit: usize) -> String {
    let kept = &bytes[..bytes.len().min(limit)];
    let mut text = String::from_utf8_lossy(kept).into_owned();
    if bytes.len() > limit {
        text.push('…');
    }
    text
}

/// A shared error as an owned one, to be a `source`.
#[derive(Debug)]
struct ArcError(std::sync::Arc<crate::TokenError>);

impl std::fmt::Display for ArcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ArcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}
