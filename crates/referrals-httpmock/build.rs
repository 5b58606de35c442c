//! Generates the typed mocks from the OpenAPI document, with the function that
//! `cargo xtask codegen` uses for the reviewable copy in `generated/`.

// The error type is the generator's own, shared with `cargo xtask codegen`; its size does not
// matter in a build script that stops at the first error.
#[allow(clippy::result_large_err)]
fn main() {
    referrals_codegen::build_script("httpmock.rs", |spec| {
        referrals_codegen::generate_httpmock(spec, "referrals_client")
    });
}
