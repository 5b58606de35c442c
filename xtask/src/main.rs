//! `cargo xtask <task>`: the workspace's own tasks.
//!
//! ```text
//! cargo xtask codegen            write the reviewable copies of the generated code:
//!                                crates/referrals-model/generated/model.rs,
//!                                crates/referrals-client/generated/client.rs and
//!                                crates/referrals-httpmock/generated/httpmock.rs
//! cargo xtask codegen --check    change nothing; exit 1 with a unified diff when it is stale
//! cargo xtask bench              measure paging, memory and the sandbox's throughput
//! ```
//!
//! `--spec <file>`, `--model-out <file>`, `--out <file>` and `--mock-out <file>` point the task
//! at other files (the tests use copies).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod bench;
mod codegen;

/// Exit status of a `--check` that found the committed copy stale.
const STALE: u8 = 1;
/// Exit status of bad input or a failed task.
const FAILED: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("codegen") => codegen::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        None | Some("help" | "--help" | "-h") => {
            print!("{}", USAGE);
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown task `{other}`\n\n{USAGE}");
            ExitCode::from(FAILED)
        }
    }
}

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  codegen [--check] [--spec <file>] [--model-out <file>] [--out <file>] [--mock-out <file>]
      Generate the model, the client and the typed httpmock helpers from the OpenAPI document
      and write the reviewable copies.
      --check      change nothing; exit 0 when the copies are current, 1 with a diff when not
      --spec       the document (default: openapi/referrals.yaml)
      --model-out  the model's copy (default: crates/referrals-model/generated/model.rs)
      --out        the client's copy (default: crates/referrals-client/generated/client.rs)
      --mock-out   the mocks' copy (default: crates/referrals-httpmock/generated/httpmock.rs);
                   naming any file handles only the files named

  bench [--seconds N]
      Build the sandbox and the measuring programs in release mode and report: paging 10,000
      referrals through the client against plain reqwest + serde_json (ratio), the client's
      peak memory for 1,000 and 10,000 referrals, and the sandbox's requests per second for a
      filtered, ordered page over 10,000 and 100,000 referrals (N seconds each, default 10).
";

/// The workspace root, which holds this crate.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

/// `path` relative to the workspace root when it is inside it, for shorter messages.
fn shown(path: &Path) -> String {
    let root = root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}
