//! The writes: a new referral, a JSON Patch and a replacement, each checked against the
//! document (its schema, `If-Match`, the status rules) before the store changes.

use super::*;

/// `POST /v1.0/engagements/referrals`
pub async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = body_bytes(&headers, body, app.max_body).await?;
    let new = read_new(&app, &bytes)?;
    let (status, substatus) = initial_status(&new)?;
    let referral = {
        let mut store = app
            .store
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let engagement_id = engagement_of(&store, &new)?;
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
        app.events.publish(&app.base, &store, &referral, true);
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

/// The body of a create: every required member (all the missing ones named at once, before
/// the other checks of the schema), then the schema.
fn read_new(app: &App, bytes: &[u8]) -> Result<NewReferral, ApiError> {
    let members: std::collections::BTreeMap<String, Box<RawValue>> = decode(bytes)
        .map_err(|_| ApiError::bad_request("the body must be a JSON object: the new referral"))?;
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
    conform(app, Operation::CreateReferral, bytes)?;
    decode(bytes)
}

/// The status of a new referral. It starts in the status of the first rule (New), and may be
/// created in any status that one may move to, with a substatus that goes with it.
fn initial_status(new: &NewReferral) -> Result<(ReferralStatus, ReferralSubstatus), ApiError> {
    let first = first_status();
    let status = new.status.clone().unwrap_or_else(|| first.clone());
    let substatus = match &new.substatus {
        Some(substatus) => substatus.clone(),
        None => transitions::substatuses(&status)
            .and_then(|list| list.first().cloned())
            .unwrap_or(ReferralSubstatus::None),
    };
    transitions::check(&first, &status, Some(&substatus))
        .map_err(|error| ApiError::bad_request(error.message).target("status"))?;
    Ok((status, substatus))
}

/// The engagement of a new referral: the one it names, which must exist, or a new one. A
/// referral that invites Microsoft is the second step of a shared referral: it names the
/// engagement of the first, and is of type Shared.
fn engagement_of(store: &Store, new: &NewReferral) -> Result<String, ApiError> {
    let invites_microsoft = new.target.iter().flatten().any(Target::is_microsoft);
    let engagement = match &new.engagement_id {
        Some(id) if !store.has_engagement(id) => Err(ApiError::bad_request(format!(
            "no engagement has the id `{id}`: leave engagementId out to start a new one"
        ))
        .target("engagementId")),
        Some(id) => Ok(id.clone()),
        None if invites_microsoft => Err(ApiError::bad_request(
            "a referral that invites Microsoft (its target names Microsoft) is the second step \
             of a shared referral: create your own with type Shared first, then this one with \
             its engagementId",
        )
        .target("engagementId")),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }?;
    if invites_microsoft && new.type_ != ReferralType::Shared {
        return Err(ApiError::bad_request(
            "a referral that invites Microsoft must be of type Shared",
        )
        .target("type"));
    }
    Ok(engagement)
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
    conform(&app, Operation::UpdateReferral, &bytes)?;

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
        enter_substatus(&current, &mut next, writes_substatus(&patch));
        check_transition(&current, &next)?;
        if next != *current {
            stamp(&mut next, &current);
            store.put(next.clone());
            app.events.publish(&app.base, &store, &next, false);
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
    conform(&app, Operation::ReplaceReferral, &bytes)?;
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
        app.events.publish(&app.base, &store, &next, false);
        next
    };
    entity(&app, &updated, StatusCode::OK)
}

/// Refuses a body that the schema of `operation`'s request body does not allow, naming the
/// place.
fn conform(app: &App, operation: Operation, bytes: &[u8]) -> Result<(), ApiError> {
    let schema = operation.body_schema().unwrap_or_default();
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
            ErrorCode::ResourceModified,
            "The referral changed since it was read (its eTag no longer matches If-Match): read it again and retry.",
        )
        .target(update_referral::IF_MATCH))
    }
}

/// Whether a patch writes `/substatus` (a `test` of it does not).
fn writes_substatus(patch: &JsonPatch) -> bool {
    patch
        .iter()
        .any(|operation| operation.path == "/substatus" && operation.op.to_string() != "test")
}

/// A referral that enters a status without a substatus gets the first of the status's rule
/// (`x-status-rules`), as the document says: a patch of `/status` alone moves it on. What a
/// patch writes to `/substatus` itself stands.
fn enter_substatus(current: &Referral, next: &mut Referral, writes_substatus: bool) {
    let (Some(from), Some(to)) = (current.status.as_ref(), next.status.as_ref()) else {
        return;
    };
    if writes_substatus || from == to {
        return;
    }
    next.substatus = transitions::substatus_after(from, current.substatus.as_ref(), to, None);
}

/// The status of a referral that has none: the first of the rules.
fn first_status() -> ReferralStatus {
    STATUS_RULES
        .first()
        .map_or(ReferralStatus::New, |rule| rule.from.clone())
}

fn check_transition(current: &Referral, next: &Referral) -> Result<(), ApiError> {
    if current.status == next.status && current.substatus == next.substatus {
        return Ok(());
    }
    let from = current.status.clone().unwrap_or_else(first_status);
    let to = next.status.clone().unwrap_or_else(|| from.clone());
    transitions::check(&from, &to, next.substatus.as_ref())
        .map_err(|error| ApiError::bad_request(error.message).target("/status"))
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
