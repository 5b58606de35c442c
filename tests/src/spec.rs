//! The document as plain JSON, and where its examples are attached.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The OpenAPI document and the folder it lives in.
pub struct Spec {
    /// `openapi/` of the workspace.
    pub dir: PathBuf,
    /// The document, read from YAML.
    pub doc: Value,
}

/// Where an example is used: one media type of one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// The example's file, relative to `openapi/` (`examples/seed000-list-2020.json`).
    pub file: String,
    /// The operation's `operationId`.
    pub operation: String,
    /// `request body` or `response 200`.
    pub place: String,
    /// The media type's schema, as written (normally a `$ref`).
    pub schema: Value,
}

impl Attachment {
    /// The component schema that the example is attached to, when the media type refers to one.
    pub fn component(&self) -> Option<&str> {
        self.schema
            .get("$ref")?
            .as_str()?
            .strip_prefix("#/components/schemas/")
    }
}

/// An operation of the document.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The `operationId`.
    pub id: String,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path as written.
    pub path: String,
    /// The operation object.
    pub value: Value,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

impl Spec {
    /// Reads `openapi/referrals.yaml` of this workspace.
    pub fn load() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi");
        Self::load_from(&dir.join("referrals.yaml"))
    }

    /// Reads the document at `path`.
    pub fn load_from(path: &Path) -> Self {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        let doc: Value = serde_norway::from_str(&text)
            .unwrap_or_else(|error| panic!("{} is not valid YAML: {error}", path.display()));
        Self {
            dir: path.parent().expect("a file has a folder").to_owned(),
            doc,
        }
    }

    /// The names of the component schemas, in the document's order.
    pub fn component_names(&self) -> Vec<String> {
        self.doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .map(|schemas| schemas.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A component schema by name.
    pub fn component(&self, name: &str) -> Option<&Value> {
        self.doc.pointer(&format!("/components/schemas/{name}"))
    }

    /// Follows a local `$ref` (`#/components/...`), as many times as needed.
    pub fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        for _ in 0..16 {
            let Some(target) = value.get("$ref").and_then(Value::as_str) else {
                return value;
            };
            value = target
                .strip_prefix('#')
                .and_then(|pointer| self.doc.pointer(pointer))
                .unwrap_or_else(|| panic!("the reference {target} leads nowhere"));
        }
        panic!("a chain of references does not end")
    }

    /// Every operation, in the document's order.
    pub fn operations(&self) -> Vec<Operation> {
        let mut operations = Vec::new();
        let Some(paths) = self.doc.get("paths").and_then(Value::as_object) else {
            return operations;
        };
        for (path, item) in paths {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    operations.push(Operation {
                        id: operation
                            .get("operationId")
                            .and_then(Value::as_str)
                            .unwrap_or("(no operationId)")
                            .to_owned(),
                        method: method.to_uppercase(),
                        path: path.clone(),
                        value: operation.clone(),
                    });
                }
            }
        }
        operations
    }

    /// Every use of an example, in request bodies and responses.
    pub fn attachments(&self) -> Vec<Attachment> {
        let mut found = Vec::new();
        for operation in self.operations() {
            if let Some(body) = operation.value.get("requestBody") {
                self.collect(
                    &operation.id,
                    "request body",
                    self.resolve(body),
                    &mut found,
                );
            }
            if let Some(responses) = operation.value.get("responses").and_then(Value::as_object) {
                for (status, response) in responses {
                    let place = format!("response {status}");
                    self.collect(&operation.id, &place, self.resolve(response), &mut found);
                }
            }
        }
        found
    }

    fn collect(&self, operation: &str, place: &str, holder: &Value, into: &mut Vec<Attachment>) {
        let Some(content) = holder.get("content").and_then(Value::as_object) else {
            return;
        };
        for media in content.values() {
            let schema = media.get("schema").cloned().unwrap_or(Value::Null);
            let Some(examples) = media.get("examples").and_then(Value::as_object) else {
                continue;
            };
            for (name, example) in examples {
                let example = self.resolve(example);
                let file = match example.get("externalValue").and_then(Value::as_str) {
                    Some(file) => file.to_owned(),
                    None => format!(
                        "(inline example `{name}`: put its payload in a file and use externalValue)"
                    ),
                };
                into.push(Attachment {
                    file,
                    operation: operation.to_owned(),
                    place: place.to_owned(),
                    schema: schema.clone(),
                });
            }
        }
    }

    /// The example files under `openapi/examples/`, relative to `openapi/`, sorted.
    pub fn example_files(&self) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(self.dir.join("examples"))
            .expect("openapi/examples/ exists")
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().to_string_lossy().into_owned();
                name.ends_with(".json").then(|| format!("examples/{name}"))
            })
            .collect();
        files.sort();
        files
    }

    /// The payload of an example file (relative to `openapi/`), numbers kept as written.
    pub fn read_example(&self, file: &str) -> Result<crate::json::Json, String> {
        let text = std::fs::read_to_string(self.dir.join(file))
            .map_err(|error| format!("cannot read {file}: {error}"))?;
        crate::json::Json::parse(&text)
            .map_err(|error| format!("{file} is not valid JSON: {error}"))
    }

    /// The attachments of each example file.
    pub fn attachments_by_file(&self) -> BTreeMap<String, Vec<Attachment>> {
        let mut by_file: BTreeMap<String, Vec<Attachment>> = BTreeMap::new();
        for attachment in self.attachments() {
            by_file
                .entry(attachment.file.clone())
                .or_default()
                .push(attachment);
        }
        by_file
    }
}
