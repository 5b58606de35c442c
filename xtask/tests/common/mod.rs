//! What the tests that build a copy of the workspace share.

#![allow(dead_code, reason = "each test file uses its part")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The checkout that the test is run from.
pub fn root() -> PathBuf {
    // At run time (cargo sets it for the test): a test binary shared by checkouts that share a
    // build folder works on the checkout it is run from.
    let xtask = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    Path::new(&xtask)
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

/// The target directory that holds this test's executable: `<target>/<profile>/deps/<test>`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    exe.ancestors()
        .nth(3)
        .expect("the test runs from <target>/<profile>/deps")
        .to_owned()
}

/// Copies the folder `from` to `to`, but for build outputs (`target`).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_name() == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A process's status and output, for a failed assertion.
pub fn show(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The `[profile.*]` sections of the workspace's manifest, so that a build of a copy builds the
/// registry dependencies as the workspace does and finds them already built: with cargo's
/// default profile it would build them all again, with full debug info, in the same target.
pub fn profiles(root: &Path) -> String {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut kept = String::new();
    let mut keep = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            keep = line.starts_with("[profile.");
        }
        if keep {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    assert!(
        !kept.is_empty(),
        "the workspace's manifest has profile sections"
    );
    kept
}

/// The `members = [...]` block of the workspace's manifest.
pub fn members_block(root: &Path) -> String {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let start = manifest.find("members = [").expect("a members list");
    let end = start + manifest[start..].find(']').expect("its end") + 1;
    manifest[start..end].to_owned()
}

/// A copy of the document, of the crates `crates` (under `crates/`) and of the folders
/// `folders` (such as `tests`) in `copy`, in a workspace of their own whose members they are,
/// with the workspace's settings and lock file.
pub fn copy_workspace(root: &Path, copy: &Path, crates: &[&str], folders: &[&str]) {
    let mut members = Vec::new();
    for name in crates {
        let path = format!("crates/{name}");
        copy_dir(&root.join(&path), &copy.join(&path));
        members.push(format!("{path:?}"));
    }
    for folder in folders {
        copy_dir(&root.join(folder), &copy.join(folder));
        members.push(format!("{folder:?}"));
    }
    copy_dir(&root.join("openapi"), &copy.join("openapi"));
    std::fs::write(
        copy.join("Cargo.toml"),
        std::fs::read_to_string(root.join("Cargo.toml"))
            .unwrap()
            .replace(
                &members_block(root),
                &format!("members = [{}]", members.join(", ")),
            ),
    )
    .unwrap();
    std::fs::copy(root.join("Cargo.lock"), copy.join("Cargo.lock")).unwrap();
}

/// `cargo xtask codegen` (with `--check` when `check`) on a copy's document and its model's
/// and client's generated copies.
pub fn codegen_copy(copy: &Path, check: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.arg("codegen");
    if check {
        command.arg("--check");
    }
    command
        .arg("--spec")
        .arg(copy.join("openapi/referrals.yaml"));
    for (flag, file) in [
        ("--model-out", "crates/referrals-model/generated/model.rs"),
        ("--out", "crates/referrals-client/generated/client.rs"),
    ] {
        command.arg(flag).arg(copy.join(file));
    }
    command.output().unwrap()
}

/// `cargo --offline <args>` in `folder`, built in the target directory that holds this test;
/// what cargo told this test about its own package is not passed on.
pub fn cargo_in(folder: &Path, args: &[&str]) -> Output {
    let mut run = Command::new(env!("CARGO"));
    run.current_dir(folder).arg("--offline").args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("CARGO_") && name != "CARGO_HOME" {
            run.env_remove(name);
        }
    }
    run.env("CARGO_TARGET_DIR", target_dir())
        .env("RUST_BACKTRACE", "0");
    run.output().unwrap()
}
