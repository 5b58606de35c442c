//! `cargo xtask bench`: the measurements of the client and the sandbox, side by side in one
//! run, on loopback. Nothing here passes or fails on a clock; it prints a report.
//!
//! 1. Paging: 10,000 referrals from a release sandbox, read with `Client::list_all`, with a
//!    first run of the sync, and with a plain reqwest + serde_json loop, in turn, five rounds
//!    each; the ratios of medians.
//! 2. Memory: the peak resident memory of paging and of syncing 1,000, 10,000 and 100,000
//!    referrals.
//! 3. Load: requests per second for a filtered page newest first, and for the page that a sync
//!    asks for (a range of `updatedDateTime`), over 10,000 and 100,000 referrals, with the
//!    closed-loop load generator of `referrals-bench`.
//! 4. The CLI: `referrals export` of 10,000 referrals against the plain reqwest loop over the
//!    same pages, both timed as whole processes, alternating, the ratio of medians; and the
//!    peak memory of `referrals export` (NDJSON, CSV) and `referrals sync --db` over 10,000 and
//!    100,000 referrals.
//! 5. Events (`bench_events`), latency (`bench_latency`), the mirror (`bench_mirror`), the
//!    change feed (`bench_feed`) and groups of referrals that share their sort keys
//!    (`bench_groups`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

use crate::{FAILED, root};

pub(crate) const TOKEN: &str = "bench";
const ROUNDS: usize = 5;
/// The pages of the load test, written as the client sends them: a filtered page newest first;
/// the page that a sync asks for (a range of `updatedDateTime`, in its order); the same with
/// `$count`.
const PAGES: [&str; 3] = [
    "/v1.0/engagements/referrals?$filter=status%20eq%20'New'%20and%20direction%20eq%20'Incoming'&$orderby=createdDateTime%20desc",
    "/v1.0/engagements/referrals?$filter=updatedDateTime%20ge%202022-01-01T00:00:00Z%20and%20updatedDateTime%20le%202024-01-01T00:00:00Z&$orderby=updatedDateTime%20asc",
    "/v1.0/engagements/referrals?$filter=updatedDateTime%20ge%202022-01-01T00:00:00Z%20and%20updatedDateTime%20le%202024-01-01T00:00:00Z&$orderby=updatedDateTime%20asc&$count=true",
];

/// `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long each load run lasts, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Only these parts (repeat for several) [default: every part].
    #[arg(long, value_enum)]
    only: Vec<BenchPart>,
}

/// The parts of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BenchPart {
    /// The client, the sync and the plain loop paging; their memory; the sandbox's load.
    Paging,
    /// The CLI's export and sync, and their memory.
    Cli,
    /// Verifications a second, and change → row by events and by sync.
    Events,
    /// A first sync and an export at a service's round trip, against the floor of one round
    /// trip a page in a row.
    Latency,
    /// A first sync of 100,000 referrals into SQLite and into PostgreSQL, against the plain
    /// loop.
    Mirror,
    /// The change feed: a first sync with the change log against without it, and change →
    /// a consumer's handler (library, --exec, --post) on SQLite and PostgreSQL.
    Feed,
    /// A group of referrals at one instant (a migration) and ties in a new order on every
    /// request: the sync's processor time, state and requests.
    Groups,
}

pub fn run(args: Args) -> ExitCode {
    let parts = if args.only.is_empty() {
        vec![
            BenchPart::Paging,
            BenchPart::Cli,
            BenchPart::Events,
            BenchPart::Latency,
            BenchPart::Mirror,
            BenchPart::Feed,
            BenchPart::Groups,
        ]
    } else {
        args.only.clone()
    };
    match measure(args.seconds, &parts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(FAILED)
        }
    }
}

/// Where cargo puts the release binaries: `<target dir>/release`, the target dir as cargo
/// resolves it (`CARGO_TARGET_DIR`, `build.target-dir`, or `target/`).
fn release_dir() -> Result<PathBuf, String> {
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

fn measure(seconds: u64, parts: &[BenchPart]) -> Result<(), String> {
    let binaries = release_dir()?;
    println!("building the release binaries (referrals-sandbox, referrals-bench, referrals)...");
    let status = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "referrals-sandbox",
            "-p",
            "referrals-bench",
            "-p",
            "referrals-cli",
        ])
        .status()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !status.success() {
        return Err("the release build failed".into());
    }

    if parts.contains(&BenchPart::Paging) {
        paging(&binaries)?;
        paging_memory(&binaries)?;
        load(&binaries, seconds)?;
    }
    let cli = Cli::new(&binaries)?;
    if parts.contains(&BenchPart::Cli) {
        cli.export()?;
        cli.memory()?;
    }
    if parts.contains(&BenchPart::Events) {
        crate::bench_events::run(&binaries, &cli.scratch)?;
    }
    if parts.contains(&BenchPart::Latency) {
        crate::bench_latency::run(&cli)?;
    }
    if parts.contains(&BenchPart::Mirror) {
        crate::bench_mirror::run(&cli)?;
    }
    if parts.contains(&BenchPart::Feed) {
        crate::bench_feed::run(&cli)?;
    }
    if parts.contains(&BenchPart::Groups) {
        crate::bench_groups::run(&binaries)?;
    }
    let _ = std::fs::remove_dir_all(&cli.scratch);
    println!(
        "\n(2 cores: the load generator and the sandbox share them; compare within a run, not across machines.)"
    );
    Ok(())
}

/// The client's listing and the sync against the plain loop.
fn paging(binaries: &Path) -> Result<(), String> {
    println!("\n## Paging 10,000 referrals (median of {ROUNDS} rounds, alternating)");
    let server = Sandbox::start(binaries, 10_000)?;
    let modes = ["client", "sync", "raw"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for _ in 0..ROUNDS {
        for (mode, times) in modes.iter().zip(times.iter_mut()) {
            let report = probe(binaries, &[mode, &server.url, TOKEN])?;
            check_count(&report, 10_000)?;
            times.push(number(&report, "seconds")?);
        }
    }
    drop(server);
    let medians: Vec<f64> = times.iter_mut().map(|times| median(times)).collect();
    let (client, sync, raw) = (medians[0], medians[1], medians[2]);
    let per_referral = |seconds: f64| seconds * 1e6 / 10_000.0;
    for (label, seconds) in [
        ("client (list_all):       ", client),
        ("sync (first run):        ", sync),
        ("reqwest + serde_json:    ", raw),
    ] {
        println!(
            "{label} {:>8.1} ms   {:>6.1} µs/referral",
            seconds * 1e3,
            per_referral(seconds)
        );
    }
    println!("ratio client / plain:     {:>8.2}", client / raw);
    println!("ratio sync / plain:       {:>8.2}", sync / raw);

    Ok(())
}

/// The peak memory of the client's listing and of the sync.
fn paging_memory(binaries: &Path) -> Result<(), String> {
    println!("\n## Peak memory while paging and syncing (VmHWM)");
    println!("{:>9} referrals   {:>12}   {:>12}", "", "client", "sync");
    for total in [1_000, 10_000, 100_000] {
        let server = Sandbox::start(binaries, total)?;
        let client = probe(binaries, &["client", &server.url, TOKEN])?;
        check_count(&client, total)?;
        let sync = probe(binaries, &["sync", &server.url, TOKEN])?;
        check_count(&sync, total)?;
        println!(
            "{total:>9} referrals   {:>8.0} KiB   {:>8.0} KiB   (sync: {} batches, largest state {} bytes)",
            number(&client, "peak_kib")?,
            number(&sync, "peak_kib")?,
            number(&sync, "batches")?,
            number(&sync, "largest_state_bytes")?
        );
    }

    Ok(())
}

/// The sandbox's requests per second of each page of [`PAGES`].
fn load(binaries: &Path, seconds: u64) -> Result<(), String> {
    println!("\n## Requests per second of one page, 2 connections, {seconds} s each");
    for page in PAGES {
        println!("GET {page}");
        for total in [10_000, 100_000] {
            let server = Sandbox::start(binaries, total)?;
            let load = probe(
                binaries,
                &["load", &server.url, TOKEN, page, "2", &seconds.to_string()],
            )?;
            drop(server);
            println!(
                "{total:>7} referrals: {:>8.1} requests/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} failed)",
                number(&load, "requests_per_second")?,
                number(&load, "p50_ms")?,
                number(&load, "p99_ms")?,
                number(&load, "failed")?
            );
        }
    }
    Ok(())
}

/// The CLI under measure: its binary, the bench's, and a scratch folder for its files.
pub(crate) struct Cli<'a> {
    pub(crate) binaries: &'a Path,
    pub(crate) scratch: PathBuf,
    referrals: String,
    bench: String,
}

impl<'a> Cli<'a> {
    fn new(binaries: &'a Path) -> Result<Self, String> {
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
    fn command(&self, url: &str, args: &[&str]) -> Vec<String> {
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

    /// The CLI's export against the plain loop.
    fn export(&self) -> Result<(), String> {
        let binaries = self.binaries;
        let exported = |path: &str| -> Result<usize, String> {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read the export {path}: {error}"))?;
            Ok(text.lines().count())
        };
        println!(
            "\n## referrals export of 10,000 referrals against the plain loop (whole processes, median of {ROUNDS} rounds, alternating)"
        );
        let server = Sandbox::start(binaries, 10_000)?;
        let file = self.out("export.ndjson");
        let raw_args: Vec<String> = [self.bench.as_str(), "raw", &server.url, TOKEN]
            .map(str::to_owned)
            .to_vec();
        let (mut export_times, mut raw_times) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let export = measured(binaries, &self.export_args(&server.url, &file, "ndjson"))?;
            if exported(&file)? != 10_000 {
                return Err(format!("the export {file} does not hold 10,000 referrals"));
            }
            export_times.push(number(&export, "seconds")?);
            raw_times.push(number(&measured(binaries, &raw_args)?, "seconds")?);
        }
        let (export, raw) = (median(&mut export_times), median(&mut raw_times));
        println!("referrals export (ndjson): {:>8.1} ms", export * 1e3);
        println!("reqwest + serde_json:      {:>8.1} ms", raw * 1e3);
        println!("ratio export / plain:      {:>8.2}", export / raw);
        drop(server);

        Ok(())
    }

    /// The peak memory of the CLI's export and sync.
    fn memory(&self) -> Result<(), String> {
        let binaries = self.binaries;
        println!("\n## Peak memory of the CLI (VmHWM of the process)");
        println!(
            "{:>9} referrals   {:>14}   {:>14}   {:>14}",
            "", "export ndjson", "export csv", "sync --db"
        );
        for total in [10_000, 100_000] {
            let server = Sandbox::start(binaries, total)?;
            let mut peaks = Vec::new();
            for (format, file) in [
                ("ndjson", self.out("memory.ndjson")),
                ("csv", self.out("memory.csv")),
            ] {
                let export = measured(binaries, &self.export_args(&server.url, &file, format))?;
                peaks.push(number(&export, "peak_kib")?);
            }
            let db = self.out("memory.sqlite");
            for stale in [db.clone(), format!("{db}-wal"), format!("{db}-shm")] {
                let _ = std::fs::remove_file(stale);
            }
            let sync = measured(binaries, &self.sync_args(&server.url, &db))?;
            peaks.push(number(&sync, "peak_kib")?);
            println!(
                "{total:>9} referrals   {:>10.0} KiB   {:>10.0} KiB   {:>10.0} KiB",
                peaks[0], peaks[1], peaks[2]
            );
        }
        Ok(())
    }
}

/// Runs `command` (program and arguments) under `referrals-bench measure`.
pub(crate) fn measured(binaries: &Path, command: &[String]) -> Result<serde_json::Value, String> {
    let mut args = vec!["measure"];
    args.extend(command.iter().map(String::as_str));
    let report = probe(binaries, &args)?;
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
    fn start(binaries: &Path, total: usize) -> Result<Self, String> {
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

pub(crate) fn probe(binaries: &Path, args: &[&str]) -> Result<serde_json::Value, String> {
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

pub(crate) fn number(report: &serde_json::Value, key: &str) -> Result<f64, String> {
    report[key]
        .as_f64()
        .ok_or_else(|| format!("no `{key}` in {report}"))
}

fn check_count(report: &serde_json::Value, expected: usize) -> Result<(), String> {
    match report["referrals"].as_u64() {
        Some(count) if count as usize == expected => Ok(()),
        other => Err(format!("expected {expected} referrals, counted {other:?}")),
    }
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
