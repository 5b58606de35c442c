//! Generates the typed mocks from the OpenAPI document, with the function that
//! `cargo xtask codegen` uses for the reviewable copy in `generated/`.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let spec = manifest_dir.join("../../openapi/referrals.yaml");
    println!("cargo::rerun-if-changed={}", spec.display());
    match referrals_codegen::generate_httpmock(&spec, "referrals_client") {
        Ok(source) => {
            let target = out_dir.join("httpmock.rs");
            if let Err(error) = std::fs::write(&target, source) {
                eprintln!("error: cannot write {}: {error}", target.display());
                std::process::exit(1);
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
