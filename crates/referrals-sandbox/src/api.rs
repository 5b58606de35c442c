//! The operations of the document.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use referrals_model::facts::{self, STATUS_RULES};
use referrals_model::parameters::{
    list_referrals as list_params, list_referrals_legacy, update_referral,
};
use referrals_model::types::{
    JsonPatch, NewReferral, PreferReturn, Referral, ReferralDirection, ReferralStatus,
    ReferralSubstatus, ReferralType, TargetType,
};
use referrals_model::{Operation, patch, transitions};
use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::filter::{Compiled, Order, Value, compile, to_json};
use crate::request::{Params, body_bytes, decode, header_text};
use crate::seed::{ORGANIZATION_ID, ORGANIZATION_NAME, etag, links};
use crate::store::{From, Store};
use crate::{App, Paging};

/// `GET /v1.0/engagements/referrals`
pub async fn list(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query())?;
    let options: Vec<&str> = Operation::ListReferrals.query_parameters().collect();
    params.only_options(&options)?;

    let filter_text = params.get(list_params::FILTER);
    let order_text = params.get(list_params::ORDERBY);
    let filter = match filter_text {
        Some(text) => Some(compile(&parse(
            referrals_odata::parse_filter(text),
            list_params::FILTER,
        )?)?),
        None => None,
    };
    let order = Order::new(&match order_text {
        Some(text) => parse(referrals_odata::parse_orderby(text), list_params::ORDERBY)?,
        None => Vec::new(),
    })?;
    let select = match params.get(list_params::SELECT) {
        Some(text) => Some(select_members(text)?),
        None => None,
    };
    let top = params.count(list_params::TOP)?;
    let skip = params.count(list_params::SKIP)?.unwrap_or(0) as usize;
    let count = params.boolean(list_params::COUNT)?.unwrap_or(false);
    let query_id = query_fingerprint(filter_text, order_text);
    let token = match params.get(list_params::SKIPTOKEN) {
        Some(text) => Some(SkipToken::decode(text, &order, &query_id, app.paging)?),
        None => None,
    };

    let page = {
        let store = app
            .store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        read_page(
            &app,
            &store,
            &Listing {
                filter: filter.as_ref(),
                order: &order,
                skip,
                top,
                count,
                token: token.as_ref(),
                query: &query_id,
            },
        )
    };

    let mut value = Vec::with_capacity(page.items.len());
    for referral in &page.items {
        let text = serde_json::to_string(referral.as_ref()).map_err(internal)?;
        value.push(match &select {
            Some(members) => project(&text, members)?,
            None => RawValue::from_string(text).map_err(internal)?,
        });
    }
    let mut head = serde_json::Map::new();
    head.insert(
        "@odata.context".into(),
        format!("{}/v1.0/$metadata#Referrals", app.base).into(),
    );
    if let (true, Some(total)) = (count, page.total) {
        head.insert("@odata.count".into(), total.into());
    }
    let next_link = page.next.map(|mut next| {
        next.query = query_id.clone();
        next_link(&app.base, params.all(), &next.encode())
    });
    Ok(json_response(
        StatusCode::OK,
        &Envelope {
            head,
            value,
            next_link,
        },
    ))
}

/// What a page of a listing is asked for.
struct Listing<'a> {
    filter: Option<&'a Compiled>,
    order: &'a Order,
    skip: usize,
    top: Option<u32>,
    count: bool,
    token: Option<&'a SkipToken>,
    /// The query's fingerprint: what its count is known by.
    query: &'a str,
}

/// A page, what remains of the listing after it, and the count when asked.
struct Page {
    items: Vec<Arc<Referral>>,
    total: Option<u64>,
    next: Option<SkipToken>,
}

fn read_page(app: &App, store: &Store, listing: &Listing<'_>) -> Page {
    let passes =
        |referral: &&Arc<Referral>| listing.filter.is_none_or(|filter| filter.matches(referral));
    let remaining = listing
        .token
        .map_or(listing.top.map(u64::from), |token| token.remaining);
    let room = remaining.map_or(usize::MAX, |left| {
        usize::try_from(left).unwrap_or(usize::MAX)
    });
    let wanted = app.page_size.min(room);
    // Offset paging reads the store as it is now, at each page: what a service whose skiptoken
    // is an offset does. Keyset paging reads the snapshot that the listing started from.
    let version = match (app.paging, listing.token) {
        (Paging::Keyset, Some(token)) => token.version,
        _ => store.version(),
    };
    // A filter that pins a sortable member to one instant (`updatedDateTime eq ...`) is read
    // from that instant's entries of the member's index, whatever the order: they are few.
    let pinned = listing.filter.and_then(|filter| {
        facts::SORTABLE
            .iter()
            .enumerate()
            .find_map(|(index, member)| match filter.time_range(member.path)? {
                (std::ops::Bound::Included(low), std::ops::Bound::Included(high))
                    if low == high =>
                {
                    Some((index, Value::Time(low)))
                }
                _ => None,
            })
    });
    // Otherwise an order by one sortable member walks that member's index.
    let indexed = match listing.order.keys.as_slice() {
        [(member, descending)] if pinned.is_none() => facts::SORTABLE
            .iter()
            .position(|sortable| sortable.path == member.path)
            .map(|position| (position, *descending, member.path)),
        _ => None,
    };

    // The matching referrals in order, from where this page starts.
    let (mut found, total): (Vec<Arc<Referral>>, Option<u64>) = match indexed {
        Some((index, descending, path)) => {
            // Only the range of the index that a date-time filter on the member allows.
            let range = listing.filter.and_then(|filter| filter.time_range(path));
            let (low, high) = range.map_or((None, None), |(low, high)| {
                (bound_value(low), bound_value(high))
            });
            let (start, end) = if descending { (high, low) } else { (low, high) };
            let start_at = start.clone().map_or(From::Start, |(value, included)| {
                From::Value(value, included)
            });
            let total = listing.count.then(|| {
                listing
                    .token
                    .and_then(|token| token.total)
                    .unwrap_or_else(|| {
                        app.count(version, listing.query, || {
                            store
                                .walk(index, version, descending, start_at.clone(), end.clone())
                                .filter(passes)
                                .count() as u64
                        })
                    })
            });
            let (from, offset) = match (app.paging, listing.token) {
                (Paging::Keyset, Some(token)) => match token.key.as_slice() {
                    [value, Value::Text(id)] => (From::After(value.clone(), id.clone()), 0),
                    _ => (start_at, 0),
                },
                (Paging::Offset, Some(token)) => (start_at, token.offset),
                (_, None) => (start_at, listing.skip),
            };
            let found = store
                .walk(index, version, descending, from, end)
                .filter(passes)
                .skip(offset)
                .take(wanted.saturating_add(1))
                .cloned()
                .collect();
            (found, total)
        }
        None => {
            let source: Box<dyn Iterator<Item = &Arc<Referral>>> = match pinned {
                Some((index, at)) => store.walk(
                    index,
                    version,
                    false,
                    From::Value(at.clone(), true),
                    Some((at, true)),
                ),
                None => Box::new(store.snapshot(version)),
            };
            // Each key once, not once a comparison.
            let mut matching: Vec<(Vec<_>, &Arc<Referral>)> = source
                .filter(passes)
                .map(|referral| (listing.order.key(referral), referral))
                .collect();
            let total = matching.len();
            matching.sort_by(|(a, _), (b, _)| listing.order.compare(a, b));
            let matching: Vec<&Arc<Referral>> =
                matching.into_iter().map(|(_, referral)| referral).collect();
            let start = match (app.paging, listing.token) {
                (Paging::Keyset, Some(token)) => {
                    let after: Vec<_> = token.key.iter().map(Value::scalar).collect();
                    matching.partition_point(|referral| {
                        listing.order.compare(&listing.order.key(referral), &after)
                            != std::cmp::Ordering::Greater
                    })
                }
                (Paging::Offset, Some(token)) => token.offset.min(total),
                (_, None) => listing.skip.min(total),
            };
            let found = matching[start..]
                .iter()
                .take(wanted.saturating_add(1))
                .map(|referral| Arc::clone(referral))
                .collect();
            (
                found,
                listing.count.then(|| {
                    listing
                        .token
                        .and_then(|token| token.total)
                        .unwrap_or_else(|| app.count(version, listing.query, || total as u64))
                }),
            )
        }
    };

    // More follows when the walk found one past the page and `$top` leaves room for it.
    let more = found.len() > wanted && room > wanted;
    found.truncate(wanted);
    let next = found.last().filter(|_| more).map(|last| {
        let offset = match (app.paging, listing.token) {
            (Paging::Offset, Some(token)) => token.offset + found.len(),
            _ => listing.skip + found.len(),
        };
        SkipToken {
            version,
            key: listing
                .order
                .key(last)
                .iter()
                .zip(listing.order.kinds())
                .map(|(scalar, kind)| {
                    Value::from_json(kind, &to_json(scalar)).unwrap_or(Value::Null)
                })
                .collect(),
            offset,
            remaining: remaining.map(|left| left.saturating_sub(found.len() as u64)),
            total,
            query: String::new(),
        }
    });
    Page {
        items: found,
        total,
        next,
    }
}

/// A bound of a range as a value and whether it is included.
fn bound_value(bound: crate::filter::Bound) -> Option<(Value, bool)> {
    match bound {
        std::ops::Bound::Included(time) => Some((Value::Time(time), true)),
        std::ops::Bound::Excluded(time) => Some((Value::Time(time), false)),
        std::ops::Bound::Unbounded => None,
    }
}

#[derive(serde::Serialize)]
struct Envelope {
    #[serde(flatten)]
    head: serde_json::Map<String, serde_json::Value>,
    value: Vec<Box<RawValue>>,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "generalException",
        format!("the sandbox could not write its answer: {error}"),
    )
}

fn parse<T>(
    result: Result<T, referrals_odata::ParseError>,
    parameter: &str,
) -> Result<T, ApiError> {
    result.map_err(|error| ApiError::bad_request(format!("{parameter}: {error}")).target(parameter))
}

fn select_members(text: &str) -> Result<Vec<String>, ApiError> {
    let items = parse(referrals_odata::parse_select(text), list_params::SELECT)?;
    items
        .into_iter()
        .map(|item| {
            if facts::Resource::MEMBERS.contains(&item.name.as_str()) {
                Ok(item.name)
            } else {
                Err(ApiError::bad_request(format!(
                    "{}: at position {}: `{}` is not a member of the referral",
                    list_params::SELECT,
                    item.position + 1,
                    item.name
                ))
                .target(list_params::SELECT))
            }
        })
        .collect()
}

/// Keeps the `members` of a referral's JSON, each as its exact text.
fn project(text: &str, members: &[String]) -> Result<Box<RawValue>, ApiError> {
    let all: std::collections::BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(text).map_err(internal)?;
    let kept: std::collections::BTreeMap<&String, &RawValue> = all
        .iter()
        .filter(|(name, _)| members.contains(name))
        .map(|(name, value)| (name, value.as_ref()))
        .collect();
    serde_json::value::to_raw_value(&kept).map_err(internal)
}

/// What makes two requests the same listing; a `$skiptoken` works only with its own.
fn query_fingerprint(filter: Option<&str>, order: Option<&str>) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (filter, order).hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// The opaque continuation of a listing. In keyset paging: the snapshot version and the key of
/// the last referral returned, so that a referral inserted or updated meanwhile moves no other
/// one. In offset paging: how many matching referrals came before, counted anew on each page.
/// Both carry what remains of `$top`, the count of the first page, and the query they belong
/// to.
struct SkipToken {
    version: u64,
    key: Vec<Value>,
    offset: usize,
    remaining: Option<u64>,
    total: Option<u64>,
    query: String,
}

impl SkipToken {
    fn encode(&self) -> String {
        let key: Vec<serde_json::Value> = self
            .key
            .iter()
            .map(|value| to_json(&value.scalar()))
            .collect();
        let json = serde_json::json!({
            "v": self.version, "k": key, "o": self.offset, "r": self.remaining,
            "c": self.total, "q": self.query,
        });
        json.to_string()
            .bytes()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    fn decode(text: &str, order: &Order, query: &str, paging: Paging) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::bad_request("the $skiptoken is not one that this service made")
                .target(list_params::SKIPTOKEN)
        };
        if !text.len().is_multiple_of(2) || !text.is_ascii() {
            return Err(invalid());
        }
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| invalid())?;
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if json.get("q").and_then(|q| q.as_str()) != Some(query) {
            return Err(ApiError::bad_request(format!(
                "the $skiptoken belongs to another query: send it with the {} and {} of the listing it came from",
                list_params::FILTER,
                list_params::ORDERBY
            ))
            .target(list_params::SKIPTOKEN));
        }
        let number = |name: &str| match json.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => value.as_u64().map(Some).ok_or_else(invalid),
        };
        let version = number("v")?.ok_or_else(invalid)?;
        let offset = usize::try_from(number("o")?.unwrap_or(0)).map_err(|_| invalid())?;
        let key_json = json
            .get("k")
            .and_then(|k| k.as_array())
            .ok_or_else(invalid)?;
        let kinds = order.kinds();
        if paging == Paging::Keyset && key_json.len() != kinds.len() {
            return Err(invalid());
        }
        let key = key_json
            .iter()
            .zip(kinds)
            .map(|(value, kind)| Value::from_json(kind, value).ok_or_else(invalid))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            version,
            key,
            offset,
            remaining: number("r")?,
            total: number("c")?,
            query: query.to_owned(),
        })
    }
}

fn next_link(base: &str, params: &[(String, String)], token: &str) -> String {
    let kept = params
        .iter()
        .filter(|(name, _)| name != list_params::SKIP && name != list_params::SKIPTOKEN)
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .chain([(list_params::SKIPTOKEN, token)]);
    format!(
        "{base}{}?{}",
        Operation::ListReferrals.path(),
        referrals_odata::wire::encode_query(kept)
    )
}

/// `GET /v1.0/engagements/referrals/{id}`
pub async fn get(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, ApiError> {
    let id = path_id(uri.path())?;
    let referral = {
        let store = app
            .store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        store
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&id))?
    };
    entity(&app, &referral, StatusCode::OK)
}

/// `POST /v1.0/engagements/referrals`
pub async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = body_bytes(&headers, body, app.max_body).await?;
    let members: std::collections::BTreeMap<String, Box<RawValue>> = decode(&bytes)
        .map_err(|_| ApiError::bad_request("the body must be a JSON object: the new referral"))?;
    // All the missing members at once, before the other checks of the schema.
    let missing: Vec<&str> = NewReferral::REQUIRED
        .iter()
        .copied()
        .filter(|name| members.get(*name).is_none_or(|value| value.get() == "null"))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!(
            "missing required members: {}",
            missing.join(", ")
        ))
        .target(missing.join(",")));
    }
    conform(&app, "NewReferral", &bytes)?;
    let new: NewReferral = decode(&bytes)?;

    // A referral starts in the status of the first rule (New), and may be created in any status
    // that one may move to, with a substatus that goes with it.
    let first = STATUS_RULES
        .first()
        .map_or(ReferralStatus::New, |rule| rule.from.clone());
    let status = new.status.clone().unwrap_or_else(|| first.clone());
    let substatus = match &new.substatus {
        Some(substatus) => substatus.clone(),
        None => transitions::substatuses(&status)
            .and_then(|list| list.first().cloned())
            .unwrap_or(ReferralSubstatus::None),
    };
    transitions::check(&first, &status, Some(&substatus))
        .map_err(|error| ApiError::bad_request(error.message).target("status"))?;
    let invites_microsoft = new.target.iter().flatten().any(|target| {
        target.type_ == Some(TargetType::BusinessProfileLocation)
            && target.id.as_deref() == Some("msft")
    });

    let referral = {
        let mut store = app
            .store
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let engagement_id = match &new.engagement_id {
            Some(id) if !store.has_engagement(id) => {
                return Err(ApiError::bad_request(format!(
                    "no engagement has the id `{id}`: leave engagementId out to start a new one"
                ))
                .target("engagementId"));
            }
            Some(id) => id.clone(),
            None if invites_microsoft => {
                return Err(ApiError::bad_request(
                    "a referral that invites Microsoft (target msft) is the second step of a shared referral: \
                     create your own with type Shared first, then this one with its engagementId",
                )
                .target("engagementId"));
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        if invites_microsoft && new.type_ != ReferralType::Shared {
            return Err(ApiError::bad_request(
                "a referral that invites Microsoft must be of type Shared",
            )
            .target("type"));
        }
        // The members of the new referral, by their wire names, and none that the service sets.
        let mut referral: Referral = serde_json::from_slice(&bytes).map_err(|error| {
            ApiError::bad_request(format!("the body is not a referral: {error}"))
        })?;
        referral.keep_read_only(&Referral::default());
        let id = uuid::Uuid::new_v4().to_string();
        let now = Utc::now();
        referral.id = Some(id.clone());
        referral.engagement_id = Some(engagement_id.clone());
        referral.organization_id = Some(ORGANIZATION_ID.into());
        referral.organization_name = Some(ORGANIZATION_NAME.into());
        referral.created_date_time = Some(now);
        referral.updated_date_time = Some(now);
        referral.accepted_date_time = (status == ReferralStatus::Active).then_some(now);
        referral.status = Some(status);
        referral.substatus = Some(substatus);
        referral.direction = Some(ReferralDirection::Outgoing);
        referral.e_tag = Some(etag());
        referral.links = Some(links(&app.base, &id, &engagement_id));
        store.put(referral.clone());
        referral
    };
    let mut response = entity(&app, &referral, StatusCode::CREATED)?;
    let location = format!(
        "{}{}",
        app.base,
        Operation::GetReferral.path_with(&[referral.id.as_deref().unwrap_or_default()])
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `PATCH /v1.0/engagements/referrals/{id}`
pub async fn update(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = path_id(uri.path())?;
    let representation = match header_text(&headers, update_referral::PREFER)? {
        None => false,
        Some(text) => match text.parse::<PreferReturn>() {
            Ok(PreferReturn::ReturnRepresentation) => true,
            Ok(PreferReturn::ReturnMinimal) => false,
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "{} must be {} or {}, not `{text}`",
                    update_referral::PREFER,
                    PreferReturn::ReturnRepresentation,
                    PreferReturn::ReturnMinimal
                ))
                .target(update_referral::PREFER));
            }
        },
    };
    let if_match = header_text(&headers, update_referral::IF_MATCH)?.map(str::to_owned);
    let bytes = body_bytes(&headers, body, app.max_body).await?;
    let patch = read_patch(&bytes)?;
    conform(&app, "JsonPatch", &bytes)?;

    let updated = {
        let (mut store, current) = lock_for_update(&app, &id, if_match.as_deref())?;
        let mut next = (*current).clone();
        for (index, operation) in patch.iter().enumerate() {
            patch::apply(&mut next, operation).map_err(|error| {
                ApiError::bad_request(format!(
                    "operation {index} ({} {}): {error}",
                    operation.op, operation.path
                ))
                .target(error.path().to_owned())
            })?;
        }
        check_transition(&current, &next)?;
        if next != *current {
            stamp(&mut next, &current);
            store.put(next.clone());
        }
        next
    };
    if representation {
        entity(&app, &updated, StatusCode::OK)
    } else {
        let mut response = StatusCode::NO_CONTENT.into_response();
        set_etag(&mut response, &updated);
        Ok(response)
    }
}

/// `PUT /v1.0/engagements/referrals/{id}` (deprecated)
pub async fn replace(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = path_id(uri.path())?;
    let if_match_name = referrals_model::parameters::replace_referral::IF_MATCH;
    let Some(if_match) = header_text(&headers, if_match_name)?.map(str::to_owned) else {
        return Err(ApiError::bad_request(format!(
            "{if_match_name} is required: send the eTag of the version you replace"
        ))
        .target(if_match_name));
    };
    let bytes = body_bytes(&headers, body, app.max_body).await?;
    conform(&app, "Referral", &bytes)?;
    let mut next: Referral = decode(&bytes)?;
    let updated = {
        let (mut store, current) = lock_for_update(&app, &id, Some(&if_match))?;
        // The members that the service sets stay as they are, and so does the engagement.
        next.keep_read_only(&current);
        next.engagement_id = current.engagement_id.clone();
        if next.status.is_none() {
            next.status = current.status.clone();
        }
        check_transition(&current, &next)?;
        stamp(&mut next, &current);
        store.put(next.clone());
        next
    };
    entity(&app, &updated, StatusCode::OK)
}

/// `GET /v1/referrals` (the legacy draft): plain filters, no paging.
pub async fn legacy_list(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, ApiError> {
    use list_referrals_legacy as names;
    let params = Params::parse(uri.query())?;
    params.only_options(&[])?;
    let engagement = params.get(names::ENGAGEMENT_ID).map(str::to_owned);
    let own = params.boolean(names::SELF)?.unwrap_or(false);
    let status = params.get(names::STATUS).map(ReferralStatus::from);
    let invited_by = params
        .get(names::INVITED_BY_ORGANIZATION)
        .map(str::to_owned);
    let value: Vec<Arc<Referral>> = {
        let store = app
            .store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        store
            .snapshot(store.version())
            .filter(|r| {
                engagement
                    .as_deref()
                    .is_none_or(|id| r.engagement_id.as_deref() == Some(id))
            })
            .filter(|r| !own || r.organization_id.as_deref() == Some(ORGANIZATION_ID))
            .filter(|r| {
                status
                    .as_ref()
                    .is_none_or(|status| r.status.as_ref() == Some(status))
            })
            .filter(|r| {
                invited_by.as_deref().is_none_or(|org| {
                    r.invite_context
                        .as_ref()
                        .and_then(|context| context.invited_by.as_ref())
                        .and_then(|by| by.organization_id.as_deref())
                        == Some(org)
                })
            })
            .cloned()
            .collect()
    };
    #[derive(serde::Serialize)]
    struct Legacy<'a> {
        #[serde(rename = "@odata.context")]
        context: String,
        value: Vec<&'a Referral>,
    }
    Ok(json_response(
        StatusCode::OK,
        &Legacy {
            context: format!("{}/v1/$metadata#Referrals", app.base),
            value: value.iter().map(Arc::as_ref).collect(),
        },
    ))
}

/// Refuses a body that its schema in the document does not allow, naming the place.
fn conform(app: &App, schema: &str, bytes: &[u8]) -> Result<(), ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|error| ApiError::bad_request(format!("the body is not valid JSON: {error}")))?;
    let violations = app.validators.check_component(schema, &value);
    let Some(first) = violations.first() else {
        return Ok(());
    };
    let at = if first.pointer.is_empty() {
        "/"
    } else {
        &first.pointer
    };
    let more = match violations.len() {
        1 => String::new(),
        count => format!(" (and {} more)", count - 1),
    };
    Err(ApiError::bad_request(format!(
        "the body is not a valid {schema}: at {at}: {}{more}",
        first.message
    ))
    .target(at.to_owned()))
}

fn read_patch(bytes: &[u8]) -> Result<JsonPatch, ApiError> {
    // The op is checked first, for a clear answer to `remove`, `move`, `copy` and `test`.
    let raw: Vec<std::collections::BTreeMap<String, Box<RawValue>>> =
        decode(bytes).map_err(|_| {
            ApiError::bad_request("the body must be a JSON Patch document: an array of operations")
        })?;
    for (index, operation) in raw.iter().enumerate() {
        if let Some(op) = operation.get("op") {
            let op: Result<String, _> = serde_json::from_str(op.get());
            if let Ok(op) = op
                && op.parse::<referrals_model::types::JsonPatchOp>().is_err()
            {
                return Err(ApiError::bad_request(format!(
                    "operation {index}: the op `{op}` is not accepted; the accepted ones are {}",
                    accepted_ops().join(", ")
                ))
                .target(format!("[{index}].op")));
            }
        }
    }
    decode(bytes)
}

/// The JSON Patch ops that some patchable path takes.
fn accepted_ops() -> Vec<String> {
    let mut ops: Vec<String> = facts::PATCHABLE
        .iter()
        .flat_map(|entry| entry.ops.iter().map(ToString::to_string))
        .collect();
    ops.sort();
    ops.dedup();
    ops
}

/// The store, locked for writing, and the current version of the referral `id`, which must
/// exist and match `if_match` when one is given. The lock is held until the write is done, so
/// of concurrent writers with the same eTag exactly one wins.
fn lock_for_update<'a>(
    app: &'a App,
    id: &str,
    if_match: Option<&str>,
) -> Result<(std::sync::RwLockWriteGuard<'a, Store>, Arc<Referral>), ApiError> {
    let store = app
        .store
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let current = store
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(id))?;
    check_if_match(if_match, &current)?;
    Ok((store, current))
}

fn check_if_match(if_match: Option<&str>, current: &Referral) -> Result<(), ApiError> {
    let Some(wanted) = if_match else {
        return Ok(());
    };
    let matches = wanted
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || Some(tag) == current.e_tag.as_deref());
    if matches {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "resourceModified",
            "The referral changed since it was read (its eTag no longer matches If-Match): read it again and retry.",
        )
        .target(update_referral::IF_MATCH))
    }
}

fn check_transition(current: &Referral, next: &Referral) -> Result<(), ApiError> {
    if current.status == next.status && current.substatus == next.substatus {
        return Ok(());
    }
    let from = current.status.clone().unwrap_or(ReferralStatus::New);
    let to = next.status.clone().unwrap_or_else(|| from.clone());
    transitions::check(&from, &to, next.substatus.as_ref()).map_err(|error| {
        ApiError::bad_request(error.message)
            .target("/status")
            .inner("invalidStatusTransition")
    })
}

/// The members that change with every write.
fn stamp(next: &mut Referral, current: &Referral) {
    let now = Utc::now();
    next.updated_date_time = Some(now);
    next.e_tag = Some(etag());
    if next.status == Some(ReferralStatus::Active) && current.status != Some(ReferralStatus::Active)
    {
        next.accepted_date_time = Some(now);
    }
    if next.status == Some(ReferralStatus::Closed) && current.status != Some(ReferralStatus::Closed)
    {
        next.closed_date_time = Some(now);
    }
}

/// A referral as a single-entity answer: `@odata.context`, the body, and the `ETag` header.
fn entity(app: &App, referral: &Referral, status: StatusCode) -> Result<Response, ApiError> {
    let mut body = referral.clone();
    body.odata_context = Some(format!(
        "{}{}/$metadata#Referrals/$entity",
        app.base,
        Operation::ListReferrals.path()
    ));
    let mut response = json_response(status, &body);
    set_etag(&mut response, referral);
    Ok(response)
}

fn set_etag(response: &mut Response, referral: &Referral) {
    if let Some(tag) = referral
        .e_tag
        .as_deref()
        .and_then(|tag| HeaderValue::from_str(tag).ok())
    {
        response.headers_mut().insert(header::ETAG, tag);
    }
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(text) => {
            let mut response = (status, text).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            response
        }
        Err(error) => internal(error).into_response(),
    }
}

/// The `{id}` of a path, percent-decoded.
fn path_id(path: &str) -> Result<String, ApiError> {
    let raw = path.rsplit('/').next().unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|id| id.into_owned())
        .map_err(|_| ApiError::bad_request("the referral id is not valid UTF-8").target("id"))
}
