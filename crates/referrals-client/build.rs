//! Generates the client from the OpenAPI document on every build where the document changed
//! (feature `codegen`, on by default). `cargo xtask codegen` calls the same function to write the
//! reviewable copy in `generated/`, which the build compiles without the feature.

fn main() {
    #[cfg(feature = "codegen")]
    {
        referrals_codegen::build_script(referrals_codegen::Part::Client);
        referrals_codegen::build_script(referrals_codegen::Part::WebhooksClient);
    }
}
