//! Support of the contract tests, which prove on every run that the document, its examples and
//! the generated types agree.
//!
//! - [`spec`]: the document as JSON, and where each example is attached;
//! - `referrals_document`: its schemas as JSON Schema, to validate payloads;
//! - [`model`] and [`walk`]: its schemas as shapes, to walk a payload with its schema;
//! - [`json`]: JSON that keeps numbers as text;
//! - [`codec`]: the generated type of each schema, found by name, and round trips through it;
//! - [`equivalence`]: the rules under which a round trip counts as unchanged;
//! - [`generate`] and [`mutate`]: payloads made from any schema, grown and damaged;
//! - [`yaml`]: the snapshots' text.

pub mod codec;
pub mod equivalence;
pub mod generate;
pub mod json;
pub mod members;
pub mod model;
pub mod mutate;
pub mod spec;
pub mod walk;
pub mod yaml;

use crate::json::{Json, path_text};
use crate::model::{Model, Shape};
use crate::spec::Spec;
use referrals_document::Validators;

/// The document, read once, with its validators and shapes.
pub struct Contract {
    /// The document.
    pub spec: Spec,
    /// Its schemas as shapes.
    pub model: Model,
    /// Its schemas as JSON Schema validators.
    pub validators: Validators,
}

impl Contract {
    /// Reads this workspace's document.
    pub fn load() -> Self {
        Self::new(Spec::load())
    }

    /// Prepares the checks of `spec`.
    pub fn new(spec: Spec) -> Self {
        let model = Model::new(&spec);
        let validators = Validators::new(&spec.doc);
        Self {
            spec,
            model,
            validators,
        }
    }

    /// The JSON Schema violations of `payload` against the component schema `component`, one
    /// line each: `at /value/0/status: ...`.
    pub fn violations(&self, component: &str, payload: &Json) -> Vec<String> {
        self.validators
            .check_component(component, &payload.to_value())
            .into_iter()
            .map(|violation| {
                let at = if violation.pointer.is_empty() {
                    "/"
                } else {
                    &violation.pointer
                };
                format!("at {at}: {}", violation.message)
            })
            .collect()
    }

    /// The component schemas that the service sends: those of responses, and every schema they
    /// refer to.
    pub fn response_components(&self) -> std::collections::BTreeSet<String> {
        let mut roots = Vec::new();
        for operation in self.spec.operations() {
            let Some(responses) = operation
                .value
                .get("responses")
                .and_then(serde_json::Value::as_object)
            else {
                continue;
            };
            for response in responses.values() {
                let response = self.spec.resolve(response);
                for media in response
                    .get("content")
                    .and_then(serde_json::Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if let Some(schema) = media.1.get("schema") {
                        roots.push(model::shape_of(schema));
                    }
                }
            }
        }
        let mut found = std::collections::BTreeSet::new();
        while let Some(shape) = roots.pop() {
            match shape {
                Shape::Ref(name) if found.insert(name.clone()) => {
                    roots.push(self.model.components[&name].clone());
                }
                Shape::Nullable(inner) | Shape::Array(inner) => roots.push(*inner),
                Shape::Object {
                    properties,
                    additional,
                    ..
                } => {
                    roots.extend(properties.into_iter().map(|(_, shape)| shape));
                    roots.extend(additional.map(|shape| *shape));
                }
                Shape::OneOf(branches) | Shape::AnyOf(branches) => roots.extend(branches),
                _ => {}
            }
        }
        found
    }

    /// The members of `payload` that its schema does not declare, one line each: only the
    /// catch-all map of the generated type would hold them.
    pub fn undeclared_members(&self, component: &str, payload: &Json) -> Vec<String> {
        let mut found = Vec::new();
        let root = Shape::Ref(component.to_owned());
        walk::walk(&self.model, &root, payload, &mut |node| {
            let (Some(Shape::Object { properties, .. }), Json::Object(members)) =
                (node.shape, node.value)
            else {
                return;
            };
            for (key, _) in members {
                if !properties.iter().any(|(name, _)| name == key) {
                    let mut path = node.path.to_vec();
                    path.push(json::Step::Key(key.clone()));
                    found.push(format!(
                        "{} is not a declared property of {}",
                        path_text(&path),
                        node.component.unwrap_or(component)
                    ));
                }
            }
        });
        found
    }
}
