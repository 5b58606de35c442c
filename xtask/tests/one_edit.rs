//! Adding a filterable member and a patchable path is one edit of the document and nothing
//! else: on a copy of the workspace, the document gains `organizationName` in `x-filterable`
//! and `/name` in `x-patchable`; `cargo xtask codegen` (this crate's binary) rewrites the
//! copy's generated code; then a program built against the copy's crates filters with the new
//! typed builder (`query::organization_name()`) and patches with the new typed method
//! (`Patch::set_name`) against the copy's sandbox, which accepts both.
//!
//! It builds the copy's crates with cargo, in the target directory that holds this test (their
//! paths differ from the workspace's, so nothing of the workspace's build is replaced). The
//! probe's manifest carries the workspace's profiles, so the registry dependencies are those
//! already built but for a few that the probe needs with other features: it costs the
//! workspace's own crates, under a minute on two cores.

mod common;

use std::path::Path;

use common::{cargo_in, codegen_copy, copy_workspace, profiles, root, show};

/// The crates that the program needs, copied with the document.
const CRATES: [&str; 7] = [
    "referrals-codegen",
    "referrals-odata",
    "referrals-model",
    "referrals-document",
    "referrals-client",
    "referrals-sandbox",
    // A dev-dependency of the client: a member's manifest names it.
    "referrals-testkit",
];

/// The program built against the copy: it fails (exit status not 0) when either new fact is
/// missing at compile time or refused at run time.
const PROBE: &str = r#"
use referrals_client::patch::Patch;
use referrals_client::query::{self, Query};
use referrals_client::{Client, StaticToken};

#[tokio::main]
async fn main() {
    let sandbox = referrals_sandbox::start(referrals_sandbox::Config {
        seed_count: 50,
        log: false,
        ..Default::default()
    })
    .await
    .expect("the sandbox starts");
    let client = Client::builder(&sandbox.url(), StaticToken::new("probe"))
        .allow_http_to_loopback(true)
        .build()
        .expect("a client");

    // The new filterable member: a typed builder, and a filter that the sandbox accepts.
    let filter = query::organization_name().eq("Contoso Company");
    let page = client
        .list_page(&Query::new().filter(filter), None)
        .await
        .expect("the sandbox accepts a filter on organizationName");
    assert!(!page.items.is_empty(), "the seed data is Contoso's");
    assert!(page
        .items
        .iter()
        .all(|r| r.organization_name.as_deref() == Some("Contoso Company")));

    // The new patchable path: a typed method, and a patch that the sandbox applies.
    let first = &page.items[0];
    let patch = Patch::new().set_name("Renamed by the probe");
    let updated = client.update(first, patch).await.expect("the sandbox accepts /name");
    assert_eq!(updated.name.as_deref(), Some("Renamed by the probe"));
    println!("both new facts work");
}
"#;

/// The edit: one entry in each extension, nothing else.
fn edit(document: &str) -> String {
    let filterable = "      x-filterable:\n";
    let patchable = "      x-patchable:\n";
    assert!(document.contains(filterable) && document.contains(patchable));
    document
        .replacen(
            filterable,
            &format!("{filterable}        organizationName: {{operators: [eq, ne]}}\n"),
            1,
        )
        .replacen(
            patchable,
            &format!("{patchable}        /name: [replace, add]\n"),
            1,
        )
}

#[test]
fn a_filterable_member_and_a_patchable_path_are_one_edit_of_the_document() {
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("workspace");
    let root = root();
    copy_workspace(&root, &copy, &CRATES, &[]);
    let document = copy.join("openapi/referrals.yaml");
    let text = std::fs::read_to_string(&document).unwrap();
    std::fs::write(&document, edit(&text)).unwrap();

    // `cargo xtask codegen` on the copy: its generated copies change, and then are current.
    let written = codegen_copy(&copy, false);
    assert!(written.status.success(), "{}", show(&written));
    let report = String::from_utf8_lossy(&written.stdout);
    assert!(
        report.contains("updated"),
        "the generated code changed: {report}"
    );
    let checked = codegen_copy(&copy, true);
    assert!(checked.status.success(), "{}", show(&checked));
    let model =
        std::fs::read_to_string(copy.join("crates/referrals-model/generated/model.rs")).unwrap();
    assert!(
        model.contains("pub fn organization_name()"),
        "the typed filter builder"
    );
    assert!(model.contains("pub fn set_name("), "the typed patch method");

    let probe = work.path().join("probe");
    write_probe(&root, &copy, &probe);
    let output = cargo_in(&probe, &["run", "--quiet"]);
    assert!(output.status.success(), "{}", show(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("both new facts work"));
}

/// A program of its own workspace in `probe`, outside the copy, that uses the copy's crates.
fn write_probe(root: &Path, copy: &Path, probe: &Path) {
    std::fs::create_dir_all(probe.join("src")).unwrap();
    let crate_path = |name: &str| copy.join("crates").join(name).display().to_string();
    std::fs::write(
        probe.join("Cargo.toml"),
        format!(
            "[package]\nname = \"referrals-one-edit-probe\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             publish = false\n\n[workspace]\n\n[dependencies]\n\
             referrals-client = {{ path = {:?} }}\nreferrals-sandbox = {{ path = {:?} }}\n\
             tokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n\n{}",
            crate_path("referrals-client"),
            crate_path("referrals-sandbox"),
            profiles(root),
        ),
    )
    .unwrap();
    std::fs::write(probe.join("src/main.rs"), PROBE).unwrap();
    // The workspace's lock file, so that the probe builds the versions already built.
    std::fs::copy(root.join("Cargo.lock"), probe.join("Cargo.lock")).unwrap();
}
