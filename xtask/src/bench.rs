//! `cargo xtask bench`: the measurements of the client and the sandbox, side by side in one
//! run, on loopback. Nothing here passes or fails on a clock; it prints a report.
//!
//! 1. Paging: 10,000 referrals from a release sandbox, read with `Client::list_all` and with a
//!    plain reqwest + serde_json loop, alternately, five rounds each; the ratio of medians.
//! 2. Memory: the client's peak resident memory paging 1,000, 10,000 and 100,000 referrals.
//! 3. Load: requests per second for a filtered, ordered page over 10,000 and 100,000
//!    referrals, with the closed-loop load generator of `referrals-bench`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

use crate::{FAILED, root};

const TOKEN: &str = "bench";
const ROUNDS: usize = 5;
/// The filtered, ordered page of the load test (written as the client sends it).
const PAGE: &str = "/v1.0/engagements/referrals?$filter=status%20eq%20'New'%20and%20direction%20eq%20'Incoming'&$orderby=createdDateTime%20desc";

/// `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long each load run lasts, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
}

pub fn run(args: Args) -> ExitCode {
    match measure(args.seconds) {
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
    Ok(PathBuf::from(target).join("release"))
}

fn measure(seconds: u64) -> Result<(), String> {
    let binaries = release_dir()?;
    println!("building the release binaries (referrals-sandbox, referrals-bench)...");
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
        ])
        .status()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !status.success() {
        return Err("the release build failed".into());
    }

    println!("\n## Paging 10,000 referrals (median of {ROUNDS} rounds, alternating)");
    let server = Sandbox::start(&binaries, 10_000)?;
    let (mut client_times, mut raw_times, mut client_peaks) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let client = probe(&binaries, &["client", &server.url, TOKEN])?;
        check_count(&client, 10_000)?;
        client_times.push(number(&client, "seconds")?);
        client_peaks.push(number(&client, "peak_kib")?);
        let raw = probe(&binaries, &["raw", &server.url, TOKEN])?;
        check_count(&raw, 10_000)?;
        raw_times.push(number(&raw, "seconds")?);
    }
    drop(server);
    let (client, raw) = (median(&mut client_times), median(&mut raw_times));
    let per_referral = |seconds: f64| seconds * 1e6 / 10_000.0;
    println!(
        "client (list_all):        {:>8.1} ms   {:>6.1} µs/referral",
        client * 1e3,
        per_referral(client)
    );
    println!(
        "reqwest + serde_json:     {:>8.1} ms   {:>6.1} µs/referral",
        raw * 1e3,
        per_referral(raw)
    );
    println!("ratio client / plain:     {:>8.2}", client / raw);

    println!("\n## Peak memory of the client while paging");
    let mut peaks = Vec::new();
    for total in [1_000, 100_000] {
        let server = Sandbox::start(&binaries, total)?;
        let report = probe(&binaries, &["client", &server.url, TOKEN])?;
        check_count(&report, total)?;
        peaks.push(number(&report, "peak_kib")?);
    }
    let large = median(&mut client_peaks);
    println!("1,000 referrals (10 pages):        {:>8.0} KiB", peaks[0]);
    println!(
        "10,000 referrals (100 pages):      {:>8.0} KiB (median of {ROUNDS})",
        large
    );
    println!("100,000 referrals (1,000 pages):   {:>8.0} KiB", peaks[1]);

    println!(
        "\n## Requests per second, filtered and ordered page, 2 connections, {seconds} s each"
    );
    println!("GET {PAGE}");
    for total in [10_000, 100_000] {
        let server = Sandbox::start(&binaries, total)?;
        let load = probe(
            &binaries,
            &["load", &server.url, TOKEN, PAGE, "2", &seconds.to_string()],
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
    println!(
        "\n(2 cores: the load generator and the sandbox share them; compare within a run, not across machines.)"
    );
    Ok(())
}

struct Sandbox {
    child: Child,
    url: String,
}

impl Sandbox {
    /// A release sandbox holding `total` referrals (the 2 of the seed examples included).
    fn start(binaries: &Path, total: usize) -> Result<Self, String> {
        let binary = binaries.join("referrals-sandbox");
        let mut child = Command::new(&binary)
            .args([
                "--seed-count",
                &(total - 2).to_string(),
                "--token",
                TOKEN,
                "--quiet",
            ])
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

fn probe(binaries: &Path, args: &[&str]) -> Result<serde_json::Value, String> {
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

fn number(report: &serde_json::Value, key: &str) -> Result<f64, String> {
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

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
