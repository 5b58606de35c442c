//! `cargo xtask snapshots`: accepts the snapshots of the examples after a change of the
//! document or of an example, in one command that leaves nothing stale: the pending
//! `.snap.new` files of earlier runs are removed, the examples' test runs with insta told to
//! write every snapshot (`INSTA_UPDATE=always`, `INSTA_FORCE_UPDATE=1`, so that the headers
//! are rewritten the same way each time and do not churn), and what changed is listed for
//! review (`git diff tests/tests/snapshots`).

use std::process::{Command, ExitCode};

const FOLDER: &str = "tests/tests/snapshots";

pub fn run() -> ExitCode {
    match accept() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn accept() -> Result<(), String> {
    let folder = crate::root().join(FOLDER);
    remove_pending(&folder)?;
    let status = Command::new(env!("CARGO"))
        .current_dir(crate::root())
        .env("INSTA_UPDATE", "always")
        .env("INSTA_FORCE_UPDATE", "1")
        .args([
            "test",
            "--quiet",
            "-p",
            "referrals-contract-tests",
            "--test",
            "examples",
        ])
        .status()
        .map_err(|error| format!("cannot run cargo test: {error}"))?;
    remove_pending(&folder)?;
    if !status.success() {
        return Err(
            "the examples' test fails for another reason than a snapshot; see above".into(),
        );
    }
    let changed = Command::new("git")
        .current_dir(crate::root())
        .args(["status", "--short", "--", FOLDER])
        .output()
        .map_err(|error| format!("cannot run git: {error}"))?;
    let changed = String::from_utf8_lossy(&changed.stdout);
    if changed.trim().is_empty() {
        println!("the snapshots were current: nothing changed");
    } else {
        println!("accepted; review with `git diff {FOLDER}`:\n{changed}");
    }
    Ok(())
}

/// Removes the `.snap.new` files that a failed run left.
fn remove_pending(folder: &std::path::Path) -> Result<(), String> {
    let entries = std::fs::read_dir(folder)
        .map_err(|error| format!("cannot read {}: {error}", folder.display()))?;
    for entry in entries.filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().ends_with(".snap.new") {
            std::fs::remove_file(entry.path())
                .map_err(|error| format!("cannot remove {}: {error}", entry.path().display()))?;
        }
    }
    Ok(())
}
