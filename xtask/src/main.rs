//! `cargo xtask <task>`: the workspace's own tasks.
//!
//! ```text
//! cargo xtask codegen            write the reviewable copies of the generated code:
//!                                crates/referrals-model/generated/model.rs,
//!                                crates/referrals-client/generated/client.rs,
//!                                crates/referrals-httpmock/generated/httpmock.rs and
//!                                crates/referrals-cli/generated/cli.rs
//! cargo xtask codegen --check    change nothing; exit 1 with a unified diff when it is stale
//! cargo xtask bench              measure paging, memory and the sandbox's throughput
//! cargo xtask docs [--browser]   the HTML reference and the man pages, in <target dir>/docs
//! cargo xtask snapshots          accept the examples' snapshots, leaving nothing pending
//! cargo xtask mutants            how many mutants of the sync the tests catch (cargo-mutants)
//! ```
//!
//! `--spec <file>`, `--model-out <file>`, `--out <file>`, `--mock-out <file>` and
//! `--cli-out <file>` point the task at other files (the tests use copies).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bench_cli;
mod bench_events;
mod bench_feed;
mod bench_groups;
mod bench_kit;
mod bench_latency;
mod bench_mirror;
mod codegen;
mod docs;
mod mutants;
mod snapshots;
mod summary;

/// Exit status of a `--check` that found the committed copy stale.
const STALE: u8 = 1;
/// Exit status of bad input or a failed task.
const FAILED: u8 = 2;

/// The workspace's own tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Generate the model, the client and the typed httpmock helpers from the OpenAPI document
    /// and write their reviewable copies.
    #[command(
        after_help = "Exit status: 0 when the copies are current (or were written), 1 when \
                            --check finds one stale (with a diff on stdout), 2 on bad input."
    )]
    Codegen(codegen::Args),
    /// Build the sandbox and the measuring programs in release mode and print a report
    /// (about ten minutes on two cores).
    Bench(bench::Args),
    /// Build the HTML reference of the document (with its vendor extensions as tables) and the
    /// man pages of `referrals` in `<target dir>/docs/`; `--browser` checks the page in
    /// headless Chromium.
    Docs(docs::Args),
    /// Accept the snapshots of the examples after a change of the document or of an example:
    /// nothing pending is left, and the headers do not churn.
    Snapshots,
    /// Measure how many mutants of the sync the tests that CI runs catch: every mutant against
    /// the client's tests, then the survivors against the contract tests of the sync (hours on
    /// two cores; `--again` goes on from the last run's record; needs `cargo install
    /// cargo-mutants`).
    Mutants(mutants::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(FAILED)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // Which checkout is worked on, so that checkouts sharing a build folder can tell.
    eprintln!("checkout {}", root().display());
    match cli.task {
        Task::Codegen(args) => codegen::run(args),
        Task::Bench(args) => bench::run(args),
        Task::Docs(args) => docs::run(args),
        Task::Snapshots => snapshots::run(),
        Task::Mutants(args) => mutants::run(args),
    }
}

/// The checkout that this run works on, found at run time: the workspace of the manifest
/// that cargo ran the xtask from (`cargo run` sets `CARGO_MANIFEST_DIR` for the process), else
/// the workspace above the current folder. Never the folder the binary was built in:
/// checkouts that share a build folder (`CARGO_TARGET_DIR`) share the xtask's binary, and each
/// must work on its own document, generator and outputs.
fn root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let from_cargo = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .and_then(|xtask| xtask.parent().map(Path::to_owned))
            .filter(|root| is_checkout(root));
        let from_here = || {
            let here = std::env::current_dir().ok()?;
            here.ancestors()
                .find(|dir| is_checkout(dir))
                .map(Path::to_owned)
        };
        from_cargo.or_else(from_here).unwrap_or_else(|| {
            eprintln!(
                "error: run from a checkout of the workspace (no xtask/Cargo.toml and openapi/ \
                 above the current folder)"
            );
            std::process::exit(i32::from(FAILED));
        })
    })
    .clone()
}

/// Whether `dir` is a checkout of this workspace.
fn is_checkout(dir: &Path) -> bool {
    dir.join("xtask/Cargo.toml").is_file() && dir.join("openapi").is_dir()
}

/// `path` relative to the workspace root when it is inside it, for shorter messages.
fn shown(path: &Path) -> String {
    let root = root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}
