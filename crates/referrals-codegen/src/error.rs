//! What can go wrong between the document and the Rust source, said so that the person who
//! edits the document knows where to look.

use std::fmt;
use std::path::PathBuf;

/// A failure to turn the document into Rust source. Nothing is written when one happens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The document could not be read, for instance because it does not exist.
    #[error("cannot read the OpenAPI document {}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },

    /// The document is not valid YAML.
    #[error("{}:{line}:{column}: YAML syntax error: {message}", path.display())]
    Yaml {
        /// The document.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the YAML parser said.
        message: String,
    },

    /// The document is valid YAML but not an OpenAPI 3.0 document.
    #[error("{}{}: not an OpenAPI 3.0 document: at `{at}`: {message}", path.display(), location(*line, *column))]
    Shape {
        /// The document.
        path: PathBuf,
        /// Where in the document, as a dotted path (`paths./v1.0/x.get.responses`).
        at: String,
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// 1-based column, when the parser knows it.
        column: Option<usize>,
        /// What is wrong there.
        message: String,
    },

    /// The document is OpenAPI, but breaks a rule of this workspace's generator.
    #[error("{}: {culprit}: {message}", path.display())]
    Rule {
        /// The document.
        path: PathBuf,
        /// The operation or schema at fault.
        culprit: Culprit,
        /// The rule and how the document breaks it.
        message: String,
    },

    /// A vendor extension of the document (`x-filterable`, `x-patchable`...) is malformed or
    /// names what the schemas do not have.
    #[error("{}{}: the schema `{schema}` (#/components/schemas/{schema}), {entry}: {message}", path.display(), line.map(|line| format!(":{line}")).unwrap_or_default())]
    Extension {
        /// The document.
        path: PathBuf,
        /// 1-based line of the entry, when it can be found.
        line: Option<usize>,
        /// The schema that carries the extension.
        schema: String,
        /// The extension and its entry, such as `` `x-filterable` entry `team/email` ``.
        entry: String,
        /// What is wrong with it.
        message: String,
    },

    /// Progenitor refused the document or panicked on it.
    #[error("{}: progenitor cannot generate {culprit}: {message}", path.display())]
    Generator {
        /// The document.
        path: PathBuf,
        /// The operation or schema at fault, found by generating each one alone.
        culprit: Culprit,
        /// Progenitor's error or panic message.
        message: String,
    },

    /// Progenitor produced tokens that are not a Rust file (a bug in the generator).
    #[error("{}: the generated code does not parse as Rust: {message}", path.display())]
    Unparsable {
        /// The document.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        _ => String::new(),
    }
}

/// The part of the document that a failure points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Culprit {
    /// A schema under `components/schemas`.
    Schema(String),
    /// An operation, by id, method and path.
    Operation {
        /// The `operationId`, or `(none)`.
        operation_id: String,
        /// The HTTP method, upper case.
        method: String,
        /// The path as written in the document.
        path: String,
    },
    /// Neither a single schema nor a single operation fails on its own.
    Document,
}

impl fmt::Display for Culprit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Culprit::Schema(name) => write!(f, "the schema `{name}` (#/components/schemas/{name})"),
            Culprit::Operation {
                operation_id,
                method,
                path,
            } => write!(f, "the operation `{operation_id}` ({method} {path})"),
            Culprit::Document => f.write_str("the document as a whole"),
        }
    }
}
