//! `cargo xtask bench`, mirror: a first `referrals sync --db` of 100,000 referrals into a
//! SQLite file and into a PostgreSQL database (a server of the bench's own, as the tests start
//! one), against the plain loop (reqwest + serde_json pages, nothing written), side by side
//! in one run.

use crate::bench_kit::{Cli, Sandbox, TOKEN, measured, report_number, run_bench_tool};

/// The PostgreSQL server of the tests, shared by path: the bench needs nothing more of the
/// test kit, and the xtask stays free of its dependencies.
#[allow(dead_code)]
#[path = "../../crates/referrals-testkit/src/postgres.rs"]
pub(crate) mod postgres;

const TOTAL: usize = 100_000;

pub fn run(cli: &Cli<'_>) -> Result<(), String> {
    println!("\n## A first sync of {TOTAL} referrals into a mirror (one run each)");
    let sandbox = Sandbox::start_with(cli.binaries, TOTAL, &[])?;
    let raw = run_bench_tool(cli.binaries, &["raw", &sandbox.url, TOKEN])?;
    let plain = report_number(&raw, "seconds")?;
    println!("plain loop (nothing written):   {plain:>8.1} s");
    let file = cli.out("mirror.sqlite");
    for stale in [file.clone(), format!("{file}-wal"), format!("{file}-shm")] {
        let _ = std::fs::remove_file(stale);
    }
    let sqlite = measured(cli.binaries, &cli.sync_args(&sandbox.url, &file))?;
    report("sync --db FILE.sqlite:", &sqlite, plain)?;
    let Some(server) = postgres::Server::start() else {
        println!("sync --db postgres://...:        PostgreSQL is not installed; not measured");
        return Ok(());
    };
    let into_postgres = measured(cli.binaries, &cli.sync_args(&sandbox.url, &server.url()))?;
    report("sync --db postgres://...:", &into_postgres, plain)
}

/// One line: the time, its ratio to the plain loop, the peak memory.
fn report(name: &str, measured: &serde_json::Value, plain: f64) -> Result<(), String> {
    let seconds = report_number(measured, "seconds")?;
    let peak = report_number(measured, "peak_kib")?;
    println!(
        "{name:<31} {seconds:>8.1} s   {:>5.2} of the plain loop   peak {peak:>8.0} KiB",
        seconds / plain
    );
    Ok(())
}
