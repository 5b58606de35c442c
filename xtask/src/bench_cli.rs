//! `cargo xtask bench`, the CLI: `referrals export` of 10,000 referrals against the plain loop
//! (whole processes, alternating), and the peak memory of `referrals export` and `referrals sync
//! --db` over 10,000 and 100,000 referrals.

use crate::bench_kit::{Cli, ROUNDS, Sandbox, TOKEN, measured, median, report_number};

/// The CLI's export against the plain loop.
pub(crate) fn export(cli: &Cli<'_>) -> Result<(), String> {
    let binaries = cli.binaries;
    let exported = |path: &str| -> Result<usize, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read the export {path}: {error}"))?;
        Ok(text.lines().count())
    };
    println!(
        "\n## referrals export of 10,000 referrals against the plain loop (whole processes, median of {ROUNDS} rounds, alternating)"
    );
    let server = Sandbox::start(binaries, 10_000)?;
    let file = cli.out("export.ndjson");
    let raw_args: Vec<String> = [cli.bench.as_str(), "raw", &server.url, TOKEN]
        .map(str::to_owned)
        .to_vec();
    let (mut export_times, mut raw_times) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let export = measured(binaries, &cli.export_args(&server.url, &file, "ndjson"))?;
        if exported(&file)? != 10_000 {
            return Err(format!("the export {file} does not hold 10,000 referrals"));
        }
        export_times.push(report_number(&export, "seconds")?);
        raw_times.push(report_number(&measured(binaries, &raw_args)?, "seconds")?);
    }
    let (export, raw) = (median(&mut export_times), median(&mut raw_times));
    println!("referrals export (ndjson): {:>8.1} ms", export * 1e3);
    println!("reqwest + serde_json:      {:>8.1} ms", raw * 1e3);
    println!("ratio export / plain:      {:>8.2}", export / raw);
    drop(server);

    Ok(())
}

/// The peak memory of the CLI's export and sync, and how much of it the program allocated
/// (the rest is pages of its code and libraries, as the kernel maps them).
pub(crate) fn memory(cli: &Cli<'_>) -> Result<(), String> {
    let binaries = cli.binaries;
    println!(
        "\n## Peak memory of the CLI in MiB of 1,024 KiB (VmHWM of the process; in brackets, the largest RssAnon sampled every 2 ms)"
    );
    println!(
        "{:>9} referrals   {:>22}   {:>22}   {:>22}",
        "", "export ndjson", "export csv", "sync --db"
    );
    let cell = |report: &serde_json::Value| -> Result<String, String> {
        // The report counts KiB; a MiB here is 1,024 of them.
        let (peak, anon) = (
            report_number(report, "peak_kib")? / 1024.0,
            report_number(report, "peak_anon_kib")? / 1024.0,
        );
        Ok(format!("{peak:>6.1} MiB ({anon:>4.1} anon)"))
    };
    for total in [10_000, 100_000] {
        let server = Sandbox::start(binaries, total)?;
        let mut cells = Vec::new();
        for (format, file) in [
            ("ndjson", cli.out("memory.ndjson")),
            ("csv", cli.out("memory.csv")),
        ] {
            let export = measured(binaries, &cli.export_args(&server.url, &file, format))?;
            cells.push(cell(&export)?);
        }
        let db = cli.out("memory.sqlite");
        for stale in [db.clone(), format!("{db}-wal"), format!("{db}-shm")] {
            let _ = std::fs::remove_file(stale);
        }
        let sync = measured(binaries, &cli.sync_args(&server.url, &db))?;
        cells.push(cell(&sync)?);
        println!(
            "{total:>9} referrals   {:>22}   {:>22}   {:>22}",
            cells[0], cells[1], cells[2]
        );
    }
    Ok(())
}
