//! What a request carries that the document names, for the pipeline, the retry loop and the
//! reading of answers alike: the header names of the document as `HeaderName`, a header's text,
//! and URLs as messages show them.

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName};

use crate::{headers, parameters};

/// A header name of the document, as `HeaderName` (which writes names in lower case).
fn header_name(name: &'static str) -> HeaderName {
    HeaderName::from_bytes(name.as_bytes()).expect("the document's header names are valid")
}

/// The header that names one logical call; kept across its retries (`MS-RequestId`).
pub(crate) fn ms_request_id() -> HeaderName {
    header_name(parameters::list_referrals::MS_REQUEST_ID)
}

/// The header that names a session or job of many calls (`MS-CorrelationId`).
pub(crate) fn ms_correlation_id() -> HeaderName {
    header_name(parameters::list_referrals::MS_CORRELATION_ID)
}

/// The header in which the service names its handling of a request (`Request-ID`).
pub(crate) fn request_id() -> HeaderName {
    header_name(headers::REQUEST_ID)
}

/// Whether two URLs have the same scheme, host and port.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A URL without its query string and fragment, for messages: filter values may be personal
/// data, and a message goes to logs.
pub(crate) fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// The value of the header `name`, when it is text.
pub(crate) fn header(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}
