//! `cargo xtask bench`, mirror: a first `referrals sync --db` of 100,000 referrals into a
//! SQLite file and into a PostgreSQL database (a server of the bench's own, as the tests start
//! one), against the plain loop (reqwest + serde_json pages, nothing written), side by side
//! in one run: three rounds, alternating, each sync into a new file and a new server.

use crate::bench_kit::{Cli, Sandbox, TOKEN, measured, median, report_number, run_bench_tool};

/// The PostgreSQL server of the tests, shared by path: the bench needs nothing more of the
/// test kit, and the xtask stays free of its dependencies.
#[allow(dead_code)]
#[path = "../../crates/referrals-testkit/src/postgres.rs"]
pub(crate) mod postgres;

const TOTAL: usize = 100_000;

/// How many rounds of the three runs, alternating: one run of each varied by a second from
/// one to the next on two cores.
const ROUNDS: usize = 3;

/// What one round measured: the plain loop's seconds, then each sync's report (PostgreSQL's
/// when it is installed).
struct Round {
    plain: f64,
    sqlite: serde_json::Value,
    postgres: Option<serde_json::Value>,
}

pub fn run(cli: &Cli<'_>) -> Result<(), String> {
    println!(
        "\n## A first sync of {TOTAL} referrals into a mirror (median of {ROUNDS} rounds, alternating)"
    );
    let sandbox = Sandbox::start_with(cli.binaries, TOTAL, &[])?;
    let rounds = (0..ROUNDS)
        .map(|_| round(cli, &sandbox.url))
        .collect::<Result<Vec<_>, _>>()?;
    let mut plains: Vec<f64> = rounds.iter().map(|round| round.plain).collect();
    let each: Vec<String> = plains.iter().map(|run| format!("{run:.1}")).collect();
    let plain = median(&mut plains);
    println!(
        "plain loop (nothing written):   {plain:>8.1} s   (rounds: {} s)",
        each.join(", ")
    );
    let sqlite: Vec<&serde_json::Value> = rounds.iter().map(|round| &round.sqlite).collect();
    report("sync --db FILE.sqlite:", &sqlite, plain)?;
    let postgres: Vec<&serde_json::Value> = rounds
        .iter()
        .filter_map(|round| round.postgres.as_ref())
        .collect();
    if postgres.is_empty() {
        println!("sync --db postgres://...:        PostgreSQL is not installed; not measured");
        return Ok(());
    }
    report("sync --db postgres://...:", &postgres, plain)
}

/// The plain loop, a first sync into a new SQLite file, one into a new PostgreSQL server.
fn round(cli: &Cli<'_>, url: &str) -> Result<Round, String> {
    let raw = run_bench_tool(cli.binaries, &["raw", url, TOKEN])?;
    let file = cli.out("mirror.sqlite");
    for stale in [file.clone(), format!("{file}-wal"), format!("{file}-shm")] {
        let _ = std::fs::remove_file(stale);
    }
    let sqlite = measured(cli.binaries, &cli.sync_args(url, &file))?;
    let postgres = match postgres::Server::start() {
        Some(server) => Some(measured(cli.binaries, &cli.sync_args(url, &server.url()))?),
        None => None,
    };
    Ok(Round {
        plain: report_number(&raw, "seconds")?,
        sqlite,
        postgres,
    })
}

/// One line: the median time, its ratio to the plain loop's, the largest peak memory.
fn report(name: &str, runs: &[&serde_json::Value], plain: f64) -> Result<(), String> {
    let mut seconds = runs
        .iter()
        .map(|run| report_number(run, "seconds"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut peak = 0.0f64;
    for run in runs {
        peak = peak.max(report_number(run, "peak_kib")? / 1024.0);
    }
    let each: Vec<String> = seconds.iter().map(|run| format!("{run:.1}")).collect();
    let seconds = median(&mut seconds);
    println!(
        "{name:<31} {seconds:>8.1} s   {:>5.2} of the plain loop   peak {peak:>6.1} MiB   (rounds: {} s)",
        seconds / plain,
        each.join(", ")
    );
    Ok(())
}
