//! What the parts of `cargo xtask bench` share: the release binaries and the target directory,
//! a release sandbox, the CLI under measure, and `referrals-bench`'s reports.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::root;

/// The bearer token of the bench's sandboxes.
pub(crate) const TOKEN: &str = "bench";
/// The rounds of a measure taken several times, alternating.
pub(crate) const ROUNDS: usize = 5;

/// Where cargo puts the release binaries: `<target dir>/release`, the target dir as cargo
/// resolves it (`CARGO_TARGET_DIR`, `build.target-dir`, or `target/`).
pub(crate) fn release_dir() -> Result<PathBuf, String> {
    Ok(target_dir()?.join("release"))
}

/// The target directory as cargo resolves it (`CARGO_TARGET_DIR`, `build.target-dir`, or
/// `target/`).
pub(crate) fn target_dir() -> Result<PathBuf, String> {
    let output = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|error| format!("cannot run cargo metadata: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("cargo metadata printed no JSON: {error}"))?;
    let target = metadata["target_directory"]
        .as_str()
        .ok_or("cargo metadata names no target directory")?;
    Ok(PathBuf::from(target))
}

/// The CLI under measure: its binary, the bench's, and a scratch folder for its files.
pub(crate) struct Cli<'a> {
    pub(crate) binaries: &'a Path,
    pub(crate) scratch: PathBuf,
    referrals: String,
    pub(crate) bench: String,
}

impl<'a> Cli<'a> {
    pub(crate) fn new(binaries: &'a Path) -> Result<Self, String> {
        let scratch = binaries.join("bench-scratch");
        std::fs::create_dir_all(&scratch)
            .map_err(|error| format!("cannot create {}: {error}", scratch.display()))?;
        Ok(Self {
            binaries,
            scratch,
            referrals: binaries.join("referrals").to_string_lossy().into_owned(),
            bench: binaries
                .join("referrals-bench")
                .to_string_lossy()
                .into_owned(),
        })
    }

    pub(crate) fn out(&self, name: &str) -> String {
        self.scratch.join(name).to_string_lossy().into_owned()
    }

    /// The command line of `referrals` against `url` with `args`.
    pub(crate) fn command(&self, url: &str, args: &[&str]) -> Vec<String> {
        [
            self.referrals.as_str(),
            "--root",
            url,
            "--token",
            TOKEN,
            "--quiet",
        ]
        .iter()
        .chain(args)
        .map(|arg| (*arg).to_owned())
        .collect()
    }

    /// The command line of an export of `url` to `file`.
    pub(crate) fn export_args(&self, url: &str, file: &str, format: &str) -> Vec<String> {
        let args = ["export", "--out", file, "--format", format, "--restart"];
        self.command(url, &args)
    }

    /// The command line of `sync --db` of `url` into `db`.
    pub(crate) fn sync_args(&self, url: &str, db: &str) -> Vec<String> {
        self.command(url, &["sync", "--db", db, "--skew", "0s"])
    }
}

/// Runs `command` (program and arguments) under `referrals-bench measure`.
pub(crate) fn measured(binaries: &Path, command: &[String]) -> Result<serde_json::Value, String> {
    let mut args = vec!["measure"];
    args.extend(command.iter().map(String::as_str));
    let report = run_bench_tool(binaries, &args)?;
    match report["exit"].as_i64() {
        Some(0) => Ok(report),
        other => Err(format!("{command:?} ended with the status {other:?}")),
    }
}

pub(crate) struct Sandbox {
    child: Child,
    pub(crate) url: String,
}

impl Sandbox {
    /// A release sandbox holding `total` referrals (the 2 of the seed examples included).
    pub(crate) fn start(binaries: &Path, total: usize) -> Result<Self, String> {
        Self::start_with(binaries, total, &[])
    }

    /// [`Self::start`], with more arguments.
    pub(crate) fn start_with(binaries: &Path, total: usize, more: &[&str]) -> Result<Self, String> {
        let binary = binaries.join("referrals-sandbox");
        let mut child = Command::new(&binary)
            .args([
                "--seed-count",
                &(total - 2).to_string(),
                "--token",
                TOKEN,
                "--quiet",
            ])
            .args(more)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot start the sandbox {}: {error}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no standard output")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|error| format!("cannot read the sandbox's address: {error}"))?;
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("the sandbox said `{}` instead of its address", line.trim()))?
            .to_owned();
        Ok(Self { child, url })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `referrals-bench` (the measuring tool) with `args`, and gives the JSON report it
/// prints.
pub(crate) fn run_bench_tool(binaries: &Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let output = Command::new(binaries.join("referrals-bench"))
        .args(args)
        // One malloc arena: glibc's per-thread arenas otherwise add a drift of a few hundred
        // KiB between runs that has nothing to do with what the program keeps.
        .env("MALLOC_ARENA_MAX", "1")
        .output()
        .map_err(|error| format!("cannot run referrals-bench: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "referrals-bench {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("referrals-bench printed no report: {error}"))
}

/// The number at `key` of a report of `referrals-bench`.
pub(crate) fn report_number(report: &serde_json::Value, key: &str) -> Result<f64, String> {
    report[key]
        .as_f64()
        .ok_or_else(|| format!("no `{key}` in {report}"))
}

pub(crate) fn check_count(report: &serde_json::Value, expected: usize) -> Result<(), String> {
    match report["referrals"].as_u64() {
        Some(count) if count as usize == expected => Ok(()),
        other => Err(format!("expected {expected} referrals, counted {other:?}")),
    }
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
