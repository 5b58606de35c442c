//! `cargo xtask bench`, the change feed: what the change log costs a first sync of 100,000
//! referrals (with the log against without it, alternating, in SQLite and in PostgreSQL), and
//! the time from a change in the sandbox to a consumer's handler (the library's `Feed`,
//! `referrals changes --exec`, `referrals changes --post`) through `referrals listen` and the
//! mirror, at 100 changes a second, on SQLite and on PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::bench_events::{Guard, filled, free_port, register, spawn};
use crate::bench_kit::{Cli, Sandbox, TOKEN, median, report_number, run_bench_tool};
use crate::bench_mirror::postgres;

/// Referrals in the first sync.
const SYNCED: usize = 100_000;
/// Rounds of each, alternating.
const ROUNDS: usize = 5;
/// Referrals in the sandbox of the latency; changes at `RATE` a second.
const TOTAL: usize = 2_002;
const RATE: &str = "100";
const CHANGES: &str = "1000";

pub fn run(cli: &Cli<'_>) -> Result<(), String> {
    let server = postgres::Server::start();
    // The latency first: the first syncs leave the database server busy for a while after.
    latency(cli, server.as_ref())?;
    first_sync(cli, server.as_ref())
}

/// A first sync with the change log against without it.
fn first_sync(cli: &Cli<'_>, server: Option<&postgres::Server>) -> Result<(), String> {
    println!(
        "\n## A first sync of {SYNCED} referrals with the change log against without it (median of {ROUNDS} rounds, alternating)"
    );
    let sandbox = Sandbox::start_with(cli.binaries, SYNCED, &[])?;
    let mut mirrors = vec![("SQLite", cli.out("feed.sqlite"))];
    match server {
        Some(server) => mirrors.push(("PostgreSQL", server.url())),
        None => println!("PostgreSQL is not installed: SQLite only"),
    }
    for (name, db) in mirrors {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            for (unlogged, times) in [(false, &mut with), (true, &mut without)] {
                let mut args = vec!["sync-into", sandbox.url.as_str(), TOKEN, db.as_str()];
                if unlogged {
                    args.push("--unlogged");
                }
                times.push(report_number(
                    &run_bench_tool(cli.binaries, &args)?,
                    "seconds",
                )?);
            }
        }
        let (with, without) = (median(&mut with), median(&mut without));
        println!(
            "{name:<11} with the log {with:>6.1} s   without {without:>6.1} s   ratio {:>5.3}",
            with / without
        );
    }
    Ok(())
}

/// Change → handler, for each consumer, on each database.
fn latency(cli: &Cli<'_>, server: Option<&postgres::Server>) -> Result<(), String> {
    println!(
        "\n## A change in the sandbox (from its request) → the consumer's handler, through referrals listen ({RATE} changes a second, {CHANGES} changes)"
    );
    let root = cli.scratch.join("feed-root.pem");
    let root_text = root.to_string_lossy().into_owned();
    let _ = std::fs::remove_file(&root);
    let sandbox = Sandbox::start_with(cli.binaries, TOTAL, &["--events-root", &root_text])?;
    let started = Instant::now();
    while !root.exists() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the sandbox wrote no events root in 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let file = cli.scratch.join("listened.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    let mut mirrors = vec![("SQLite", file.to_string_lossy().into_owned())];
    if let Some(server) = server {
        mirrors.push(("PostgreSQL", server.url()));
    }
    // One registration: each receiver in turn listens on its port.
    let port = free_port()?;
    for (at, (name, db)) in mirrors.into_iter().enumerate() {
        let args = listen_args(&db, port, &root_text, &sandbox.url);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let listen = Guard(spawn(cli.binaries, &sandbox.url, &args)?);
        if at == 0 {
            register(cli.binaries, &sandbox.url, port)?;
        }
        filled(cli.binaries, Path::new(&db))?;
        // Each consumer twice, in turn: a slow moment of the machine shows as one run apart.
        for consumer in ["library", "exec", "post", "library", "exec", "post"] {
            let args = [
                "feed-latency",
                &sandbox.url,
                TOKEN,
                &db,
                RATE,
                CHANGES,
                consumer,
            ];
            let report = run_bench_tool(cli.binaries, &args)?;
            println!(
                "{name:<11} {consumer:<8} p50 {:>7.1} ms   p99 {:>7.1} ms   ({} not seen)",
                report_number(&report, "p50_ms")?,
                report_number(&report, "p99_ms")?,
                report_number(&report, "missed")?
            );
        }
        drop(listen);
    }
    Ok(())
}

fn listen_args<'a>(db: &'a str, port: u16, root: &'a str, url: &'a str) -> Vec<String> {
    [
        "listen",
        "--db",
        db,
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--trust-root",
        root,
        "--allow-http-certificates",
        url.trim_start_matches("http://"),
        "--skew",
        "0s",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect()
}
