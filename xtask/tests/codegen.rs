//! `cargo xtask codegen` end to end, on temporary copies of the document and of the generated
//! file: `--check` on a clean tree and after a change, and each kind of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    // At run time (cargo sets it for the test): a test binary shared by checkouts that share a
    // build folder works on the checkout it is run from.
    let xtask = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    Path::new(&xtask)
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

fn spec_text() -> String {
    std::fs::read_to_string(root().join("openapi/referrals.yaml")).unwrap()
}

/// The document with its first `from` replaced by `to`. A document that no longer has `from`
/// fails the test with a message that says so, instead of a test that checks nothing.
fn edited(from: &str, to: &str) -> String {
    let spec = spec_text();
    assert!(
        spec.contains(from),
        "openapi/referrals.yaml no longer has the text that this test edits:\n{from}\n\
         The test makes a document that the generator must refuse from it: point the edit \
         at text that the document has (the document was not changed by the test)."
    );
    spec.replacen(from, to, 1)
}

/// The committed copy of the model, which holds the types.
fn committed_copy() -> String {
    std::fs::read_to_string(root().join("crates/referrals-model/generated/model.rs")).unwrap()
}

/// A temporary folder with a document `referrals.yaml` and a generated copy of the model,
/// `referrals.rs`.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(spec: &str, out: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("referrals.yaml"), spec).unwrap();
        if let Some(out) = out {
            std::fs::write(dir.path().join("referrals.rs"), out).unwrap();
        }
        Self { dir }
    }

    fn spec(&self) -> PathBuf {
        self.dir.path().join("referrals.yaml")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("referrals.rs")
    }

    fn codegen(&self, check: bool) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.arg("codegen");
        if check {
            command.arg("--check");
        }
        command
            .arg("--spec")
            .arg(self.spec())
            .arg("--model-out")
            .arg(self.out());
        command.output().unwrap()
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs codegen on a broken document and checks that it fails with `expected` in its message,
/// leaving the generated copy exactly as it was and no stray file behind.
fn assert_refused(spec: &str, expected: &[&str]) {
    let before = "// the copy before the run\n";
    let sandbox = Sandbox::new(spec, Some(before));
    for check in [false, true] {
        let output = sandbox.codegen(check);
        let message = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "exit status; stderr:\n{message}"
        );
        for part in expected {
            assert!(message.contains(part), "{part:?} not in:\n{message}");
        }
        assert!(message.contains("nothing was written"), "{message}");
        assert_eq!(std::fs::read_to_string(sandbox.out()).unwrap(), before);
        assert_eq!(sandbox.files(), ["referrals.rs", "referrals.yaml"]);
    }
}

#[test]
fn check_passes_on_the_committed_tree() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["codegen", "--check"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the committed copy is stale; run `cargo xtask codegen`:\n{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains("is up to date"));
}

#[test]
fn check_fails_with_a_diff_after_a_change_to_the_document() {
    let spec = edited(
        "description: The customer's company name.",
        "description: The registered name of the customer's company.",
    );
    assert_ne!(spec, spec_text(), "the edit must change the document");
    let sandbox = Sandbox::new(&spec, Some(&committed_copy()));

    let output = sandbox.codegen(true);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    let diff = stdout(&output);
    assert!(diff.contains("@@"), "no hunk in:\n{diff}");
    assert!(
        diff.contains("-        ///The customer's company name."),
        "{diff}"
    );
    assert!(
        diff.contains("+        ///The registered name of the customer's company."),
        "{diff}"
    );
    assert!(stderr(&output).contains("run `cargo xtask codegen`"));
    assert_eq!(
        std::fs::read_to_string(sandbox.out()).unwrap(),
        committed_copy()
    );

    // Writing brings the copy up to date, says what changed, and leaves no temporary file.
    let output = sandbox.codegen(false);
    assert!(output.status.success(), "stderr:\n{}", stderr(&output));
    let report = stdout(&output);
    // The member's doc, and the doc of its builder setter, which quotes it.
    assert!(report.contains("2 lines added, 2 removed"), "{report}");
    assert!(
        report.contains("changed struct types::CustomerProfile.name"),
        "{report}"
    );
    assert!(
        report.contains("changed impl types::builder::CustomerProfile"),
        "{report}"
    );
    assert_eq!(sandbox.files(), ["referrals.rs", "referrals.yaml"]);
    assert!(sandbox.codegen(true).status.success());
}

#[test]
fn a_missing_copy_is_created_and_reported_stale() {
    let sandbox = Sandbox::new(&spec_text(), None);
    let output = sandbox.codegen(true);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is missing"),
        "{}",
        stderr(&output)
    );
    assert!(!sandbox.out().exists(), "--check must not write");

    let output = sandbox.codegen(false);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(sandbox.out()).unwrap(),
        committed_copy()
    );
}

#[test]
fn a_yaml_syntax_error_names_file_line_and_column() {
    let spec = edited("  version: v1.0", "  version: [v1.0");
    let line = spec
        .lines()
        .position(|line| line == "  version: [v1.0")
        .unwrap()
        + 1;
    assert_refused(&spec, &["referrals.yaml:", "YAML syntax error"]);
    // The parser reports where it found out: the line after the unclosed bracket.
    let sandbox = Sandbox::new(&spec, None);
    let message = stderr(&sandbox.codegen(false));
    let position = message.split("referrals.yaml:").nth(1).unwrap();
    let reported: usize = position.split(':').next().unwrap().parse().unwrap();
    assert!(
        (line..=line + 1).contains(&reported),
        "line {reported}, expected about {line}: {message}"
    );
}

#[test]
fn a_document_of_the_wrong_shape_names_the_place() {
    let spec = edited(
        "      responses:\n        '200':\n          description: One page of referrals.",
        "      responses: 7\n      x-was:\n        '200':\n          description: One page of referrals.",
    );
    assert_refused(
        &spec,
        &[
            "not an OpenAPI 3.0 document",
            "at `paths./v1.0/engagements/referrals.get.responses`",
        ],
    );
}

#[test]
fn a_progenitor_panic_names_the_schema() {
    // An exclusive minimum without a minimum makes progenitor hit a `todo!`.
    let spec = edited(
        "  schemas:\n",
        "  schemas:\n    Broken:\n      description: Broken on purpose.\n      exclusiveMinimum: true\n",
    );
    assert_refused(
        &spec,
        &[
            "progenitor cannot generate the schema `Broken` (#/components/schemas/Broken)",
            "panicked",
            "exclusive_minimum set without minimum",
        ],
    );
}

#[test]
fn a_progenitor_panic_names_the_operation() {
    // Progenitor asserts that path parameters are required.
    let spec = edited(
        "    ReferralId:\n      name: id\n      in: path\n      required: true",
        "    ReferralId:\n      name: id\n      in: path\n      required: false",
    );
    assert_refused(
        &spec,
        &[
            "progenitor cannot generate the operation `getReferral`",
            "panicked",
        ],
    );
}

#[test]
fn a_progenitor_error_names_the_operation() {
    let spec = edited(
        "        description: The changes, in order. The service applies all of them or none.\n        content:\n          application/json:",
        "        description: The changes, in order. The service applies all of them or none.\n        content:\n          application/json-patch+json:",
    );
    assert_refused(
        &spec,
        &[
            "progenitor cannot generate the operation `updateReferral` (PATCH /v1.0/engagements/referrals/{id})",
            "unexpected content type: application/json-patch+json",
        ],
    );
}

#[test]
fn a_bare_number_is_refused_because_money_must_stay_exact() {
    let spec = edited(
        "        currency:\n          type: string\n          nullable: true\n          description: The currency of `dealValue`",
        "        rate:\n          type: number\n          description: A float by mistake.\n        currency:\n          type: string\n          nullable: true\n          description: The currency of `dealValue`",
    );
    assert_refused(
        &spec,
        &[
            "the schema `ReferralDetails`",
            "would be a binary float",
            "`Amount`",
        ],
    );
}

/// The line of the first line of `spec` that starts (after its indentation) with `start`.
fn line_of(spec: &str, start: &str) -> usize {
    spec.lines()
        .position(|line| line.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("no line starts with {start:?}"))
        + 1
}

#[test]
fn a_filterable_member_with_an_unknown_operator_is_refused_with_its_line() {
    let spec = edited(
        "        substatus: {operators: [eq, ne]}",
        "        substatus: {operators: [eq, like]}",
    );
    let line = line_of(&spec, "substatus: {operators: [eq, like]}");
    assert_refused(
        &spec,
        &[
            &format!("referrals.yaml:{line}:"),
            "the schema `Referral`",
            "`x-filterable` entry `substatus`",
            "`like` is not a comparison operator of OData (eq, ne, gt, ge, lt, le)",
        ],
    );
}

#[test]
fn a_filterable_member_without_a_comparison_is_refused() {
    let spec = edited(
        "        engagementId: {operators: [eq, ne]}",
        "        engagementId: {operators: [eq, ne]}\n        customerProfile: {operators: [eq]}",
    );
    let line = line_of(&spec, "customerProfile: {operators: [eq]}");
    assert_refused(
        &spec,
        &[
            &format!("referrals.yaml:{line}:"),
            "`x-filterable` entry `customerProfile`",
            "the member has no comparison",
        ],
    );
    let spec = edited(
        "        engagementId: {operators: [eq, ne]}",
        "        engagementId: {operators: [eq, ne]}\n        favorite: {operators: [eq, gt]}",
    );
    assert_refused(&spec, &["`gt` compares for order, and a boolean has none"]);
}

#[test]
fn a_patchable_path_that_names_no_member_is_refused_with_its_line() {
    let spec = edited(
        "        /details/notes: [replace, add]",
        "        /details/note: [replace, add]",
    );
    let line = line_of(&spec, "/details/note: [replace, add]");
    assert_refused(
        &spec,
        &[
            &format!("referrals.yaml:{line}:"),
            "the schema `Referral`",
            "`x-patchable` entry `/details/note`",
            "`note` is not a member of `ReferralDetails` (its members: notes, dealValue",
        ],
    );
    let spec = edited("        /team/-: [add]", "        /team/-: [add, remove]");
    assert_refused(
        &spec,
        &[
            "`remove` is not a value of the `JsonPatchOp` schema (replace, add)",
            "add it to its `enum` (#/components/schemas/JsonPatchOp/enum)",
        ],
    );
    let spec = edited(
        "        /status: [replace, add]",
        "        /status/-: [add]",
    );
    assert_refused(
        &spec,
        &["`/-` appends to an array, and `status` is not one"],
    );
}

/// A document that declares an op on a path, with `JsonPatchOp` and `JsonPatchOperation`
/// edited as given.
fn with_op(op: &str, operation: (&str, &str)) -> String {
    let spec = edited(
        "      enum: [replace, add]\n",
        &format!("      enum: [replace, add, {op}]\n"),
    );
    let spec = spec.replacen(
        "        /externalReferenceId: [replace, add]",
        &format!("        /externalReferenceId: [replace, add, {op}]"),
        1,
    );
    assert!(spec.contains(operation.0), "{}", operation.0);
    spec.replacen(operation.0, operation.1, 1)
}

#[test]
fn an_op_that_the_patch_operation_schema_cannot_hold_is_refused_with_the_fix() {
    let spec = with_op(
        "remove",
        (
            "      required: [op, path]\n",
            "      required: [op, path, value]\n",
        ),
    );
    assert_refused(
        &spec,
        &[
            "`x-patchable` entry `/externalReferenceId`",
            "`remove` takes no `value`, and `JsonPatchOperation` requires one",
            "take `value` out of its `required` (#/components/schemas/JsonPatchOperation/required)",
        ],
    );
    let from = "        from:\n          type: string\n          description: For `move` and `copy`, a \
                JSON Pointer to the member whose value is taken.\n";
    let spec = with_op("move", (from, ""));
    assert_refused(
        &spec,
        &[
            "`move` takes a `from`, and `JsonPatchOperation` has no such member",
            "add `from` to its `properties` (#/components/schemas/JsonPatchOperation/properties)",
        ],
    );
    let spec = with_op("delete", ("", ""));
    assert_refused(
        &spec,
        &["`delete` is not a JSON Patch operation; RFC 6902 defines add, remove, replace"],
    );
}

#[test]
fn a_schema_that_contradicts_itself_is_refused_naming_both_places() {
    let spec = edited(
        "        direction:\n          type: string\n",
        "        direction:\n          type: integer\n",
    );
    assert_refused(
        &spec,
        &[
            "#/components/schemas/Referral/properties/direction says `type: integer`",
            "the schema it refers to (#/components/schemas/ReferralDirection) is of `type: string`",
            "Keep one",
        ],
    );
    let spec = edited("      enum: [replace, add]\n", "      enum: []\n");
    assert_refused(
        &spec,
        &["#/components/schemas/JsonPatchOp/enum is empty: no value can be one"],
    );
    let spec = edited("      enum: [replace, add]\n", "      enum: [replace, 2]\n");
    assert_refused(
        &spec,
        &["#/components/schemas/JsonPatchOp/enum holds 2, which no value of `type: string` is"],
    );
}

#[test]
fn a_status_rule_that_names_an_unknown_value_is_refused() {
    let spec = edited("        Active: {to: [", "        Active: {to: [Archived, ");
    let line = line_of(&spec, "Active: {to: [Archived, ");
    assert_refused(
        &spec,
        &[
            &format!("referrals.yaml:{line}:"),
            "`x-status-rules` entry `Active`",
            "`Archived` is not a value of `ReferralStatus` (",
        ],
    );
}

#[test]
fn a_missing_document_is_named() {
    let sandbox = Sandbox::new("", Some("// before\n"));
    std::fs::remove_file(sandbox.spec()).unwrap();
    let output = sandbox.codegen(false);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("cannot read the OpenAPI document"),
        "{message}"
    );
    assert!(
        message.contains(&sandbox.spec().display().to_string()),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.out()).unwrap(),
        "// before\n"
    );
}

#[test]
fn unknown_options_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["codegen", "--chek"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unexpected argument '--chek'"),
        "{}",
        stderr(&output)
    );
}

/// A checkout of its own: the document (changed by `edit`) and the generated copies, the
/// xtask's manifest, and nothing else.
fn other_checkout(edit: (&str, &str)) -> tempfile::TempDir {
    let checkout = tempfile::tempdir().unwrap();
    let copy = |path: &str| {
        let to = checkout.path().join(path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join(path), to).unwrap();
    };
    for path in [
        "xtask/Cargo.toml",
        "openapi/webhooks/webhooks.yaml",
        "crates/referrals-model/generated/model.rs",
        "crates/referrals-client/generated/client.rs",
        "crates/referrals-httpmock/generated/httpmock.rs",
        "crates/referrals-cli/generated/cli.rs",
        "crates/referrals-model/generated/webhooks.rs",
        "crates/referrals-client/generated/webhooks.rs",
    ] {
        copy(path);
    }
    std::fs::write(
        checkout.path().join("openapi/referrals.yaml"),
        edited(edit.0, edit.1),
    )
    .unwrap();
    checkout
}

#[test]
fn one_binary_works_on_the_checkout_it_is_run_from() {
    // Checkouts that share a build folder share the xtask's binary: each run must take the
    // checkout it is run from, as `cargo xtask` names it, or as the folder it is run in.
    let other = other_checkout((
        "The customer's company name.",
        "The customer's company title.",
    ));
    let run = |manifest: Option<&Path>, folder: &Path| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.args(["codegen", "--check"]).current_dir(folder);
        match manifest {
            Some(manifest) => command.env("CARGO_MANIFEST_DIR", manifest),
            None => command.env_remove("CARGO_MANIFEST_DIR"),
        };
        command.output().unwrap()
    };
    let here = run(Some(&root().join("xtask")), &root());
    assert!(here.status.success(), "{}", stderr(&here));
    assert!(stderr(&here).contains(&format!("checkout {}", root().display())));
    for manifest in [Some(other.path().join("xtask")), None] {
        let there = run(manifest.as_deref(), other.path());
        assert_eq!(there.status.code(), Some(1), "{}", stderr(&there));
        let named = format!("checkout {}", other.path().display());
        assert!(stderr(&there).contains(&named), "{}", stderr(&there));
        assert!(
            stdout(&there).contains("title"),
            "the other document's change"
        );
    }
}

#[test]
fn two_checkouts_sharing_a_build_folder_each_get_their_own_reference() {
    let tools = root().join("target/ci-tools");
    if !tools.join("node/node_modules/.bin/redocly").exists() {
        let required = std::env::var_os("REFERRALS_REQUIRE_REDOCLY").is_some();
        assert!(
            !required,
            "REFERRALS_REQUIRE_REDOCLY is set and {tools:?} has no redocly"
        );
        eprintln!(
            "skipped: no redocly under {} (bash .ci/run installs it)",
            tools.display()
        );
        return;
    }
    let other = other_checkout((
        "The customer's company name.",
        "The customer's company title.",
    ));
    std::fs::create_dir_all(other.path().join("target")).unwrap();
    std::os::unix::fs::symlink(&tools, other.path().join("target/ci-tools")).unwrap();
    let shared = tempfile::tempdir().unwrap();
    let docs = |checkout: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["docs", "--skip-man"])
            .current_dir(checkout)
            .env("CARGO_MANIFEST_DIR", checkout.join("xtask"))
            .env("CARGO_TARGET_DIR", shared.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let page = stdout(&output)
            .lines()
            .find_map(|line| line.strip_prefix("wrote ").map(PathBuf::from))
            .expect("the page's path");
        (page.clone(), std::fs::read_to_string(page).unwrap())
    };
    let (here, here_text) = docs(&root());
    let (there, there_text) = docs(other.path());
    assert_ne!(here, there, "each checkout has its own folder");
    assert!(here.starts_with(shared.path()) && there.starts_with(shared.path()));
    assert!(here_text.contains("company name") && !here_text.contains("company title"));
    assert!(
        there_text.contains("company title"),
        "the other checkout's document"
    );
    // The first one's page is still its own.
    assert_eq!(std::fs::read_to_string(&here).unwrap(), here_text);
}
