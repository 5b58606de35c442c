//! OData query parameters and path segments on the wire.

/// Characters left as they are in a query name or value: unreserved characters and the
/// delimiters that OData expressions use and that mean nothing special inside a query
/// component. Everything else is percent-encoded: a space as `%20`, `+` as `%2B`, `&`, `=`,
/// `#`, `%` and every non-ASCII byte too.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b',')
    .remove(b'/')
    .remove(b':')
    .remove(b'@')
    .remove(b'!')
    .remove(b'*');

/// A query string of `pairs` as OData services read it: `$filter=status%20eq%20'New'`, never
/// `+` for a space (which form encoding writes, and which a service may read as a plus).
///
/// ```
/// let query = referrals_odata::wire::encode_query([("$filter", "name eq 'A+B & C'")]);
/// assert_eq!(query, "$filter=name%20eq%20'A%2BB%20%26%20C'");
/// ```
pub fn encode_query<N: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (N, V)>,
) -> String {
    pairs
        .into_iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(name.as_ref(), QUERY_VALUE),
                percent_encoding::utf8_percent_encode(value.as_ref(), QUERY_VALUE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A path segment, percent-encoded: every character but the unreserved ones.
///
/// ```
/// assert_eq!(referrals_odata::wire::encode_segment("a b/c%"), "a%20b%2Fc%25");
/// ```
pub fn encode_segment(value: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(value, SEGMENT).to_string()
}
