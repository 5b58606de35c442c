//! The document as progenitor is shown it.
//!
//! The document says what the service does; a few true things cannot be expressed in the
//! generated client. Each adjustment made here is listed in the header of the generated file,
//! so that a reviewer sees it.

use openapiv3::{OpenAPI, ReferenceOr, Response, StatusCode};

/// A success answer without a body, left out of an operation's generated success type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The operation's `operationId`.
    pub operation_id: String,
    /// Its method, upper case.
    pub method: String,
    /// Its path.
    pub path: String,
    /// The status left out.
    pub status: String,
}

impl Dropped {
    /// The line that the header of the generated file gives it.
    pub fn note(&self) -> String {
        format!(
            "{} ({} {}): the {} answer, which has no body, is left out of the generated success \
             type (progenitor allows one per operation).",
            self.operation_id, self.method, self.path, self.status
        )
    }
}

/// The document to hand to progenitor, and each adjustment made to it.
pub fn progenitor_view(openapi: &OpenAPI) -> (OpenAPI, Vec<Dropped>) {
    let mut view = openapi.clone();
    let mut notes = Vec::new();
    let components = openapi.components.clone();

    for (path, item) in view.paths.paths.iter_mut() {
        let ReferenceOr::Item(item) = item else {
            continue;
        };
        for (method, operation) in operations_mut(item) {
            let has_body = |response: &ReferenceOr<Response>| {
                resolve(response, components.as_ref())
                    .is_some_and(|response| !response.content.is_empty())
            };
            let successes: Vec<_> = operation
                .responses
                .responses
                .iter()
                .filter(|(status, _)| is_success(status))
                .map(|(status, response)| (status.clone(), has_body(response)))
                .collect();

            // Progenitor gives an operation one success type and panics when its success
            // answers differ (a body for one status, none for another). The bodiless ones are
            // left out; the client meets them as `Error::UnexpectedResponse` with a 2xx status.
            if successes.iter().any(|(_, body)| *body) {
                for (status, _) in successes.iter().filter(|(_, body)| !*body) {
                    operation.responses.responses.shift_remove(status);
                    let id = operation
                        .operation_id
                        .as_deref()
                        .unwrap_or("(no operationId)");
                    notes.push(Dropped {
                        operation_id: id.to_owned(),
                        method: method.to_uppercase(),
                        path: path.clone(),
                        status: status.to_string(),
                    });
                }
            }
        }
    }
    (view, notes)
}

/// Every operation of a path item with its method, as `PathItem::iter` gives them, but mutable.
fn operations_mut(
    item: &mut openapiv3::PathItem,
) -> impl Iterator<Item = (&'static str, &mut openapiv3::Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("options", item.options.as_mut()),
        ("head", item.head.as_mut()),
        ("patch", item.patch.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation?)))
}

fn is_success(status: &StatusCode) -> bool {
    match status {
        StatusCode::Code(code) => (200..300).contains(code),
        StatusCode::Range(range) => *range == 2,
    }
}

fn resolve<'a>(
    response: &'a ReferenceOr<Response>,
    components: Option<&'a openapiv3::Components>,
) -> Option<&'a Response> {
    match response {
        ReferenceOr::Item(response) => Some(response),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/responses/")?;
            match components?.responses.get(name)? {
                ReferenceOr::Item(response) => Some(response),
                ReferenceOr::Reference { .. } => None,
            }
        }
    }
}
