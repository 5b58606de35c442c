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

use std::path::Path;
use std::process::{Command, ExitCode};

use crate::bench_kit::{
    Cli, ROUNDS, Sandbox, TOKEN, check_count, median, release_dir, report_number, run_bench_tool,
};
use crate::{FAILED, root};

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
        crate::bench_cli::export(&cli)?;
        crate::bench_cli::memory(&cli)?;
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
            let report = run_bench_tool(binaries, &[mode, &server.url, TOKEN])?;
            check_count(&report, 10_000)?;
            times.push(report_number(&report, "seconds")?);
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
        let client = run_bench_tool(binaries, &["client", &server.url, TOKEN])?;
        check_count(&client, total)?;
        let sync = run_bench_tool(binaries, &["sync", &server.url, TOKEN])?;
        check_count(&sync, total)?;
        println!(
            "{total:>9} referrals   {:>8.0} KiB   {:>8.0} KiB   (sync: {} batches, largest state {} bytes)",
            report_number(&client, "peak_kib")?,
            report_number(&sync, "peak_kib")?,
            report_number(&sync, "batches")?,
            report_number(&sync, "largest_state_bytes")?
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
            let load = run_bench_tool(
                binaries,
                &["load", &server.url, TOKEN, page, "2", &seconds.to_string()],
            )?;
            drop(server);
            println!(
                "{total:>7} referrals: {:>8.1} requests/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} failed)",
                report_number(&load, "requests_per_second")?,
                report_number(&load, "p50_ms")?,
                report_number(&load, "p99_ms")?,
                report_number(&load, "failed")?
            );
        }
    }
    Ok(())
}
