//! Generates the typed mocks from the OpenAPI document, with the function that
//! `cargo xtask codegen` uses for the reviewable copy in `generated/`.

fn main() {
    referrals_codegen::build_script(referrals_codegen::Part::Httpmock);
}
