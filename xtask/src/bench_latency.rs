//! `cargo xtask bench`, latency: a first `referrals sync --db` and a `referrals export` of
//! 100,000 referrals from a sandbox that adds 50 ms to every answer, against the floor of one
//! round trip a page, in a row. Both read ranges of `createdDateTime` at once; the export's
//! ratio to the floor one request at a time (`--concurrency 1`) and at its default, side by
//! side, and the first sync's at its default; then the same export from a sandbox that
//! answers 429 above a rate, with the share of requests that met a 429.

use std::process::Command;
use std::time::Instant;

use crate::bench_kit::{Cli, Sandbox, measured, report_number};

const TOTAL: usize = 100_000;
const LATENCY_MS: u64 = 50;
/// The page of the sandbox under measure (given to it, so that the floor below holds).
const PAGE: usize = 100;
/// The rate above which the throttled sandbox answers 429, a second.
const RATE_PER_SECOND: usize = 60;

pub fn run(cli: &Cli<'_>) -> Result<(), String> {
    let latency = format!("{LATENCY_MS}ms");
    println!(
        "\n## A first sync and an export of {TOTAL} referrals at {latency} a round trip (one run each)"
    );
    let page = PAGE.to_string();
    let paced = ["--latency", &latency, "--page-size", &page];
    let sandbox = Sandbox::start_with(cli.binaries, TOTAL, &paced)?;
    let pages = TOTAL.div_ceil(PAGE);
    let floor = pages as f64 * LATENCY_MS as f64 / 1e3;
    println!("floor, {pages} pages in a row:    {floor:>8.1} s");
    let file = cli.out("latency.ndjson");
    for concurrency in ["1", "8"] {
        let mut args = cli.export_args(&sandbox.url, &file, "ndjson");
        args.extend(["--concurrency".to_owned(), concurrency.to_owned()]);
        let export = measured(cli.binaries, &args)?;
        report(
            &format!("export --concurrency {concurrency}:"),
            &export,
            floor,
        )?;
    }
    let db = cli.out("latency.sqlite");
    for stale in [db.clone(), format!("{db}-wal"), format!("{db}-shm")] {
        let _ = std::fs::remove_file(stale);
    }
    let sync = measured(cli.binaries, &cli.sync_args(&sandbox.url, &db))?;
    report("sync --db (first):", &sync, floor)?;
    drop(sandbox);
    throttled(cli, &paced, &file, floor)
}

/// The export from a sandbox that answers 429 above [`RATE_PER_SECOND`]: its time, and the share of its
/// requests that met a 429, as the export's last line says.
fn throttled(cli: &Cli<'_>, paced: &[&str], file: &str, floor: f64) -> Result<(), String> {
    let mut more = paced.to_vec();
    let rate = format!("{RATE_PER_SECOND}/s");
    more.extend(["--rate-limit", &rate]);
    let sandbox = Sandbox::start_with(cli.binaries, TOTAL, &more)?;
    let args = cli.export_args(&sandbox.url, file, "ndjson");
    // Without --quiet, so that the export says how many answers were 429.
    let args: Vec<&String> = args.iter().filter(|arg| *arg != "--quiet").collect();
    let started = Instant::now();
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|error| format!("cannot run referrals: {error}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("the throttled export failed: {said}"));
    }
    let share = said
        .split_once("answered 429 to ")
        .and_then(|(_, rest)| {
            let (throttled, rest) = rest.split_once(" of ")?;
            let answers = rest.split_whitespace().next()?;
            Some((throttled.parse::<f64>().ok()?, answers.parse::<f64>().ok()?))
        })
        .map_or(0.0, |(throttled, answers)| throttled / answers);
    // The time that the rate allows: a request a 1/RATE_PER_SECOND for each page.
    let allowed = TOTAL.div_ceil(PAGE) as f64 / RATE_PER_SECOND as f64;
    println!(
        "{:<32} {seconds:>8.1} s   {:>5.2} of the floor   429 to {:.1}% of the requests   \
         {:.2} of the allowed rate ({allowed:.1} s)",
        format!("export, 429 above {rate}:"),
        seconds / floor,
        share * 100.0,
        allowed / seconds
    );
    Ok(())
}

/// One line: the time, its ratio to the floor, the peak memory.
fn report(name: &str, measured: &serde_json::Value, floor: f64) -> Result<(), String> {
    let seconds = report_number(measured, "seconds")?;
    let peak = report_number(measured, "peak_kib")?;
    println!(
        "{name:<32} {seconds:>8.1} s   {:>5.2} of the floor   peak {peak:>8.0} KiB",
        seconds / floor
    );
    Ok(())
}
