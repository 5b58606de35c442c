//! The reads: a page of the listing (its filter, order, selection and paging), one referral,
//! and the legacy listing.

use super::*;

/// `GET /v1.0/engagements/referrals`
pub async fn list(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query())?;
    let options: Vec<&str> = Operation::ListReferrals.query_parameters().collect();
    params.only_options(&options)?;
    let request = ListRequest::parse(&params, app.paging)?;
    let page = {
        let store = app
            .store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        read_page(&app, &store, &request.listing())
    };
    app.listings
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut value = Vec::with_capacity(page.items.len());
    for referral in &page.items {
        let text = serde_json::to_string(referral.as_ref()).map_err(internal)?;
        value.push(match &request.select {
            Some(members) => project(&text, members)?,
            None => RawValue::from_string(text).map_err(internal)?,
        });
    }
    let head = ReferralList {
        odata_context: Some(collection_context(&app, Operation::ListReferrals)),
        odata_count: page
            .total
            .filter(|_| request.count && app.answer_count)
            .map(|total| i64::try_from(total).unwrap_or(i64::MAX)),
        odata_next_link: page.next.map(|mut next| {
            next.query.clone_from(&request.query_id);
            next_link(&app.base, params.all(), &next.encode())
        }),
        ..ReferralList::default()
    };
    Ok(json_response(StatusCode::OK, &Envelope::new(head, value)))
}

/// The options of a list request, read and checked.
struct ListRequest {
    filter: Option<Compiled>,
    order: Order,
    select: Option<Vec<String>>,
    top: Option<u32>,
    skip: usize,
    count: bool,
    query_id: String,
    token: Option<SkipToken>,
}

impl ListRequest {
    fn parse(params: &Params, paging: Paging) -> Result<Self, ApiError> {
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
        let query_id = query_fingerprint(filter_text, order_text);
        let token = match params.get(list_params::SKIPTOKEN) {
            Some(text) => Some(SkipToken::decode(text, &order, &query_id, paging)?),
            None => None,
        };
        Ok(Self {
            filter,
            order,
            select,
            top: params.count(list_params::TOP)?,
            skip: params.count(list_params::SKIP)?.unwrap_or(0) as usize,
            count: params.boolean(list_params::COUNT)?.unwrap_or(false),
            query_id,
            token,
        })
    }

    fn listing(&self) -> Listing<'_> {
        Listing {
            filter: self.filter.as_ref(),
            order: &self.order,
            skip: self.skip,
            top: self.top,
            count: self.count,
            token: self.token.as_ref(),
            query: &self.query_id,
        }
    }
}

/// A page as the document's `ReferralList` writes it, with the referrals as the JSON text of
/// the store (money keeps its digits; `$select` applied).
#[derive(serde::Serialize)]
struct Envelope {
    #[serde(flatten)]
    head: ReferralList,
    #[serde(flatten)]
    items: std::collections::BTreeMap<&'static str, Vec<Box<RawValue>>>,
}

impl Envelope {
    fn new(head: ReferralList, items: Vec<Box<RawValue>>) -> Self {
        Self {
            head,
            items: std::collections::BTreeMap::from([(items_member(), items)]),
        }
    }
}

/// The wire name of a `ReferralList`'s referrals, as the generated type writes it: the one
/// member of a list that has nothing but an empty page.
fn items_member() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let empty = ReferralList {
            value: Some(Vec::new()),
            ..ReferralList::default()
        };
        match serde_json::to_value(empty) {
            Ok(serde_json::Value::Object(members)) => members.keys().next().cloned(),
            _ => None,
        }
        .unwrap_or_default()
    })
}

/// The `@odata.context` of the collection that `operation` lists: the service root, the first
/// segment of the operation's path (the API's version), and the entity set.
fn collection_context(app: &App, operation: Operation) -> String {
    let version = operation.path().split('/').nth(1).unwrap_or_default();
    format!("{}/{version}/$metadata#Referrals", app.base)
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

/// `GET /v1.0/engagements/referrals/{id}`
pub async fn get(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, ApiError> {
    app.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    let items = value
        .iter()
        .map(|referral| serde_json::value::to_raw_value(referral.as_ref()).map_err(internal))
        .collect::<Result<Vec<_>, _>>()?;
    let head = ReferralList {
        odata_context: Some(collection_context(&app, Operation::ListReferralsLegacy)),
        ..ReferralList::default()
    };
    Ok(json_response(StatusCode::OK, &Envelope::new(head, items)))
}
