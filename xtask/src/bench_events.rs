//! `cargo xtask bench`, events: verifications per second on one core, and the time from a change
//! in the sandbox to its row in a mirror kept by `referrals listen`, against `sync --every`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench_kit::{Sandbox, TOKEN, report_number, run_bench_tool};

/// Referrals in the sandbox; changes at `RATE` a second.
const TOTAL: usize = 2_002;
const RATE: &str = "100";
const CHANGES: &str = "1000";

/// Verifications a second with the certificate cached, beside bare ring verifications of the
/// same body on the same core.
fn verifications(binaries: &Path) -> Result<(), String> {
    let verify = run_bench_tool(binaries, &["verify", "5"])?;
    let (verified, bare) = (
        report_number(&verify, "per_second")?,
        report_number(&verify, "bare_per_second")?,
    );
    println!("verifications per second, one core, certificate cached: {verified:>8.0}");
    println!("bare ring RSA-2048 verifications of the body, same core:  {bare:>8.0}");
    println!(
        "ratio verifier / bare ring:                               {:>8.2}",
        verified / bare
    );
    Ok(())
}

pub fn run(binaries: &Path, scratch: &Path) -> Result<(), String> {
    println!("\n## Events");
    verifications(binaries)?;
    let root = scratch.join("events-root.pem");
    let root_text = root.to_string_lossy().into_owned();
    // A root of an earlier run would be read before the sandbox writes its own.
    let _ = std::fs::remove_file(&root);
    for stale in ["listen.sqlite", "sync.sqlite"] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(scratch.join(format!("{stale}{suffix}")));
        }
    }
    let sandbox = Sandbox::start_with(binaries, TOTAL, &["--events-root", &root_text])?;
    // The sandbox writes its root once it listens.
    let started = Instant::now();
    while !root.exists() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the sandbox wrote no events root in 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let listened = scratch.join("listen.sqlite");
    let port = free_port()?;
    let listen = Guard(spawn(
        binaries,
        &sandbox.url,
        &[
            "listen",
            "--db",
            &listened.to_string_lossy(),
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--trust-root",
            &root_text,
            "--allow-http-certificates",
            sandbox.url.trim_start_matches("http://"),
            "--skew",
            "0s",
        ],
    )?);
    register(binaries, &sandbox.url, port)?;
    filled(binaries, &listened)?;
    let events = latency(binaries, &sandbox.url, &listened)?;
    drop(listen);
    let synced = scratch.join("sync.sqlite");
    let sync = Guard(spawn(
        binaries,
        &sandbox.url,
        &[
            "sync",
            "--db",
            &synced.to_string_lossy(),
            "--every",
            "1s",
            "--skew",
            "0s",
        ],
    )?);
    filled(binaries, &synced)?;
    let polled = latency(binaries, &sandbox.url, &synced)?;
    drop(sync);
    println!("change → row, {RATE} changes a second, {CHANGES} changes:");
    for (label, report) in [
        ("referrals listen (events)", &events),
        ("sync --every 1s --skew 0s", &polled),
    ] {
        println!(
            "  {label}: p50 {:>8.1} ms   p99 {:>8.1} ms   ({} not seen)",
            report_number(report, "p50_ms")?,
            report_number(report, "p99_ms")?,
            report_number(report, "missed")?
        );
    }
    Ok(())
}

fn latency(binaries: &Path, url: &str, db: &Path) -> Result<serde_json::Value, String> {
    run_bench_tool(
        binaries,
        &["latency", url, TOKEN, &db.to_string_lossy(), RATE, CHANGES],
    )
}

/// Kills its child when dropped.
pub(crate) struct Guard(pub(crate) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn spawn(binaries: &Path, url: &str, args: &[&str]) -> Result<Child, String> {
    let log = binaries.join(format!("bench-{}.log", args[0]));
    let log = std::fs::File::create(&log).map_err(|error| format!("{}: {error}", log.display()))?;
    Command::new(binaries.join("referrals"))
        .env("PARTNER_ROOT", url)
        .env("PARTNER_TOKEN", TOKEN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|error| format!("cannot run referrals: {error}"))
}

/// Registers the receiver on `port` for every event, once it listens.
pub(crate) fn register(binaries: &Path, url: &str, port: u16) -> Result<(), String> {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("referrals listen did not listen in 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new(binaries.join("referrals"))
        .env("PARTNER_ROOT", url)
        .env("PARTNER_TOKEN", TOKEN)
        .env("PARTNER_WEBHOOKS_ROOT", url)
        .args([
            "--quiet",
            "webhooks",
            "register",
            "--url",
            &format!("http://127.0.0.1:{port}/events"),
        ])
        .stdout(Stdio::null())
        .status()
        .map_err(|error| format!("cannot run referrals: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("referrals webhooks register failed".into())
    }
}

/// Waits until the mirror `db` holds every referral of the sandbox (its first sync is done).
pub(crate) fn filled(binaries: &Path, db: &Path) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let count = run_bench_tool(binaries, &["count", &db.to_string_lossy()])
            .and_then(|report| report_number(&report, "referrals"))
            .unwrap_or(0.0) as i64;
        if usize::try_from(count).is_ok_and(|count| count >= TOTAL) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "{} holds {count} referrals after 120 s",
                db.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    Ok(listener
        .local_addr()
        .map_err(|error| error.to_string())?
        .port())
}
