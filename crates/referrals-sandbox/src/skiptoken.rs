//! The `$skiptoken` of the sandbox: what it holds, written as opaque text, and the next link
//! that carries it.

use referrals_model::Operation;
use referrals_model::parameters::list_referrals as list_params;

use crate::Paging;
use crate::error::ApiError;
use crate::filter::Order;
use referrals_model::facts::Value;

/// What makes two requests the same listing; a `$skiptoken` works only with its own.
pub(crate) fn query_fingerprint(filter: Option<&str>, order: Option<&str>) -> String {
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
pub(crate) struct SkipToken {
    pub(crate) version: u64,
    pub(crate) key: Vec<Value>,
    pub(crate) offset: usize,
    pub(crate) remaining: Option<u64>,
    pub(crate) total: Option<u64>,
    pub(crate) query: String,
}

impl SkipToken {
    /// The token as the text of `$skiptoken`: its JSON, in hexadecimal.
    pub(crate) fn encode(&self) -> String {
        let key: Vec<serde_json::Value> = self
            .key
            .iter()
            .map(|value| value.scalar().to_json())
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

    /// The token of `text`, which must be one that [`Self::encode`] made for `query`.
    pub(crate) fn decode(
        text: &str,
        order: &Order,
        query: &str,
        paging: Paging,
    ) -> Result<Self, ApiError> {
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

/// The `@odata.nextLink` of a page: the request's parameters, less `$skip`, with `token`.
pub(crate) fn next_link(base: &str, params: &[(String, String)], token: &str) -> String {
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
