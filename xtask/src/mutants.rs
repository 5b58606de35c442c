//! `cargo xtask mutants`: how many mutants of the sync (`crates/referrals-client/src/sync/`)
//! the tests that CI runs catch, with cargo-mutants (`cargo install cargo-mutants`).
//!
//! The sync's tests live in two crates: the client's (servers that misbehave, fast) and the
//! contract tests (`tests/tests/sync.rs`: the sandbox with writers, kills, shuffled ties and no
//! count; a minute a run). Running both against every mutant takes hours on two cores, so the
//! task runs in two steps: every mutant against the client's tests, then only the mutants that
//! survived against the contract tests of the sync. A mutant is caught when either step catches
//! it (or its tests time out); the score is over the viable mutants (those that build).
//!
//! The mutants build in a target directory of their own (`<target dir>/mutants/target`), so
//! that the workspace's builds stay warm; cargo-mutants' reports go to
//! `<target dir>/mutants/client` and `<target dir>/mutants/contract`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The folder of the sync's modules, whose every file is mutated.
const SYNC: &str = "crates/referrals-client/src/sync";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds before a test run of one mutant counts as hung (and so as caught), for the
    /// client's tests; the contract tests get five times as long.
    #[arg(long, default_value_t = 40)]
    timeout: u64,
    /// Mutants built and tested at once (cargo-mutants' `--jobs`).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

pub fn run(args: Args) -> ExitCode {
    match measure(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(crate::FAILED)
        }
    }
}

/// What one step of cargo-mutants found, from its `mutants.out` folder.
#[derive(Debug, Default)]
struct Outcome {
    caught: Vec<String>,
    missed: Vec<String>,
    timeout: Vec<String>,
    unviable: Vec<String>,
}

fn measure(args: &Args) -> Result<(), String> {
    let out = crate::bench_kit::target_dir()?.join("mutants");
    let files = sync_files()?;
    let client = step(&out, "client", &files, (args.timeout, args.jobs), None)?;
    let contract = if client.missed.is_empty() {
        Outcome::default()
    } else {
        let names = client.missed.iter().map(|name| escape(name));
        let only = format!("^({})$", names.collect::<Vec<_>>().join("|"));
        let timeout = args.timeout.saturating_mul(5);
        step(&out, "contract", &files, (timeout, args.jobs), Some(&only))?
    };
    report(&client, &contract);
    Ok(())
}

/// The sync's source files, relative to the workspace root.
fn sync_files() -> Result<Vec<String>, String> {
    let folder = crate::root().join(SYNC);
    let entries = std::fs::read_dir(&folder)
        .map_err(|error| format!("cannot read {}: {error}", folder.display()))?;
    let mut files: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".rs"))
        .map(|name| format!("{SYNC}/{name}"))
        .collect();
    files.sort();
    Ok(files)
}

/// One run of cargo-mutants over `files`: against the client's tests, or (with `only`, a
/// regex of mutant names) against the contract tests of the sync.
fn step(
    out: &Path,
    name: &str,
    files: &[String],
    (timeout, jobs): (u64, usize),
    only: Option<&str>,
) -> Result<Outcome, String> {
    let report = out.join(name);
    // cargo-mutants makes its report's folder, but not the folders above it.
    std::fs::create_dir_all(out)
        .map_err(|error| format!("cannot create {}: {error}", out.display()))?;
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(crate::root())
        .env("CARGO_TARGET_DIR", out.join("target"))
        .args(["mutants", "--no-shuffle", "--timeout", &timeout.to_string()])
        .args(["--jobs", &jobs.to_string()])
        .arg("--output")
        .arg(&report);
    for file in files {
        command.args(["--file", file]);
    }
    match only {
        None => command.args(["--test-package", "referrals-client"]),
        Some(only) => command.args([
            "--re",
            only,
            "--test-package",
            "referrals-contract-tests",
            "--cargo-test-arg=--test=sync",
        ]),
    };
    eprintln!("cargo mutants: {name} step");
    let status = command.status().map_err(|error| {
        format!("cannot run cargo mutants (cargo install cargo-mutants): {error}")
    })?;
    // 0: all caught; 2: some missed; 3: some timed out. Anything else is a failure to run.
    if !matches!(status.code(), Some(0 | 2 | 3)) {
        return Err(format!("cargo mutants ({name} step) failed: {status}"));
    }
    read_outcome(&report.join("mutants.out"))
}

fn read_outcome(folder: &Path) -> Result<Outcome, String> {
    let list = |file: &str| -> Result<Vec<String>, String> {
        let path: PathBuf = folder.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        Ok(text.lines().map(str::to_owned).collect())
    };
    Ok(Outcome {
        caught: list("caught.txt")?,
        missed: list("missed.txt")?,
        timeout: list("timeout.txt")?,
        unviable: list("unviable.txt")?,
    })
}

/// `text` as a regex that matches it literally.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Prints the score. The contract step's counts are taken over the client step's survivors
/// only: cargo-mutants 27.1 does not filter its "delete field" mutants by `--re`, so that step
/// may test a few others again.
fn report(client: &Outcome, contract: &Outcome) {
    let viable = client.caught.len() + client.missed.len() + client.timeout.len();
    let by_client = client.caught.len() + client.timeout.len();
    let survivor = |name: &&String| client.missed.contains(name);
    let by_contract = contract
        .caught
        .iter()
        .chain(&contract.timeout)
        .filter(survivor)
        .count();
    let detected = by_client + by_contract;
    let percent = if viable == 0 {
        100.0
    } else {
        detected as f64 * 100.0 / viable as f64
    };
    println!(
        "mutants of the sync: {viable} viable, {} unviable",
        client.unviable.len()
    );
    println!(
        "  caught by the client's tests: {by_client} ({} of them by a timeout)",
        client.timeout.len()
    );
    println!(
        "  caught by the contract tests of the sync, of the {} left: {by_contract}",
        client.missed.len()
    );
    println!("  detected: {detected} of {viable}, {percent:.1}%");
    let missed: Vec<&String> = contract.missed.iter().filter(survivor).collect();
    if !missed.is_empty() {
        println!("missed by both:");
        for name in missed {
            println!("  {name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_escaped_to_match_itself() {
        assert_eq!(
            escape("a.rs:1:2: replace || with && in f(x) -> [T]"),
            "a\\.rs:1:2: replace \\|\\| with \\&\\& in f\\(x\\) \\-> \\[T\\]"
        );
    }
}
