//! Turns the referrals OpenAPI document into the Rust source of the client.
//!
//! [`generate`] is the one code path from the document to Rust: the build scripts of the
//! generated crates call it ([`build_script`]), and `cargo xtask codegen` calls it to write the
//! reviewable copies, so the two cannot disagree.
//!
//! On top of progenitor, its modules (private: only [`generate`], [`build_script`], [`Part`],
//! [`Document`] and the schema names [`AMOUNT`] and [`PATCH_VALUE`] are used outside)
//! - check the document for what would make the generated code wrong (`checks`);
//! - read the API's facts from the document and its vendor extensions (`reader`), and write
//!   them as tables (`tables`) and as additions to the types (`model`);
//! - replace the document's open value sets with enums that keep unknown values
//!   (`open_enum`), money with an exact decimal type, and patch values with raw JSON text
//!   (`settings`);
//! - show progenitor a view of the document without the shapes it cannot express
//!   (`progenitor_view`);
//! - turn progenitor's errors and panics into errors that name the schema or operation at
//!   fault (`diagnose`);
//! - document the public items that the generators leave undocumented (`docs`), and finish
//!   the CLI's commands (`cli`);
//! - format the result with prettyplease, under a header that says where it comes from.

#![deny(missing_docs)]

mod ast;
mod checks;
mod cli;
mod contradictions;
mod diagnose;
mod docs;
mod document;
mod error;
mod model;
mod open_enum;
mod operations;
mod patching;
mod progenitor_view;
mod reader;
mod rust_names;
mod settings;
mod tables;

use std::path::Path;

pub use document::Document;
pub use error::{Culprit, Error};
pub use settings::{AMOUNT, PATCH_VALUE};

/// A part of what the document generates, each the source of one crate (and of one reviewable
/// copy that `cargo xtask codegen` writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// `referrals-model`: the types, the open value sets and the API's facts as tables, shared
    /// by the client and the sandbox.
    Model,
    /// `referrals-client`: progenitor's `Client` and its operation builders, on the model's
    /// types.
    Client,
    /// `referrals-httpmock`: progenitor's typed httpmock helpers.
    Httpmock,
    /// `referrals-cli`: progenitor's clap commands, one per operation.
    Cli,
    /// `referrals-model`'s `webhooks` module, from `openapi/webhooks/webhooks.yaml`: the types
    /// of the webhook registration API and of its callback, and the tables of that document
    /// (its operations, the callback's parameters and signature headers).
    WebhooksModel,
    /// `referrals-client`'s `webhooks` module: progenitor's client of the webhook registration
    /// API, on the types of `referrals_model::webhooks`.
    WebhooksClient,
}

impl Part {
    /// Every part.
    pub const ALL: [Part; 6] = [
        Part::Model,
        Part::Client,
        Part::Httpmock,
        Part::Cli,
        Part::WebhooksModel,
        Part::WebhooksClient,
    ];

    /// The file that the part's build script writes in `OUT_DIR`, and its reviewable copy in
    /// the crate's `generated/` folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Part::Model => "model.rs",
            Part::Client => "client.rs",
            Part::Httpmock => "httpmock.rs",
            Part::Cli => "cli.rs",
            Part::WebhooksModel | Part::WebhooksClient => "webhooks.rs",
        }
    }

    /// The crate that the part belongs to, as a folder of `crates/`.
    pub fn crate_dir(self) -> &'static str {
        match self {
            Part::Model => "referrals-model",
            Part::Client => "referrals-client",
            Part::Httpmock => "referrals-httpmock",
            Part::Cli => "referrals-cli",
            Part::WebhooksModel => "referrals-model",
            Part::WebhooksClient => "referrals-client",
        }
    }

    /// The document that the part is made from, relative to the workspace's `openapi/`.
    pub fn document(self) -> &'static str {
        match self {
            Part::Model | Part::Client | Part::Httpmock | Part::Cli => "referrals.yaml",
            Part::WebhooksModel | Part::WebhooksClient => "webhooks/webhooks.yaml",
        }
    }
}

/// The model: the types alone, with the open value sets, the additions from the document's
/// keywords, and the tables.
fn finish_model(
    document: &Document,
    file: &mut syn::File,
    facts: &reader::Facts,
    open_enums: &[open_enum::OpenEnum],
    dropped: &[progenitor_view::Dropped],
) -> Result<(), Error> {
    file.items.retain(is_types_module);
    add_open_enums(file, open_enums, true);
    model::extend(file, facts, &document.openapi);
    let tables =
        tables::tokens(facts, file, open_enums, dropped).map_err(|message| Error::Generator {
            path: document.path.clone(),
            culprit: Culprit::Document,
            message,
        })?;
    let tables: syn::File = syn::parse2(tables).map_err(|error| Error::Unparsable {
        path: document.path.clone(),
        message: format!("the tables: {error}"),
    })?;
    file.items.extend(tables.items);
    docs::fill(file, &document.openapi);
    Ok(())
}

/// The model's webhooks module: the types alone, with the open value sets and the additions
/// from the document's keywords, and the tables of the document's operations and security.
fn finish_webhooks(
    document: &Document,
    file: &mut syn::File,
    facts: &reader::Facts,
    open_enums: &[open_enum::OpenEnum],
    dropped: &[progenitor_view::Dropped],
) -> Result<(), Error> {
    file.items.retain(is_types_module);
    add_open_enums(file, open_enums, false);
    model::extend(file, facts, &document.openapi);
    let tables = operations::document_tables(facts, dropped);
    let tables: syn::File = syn::parse2(tables).map_err(|error| Error::Unparsable {
        path: document.path.clone(),
        message: format!("the tables: {error}"),
    })?;
    file.items.extend(tables.items);
    docs::fill(file, &document.openapi);
    Ok(())
}

/// The client: its types come from the model crate, where the client's code finds them as
/// `types::...` and `crate::types::...`.
fn reexport_types(file: &mut syn::File, module: &str) {
    let model = syn::Ident::new(settings::MODEL_CRATE, proc_macro2::Span::call_site());
    let module: syn::Path = syn::parse_str(module).expect("a module path");
    let position = file.items.iter().position(is_types_module);
    let reexport: syn::Item = syn::parse_quote! {
        /// The types of the document, from the model crate.
        pub use ::#model::#module;
    };
    match position {
        Some(index) => file.items[index] = reexport,
        None => file.items.insert(0, reexport),
    }
}

/// Reads the document at `path` and returns the formatted Rust source of `part`.
pub fn generate(path: &Path, part: Part) -> Result<String, Error> {
    generate_document(&Document::load(path)?, part)
}

/// Returns the formatted Rust source of `part` for an already loaded document.
pub fn generate_document(document: &Document, part: Part) -> Result<String, Error> {
    let open_enums = open_enum::find(&document.openapi);
    checks::check(&document.path, &document.openapi, &open_enums)?;
    contradictions::check(document)?;
    let facts = reader::read(document, &open_enums)?;

    let (view, dropped) = progenitor_view::progenitor_view(&document.openapi);
    let settings = match part {
        Part::WebhooksModel | Part::WebhooksClient => {
            settings::webhooks_settings(&view, &open_enums)
        }
        _ => settings::settings(&view, &open_enums),
    };
    let generator_error = |message: String| Error::Generator {
        path: document.path.clone(),
        culprit: Culprit::Document,
        message,
    };
    let tokens = match part {
        Part::Model | Part::Client | Part::WebhooksModel | Part::WebhooksClient => {
            diagnose::run(&settings, &view).map_err(|message| {
                let (culprit, message) =
                    diagnose::culprit(&settings, &view).unwrap_or((Culprit::Document, message));
                Error::Generator {
                    path: document.path.clone(),
                    culprit,
                    message,
                }
            })?
        }
        Part::Httpmock => diagnose::quietly_httpmock(&settings, &view, settings::CLIENT_CRATE)
            .map_err(generator_error)?,
        Part::Cli => diagnose::quietly_cli(&settings, &view, settings::CLI_CLIENT_PATH)
            .map_err(generator_error)?,
    };
    let mut file: syn::File = syn::parse2(tokens).map_err(|error| Error::Unparsable {
        path: document.path.clone(),
        message: error.to_string(),
    })?;

    match part {
        Part::Model => finish_model(document, &mut file, &facts, &open_enums, &dropped)?,
        Part::Client => {
            reexport_types(&mut file, "types");
            docs::fill(&mut file, &document.openapi);
        }
        Part::Httpmock => {}
        Part::Cli => {
            cli::finish(&mut file, &facts);
            docs::fill(&mut file, &document.openapi);
        }
        Part::WebhooksModel => {
            finish_webhooks(document, &mut file, &facts, &open_enums, &dropped)?;
        }
        Part::WebhooksClient => {
            reexport_types(&mut file, "webhooks::types");
            docs::fill(&mut file, &document.openapi);
        }
    }

    let notes: Vec<String> = match part {
        Part::Client | Part::WebhooksClient => {
            dropped.iter().map(progenitor_view::Dropped::note).collect()
        }
        Part::Model | Part::Httpmock | Part::Cli | Part::WebhooksModel => Vec::new(),
    };
    Ok(format!(
        "{}{}",
        header(&document.path, part, &notes),
        prettyplease::unparse(&file)
    ))
}

fn is_types_module(item: &syn::Item) -> bool {
    matches!(item, syn::Item::Mod(module) if module.ident == "types")
}

/// The whole of a build script that generates `part` from the workspace's document: reads
/// the part's document under `../../openapi/` (from the crate being built), asks cargo to run again when it
/// changes, and writes the source to `OUT_DIR/<part's file name>`. Built from a package
/// (no workspace around it), it copies the package's `generated/` file instead. A failure prints the error
/// on one line and exits, instead of a panic's backtrace hint.
pub fn build_script(part: Part) {
    let manifest_dir =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let spec = manifest_dir.join("../../openapi").join(part.document());
    let target = out_dir.join(part.file_name());
    if !spec.exists() {
        // A crate built from its package, outside the workspace: the document is not there,
        // and the build takes the reviewed copy in the package's `generated/`, which
        // `cargo xtask codegen --check` keeps equal to what the generator makes of the
        // document. The document stays the one source; a package carries its output.
        let copy = manifest_dir.join("generated").join(part.file_name());
        println!("cargo::rerun-if-changed={}", copy.display());
        if let Err(error) = std::fs::copy(&copy, &target) {
            eprintln!(
                "error: neither {} nor {} can be read: {error}",
                spec.display(),
                copy.display()
            );
            std::process::exit(1);
        }
        return;
    }
    println!("cargo::rerun-if-changed={}", spec.display());
    let written = generate(&spec, part)
        .map_err(|error| error.to_string())
        .and_then(|source| {
            std::fs::write(&target, source)
                .map_err(|error| format!("cannot write {}: {error}", target.display()))
        });
    if let Err(message) = written {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

/// Puts the open value sets into the generated `types` module, where typify's code refers to
/// them as `crate::types::Name`.
/// Adds the open value sets to the `types` module, with `schemars::JsonSchema` behind the
/// feature `schemars` when `schemars`.
fn add_open_enums(file: &mut syn::File, open_enums: &[open_enum::OpenEnum], schemars: bool) {
    if open_enums.is_empty() {
        return;
    }
    let types = file.items.iter_mut().find_map(|item| match item {
        syn::Item::Mod(module) if module.ident == "types" => module.content.as_mut(),
        _ => None,
    });
    let Some((_, items)) = types else {
        return;
    };
    let mut code = open_enum::unrecognized_value_tokens();
    for open in open_enums {
        code.extend(open_enum::tokens(open, schemars));
    }
    let extra: syn::File = syn::parse2(code).expect("the open value sets are valid Rust");
    items.extend(extra.items);
}

fn header(path: &Path, part: Part, notes: &[String]) -> String {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let mut header = format!(
        "// @generated by referrals-codegen from {name}. Do not edit this file: change the\n\
         // document or the generation settings in crates/referrals-codegen, then run\n\
         // `cargo xtask codegen`. The build script of {} writes the same text.\n",
        part.crate_dir()
    );
    if !notes.is_empty() {
        header.push_str("//\n// What the generated client does not express (see crates/referrals-codegen/src/progenitor_view.rs):\n");
        for note in notes {
            header.push_str(&format!("// - {note}\n"));
        }
    }
    header.push('\n');
    header
}
