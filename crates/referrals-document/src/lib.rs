//! The referrals OpenAPI document as plain JSON, and its schemas as JSON Schema.
//!
//! The contract tests validate every example against the document with it, and the sandbox
//! validates every request body, so that what the document says is what both enforce.

pub mod schema;

use serde_json::Value;

pub use schema::{Validators, Violation, to_json_schema};

/// The workspace's document, as its text, for programs that embed it.
pub const REFERRALS_YAML: &str = include_str!("../../../openapi/referrals.yaml");

/// Reads an OpenAPI document from YAML (or JSON) text into JSON.
pub fn parse(text: &str) -> Result<Value, serde_norway::Error> {
    serde_norway::from_str(text)
}

/// The names of the component schemas of `doc`, in its order.
pub fn component_names(doc: &Value) -> Vec<String> {
    doc.pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| schemas.keys().cloned().collect())
        .unwrap_or_default()
}
