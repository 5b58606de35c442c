//! Reading the document: YAML syntax first (for a line and column), then the OpenAPI shape
//! (for a path into the document).

use std::path::{Path, PathBuf};

use openapiv3::OpenAPI;

use crate::Error;

/// An OpenAPI document read from a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it was read from.
    pub path: PathBuf,
    /// The parsed document.
    pub openapi: OpenAPI,
    /// Its text, to find the line of a part of it in errors.
    pub text: String,
}

impl Document {
    /// Reads and parses the document at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text`; `path` is only used to name the document in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        // A syntax error is reported with the YAML parser's position. Parsing into a plain value
        // first keeps such errors apart from those of the OpenAPI shape below.
        if let Err(error) = serde_norway::from_str::<serde_norway::Value>(text) {
            let (line, column) = error
                .location()
                .map_or((0, 0), |at| (at.line(), at.column()));
            return Err(Error::Yaml {
                path: path.to_owned(),
                line,
                column,
                message: strip_location(&error.to_string()),
            });
        }

        let deserializer = serde_norway::Deserializer::from_str(text);
        let openapi: OpenAPI = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let keys = keys(error.path());
            let inner = error.into_inner();
            let location = inner.location().map(|at| (at.line(), at.column()));
            shape_error(
                path,
                text,
                keys,
                location,
                strip_location(&inner.to_string()),
            )
        })?;

        Ok(Self {
            path: path.to_owned(),
            openapi,
            text: text.to_owned(),
        })
    }
}

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Key {
    Map(String),
    Seq(usize),
}

fn keys(path: &serde_path_to_error::Path) -> Vec<Key> {
    path.iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(Key::Map(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Key::Seq(*index)),
            serde_path_to_error::Segment::Enum { variant } => Some(Key::Map(variant.clone())),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}

/// An error about the document's shape, made as precise as possible.
///
/// openapiv3 reads path items, responses and schemas through `#[serde(flatten)]`, behind which
/// serde keeps neither the path nor the position. So when the error stops at `paths`, each path
/// item is read again on its own to find the one at fault and the path inside it, and the line
/// is found by following the keys through the YAML text.
fn shape_error(
    path: &Path,
    text: &str,
    mut keys: Vec<Key>,
    mut location: Option<(usize, usize)>,
    mut message: String,
) -> Error {
    if keys == [Key::Map("paths".into())]
        && let Some((deeper, deeper_message)) = refine_paths(text)
    {
        keys = deeper;
        message = deeper_message;
    }
    if let Some(found) = locate(text, &keys) {
        location = Some(found);
    }
    let at = keys
        .iter()
        .map(|key| match key {
            Key::Map(key) => key.clone(),
            Key::Seq(index) => index.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".");
    Error::Shape {
        path: path.to_owned(),
        at,
        line: location.map(|(line, _)| line),
        column: location.map(|(_, column)| column),
        message,
    }
}

fn refine_paths(text: &str) -> Option<(Vec<Key>, String)> {
    let document: serde_norway::Value = serde_norway::from_str(text).ok()?;
    let paths = document.get("paths")?.as_mapping()?;
    for (name, item) in paths {
        let name = name.as_str()?.to_owned();
        if item.get("$ref").is_some() {
            continue;
        }
        // `ReferenceOr` is an untagged enum, which also hides the path: read the item itself.
        let result: Result<openapiv3::PathItem, _> = serde_path_to_error::deserialize(item.clone());
        if let Err(error) = result {
            let mut found = vec![Key::Map("paths".into()), Key::Map(name)];
            found.extend(keys(error.path()));
            return Some((found, strip_location(&error.into_inner().to_string())));
        }
    }
    None
}

/// The 1-based line and column of the deepest of `keys` that can be found by following block
/// mappings and sequences through the text (flow style such as `{a: 1}` is not followed).
pub(crate) fn locate(text: &str, keys: &[Key]) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut from = 0;
    let mut parent: Option<usize> = None;
    let mut found = None;
    for key in keys {
        let mut hit = None;
        let mut count = 0;
        for (number, line) in lines.iter().enumerate().skip(from) {
            let content = line.trim_start();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let column = indent(line);
            // Leaving the parent's block ends the search (the line `from` itself may be the
            // parent's own `- ` line, when the parent is a sequence item).
            if number > from && parent.is_some_and(|parent| column <= parent) {
                break;
            }
            match key {
                Key::Map(name) => {
                    let content = content.strip_prefix("- ").unwrap_or(content);
                    let quoted = [
                        format!("{name}:"),
                        format!("'{name}':"),
                        format!("\"{name}\":"),
                    ];
                    if quoted
                        .iter()
                        .any(|prefix| content.starts_with(prefix.as_str()))
                    {
                        let column = line.len() - content.len();
                        hit = Some((number, column));
                        break;
                    }
                }
                Key::Seq(index) => {
                    if content.starts_with("- ") || content == "-" {
                        if count == *index {
                            hit = Some((number, column));
                            break;
                        }
                        count += 1;
                    }
                }
            }
        }
        let (number, column) = hit?;
        found = Some((number + 1, column + 1));
        parent = Some(column);
        from = match key {
            Key::Map(_) => number + 1,
            Key::Seq(_) => number,
        };
    }
    found
}

/// serde_norway appends " at line L column C" to its messages; the error types here carry the
/// position in their own fields, so it is removed to avoid saying it twice.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_names_line_and_column() {
        let text = "openapi: 3.0.3\ninfo:\n  title: x\n  version: [1\n";
        let error = Document::parse(Path::new("doc.yaml"), text).unwrap_err();
        match error {
            Error::Yaml { line, column, .. } => assert_eq!((line, column), (5, 1)),
            other => panic!("expected a YAML error, got {other:?}"),
        }
    }

    #[test]
    fn shape_error_names_the_path() {
        let text = "openapi: 3.0.3\ninfo:\n  title: x\n  version: '1'\npaths:\n  /x:\n    get:\n      responses: 7\n";
        let error = Document::parse(Path::new("doc.yaml"), text).unwrap_err();
        match &error {
            Error::Shape {
                at, line, column, ..
            } => {
                assert_eq!(at, "paths./x.get.responses");
                assert_eq!((*line, *column), (Some(8), Some(7)));
            }
            other => panic!("expected a shape error, got {other:?}"),
        }
    }
}
