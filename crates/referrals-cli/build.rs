//! Generates the `api` commands from the OpenAPI document (feature `codegen`, on by default);
//! `cargo xtask codegen` writes the same text to `generated/cli.rs`, which the build compiles
//! without the feature.

fn main() {
    #[cfg(feature = "codegen")]
    referrals_codegen::build_script(referrals_codegen::Part::Cli);
}
