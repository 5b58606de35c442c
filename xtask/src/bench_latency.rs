//! `cargo xtask bench`, latency: a first `referrals sync --db` and a `referrals export` of
//! 100,000 referrals from a sandbox that adds 50 ms to every answer, against the floor of one
//! round trip a page, in a row. A ratio near 1 says the tool waits for every page before it
//! asks for the next; reading ranges concurrently is what would bring it under 1.

use crate::bench::{Cli, Sandbox, measured, number};

const TOTAL: usize = 100_000;
const LATENCY_MS: u64 = 50;
/// The page of the sandbox under measure (given to it, so that the floor below holds).
const PAGE: usize = 100;

pub fn run(cli: &Cli<'_>) -> Result<(), String> {
    let latency = format!("{LATENCY_MS}ms");
    println!(
        "\n## A first sync and an export of {TOTAL} referrals at {latency} a round trip (one run each)"
    );
    let page = PAGE.to_string();
    let sandbox = Sandbox::start_with(
        cli.binaries,
        TOTAL,
        &["--latency", &latency, "--page-size", &page],
    )?;
    let pages = TOTAL.div_ceil(PAGE);
    let floor = pages as f64 * LATENCY_MS as f64 / 1e3;
    println!("floor, {pages} pages in a row:    {floor:>8.1} s");
    let file = cli.out("latency.ndjson");
    let export = measured(
        cli.binaries,
        &cli.export_args(&sandbox.url, &file, "ndjson"),
    )?;
    report("referrals export (ndjson):", &export, floor)?;
    let db = cli.out("latency.sqlite");
    for stale in [db.clone(), format!("{db}-wal"), format!("{db}-shm")] {
        let _ = std::fs::remove_file(stale);
    }
    let sync = measured(cli.binaries, &cli.sync_args(&sandbox.url, &db))?;
    report("referrals sync --db (first):", &sync, floor)?;
    Ok(())
}

/// One line: the time, its ratio to the floor, the peak memory.
fn report(name: &str, measured: &serde_json::Value, floor: f64) -> Result<(), String> {
    let seconds = number(measured, "seconds")?;
    let peak = number(measured, "peak_kib")?;
    println!(
        "{name:<32} {seconds:>8.1} s   {:>5.2} of the floor   peak {peak:>8.0} KiB",
        seconds / floor
    );
    Ok(())
}
