//! Changes to valid payloads: the additions a newer service makes, and the damage a broken one
//! does.

use proptest::prelude::*;

use crate::generate::{any_json, unknown_name};
use crate::json::{Json, Step, path_text};
use crate::model::{Model, Shape};
use crate::walk::{fits, walk};

/// What a newer service may send: members the document does not name, and values that it does
/// not list.
#[derive(Debug, Clone)]
pub enum Addition {
    /// A new member in the object at `path`.
    Member {
        /// The object.
        path: Vec<Step>,
        /// The member's name and value.
        name: String,
        /// The value.
        value: Json,
    },
    /// A value of an open value set, replaced by one it does not list.
    Value {
        /// Where the value is.
        path: Vec<Step>,
        /// The new value.
        value: String,
    },
}

/// Where a payload may grow: every object of the schema (whether the document left it open or
/// not: the service may add members anywhere) and every value of an open set; with
/// `closed_too`, also the values of closed sets, which must then fail validation.
fn growth_sites(
    model: &Model,
    shape: &Shape,
    json: &Json,
    closed_too: bool,
) -> Vec<(Vec<Step>, Option<Vec<String>>)> {
    let mut sites = Vec::new();
    walk(model, shape, json, &mut |node| match node.shape {
        Some(Shape::Object { .. }) => sites.push((node.path.to_vec(), None)),
        Some(Shape::OpenEnum(known)) => sites.push((node.path.to_vec(), Some(known.clone()))),
        Some(Shape::String {
            values: Some(known),
            ..
        }) if closed_too => {
            sites.push((node.path.to_vec(), Some(known.clone())));
        }
        _ => {}
    });
    sites
}

/// `base` with one to four additions, chosen among its growth sites. `from_service` says
/// whether the schema describes something that the service sends: there, a closed value set
/// is a defect (a new value would fail the whole payload), so its values are replaced too.
pub fn forward(
    model: &Model,
    shape: &Shape,
    base: Json,
    from_service: bool,
) -> BoxedStrategy<(Json, Vec<Addition>)> {
    let sites = growth_sites(model, shape, &base, from_service);
    if sites.is_empty() {
        return Just((base, Vec::new())).boxed();
    }
    let count = sites.len();
    let addition = (0..count, unknown_name(), any_json(2), "[A-Z][a-zA-Z]{2,12}");
    prop::collection::vec(addition, 1..=4)
        .prop_flat_map(move |choices| {
            let mut payload = base.clone();
            let mut additions = Vec::new();
            for (site, name, value, text) in choices {
                let (path, known) = &sites[site];
                let Some(target) = payload.at_mut(path) else {
                    continue;
                };
                match (known, target) {
                    (None, Json::Object(members))
                        if members.iter().all(|(existing, _)| *existing != name) =>
                    {
                        members.push((name.clone(), value.clone()));
                        additions.push(Addition::Member {
                            path: path.clone(),
                            name,
                            value,
                        });
                    }
                    (Some(known), target @ Json::String(_)) => {
                        let value = if known.contains(&text) {
                            format!("{text}Later")
                        } else {
                            text
                        };
                        *target = Json::String(value.clone());
                        additions.push(Addition::Value {
                            path: path.clone(),
                            value,
                        });
                    }
                    _ => {}
                }
            }
            Just((payload, additions))
        })
        .boxed()
}

/// A way to break a valid payload.
#[derive(Debug, Clone)]
pub enum Damage {
    /// A value of the wrong JSON type at `path`.
    WrongType {
        /// Where.
        path: Vec<Step>,
        /// What was put there.
        value: Json,
    },
    /// The text cut after `length` bytes.
    Truncated {
        /// The bytes kept.
        length: usize,
    },
}

impl Damage {
    /// Where the decoder must report the damage: the path of the wrong value, or for a cut text
    /// any path (it stops where the text ends).
    pub fn path(&self) -> Option<String> {
        match self {
            Damage::WrongType { path, .. } => Some(path_text(path)),
            Damage::Truncated { .. } => None,
        }
    }
}

/// `base`, damaged once, as text.
pub fn malformed(model: &Model, shape: &Shape, base: Json) -> BoxedStrategy<(String, Damage)> {
    let mut sites: Vec<(Vec<Step>, Vec<Json>)> = Vec::new();
    walk(model, shape, &base, &mut |node| {
        if node.value == &Json::Null || matches!(node.declared, Shape::Any) {
            return;
        }
        let wrong: Vec<Json> = [
            Json::Number("7".into()),
            Json::String("unexpected".into()),
            Json::Bool(true),
            Json::Array(Vec::new()),
            Json::Object(Vec::new()),
        ]
        .into_iter()
        .filter(|candidate| !fits(model, node.declared, candidate))
        .collect();
        if !wrong.is_empty() {
            sites.push((node.path.to_vec(), wrong));
        }
    });
    let text = base.to_text();
    let can_truncate = matches!(base, Json::Object(_) | Json::Array(_)) && text.len() > 1;

    let wrong_type = if sites.is_empty() {
        None
    } else {
        let sites = sites.clone();
        let base = base.clone();
        Some(
            (0..sites.len(), any::<prop::sample::Index>())
                .prop_map(move |(site, pick)| {
                    let (path, wrong) = &sites[site];
                    let value = pick.get(wrong).clone();
                    let mut payload = base.clone();
                    *payload.at_mut(path).expect("a walked path exists") = value.clone();
                    (
                        payload.to_text(),
                        Damage::WrongType {
                            path: path.clone(),
                            value,
                        },
                    )
                })
                .boxed(),
        )
    };
    let truncated = can_truncate.then(|| {
        let text = text.clone();
        (1..text.len())
            .prop_filter_map("a cut inside a character", move |length| {
                text.is_char_boundary(length)
                    .then(|| (text[..length].to_owned(), Damage::Truncated { length }))
            })
            .boxed()
    });
    match (wrong_type, truncated) {
        (Some(wrong), Some(cut)) => prop_oneof![3 => wrong, 1 => cut].boxed(),
        (Some(wrong), None) => wrong,
        (None, Some(cut)) => cut,
        (None, None) => Just((String::new(), Damage::Truncated { length: 0 })).boxed(),
    }
}
