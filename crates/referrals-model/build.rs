//! Generates the model from the OpenAPI document on every build where the document changed.
//! `cargo xtask codegen` calls the same function to write the reviewable copy in `generated/`.

fn main() {
    referrals_codegen::build_script(referrals_codegen::Part::Model);
}
