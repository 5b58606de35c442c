//! Generates the client from the OpenAPI document on every build where the document changed.
//! `cargo xtask codegen` calls the same function to write the reviewable copy in `generated/`.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let spec = manifest_dir.join("../../openapi/referrals.yaml");
    println!("cargo::rerun-if-changed={}", spec.display());

    match referrals_codegen::generate(&spec) {
        Ok(source) => {
            let target = out_dir.join("referrals.rs");
            if let Err(error) = std::fs::write(&target, source) {
                eprintln!("error: cannot write {}: {error}", target.display());
                std::process::exit(1);
            }
        }
        Err(error) => {
            // A build script's panic buries the message under a backtrace hint; this keeps it
            // to the one line that names the file and the part of it at fault.
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
