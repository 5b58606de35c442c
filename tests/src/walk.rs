//! Walking a payload together with its schema.

use crate::json::{Json, Step};
use crate::model::{Model, Shape};

/// A place in a payload, with the schema that describes it.
pub struct Node<'a> {
    /// Where, from the root of the payload.
    pub path: &'a [Step],
    /// The value there.
    pub value: &'a Json,
    /// Its shape, with references, `nullable` and the matching branch of `oneOf`/`anyOf`
    /// followed. `None` for a `null` that the schema allows.
    pub shape: Option<&'a Shape>,
    /// The shape as the schema writes it at this place, before any of that is followed.
    pub declared: &'a Shape,
    /// The component schema of the innermost reference on the way here.
    pub component: Option<&'a str>,
}

/// Calls `visit` for every value of `json`, outermost first, with the shape that describes it.
/// Members that the schema does not declare are walked with the shape of `additionalProperties`.
pub fn walk<'a>(
    model: &'a Model,
    shape: &'a Shape,
    json: &'a Json,
    visit: &mut dyn FnMut(&Node<'_>),
) {
    walk_at(model, shape, json, None, &mut Vec::new(), visit);
}

fn walk_at<'a>(
    model: &'a Model,
    declared: &'a Shape,
    json: &'a Json,
    component: Option<&'a str>,
    path: &mut Vec<Step>,
    visit: &mut dyn FnMut(&Node<'_>),
) {
    let (mut shape, mut component) = resolve(model, declared, component);
    if let Shape::Nullable(inner) = shape {
        if *json == Json::Null {
            visit(&Node {
                path,
                value: json,
                shape: None,
                declared,
                component,
            });
            return;
        }
        (shape, component) = resolve(model, inner, component);
    }
    if let Shape::OneOf(branches) | Shape::AnyOf(branches) = shape
        && let Some(branch) = branches.iter().find(|branch| fits(model, branch, json))
    {
        (shape, component) = resolve(model, branch, component);
    }
    visit(&Node {
        path,
        value: json,
        shape: Some(shape),
        declared,
        component,
    });
    match (shape, json) {
        (
            Shape::Object {
                properties,
                additional,
                ..
            },
            Json::Object(members),
        ) => {
            for (key, value) in members {
                let member_shape = properties
                    .iter()
                    .find(|(name, _)| name == key)
                    .map(|(_, shape)| shape)
                    .or(additional.as_deref());
                if let Some(member_shape) = member_shape {
                    path.push(Step::Key(key.clone()));
                    walk_at(model, member_shape, value, component, path, visit);
                    path.pop();
                }
            }
        }
        (Shape::Array(items), Json::Array(values)) => {
            for (index, value) in values.iter().enumerate() {
                path.push(Step::Index(index));
                walk_at(model, items, value, component, path, visit);
                path.pop();
            }
        }
        _ => {}
    }
}

fn resolve<'a>(
    model: &'a Model,
    mut shape: &'a Shape,
    mut component: Option<&'a str>,
) -> (&'a Shape, Option<&'a str>) {
    while let Shape::Ref(name) = shape {
        component = Some(name.as_str());
        shape = model
            .components
            .get(name)
            .unwrap_or_else(|| panic!("no component `{name}`"));
    }
    (shape, component)
}

/// Whether `json` has the JSON type that `shape` expects (not a full validation).
pub fn fits(model: &Model, shape: &Shape, json: &Json) -> bool {
    match (model.resolve(shape), json) {
        (Shape::Nullable(_), Json::Null) => true,
        (Shape::Nullable(inner), json) => fits(model, inner, json),
        (Shape::Any, _) => true,
        (Shape::Object { .. }, Json::Object(_)) => true,
        (Shape::Array(_), Json::Array(_)) => true,
        (
            Shape::String {
                values: Some(values),
                ..
            },
            Json::String(value),
        ) => values.contains(value),
        (Shape::String { values: None, .. } | Shape::OpenEnum(_), Json::String(_)) => true,
        (Shape::Number { .. }, Json::Number(_)) => true,
        (Shape::Integer { .. }, Json::Number(text)) => text.parse::<i64>().is_ok(),
        (Shape::Boolean, Json::Bool(_)) => true,
        (Shape::OneOf(branches) | Shape::AnyOf(branches), json) => {
            branches.iter().any(|branch| fits(model, branch, json))
        }
        _ => false,
    }
}
