//! The listing's answers as the service sent them, not decoded: for a program that checks what
//! the service sends against the document (`referrals drift`), where a decoded page would have
//! hidden a member of the wrong type behind an error, or an undocumented header.

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};

use crate::error::{Error, ErrorKind};
use crate::query::Query;
use crate::{Client, Continuation, Operation};

const LIST: Operation = Operation::ListReferrals;

/// One answer of the listing, as it came (after the client's retries).
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// Its HTTP status.
    pub status: u16,
    /// Its headers, names in lower case, in the order they came.
    pub headers: Vec<(String, String)>,
    /// Its body (capped as every answer is, by the client's `max_response_body`).
    pub body: Vec<u8>,
}

impl Client {
    /// The answer to the listing's request with `query` (`from`: a page after the first), as
    /// the service sent it. The request goes through the client's pipeline (destination check,
    /// token, request ids, retries); only the answer is left undecoded.
    pub async fn list_raw(
        &self,
        query: &Query,
        from: Option<&Continuation>,
    ) -> Result<RawAnswer, Error> {
        let parameters = match from {
            Some(continuation) => continuation.parameters().to_vec(),
            None => query.parameters(),
        };
        let url = format!("{}{}", self.baseurl(), LIST.path());
        let mut request = self
            .client()
            .get(url)
            .query(&parameters)
            .build()
            .map_err(|error| {
                Error::new(ErrorKind::InvalidRequest, Some(LIST), error.to_string())
            })?;
        let info = OperationInfo {
            operation_id: LIST.name(),
        };
        ClientHooks::<crate::Runtime>::pre::<()>(self, &mut request, &info)
            .await
            .map_err(|error| Error::new(ErrorKind::Refused, Some(LIST), error.to_string()))?;
        let response = ClientHooks::<crate::Runtime>::exec(self, request, &info)
            .await
            .map_err(|error| Error::new(ErrorKind::Transport, Some(LIST), error.to_string()))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|error| Error::new(ErrorKind::Transport, Some(LIST), error.to_string()))?
            .to_vec();
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }

    /// Where the listing goes on after a raw answer to `query` (`from`: the page it answered)
    /// whose `@odata.nextLink` is `link`: checked as every next link is (the service root, the
    /// same listing), or an error that says why it cannot be followed.
    pub fn follow(
        &self,
        query: &Query,
        from: Option<&Continuation>,
        link: &str,
    ) -> Result<Continuation, Error> {
        let current = match from {
            Some(continuation) => continuation.parameters().to_vec(),
            None => query.parameters(),
        };
        self.continuation(&current, link)
            .map_err(|(kind, message)| Error::new(kind, Some(LIST), message))
    }
}
