//! The document's objects, routes and headers: the schemas' facts (required, read-only,
//! the Microsoft-only members), the security scheme, the headers of requests and answers,
//! and the operations with their parameters.

use super::*;

impl<'a> Reader<'a> {
    pub(super) fn objects(&self) -> Result<Vec<ObjectFacts>, Error> {
        // From openapiv3's model, whose maps keep the document's order.
        let Some(components) = &self.document.openapi.components else {
            return Ok(Vec::new());
        };
        let mut objects = Vec::new();
        for (name, schema) in &components.schemas {
            let Some(schema) = schema.as_item() else {
                continue;
            };
            let SchemaKind::Type(Type::Object(object)) = &schema.schema_kind else {
                continue;
            };
            objects.push(ObjectFacts {
                name: name.clone(),
                required: object.required.clone(),
                read_only: object
                    .properties
                    .iter()
                    .filter(|(_, property)| {
                        property
                            .as_item()
                            .is_some_and(|property| property.schema_data.read_only)
                    })
                    .map(|(member, _)| member.clone())
                    .collect(),
                microsoft: self.microsoft(
                    name,
                    object,
                    schema.schema_data.extensions.get(MICROSOFT),
                )?,
            });
        }
        Ok(objects)
    }

    /// `x-microsoft` of the object schema `name`: a mapping of its members to text.
    pub(super) fn microsoft(
        &self,
        name: &str,
        object: &openapiv3::ObjectType,
        value: Option<&Value>,
    ) -> Result<Vec<(String, String)>, Error> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let fail = |message: String| self.error(name, Some(MICROSOFT), &[], message);
        let Some(members) = value.as_object().filter(|members| !members.is_empty()) else {
            return Err(fail("must map members of the schema to their text".into()));
        };
        let order = ordered_keys(self.document, name, MICROSOFT);
        let mut pairs = Vec::new();
        for member in order.iter().filter(|key| members.contains_key(*key)) {
            let Some(text) = members[member].as_str() else {
                return Err(fail(format!("the value of `{member}` must be text")));
            };
            if !object.properties.contains_key(member) {
                return Err(fail(format!("`{member}` is not a member of `{name}`")));
            }
            pairs.push((member.clone(), text.to_owned()));
        }
        Ok(pairs)
    }

    /// The security schemes of `apiKey` in a header, in the document's order.
    pub(super) fn header_keys(&self) -> Vec<(String, String)> {
        let Some(components) = &self.document.openapi.components else {
            return Vec::new();
        };
        components
            .security_schemes
            .iter()
            .filter_map(|(name, scheme)| match scheme.as_item()? {
                openapiv3::SecurityScheme::APIKey {
                    location: openapiv3::APIKeyLocation::Header,
                    name: header,
                    ..
                } => Some((name.clone(), header.clone())),
                _ => None,
            })
            .collect()
    }

    /// The scopes of every OAuth 2 flow and the `x-roles` of every security scheme.
    pub(super) fn security(&self) -> Result<(Vec<String>, Vec<String>), Error> {
        let (mut scopes, mut roles) = (Vec::new(), Vec::new());
        let Some(components) = &self.document.openapi.components else {
            return Ok((scopes, roles));
        };
        for (name, scheme) in &components.security_schemes {
            let Some(scheme) = scheme.as_item() else {
                continue;
            };
            let (extensions, flows) = match scheme {
                openapiv3::SecurityScheme::OAuth2 {
                    flows, extensions, ..
                } => (extensions, Some(flows)),
                openapiv3::SecurityScheme::APIKey { extensions, .. }
                | openapiv3::SecurityScheme::HTTP { extensions, .. }
                | openapiv3::SecurityScheme::OpenIDConnect { extensions, .. } => (extensions, None),
            };
            if let Some(flows) = flows {
                let all = [
                    flows.implicit.as_ref().map(|flow| &flow.scopes),
                    flows.password.as_ref().map(|flow| &flow.scopes),
                    flows.client_credentials.as_ref().map(|flow| &flow.scopes),
                    flows.authorization_code.as_ref().map(|flow| &flow.scopes),
                ];
                for scope in all.into_iter().flatten().flat_map(|scopes| scopes.keys()) {
                    if !scopes.contains(scope) {
                        scopes.push(scope.clone());
                    }
                }
            }
            if let Some(listed) = extensions.get(ROLES) {
                let listed = strings(Some(listed)).ok_or_else(|| Error::Extension {
                    path: self.document.path.clone(),
                    line: locate(
                        &self.document.text,
                        &[
                            Key::Map("components".into()),
                            Key::Map("securitySchemes".into()),
                            Key::Map(name.clone()),
                            Key::Map(ROLES.into()),
                        ],
                    )
                    .map(|(line, _)| line),
                    schema: name.clone(),
                    entry: format!("`{ROLES}`"),
                    message: "must be a non-empty list of role names".into(),
                })?;
                roles.extend(listed);
            }
        }
        Ok((scopes, roles))
    }

    /// The header names of every answer of every operation (and of the shared answers).
    pub(super) fn response_headers(&self) -> Vec<String> {
        let openapi = &self.document.openapi;
        let shared = openapi
            .components
            .iter()
            .flat_map(|components| components.responses.values())
            .filter_map(ReferenceOr::as_item);
        let own = openapi
            .paths
            .iter()
            .filter_map(|(_, item)| item.as_item())
            .flat_map(|item| item.iter().map(|(_, operation)| operation))
            .flat_map(|operation| operation.responses.responses.values())
            .filter_map(ReferenceOr::as_item);
        let mut names: Vec<String> = Vec::new();
        for response in shared.chain(own) {
            for name in response.headers.keys() {
                if !names.iter().any(|known| known.eq_ignore_ascii_case(name)) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// Every operation of `paths`, each followed by the operations of its callbacks.
    pub(super) fn operations(&self) -> Vec<Operation> {
        let mut found = Vec::new();
        for (path, item) in self.document.openapi.paths.iter() {
            let Some(item) = item.as_item() else { continue };
            found.extend(self.operations_of(path, item));
            for (_, operation) in item.iter() {
                for callback in operation.callbacks.values() {
                    for (expression, item) in callback {
                        found.extend(self.operations_of(expression, item));
                    }
                }
            }
        }
        found
    }

    /// The operations of the path item `item` at `path`.
    pub(super) fn operations_of(&self, path: &str, item: &openapiv3::PathItem) -> Vec<Operation> {
        let mut found = Vec::new();
        for (method, operation) in item.iter() {
            let Some(id) = &operation.operation_id else {
                continue;
            };
            let resolved: Vec<Parameter> = item
                .parameters
                .iter()
                .chain(&operation.parameters)
                .filter_map(|parameter| self.parameter(parameter))
                .collect();
            let parameter_values = resolved.iter().filter_map(enum_values).collect();
            let parameter_extensions = resolved.iter().flat_map(text_extensions).collect();
            let parameters = resolved
                .into_iter()
                .map(|parameter| {
                    let location = match &parameter {
                        Parameter::Query { .. } => "query",
                        Parameter::Header { .. } => "header",
                        Parameter::Path { .. } => "path",
                        Parameter::Cookie { .. } => "cookie",
                    };
                    (parameter.parameter_data().name, location.to_owned())
                })
                .collect();
            found.push(Operation {
                id: id.clone(),
                method: method.to_uppercase(),
                path: path.to_owned(),
                deprecated: operation.deprecated,
                parameters,
                body: body_schema(operation),
                responses: self.responses(operation),
                parameter_values,
                parameter_extensions,
            });
        }
        found
    }

    /// The answers of `operation`: each status and the headers it declares, references to
    /// `components/responses` resolved.
    pub(super) fn responses(&self, operation: &openapiv3::Operation) -> Vec<(String, Vec<String>)> {
        let components = self.document.openapi.components.as_ref();
        let resolve = |response: &ReferenceOr<openapiv3::Response>| match response {
            ReferenceOr::Item(response) => Some(response.clone()),
            ReferenceOr::Reference { reference } => {
                let name = reference.strip_prefix("#/components/responses/")?;
                components?.responses.get(name)?.as_item().cloned()
            }
        };
        let headers = |response: Option<openapiv3::Response>| -> Vec<String> {
            response
                .map(|response| response.headers.keys().cloned().collect())
                .unwrap_or_default()
        };
        let mut found: Vec<(String, Vec<String>)> = operation
            .responses
            .responses
            .iter()
            .map(|(status, response)| (status.to_string(), headers(resolve(response))))
            .collect();
        if let Some(default) = &operation.responses.default {
            found.push(("default".to_owned(), headers(resolve(default))));
        }
        found
    }

    /// A parameter, its reference resolved.
    pub(super) fn parameter(&self, parameter: &ReferenceOr<Parameter>) -> Option<Parameter> {
        match parameter {
            ReferenceOr::Item(parameter) => Some(parameter.clone()),
            ReferenceOr::Reference { reference } => {
                let name = reference.strip_prefix("#/components/parameters/")?;
                self.document
                    .openapi
                    .components
                    .as_ref()?
                    .parameters
                    .get(name)?
                    .as_item()
                    .cloned()
            }
        }
    }
}

/// The vendor extensions of `parameter` that hold text (`false`) or a list of text (`true`).
fn text_extensions(parameter: &Parameter) -> Vec<(String, String, Vec<String>, bool)> {
    let data = parameter.parameter_data_ref();
    data.extensions
        .iter()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix("x-")?.to_owned();
            match value {
                Value::String(text) => Some((data.name.clone(), name, vec![text.clone()], false)),
                Value::Array(_) => {
                    let list = strings(Some(value))?;
                    Some((data.name.clone(), name, list, true))
                }
                _ => None,
            }
        })
        .collect()
}

/// The name of `parameter` and the values of its schema's `enum`, when it has one.
fn enum_values(parameter: &Parameter) -> Option<(String, Vec<String>)> {
    let data = parameter.parameter_data_ref();
    let openapiv3::ParameterSchemaOrContent::Schema(ReferenceOr::Item(schema)) = &data.format
    else {
        return None;
    };
    let SchemaKind::Type(Type::String(string)) = &schema.schema_kind else {
        return None;
    };
    let values: Vec<String> = string.enumeration.iter().flatten().cloned().collect();
    (!values.is_empty()).then(|| (data.name.clone(), values))
}

/// The component schema that the request body of `operation` refers to.
fn body_schema(operation: &openapiv3::Operation) -> Option<String> {
    let body = operation.request_body.as_ref()?.as_item()?;
    let (_, media) = body.content.first()?;
    match media.schema.as_ref()? {
        ReferenceOr::Reference { reference } => reference
            .strip_prefix("#/components/schemas/")
            .map(str::to_owned),
        ReferenceOr::Item(_) => None,
    }
}
