//! `cargo xtask mutants`: how many mutants of the sync (`crates/referrals-client/src/sync/`)
//! the tests that CI runs catch, with cargo-mutants (`cargo install cargo-mutants`).
//!
//! The sync's tests live in two crates: the client's (servers that misbehave, and a small
//! sandbox for the first run in parts; seconds a run) and the contract tests
//! (`tests/tests/sync.rs`: the sandbox with writers, kills, shuffled ties and no count; a
//! minute and a half a run). Running both against every mutant takes hours on two cores, so
//! the task runs in two steps: every mutant against the client's tests, then only the mutants
//! that survived against the contract tests of the sync. A mutant is detected when either step
//! catches it (or its tests time out); the score is over the viable mutants (those that build).
//!
//! What the steps detected is kept in a record (`<target dir>/mutants/record`), with a copy of
//! the sources it was measured on. `--again` measures only the mutants that the record does
//! not hold as detected or unviable, first against the client's tests again: after tests were
//! added, or to finish a run that was stopped. Tests only ever added keep a detected mutant
//! detected; a change of the sync's sources makes other mutants, so `--again` refuses it. A
//! step that was stopped keeps what it found: cargo-mutants writes each outcome as it comes,
//! and `--again` adds the stopped step's report to the record before going on. A timeout
//! counts as detected and stays so: on a busy machine, give `--timeout` room.
//!
//! The mutants build in a target directory of their own (`<target dir>/mutants/target`), so
//! that the workspace's builds stay warm; cargo-mutants' reports go to
//! `<target dir>/mutants/client` and `<target dir>/mutants/contract`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, ExitCode};

mod record;

use record::Record;

/// The folder of the sync's modules, whose every file is mutated.
const SYNC: &str = "crates/referrals-client/src/sync";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds before a test run of one mutant counts as hung (and so as caught), for the
    /// client's tests (about ten seconds when nothing hangs, more beside other builds); the
    /// contract tests get five times as long.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Mutants built and tested at once (cargo-mutants' `--jobs`). Each job rebuilds the
    /// client in a copy of its own: on two cores, 1 is the fastest.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Measure only the mutants that the last run's record does not hold as detected or
    /// unviable (after tests were added, or to finish a stopped run); refused when the sync's
    /// sources changed since.
    #[arg(long)]
    again: bool,
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
    timeout: Vec<String>,
    unviable: Vec<String>,
}

fn measure(args: &Args) -> Result<(), String> {
    let out = crate::bench_kit::target_dir()?.join("mutants");
    let files = sync_files()?;
    let all = list(&files)?;
    let mut record = if args.again {
        Record::read(&out, &files)?
    } else {
        Record::start(&out, &files)?
    };
    let settings = (args.timeout, args.jobs);
    let client = step(&out, Step::Client, &files, settings, &mut record)?;
    record.add(Step::Client, &client)?;
    if all.iter().any(|name| !record.settled(name)) {
        let timeout = args.timeout.saturating_mul(5);
        let contract = step(
            &out,
            Step::Contract,
            &files,
            (timeout, args.jobs),
            &mut record,
        )?;
        record.add(Step::Contract, &contract)?;
    }
    report(&all, &record)
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

/// The names of every mutant of `files`, as cargo-mutants' reports write them.
fn list(files: &[String]) -> Result<BTreeSet<String>, String> {
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(crate::root())
        .args(["mutants", "--list", "--colors", "never"]);
    for file in files {
        command.args(["--file", file]);
    }
    let output = command.output().map_err(|error| {
        format!("cannot run cargo mutants (cargo install cargo-mutants): {error}")
    })?;
    if !output.status.success() {
        return Err(format!(
            "cargo mutants --list failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text.lines().map(str::to_owned).collect())
}

/// Which tests a step runs.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The client crate's tests, all of them.
    Client,
    /// The contract tests of the sync (`tests/tests/sync.rs`).
    Contract,
}

/// One run of cargo-mutants over `files` against the tests of `which`, skipping the mutants
/// that `record` holds as detected or unviable: cargo-mutants' `--iterate` skips the names
/// listed in `mutants.out/previously_caught.txt`. (Its `--re` would not do: cargo-mutants
/// 27.1 does not filter its "delete field" mutants by it.)
fn step(
    out: &Path,
    which: Step,
    files: &[String],
    (timeout, jobs): (u64, usize),
    record: &mut Record,
) -> Result<Outcome, String> {
    let name = match which {
        Step::Client => "client",
        Step::Contract => "contract",
    };
    let report = out.join(name);
    // What a run of this step that was stopped found, before its report is replaced.
    record.add(which, &read_outcome(&report.join("mutants.out"))?)?;
    record.skip_settled(&report)?;
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(crate::root())
        .env("CARGO_TARGET_DIR", out.join("target"))
        .args(["mutants", "--no-shuffle", "--iterate"])
        .args(["--timeout", &timeout.to_string()])
        .args(["--jobs", &jobs.to_string()])
        .arg("--output")
        .arg(&report);
    for file in files {
        command.args(["--file", file]);
    }
    match which {
        Step::Client => command.args(["--test-package", "referrals-client"]),
        Step::Contract => command.args([
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

/// The outcomes that cargo-mutants wrote in `folder`; none where it wrote no list.
fn read_outcome(folder: &Path) -> Result<Outcome, String> {
    // cargo-mutants leaves out the file of a kind that no mutant had.
    let list = |file: &str| record::read_names(&folder.join(file), true);
    Ok(Outcome {
        caught: list("caught.txt")?,
        timeout: list("timeout.txt")?,
        unviable: list("unviable.txt")?,
    })
}

/// Prints the score over the viable mutants, and those that no step detected.
fn report(all: &BTreeSet<String>, record: &Record) -> Result<(), String> {
    if let Some(name) = record.names().find(|name| !all.contains(*name)) {
        return Err(format!(
            "the record names a mutant that cargo mutants --list does not: {name}"
        ));
    }
    let unviable = all.iter().filter(|name| record.unviable(name)).count();
    let viable = all.len() - unviable;
    let detected = all.iter().filter(|name| record.detected(name)).count();
    let percent = if viable == 0 {
        100.0
    } else {
        detected as f64 * 100.0 / viable as f64
    };
    println!("mutants of the sync: {viable} viable, {unviable} unviable");
    println!(
        "  detected by the client's tests: {}",
        record.by(Step::Client, all)
    );
    println!(
        "  detected by the contract tests of the sync, of those left: {}",
        record.by(Step::Contract, all)
    );
    let timeouts = all.iter().filter(|name| record.timed_out(name)).count();
    println!("  detected: {detected} of {viable}, {percent:.1}% ({timeouts} by a timeout)");
    let missed: Vec<&String> = all.iter().filter(|name| !record.settled(name)).collect();
    if !missed.is_empty() {
        println!("missed by both:");
        for name in missed {
            println!("  {name}");
        }
    }
    Ok(())
}
