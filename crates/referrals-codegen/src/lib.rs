//! Turns the referrals OpenAPI document into the Rust source of the client.
//!
//! [`generate`] is the one code path from the document to Rust: the build script of
//! `referrals-client` calls it on every build, and `cargo xtask codegen` calls it to write the
//! reviewable copy, so the two cannot disagree.
//!
//! On top of progenitor, it
//! - checks rules that keep the generated code right ([`rules`]);
//! - replaces the document's open value sets with enums that keep unknown values
//!   ([`open_enum`]), money with an exact decimal type, and patch values with raw JSON text
//!   ([`settings`]);
//! - shows progenitor a view of the document without the shapes it cannot express ([`view`]);
//! - turns progenitor's errors and panics into errors that name the schema or operation at
//!   fault ([`diagnose`]);
//! - documents the public items that the generators leave undocumented ([`docs`]);
//! - formats the result with prettyplease, under a header that says where it comes from.

#![deny(missing_docs)]

pub mod diagnose;
pub mod docs;
pub mod document;
mod error;
pub mod open_enum;
pub mod rules;
pub mod settings;
pub mod view;

use std::path::Path;

pub use document::Document;
pub use error::{Culprit, Error};

/// Reads the document at `path` and returns the formatted Rust source of the client.
pub fn generate(path: &Path) -> Result<String, Error> {
    generate_document(&Document::load(path)?)
}

/// Returns the formatted Rust source of the client for an already loaded document.
pub fn generate_document(document: &Document) -> Result<String, Error> {
    let open_enums = open_enum::find(&document.openapi);
    rules::check(&document.path, &document.openapi, &open_enums)?;

    let (view, notes) = view::progenitor_view(&document.openapi);
    let settings = settings::settings(&view, &open_enums);
    let tokens = diagnose::run(&settings, &view).map_err(|message| {
        let (culprit, message) =
            diagnose::culprit(&settings, &view).unwrap_or((Culprit::Document, message));
        Error::Generator {
            path: document.path.clone(),
            culprit,
            message,
        }
    })?;

    let mut file: syn::File = syn::parse2(tokens).map_err(|error| Error::Unparsable {
        path: document.path.clone(),
        message: error.to_string(),
    })?;
    add_open_enums(&mut file, &open_enums);
    add_member_lists(&mut file, &document.openapi);
    docs::fill(&mut file, &document.openapi);

    Ok(format!(
        "{}{}",
        header(&document.path, &notes),
        prettyplease::unparse(&file)
    ))
}

/// Reads the document at `path` and returns the formatted Rust source of typed `httpmock`
/// helpers for it (progenitor's `Generator::httpmock`): one `when`/`then` pair per operation,
/// whose types come from the client crate at `client_crate` (such as `referrals_client`).
pub fn generate_httpmock(path: &Path, client_crate: &str) -> Result<String, Error> {
    let document = Document::load(path)?;
    let open_enums = open_enum::find(&document.openapi);
    rules::check(&document.path, &document.openapi, &open_enums)?;
    let (view, notes) = view::progenitor_view(&document.openapi);
    let settings = settings::settings(&view, &open_enums);
    let tokens = diagnose::quietly_httpmock(&settings, &view, client_crate).map_err(|message| {
        Error::Generator {
            path: document.path.clone(),
            culprit: Culprit::Document,
            message,
        }
    })?;
    let file: syn::File = syn::parse2(tokens).map_err(|error| Error::Unparsable {
        path: document.path.clone(),
        message: error.to_string(),
    })?;
    Ok(format!(
        "{}{}",
        header(&document.path, &notes),
        prettyplease::unparse(&file)
    ))
}

/// The whole of a build script that generates code from the workspace's document: reads
/// `../../openapi/referrals.yaml` (from the crate being built), asks cargo to run again when it
/// changes, and writes what `generate` makes of it to `OUT_DIR/file_name`. A failure prints the
/// error on one line and exits, instead of a panic's backtrace hint.
pub fn build_script(file_name: &str, generate: impl FnOnce(&Path) -> Result<String, Error>) {
    let manifest_dir =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let spec = manifest_dir.join("../../openapi/referrals.yaml");
    println!("cargo::rerun-if-changed={}", spec.display());
    let target = out_dir.join(file_name);
    let written = generate(&spec)
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
fn add_open_enums(file: &mut syn::File, open_enums: &[open_enum::OpenEnum]) {
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
        code.extend(open_enum::tokens(open));
    }
    let extra: syn::File = syn::parse2(code).expect("the open value sets are valid Rust");
    items.extend(extra.items);
}

/// Gives each object type of `mod types` the list of the members that the document declares,
/// as written on the wire (`Referral::MEMBERS`), for `$select` and for checks of unknown members.
fn add_member_lists(file: &mut syn::File, openapi: &openapiv3::OpenAPI) {
    let Some(components) = &openapi.components else {
        return;
    };
    let mut code = proc_macro2::TokenStream::new();
    for (name, schema) in &components.schemas {
        let openapiv3::ReferenceOr::Item(schema) = schema else {
            continue;
        };
        let openapiv3::SchemaKind::Type(openapiv3::Type::Object(object)) = &schema.schema_kind
        else {
            continue;
        };
        let ident = quote::format_ident!("{name}");
        let members = object.properties.keys();
        code.extend(quote::quote! {
            impl #ident {
                /// The members that the document declares for this type, as written on the wire.
                pub const MEMBERS: &'static [&'static str] = &[#(#members),*];
            }
        });
    }
    let Some((_, items)) = file.items.iter_mut().find_map(|item| match item {
        syn::Item::Mod(module) if module.ident == "types" => module.content.as_mut(),
        _ => None,
    }) else {
        return;
    };
    let extra: syn::File = syn::parse2(code).expect("the member lists are valid Rust");
    items.extend(extra.items);
}

fn header(path: &Path, notes: &[String]) -> String {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let mut header = format!(
        "// @generated by referrals-codegen from {name}. Do not edit this file: change the\n\
         // document or the generation settings in crates/referrals-codegen, then run\n\
         // `cargo xtask codegen`. The build script of referrals-client writes the same text.\n"
    );
    if !notes.is_empty() {
        header.push_str("//\n// What the generated client does not express (see crates/referrals-codegen/src/view.rs):\n");
        for note in notes {
            header.push_str(&format!("// - {note}\n"));
        }
    }
    header.push('\n');
    header
}
