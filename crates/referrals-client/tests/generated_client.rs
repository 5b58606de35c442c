//! The committed copy of the generated client is what the build compiled.

/// The build script and `cargo xtask codegen` call the same function; this proves that the
/// committed copy is what the build compiled, so a reviewer reads the code that runs.
#[cfg(feature = "codegen")]
#[test]
fn the_committed_copy_is_what_the_build_compiled() {
    let built = include_str!(concat!(env!("OUT_DIR"), "/client.rs"));
    let committed = std::fs::read_to_string(format!(
        "{}/generated/client.rs",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the committed copy exists; run `cargo xtask codegen`");
    assert!(
        built == committed,
        "crates/referrals-client/generated/client.rs differs from what build.rs generated: \
         run `cargo xtask codegen` and commit the result"
    );
}
