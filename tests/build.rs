//! Writes the registry of component schemas: for each schema of the document, the Rust type
//! that the client generates for it. The tests look a schema up by name, so an example attached
//! to any schema is decoded into its type without a code change.

use std::fmt::Write;
use std::path::PathBuf;

use referrals_codegen::{AMOUNT, PATCH_VALUE};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let spec = manifest_dir.join("../openapi/referrals.yaml");
    println!("cargo::rerun-if-changed={}", spec.display());

    let document = match referrals_codegen::Document::load(&spec) {
        Ok(document) => document,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    };
    let names: Vec<String> = document
        .openapi
        .components
        .iter()
        .flat_map(|components| components.schemas.keys().cloned())
        .collect();

    let mut code = String::from(
        "/// The component schemas of the document, in its order.\n\
         pub const COMPONENTS: &[&str] = &[\n",
    );
    for name in &names {
        writeln!(code, "    {name:?},").unwrap();
    }
    code.push_str(
        "];\n\n\
         /// Calls `visitor` with the Rust type that the client has for the component schema\n\
         /// `name`; `None` when the document has no such schema.\n\
         pub fn visit<V: TypeVisitor>(name: &str, visitor: V) -> Option<V::Output> {\n\
         \x20   match name {\n",
    );
    for name in &names {
        let path = if name == AMOUNT {
            "referrals_model::Amount".to_owned()
        } else if name == PATCH_VALUE {
            "referrals_model::PatchValue".to_owned()
        } else {
            format!("referrals_model::types::{name}")
        };
        writeln!(
            code,
            "        {name:?} => Some(visitor.visit::<{path}>({path:?})),"
        )
        .unwrap();
    }
    code.push_str("        _ => None,\n    }\n}\n");

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("registry.rs");
    std::fs::write(&out, code).expect("OUT_DIR is writable");
}
