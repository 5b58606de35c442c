//! Listings: one page at a time with a typed continuation, or every page as a stream.

use std::collections::HashSet;

use futures_util::stream::{self, Stream, TryStreamExt};
use progenitor_client::ResponseValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::error::{Error, ErrorKind};
use crate::generated::ClientReferralsExt;
use crate::parameters::list_referrals as names;
use crate::query::Query;
use crate::types::{Referral, ReferralList};
use crate::versioned;
use crate::wire::{header, request_id, same_origin};
use crate::{Client, Operation};

const LIST: Operation = Operation::ListReferrals;

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
    pub request_id: Option<Uuid>,
    /// The service's `Request-ID` of the page's answer.
    pub service_request_id: Option<String>,
    /// The service's clock when it answered (its `Date` header), when it sent one.
    pub date: Option<std::time::SystemTime>,
    /// How many attempts of the page's request the service answered 429 Too Many Requests
    /// before the one that gave the page (the client waited and retried): a sign to ask less
    /// at once.
    pub throttled: u32,
    correlation_id: Uuid,
    next: Result<Option<Continuation>, (ErrorKind, String)>,
}

impl Page {
    /// Where the listing goes on: `Ok(None)` on the last page, or an error when the next link
    /// cannot be followed safely ([`ErrorKind::UntrustedNextLink`]) or does not make sense
    /// ([`ErrorKind::UnexpectedAnswer`]). The page's items are good either way.
    pub fn next(&self) -> Result<Option<&Continuation>, Error> {
        match &self.next {
            Ok(next) => Ok(next.as_ref()),
            Err((kind, message)) => Err(Error::new(*kind, Some(LIST), message.clone())
                .with_request_ids(self.request_id, Some(self.correlation_id))
                .with_service_request_id(self.service_request_id.clone())),
        }
    }
}

/// What makes a listing the one it is: its filter, order and selection. A continuation
/// resumes only the listing it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Listing {
    filter: Option<String>,
    orderby: Option<String>,
    select: Option<String>,
}

impl Listing {
    fn of(parameters: &[(String, String)]) -> Self {
        let get = |name: &str| {
            parameters
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        Self {
            filter: get(names::FILTER),
            orderby: get(names::ORDERBY),
            select: get(names::SELECT),
        }
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = [
            (names::FILTER, &self.filter),
            (names::ORDERBY, &self.orderby),
            (names::SELECT, &self.select),
        ]
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|value| format!("{name} `{value}`")))
        .collect();
        if parts.is_empty() {
            "no $filter, $orderby or $select".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Where a listing goes on: the query parameters of the next page's request, made from a
/// page's `@odata.nextLink`, and the listing that it belongs to.
///
/// It serializes (with a version), so that a job can store it as a checkpoint and go on after a
/// restart with [`Client::list_page`] (under the same query) or [`Client::resume`]. A checkpoint
/// of another version, or one whose parameters are not the list operation's, is refused when it
/// is read rather than misread.
///
/// The client never sends a request to a next link's address as written; the link's query is
/// sent to the configured service root, on the list operation's path:
/// - a link of the same scheme, host and port as the root gives all of its query parameters;
/// - a link of the same host with another scheme or port (the service's published links use
///   `http://` and a path without `/engagements`) gives only its `$skiptoken`, which is added to
///   the original query (less `$skip`);
/// - a link to another host is refused: the listing ends with [`ErrorKind::UntrustedNextLink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    listing: Listing,
    parameters: Vec<(String, String)>,
    link: String,
}

/// The version of the serialized form of [`Continuation`].
const CONTINUATION_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredContinuation {
    version: u32,
    listing: Listing,
    parameters: Vec<(String, String)>,
    link: String,
}

impl Continuation {
    /// The `$skiptoken` of the next request.
    pub fn skiptoken(&self) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(name, _)| name == names::SKIPTOKEN)
            .map(|(_, value)| value.as_str())
    }

    /// The `@odata.nextLink` as the service sent it.
    pub fn link(&self) -> &str {
        &self.link
    }

    /// The query parameters of the next request, by their OData names.
    pub fn parameters(&self) -> &[(String, String)] {
        &self.parameters
    }
}

impl Serialize for Continuation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredContinuation {
            version: CONTINUATION_VERSION,
            listing: self.listing.clone(),
            parameters: self.parameters.clone(),
            link: self.link.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Continuation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let stored: StoredContinuation =
            versioned::read(value, CONTINUATION_VERSION, "a continuation").map_err(|reason| {
                D::Error::custom(format!(
                    "the continuation cannot be used: {reason}; start the listing again"
                ))
            })?;
        check_parameters(&stored.parameters).map_err(D::Error::custom)?;
        Ok(Self {
            listing: stored.listing,
            parameters: stored.parameters,
            link: stored.link,
        })
    }
}

/// Every parameter must be one of the list operation's, and the numbers numbers.
fn check_parameters(parameters: &[(String, String)]) -> Result<(), String> {
    for (name, value) in parameters {
        if !LIST.query_parameters().any(|known| known == name) {
            return Err(format!(
                "the parameter `{name}` is not one of the list operation's ({})",
                LIST.query_parameters().collect::<Vec<_>>().join(", ")
            ));
        }
        let count = |value: &str| value.parse::<i32>().is_ok_and(|value| value >= 0);
        let valid = match name.as_str() {
            names::TOP | names::SKIP => count(value),
            names::COUNT => value == "true" || value == "false",
            _ => true,
        };
        if !valid {
            return Err(format!("`{name}={value}` is not a valid value of {name}"));
        }
    }
    Ok(())
}

/// The pages that a listing has read and the next links it has followed, to stop one that
/// goes in a circle (a next link seen twice) or past a page limit, with
/// [`ErrorKind::PagingLoop`]. [`Client::pages`] keeps one; a loop of its own over
/// [`Client::list_page`] keeps one too.
///
/// ```
/// use referrals_client::Trail;
///
/// let mut trail = Trail::new(100_000);
/// assert_eq!(trail.pages(), 0);
/// trail.follow(None).unwrap(); // the last page
/// assert_eq!(trail.pages(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Trail {
    /// Hashes of the next links followed: 8 bytes a page.
    seen: HashSet<u64>,
    pages: usize,
    max_pages: usize,
}

impl Trail {
    /// A trail that allows at most `max_pages` pages (see `ClientBuilder::max_pages`).
    pub fn new(max_pages: usize) -> Self {
        Self {
            seen: HashSet::new(),
            pages: 0,
            max_pages,
        }
    }

    /// How many pages have been read.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Records a page that was read, and the continuation it gives (`None` on the last page).
    /// An error when following it would read a page twice or pass the limit.
    pub fn follow(&mut self, next: Option<&Continuation>) -> Result<(), Error> {
        self.pages = self.pages.saturating_add(1);
        let Some(next) = next else { return Ok(()) };
        if self.pages >= self.max_pages {
            return Err(Error::new(
                ErrorKind::PagingLoop,
                Some(LIST),
                format!(
                    "the listing passed {} pages; raise `max_pages` if that is expected",
                    self.pages
                ),
            ));
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(next.skiptoken().unwrap_or(&next.link), &mut hasher);
        if !self.seen.insert(std::hash::Hasher::finish(&hasher)) {
            return Err(Error::new(
                ErrorKind::PagingLoop,
                Some(LIST),
                format!(
                    "the next link {} was already followed: the listing would go in a circle",
                    next.link
                ),
            ));
        }
        Ok(())
    }
}

impl Client {
    /// One page of a listing: the first one for `query` when `from` is `None`, else the page
    /// that `from` (a previous page's [`Page::next`]) leads to. `from` must come from a listing
    /// of the same query (filter, order and selection): otherwise the error is
    /// [`ErrorKind::InvalidContinuation`] and nothing is sent.
    pub async fn list_page(
        &self,
        query: &Query,
        from: Option<&Continuation>,
    ) -> Result<Page, Error> {
        let parameters = query.parameters();
        match from {
            None => self.send_page(parameters).await,
            Some(continuation) => {
                let listing = Listing::of(&parameters);
                if continuation.listing != listing {
                    return Err(Error::new(
                        ErrorKind::InvalidContinuation,
                        Some(LIST),
                        format!(
                            "this continuation comes from the listing with {}, not {}; go on with \
                             that query, or with Client::resume",
                            continuation.listing.describe(),
                            listing.describe()
                        ),
                    ));
                }
                self.send_page(continuation.parameters.clone()).await
            }
        }
    }

    /// The page that `from` leads to, whatever the query it came from.
    pub async fn resume(&self, from: &Continuation) -> Result<Page, Error> {
        self.send_page(from.parameters.clone()).await
    }

    async fn send_page(&self, parameters: Vec<(String, String)>) -> Result<Page, Error> {
        check_parameters(&parameters)
            .map_err(|message| Error::new(ErrorKind::InvalidRequest, Some(LIST), message))?;
        let mut builder = self.list_referrals();
        for (name, value) in &parameters {
            // The numbers were checked above.
            let number = || value.parse::<i32>().unwrap_or_default();
            builder = match name.as_str() {
                names::FILTER => builder.filter(value.as_str()),
                names::ORDERBY => builder.orderby(value.as_str()),
                names::SELECT => builder.select(value.as_str()),
                names::TOP => builder.top(number()),
                names::SKIP => builder.skip(number()),
                names::COUNT => builder.count(value == "true"),
                names::SKIPTOKEN => builder.skiptoken(value.as_str()),
                _ => builder,
            };
        }
        let (answer, call) = self.run_recorded(builder.send()).await?;
        let mut page = self.page(answer, call.request_id, &parameters);
        page.throttled = call.throttled;
        Ok(page)
    }

    fn page(
        &self,
        answer: ResponseValue<ReferralList>,
        request_id_sent: Option<Uuid>,
        parameters: &[(String, String)],
    ) -> Page {
        let service_request_id = header(answer.headers(), &request_id());
        let date = answer
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| httpdate::parse_http_date(text).ok());
        let list = answer.into_inner();
        let next = match &list.odata_next_link {
            Some(link) => self.continuation(parameters, link).map(Some),
            None => Ok(None),
        };
        Page {
            items: list.value.unwrap_or_default(),
            count: list.odata_count,
            next_link: list.odata_next_link,
            request_id: request_id_sent,
            service_request_id,
            date,
            throttled: 0,
            correlation_id: self.runtime().correlation_id(),
            next,
        }
    }

    /// Every page of a listing, fetched one at a time as the stream is read. A next link seen
    /// twice, or more pages than the client's `max_pages`, ends the stream with
    /// [`ErrorKind::PagingLoop`]; an untrusted next link with [`ErrorKind::UntrustedNextLink`].
    ///
    /// The stream owns a handle of the client (which is cheap to clone), so it can be sent to
    /// another task.
    pub fn pages(&self, query: Query) -> impl Stream<Item = Result<Page, Error>> + Send + 'static {
        struct State {
            client: Client,
            query: Query,
            next: Option<Continuation>,
            trail: Trail,
            pending: Option<Error>,
            done: bool,
        }
        let state = State {
            client: self.clone(),
            query,
            next: None,
            trail: Trail::new(self.runtime().max_pages()),
            pending: None,
            done: false,
        };
        stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            if let Some(error) = state.pending.take() {
                state.done = true;
                return Some((Err(error), state));
            }
            if state.trail.pages() > 0 && state.next.is_none() {
                return None;
            }
            let result = state
                .client
                .list_page(&state.query, state.next.as_ref())
                .await;
            match &result {
                Ok(page) => {
                    state.next = None;
                    match page.next() {
                        Ok(next) => match state.trail.follow(next) {
                            Ok(()) => state.next = next.cloned(),
                            Err(error) => state.pending = Some(error),
                        },
                        Err(error) => state.pending = Some(error),
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
    pub fn list_all(
        &self,
        query: Query,
    ) -> impl Stream<Item = Result<Referral, Error>> + Send + 'static {
        self.pages(query)
            .map_ok(|page| stream::iter(page.items.into_iter().map(Ok)))
            .try_flatten()
    }

    /// The continuation that a page's next link gives (see [`Continuation`]), or why it
    /// cannot be followed.
    pub(crate) fn continuation(
        &self,
        current: &[(String, String)],
        link: &str,
    ) -> Result<Continuation, (ErrorKind, String)> {
        let root = self.runtime().root();
        let url = reqwest::Url::parse(link)
            .or_else(|_| root.join(link))
            .map_err(|error| {
                (
                    ErrorKind::UnexpectedAnswer,
                    format!("the next link `{link}` is not a URL: {error}"),
                )
            })?;
        let link_parameters: Vec<(String, String)> = url.query_pairs().into_owned().collect();

        let parameters = if same_origin(&url, root) {
            check_parameters(&link_parameters).map_err(|reason| {
                (
                    ErrorKind::UnexpectedAnswer,
                    format!("the next link `{link}` cannot be followed: {reason}"),
                )
            })?;
            link_parameters
        } else if url.host() == root.host() {
            let Some((_, token)) = link_parameters
                .iter()
                .find(|(name, _)| name == names::SKIPTOKEN)
            else {
                return Err((
                    ErrorKind::UntrustedNextLink,
                    format!(
                        "the next link `{link}` is not on the service root {root} and has no $skiptoken to carry there"
                    ),
                ));
            };
            let mut parameters: Vec<(String, String)> = current
                .iter()
                .filter(|(name, _)| name != names::SKIPTOKEN && name != names::SKIP)
                .cloned()
                .collect();
            parameters.push((names::SKIPTOKEN.to_owned(), token.clone()));
            parameters
        } else {
            return Err((
                ErrorKind::UntrustedNextLink,
                format!(
                    "the next link `{link}` points to another host than the service root {root}; the listing stops \
                     rather than follow it"
                ),
            ));
        };
        Ok(Continuation {
            listing: Listing::of(current),
            parameters,
            link: link.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: u32, parameters: &[(&str, &str)]) -> String {
        serde_json::json!({
            "version": version,
            "listing": { "filter": "status eq 'New'", "orderby": null, "select": null },
            "parameters": parameters,
            "link": "https://api.partner.microsoft.com/v1.0/engagements/referrals?$skiptoken=x",
        })
        .to_string()
    }

    #[test]
    fn a_continuation_reads_back_what_it_wrote() {
        let text = stored(1, &[("$filter", "status eq 'New'"), ("$skiptoken", "x")]);
        let continuation: Continuation = serde_json::from_str(&text).unwrap();
        assert_eq!(continuation.skiptoken(), Some("x"));
        let again: Continuation =
            serde_json::from_str(&serde_json::to_string(&continuation).unwrap()).unwrap();
        assert_eq!(again, continuation);
    }

    #[test]
    fn a_foreign_or_newer_or_broken_checkpoint_is_refused() {
        let newer = serde_json::from_str::<Continuation>(&stored(2, &[])).unwrap_err();
        assert!(newer.to_string().contains("version 2"), "{newer}");
        let foreign = serde_json::from_str::<Continuation>(r#"{"parameters": []}"#).unwrap_err();
        assert!(
            foreign.to_string().contains("not a continuation"),
            "{foreign}"
        );
        let unknown =
            serde_json::from_str::<Continuation>(&stored(1, &[("$expand", "team")])).unwrap_err();
        assert!(unknown.to_string().contains("`$expand`"), "{unknown}");
        let top = serde_json::from_str::<Continuation>(&stored(1, &[("$top", "ten")])).unwrap_err();
        assert!(top.to_string().contains("`$top=ten`"), "{top}");
        let negative =
            serde_json::from_str::<Continuation>(&stored(1, &[("$skip", "-1")])).unwrap_err();
        assert!(negative.to_string().contains("`$skip=-1`"), "{negative}");
    }
}
