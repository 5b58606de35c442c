//! The operations of the document.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use referrals_client::types::{
    JsonPatch, JsonPatchOp, Member, NewReferral, Referral, ReferralDirection, ReferralStatus,
    ReferralSubstatus, ReferralType, Registration, SolutionTag, TargetType,
};
use referrals_client::{PatchValue, transitions};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::App;
use crate::error::ApiError;
use crate::filter::{Compiled, Order, Value, compile};
use crate::request::{Params, body_bytes, decode, header_text};
use crate::seed::{ORGANIZATION_ID, ORGANIZATION_NAME, etag, links};

use referrals_odata::wire::QUERY_OPTIONS as LIST_OPTIONS;

/// `GET /v1.0/engagements/referrals`
pub async fn list(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query())?;
    params.only_options(&LIST_OPTIONS)?;

    let filter_text = params.get("$filter");
    let order_text = params.get("$orderby");
    let filter = match filter_text {
        Some(text) => Some(compile(&parse(
            referrals_odata::parse_filter(text),
            "$filter",
        )?)?),
        None => None,
    };
    let order = Order::new(&match order_text {
        Some(text) => parse(referrals_odata::parse_orderby(text), "$orderby")?,
        None => Vec::new(),
    })?;
    let select = match params.get("$select") {
        Some(text) => Some(select_members(text)?),
        None => None,
    };
    let top = params.count("$top")?;
    let skip = params.count("$skip")?;
    let count = params.boolean("$count")?.unwrap_or(false);
    let query_id = query_fingerprint(filter_text, order_text);
    let token = match params.get("$skiptoken") {
        Some(text) => Some(SkipToken::decode(text, &order, &query_id)?),
        None => None,
    };

    // One consistent snapshot: the one the listing started at.
    let (page, total, remaining_after, last_key) = {
        let store = app
            .store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let version = token
            .as_ref()
            .map_or(store.version(), |token| token.version);
        let passes = |referral: &&Arc<Referral>| {
            filter
                .as_ref()
                .is_none_or(|filter: &Compiled| filter.matches(referral))
        };
        let remaining = token
            .as_ref()
            .map_or(top.map(u64::from), |token| token.remaining);
        let room = remaining.map_or(usize::MAX, |left| {
            usize::try_from(left).unwrap_or(usize::MAX)
        });
        let wanted = app.page_size.min(room);
        let (page, more, total) = match order.by_created() {
            // The creation index: read from the key on until the page is full (and one more,
            // to know whether another page follows).
            Some(descending) => {
                let after = token.as_ref().and_then(|token| match token.key.as_slice() {
                    [Value::Time(created), Value::Text(id)] => Some((*created, id.clone())),
                    _ => None,
                });
                let skipped = if token.is_some() {
                    0
                } else {
                    skip.unwrap_or(0) as usize
                };
                let mut found: Vec<Arc<Referral>> = store
                    .by_created(version, descending, after)
                    .filter(passes)
                    .skip(skipped)
                    .take(wanted.saturating_add(1))
                    .cloned()
                    .collect();
                // More follows when the index had more and `$top` leaves room for it.
                let more = found.len() > wanted && room > wanted;
                found.truncate(wanted);
                let total = count.then(|| store.snapshot(version).filter(passes).count());
                (found, more, total)
            }
            // Any other order: sort the matches of the snapshot.
            None => {
                let mut matching: Vec<&Arc<Referral>> =
                    store.snapshot(version).filter(passes).collect();
                let total = matching.len();
                matching.sort_by(|a, b| order.compare(&order.key(a), &order.key(b)));
                let start = match &token {
                    Some(token) => {
                        let after: Vec<_> = token.key.iter().map(Value::scalar).collect();
                        matching.partition_point(|referral| {
                            order.compare(&order.key(referral), &after)
                                != std::cmp::Ordering::Greater
                        })
                    }
                    None => (skip.unwrap_or(0) as usize).min(total),
                };
                let length = wanted.min(total - start);
                let page: Vec<Arc<Referral>> = matching[start..start + length]
                    .iter()
                    .map(|r| Arc::clone(r))
                    .collect();
                (page, start + length < total && room > length, Some(total))
            }
        };
        let last_key = page.last().filter(|_| more).map(|last| {
            (
                version,
                order
                    .key(last)
                    .iter()
                    .map(|scalar| scalar.to_json())
                    .collect::<Vec<_>>(),
            )
        });
        let left = remaining.map(|left| left - page.len() as u64);
        (page, total, left, last_key)
    };

    let mut value = Vec::with_capacity(page.len());
    for referral in &page {
        let text = serde_json::to_string(referral.as_ref()).expect("a referral serializes");
        value.push(match &select {
            Some(members) => project(&text, members),
            None => RawValue::from_string(text).expect("serde_json writes valid JSON"),
        });
    }
    let mut body = serde_json::Map::new();
    body.insert(
        "@odata.context".into(),
        format!("{}/v1.0/$metadata#Referrals", app.base).into(),
    );
    if let (true, Some(total)) = (count, total) {
        body.insert("@odata.count".into(), total.into());
    }
    let next_link = last_key.map(|(version, key)| {
        let token = SkipToken {
            version,
            key: Vec::new(),
            remaining: remaining_after,
            query: query_id.clone(),
        }
        .encode(&key);
        next_link(&app.base, params.all(), &token)
    });
    let envelope = Envelope {
        head: body,
        value,
        next_link,
    };
    Ok(json_response(StatusCode::OK, &envelope))
}

#[derive(serde::Serialize)]
struct Envelope {
    #[serde(flatten)]
    head: serde_json::Map<String, serde_json::Value>,
    value: Vec<Box<RawValue>>,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

fn parse<T>(
    result: Result<T, referrals_odata::ParseError>,
    parameter: &str,
) -> Result<T, ApiError> {
    result.map_err(|error| ApiError::bad_request(format!("{parameter}: {error}")).target(parameter))
}

fn select_members(text: &str) -> Result<Vec<String>, ApiError> {
    let items = parse(referrals_odata::parse_select(text), "$select")?;
    items
        .into_iter()
        .map(|item| {
            if Referral::MEMBERS.contains(&item.name.as_str()) {
                Ok(item.name)
            } else {
                Err(ApiError::bad_request(format!(
                    "$select: at position {}: `{}` is not a member of the referral",
                    item.position + 1,
                    item.name
                ))
                .target("$select"))
            }
        })
        .collect()
}

/// Keeps the `members` of a referral's JSON, each as its exact text.
fn project(text: &str, members: &[String]) -> Box<RawValue> {
    let all: std::collections::BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(text).expect("a serialized referral is a JSON object");
    let kept: std::collections::BTreeMap<&String, &RawValue> = all
        .iter()
        .filter(|(name, _)| members.contains(name))
        .map(|(name, value)| (name, value.as_ref()))
        .collect();
    serde_json::value::to_raw_value(&kept).expect("raw values serialize")
}

/// What makes two requests the same listing; a `$skiptoken` works only with its own.
fn query_fingerprint(filter: Option<&str>, order: Option<&str>) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (filter, order).hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// The opaque continuation of a listing: the snapshot version, the key of the last referral
/// returned, what remains of `$top`, and which query it belongs to. Keyset, not offset: a
/// referral inserted or updated meanwhile moves no other one.
struct SkipToken {
    version: u64,
    key: Vec<Value>,
    remaining: Option<u64>,
    query: String,
}

impl SkipToken {
    fn encode(&self, key: &[serde_json::Value]) -> String {
        let json = serde_json::json!({ "v": self.version, "k": key, "r": self.remaining, "q": self.query });
        json.to_string()
            .bytes()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    fn decode(text: &str, order: &Order, query: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::bad_request("the $skiptoken is not one that this service made")
                .target("$skiptoken")
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
            return Err(ApiError::bad_request(
                "the $skiptoken belongs to another query: send it with the $filter and $orderby of the listing it came from",
            )
            .target("$skiptoken"));
        }
        let version = json.get("v").and_then(|v| v.as_u64()).ok_or_else(invalid)?;
        let remaining = match json.get("r") {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(value.as_u64().ok_or_else(invalid)?),
        };
        let key_json = json
            .get("k")
            .and_then(|k| k.as_array())
            .ok_or_else(invalid)?;
        if key_json.len() != order.keys.len() {
            return Err(invalid());
        }
        let key = key_json
            .iter()
            .zip(&order.keys)
            .map(|(value, (member, _))| Value::from_json(member.kind, value).ok_or_else(invalid))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            version,
            key,
            remaining,
            query: query.to_owned(),
        })
    }
}

fn next_link(base: &str, params: &[(String, String)], token: &str) -> String {
    let kept = params
        .iter()
        .filter(|(name, _)| name != "$skip" && name != "$skiptoken")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .chain([("$skiptoken", token)]);
    format!(
        "{base}/v1.0/engagements/referrals?{}",
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
    Ok(entity(&app, &referral, StatusCode::OK))
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
    let missing: Vec<&str> = ["type", "customerProfile", "consent", "details"]
        .into_iter()
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

    let (status, substatus) = match (&new.status, &new.substatus) {
        (None, None) => (ReferralStatus::New, ReferralSubstatus::Received),
        (Some(status), given) => {
            if !matches!(status, ReferralStatus::New | ReferralStatus::Active) {
                return Err(ApiError::bad_request(format!(
                    "a referral is created New or Active, not {status}"
                ))
                .target("status"));
            }
            let substatus: ReferralSubstatus = match given {
                Some(substatus) => substatus.clone(),
                None if *status == ReferralStatus::Active => ReferralSubstatus::Accepted,
                None => ReferralSubstatus::Received,
            };
            transitions::check(&ReferralStatus::New, status, Some(&substatus))
                .map_err(|error| ApiError::bad_request(error.message).target("substatus"))?;
            (status.clone(), substatus)
        }
        (None, Some(substatus)) => {
            transitions::check(&ReferralStatus::New, &ReferralStatus::New, Some(substatus))
                .map_err(|error| ApiError::bad_request(error.message).target("substatus"))?;
            (ReferralStatus::New, substatus.clone())
        }
    };
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
        let id = uuid::Uuid::new_v4().to_string();
        let now = Utc::now();
        let referral = Referral {
            id: Some(id.clone()),
            engagement_id: Some(engagement_id.clone()),
            name: new.name.clone(),
            organization_id: Some(ORGANIZATION_ID.into()),
            organization_name: Some(ORGANIZATION_NAME.into()),
            external_reference_id: new.external_reference_id.clone(),
            created_date_time: Some(now),
            updated_date_time: Some(now),
            accepted_date_time: (status == ReferralStatus::Active).then_some(now),
            status: Some(status),
            substatus: Some(substatus),
            status_reason: new.status_reason.clone(),
            type_: Some(new.type_.clone()),
            qualification: new.qualification.clone(),
            direction: Some(ReferralDirection::Outgoing),
            customer_profile: Some(new.customer_profile.clone()),
            consent: Some(new.consent.clone()),
            details: Some(new.details.clone()),
            team: new.team.clone(),
            invite_context: new.invite_context.clone(),
            target: new.target.clone(),
            campaign_id: new.campaign_id.clone(),
            referral_program: new.referral_program.clone(),
            sales_stage: new.sales_stage.clone(),
            tracking_info: new.tracking_info.clone(),
            e_tag: Some(etag()),
            links: Some(links(&app.base, &id, &engagement_id)),
            extra: new.extra.clone(),
            ..Referral::default()
        };
        store.put(referral.clone());
        referral
    };
    let mut response = entity(&app, &referral, StatusCode::CREATED);
    let location = format!(
        "{}/v1.0/engagements/referrals/{}",
        app.base,
        referral.id.as_deref().unwrap_or_default()
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
    let representation = match header_text(&headers, "prefer")? {
        None | Some("return=minimal") => false,
        Some("return=representation") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Prefer must be return=representation or return=minimal, not `{other}`"
            ))
            .target("Prefer"));
        }
    };
    let if_match = header_text(&headers, "if-match")?.map(str::to_owned);
    let bytes = body_bytes(&headers, body, app.max_body).await?;
    let patch = read_patch(&bytes)?;
    conform(&app, "JsonPatch", &bytes)?;

    let updated = {
        let (mut store, current) = lock_for_update(&app, &id, if_match.as_deref())?;
        let mut next = (*current).clone();
        for (index, operation) in patch.iter().enumerate() {
            apply(&mut next, operation).map_err(|error| {
                let message = format!(
                    "operation {index} ({} {}): {}",
                    operation.op, operation.path, error.message
                );
                ApiError { message, ..error }
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
        Ok(entity(&app, &updated, StatusCode::OK))
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
    let Some(if_match) = header_text(&headers, "if-match")?.map(str::to_owned) else {
        return Err(ApiError::bad_request(
            "If-Match is required: send the eTag of the version you replace",
        )
        .target("If-Match"));
    };
    let bytes = body_bytes(&headers, body, app.max_body).await?;
    conform(&app, "Referral", &bytes)?;
    let body: Referral = decode(&bytes)?;
    let updated = {
        let (mut store, current) = lock_for_update(&app, &id, Some(&if_match))?;
        // The members that the service assigns stay as they are.
        let mut next = Referral {
            odata_context: None,
            id: current.id.clone(),
            engagement_id: current.engagement_id.clone(),
            organization_id: current.organization_id.clone(),
            organization_name: current.organization_name.clone(),
            created_date_time: current.created_date_time,
            updated_date_time: current.updated_date_time,
            expiration_date_time: current.expiration_date_time,
            accepted_date_time: current.accepted_date_time,
            closed_date_time: current.closed_date_time,
            direction: current.direction.clone(),
            e_tag: current.e_tag.clone(),
            links: current.links.clone(),
            registrations: current.registrations.clone(),
            registration_status: current.registration_status.clone(),
            quality: current.quality.clone(),
            is_spam: current.is_spam,
            tags: current.tags.clone(),
            offer_id: current.offer_id.clone(),
            last_modified_via: current.last_modified_via.clone(),
            last_run_id: current.last_run_id.clone(),
            ..body
        };
        if next.status.is_none() {
            next.status = current.status.clone();
        }
        check_transition(&current, &next)?;
        stamp(&mut next, &current);
        store.put(next.clone());
        next
    };
    Ok(entity(&app, &updated, StatusCode::OK))
}

/// `GET /v1/referrals` (the legacy draft): plain filters, no paging.
pub async fn legacy_list(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query())?;
    params.only_options(&[])?;
    let engagement = params.get("engagementId").map(str::to_owned);
    let own = params.boolean("self")?.unwrap_or(false);
    let status = params.get("status").map(ReferralStatus::from);
    let invited_by = params.get("invitedByOrganization").map(str::to_owned);
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
    let value: Vec<&Referral> = value.iter().map(Arc::as_ref).collect();
    let body =
        serde_json::json!({ "@odata.context": format!("{}/v1/$metadata#Referrals", app.base) });
    let mut head = serde_json::Map::new();
    if let serde_json::Value::Object(map) = body {
        head = map;
    }
    #[derive(serde::Serialize)]
    struct Legacy<'a> {
        #[serde(flatten)]
        head: serde_json::Map<String, serde_json::Value>,
        value: Vec<&'a Referral>,
    }
    Ok(json_response(StatusCode::OK, &Legacy { head, value }))
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
                && op != "replace"
                && op != "add"
            {
                return Err(ApiError::bad_request(format!(
                    "operation {index}: the op `{op}` is not accepted; only replace and add are"
                ))
                .target(format!("[{index}].op")));
            }
        }
    }
    decode(bytes)
}

/// The store, locked for writing, and the current version of the referral `id`, which must
/// exist and match `if_match` when one is given. The lock is held until the write is done, so
/// of concurrent writers with the same eTag exactly one wins.
fn lock_for_update<'a>(
    app: &'a App,
    id: &str,
    if_match: Option<&str>,
) -> Result<
    (
        std::sync::RwLockWriteGuard<'a, crate::store::Store>,
        Arc<Referral>,
    ),
    ApiError,
> {
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
        .target("If-Match"))
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

/// Applies one operation to the members that a partner may change.
fn apply(
    referral: &mut Referral,
    operation: &referrals_client::types::JsonPatchOperation,
) -> Result<(), ApiError> {
    let value = &operation.value;
    let append = operation.path.ends_with("/-");
    if append && operation.op != JsonPatchOp::Add {
        return Err(ApiError::bad_request("`/-` appends to an array: use add")
            .target(operation.path.clone()));
    }
    match operation.path.as_str() {
        "/status" => referral.status = Some(typed(value, "/status")?),
        "/substatus" => referral.substatus = Some(typed(value, "/substatus")?),
        "/statusReason" => referral.status_reason = typed(value, "/statusReason")?,
        "/externalReferenceId" => {
            referral.external_reference_id = typed(value, "/externalReferenceId")?
        }
        "/campaignId" => referral.campaign_id = typed(value, "/campaignId")?,
        "/referralProgram" => referral.referral_program = typed(value, "/referralProgram")?,
        "/salesStage" => referral.sales_stage = typed(value, "/salesStage")?,
        "/details/notes" => details(referral).notes = typed(value, "/details/notes")?,
        "/details/dealValue" => details(referral).deal_value = typed(value, "/details/dealValue")?,
        "/details/currency" => details(referral).currency = typed(value, "/details/currency")?,
        "/details/closingDateTime" => {
            details(referral).closing_date_time = typed(value, "/details/closingDateTime")?
        }
        "/details/requirements/solutions" => {
            details(referral)
                .requirements
                .get_or_insert_with(Default::default)
                .solutions = typed(value, "/details/requirements/solutions")?;
        }
        "/details/requirements/solutions/-" => {
            let item: SolutionTag = typed(value, "/details/requirements/solutions/-")?;
            let requirements = details(referral)
                .requirements
                .get_or_insert_with(Default::default);
            requirements
                .solutions
                .get_or_insert_with(Vec::new)
                .push(item);
        }
        "/team" => referral.team = typed(value, "/team")?,
        "/team/-" => {
            let item: Member = typed(value, "/team/-")?;
            referral.team.get_or_insert_with(Vec::new).push(item);
        }
        "/customerProfile/team" => {
            referral
                .customer_profile
                .get_or_insert_with(Default::default)
                .team = typed(value, "/customerProfile/team")?;
        }
        "/customerProfile/team/-" => {
            let item: Member = typed(value, "/customerProfile/team/-")?;
            let profile = referral
                .customer_profile
                .get_or_insert_with(Default::default);
            profile.team.get_or_insert_with(Vec::new).push(item);
        }
        "/consent/consentToShareReferralWithMicrosoftSellers" => {
            referral
                .consent
                .get_or_insert_with(Default::default)
                .consent_to_share_referral_with_microsoft_sellers =
                typed(value, "/consent/consentToShareReferralWithMicrosoftSellers")?;
        }
        "/registrations" => referral.registrations = typed(value, "/registrations")?,
        "/registrations/-" => {
            let item: Registration = typed(value, "/registrations/-")?;
            referral
                .registrations
                .get_or_insert_with(Vec::new)
                .push(item);
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "`{other}` is not a member that can be changed; the patchable paths are /status, /substatus, \
                 /statusReason, /details/notes, /details/dealValue, /details/currency, /details/closingDateTime, \
                 /details/requirements/solutions(/-), /team(/-), /customerProfile/team(/-), /externalReferenceId, \
                 /consent/consentToShareReferralWithMicrosoftSellers, /campaignId, /referralProgram, /salesStage and \
                 /registrations(/-)"
            ))
            .target(other.to_owned()));
        }
    }
    Ok(())
}

fn details(referral: &mut Referral) -> &mut referrals_client::types::ReferralDetails {
    referral.details.get_or_insert_with(Default::default)
}

/// A patch value as the type of its member, decoded from its text (amounts keep their digits).
fn typed<T: DeserializeOwned>(value: &PatchValue, path: &str) -> Result<T, ApiError> {
    value.to_value().map_err(|error| {
        ApiError::bad_request(format!(
            "the value {} does not fit {path}: {error}",
            value.json()
        ))
        .target(path.to_owned())
    })
}

/// A referral as a single-entity answer: `@odata.context`, the body, and the `ETag` header.
fn entity(app: &App, referral: &Referral, status: StatusCode) -> Response {
    let mut body = referral.clone();
    body.odata_context = Some(format!(
        "{}/v1.0/engagements/referrals/$metadata#Referrals/$entity",
        app.base
    ));
    let mut response = json_response(status, &body);
    set_etag(&mut response, referral);
    response
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
    let text = serde_json::to_vec(body).expect("the answer serializes");
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// The `{id}` of a path, percent-decoded.
fn path_id(path: &str) -> Result<String, ApiError> {
    let raw = path.rsplit('/').next().unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|id| id.into_owned())
        .map_err(|_| ApiError::bad_request("the referral id is not valid UTF-8").target("id"))
}
