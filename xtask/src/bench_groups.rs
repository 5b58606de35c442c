//! `cargo xtask bench`, groups: what referrals that share their sort keys cost a sync.
//!
//! 1. A migration: every referral of a release sandbox stamped with one `updatedDateTime`
//!    (`--migrated`), read by a sync from no state one page after another (the path of every
//!    run after the first), against the plain loop over the same data; at two sizes, the
//!    processor time of each process (the sandbox, which filters its whole store for every
//!    request, is apart) and the largest state saved. Linear: the ratio stays flat.
//! 2. An import: every referral created and updated at one instant (`--imported`), one tie of
//!    the whole data, from a sandbox whose pages keep their order and from one that shuffles
//!    ties, measured as the migration is. Linear: the ratio and the largest state stay flat.
//! 3. Ties in a new order on every request: a sync of what the sandbox's batch job imported
//!    (referrals that share both instants, several pages each), with and without `$count`, at
//!    two sizes: requests against the pages the ties fill, and what came twice.

use crate::bench_kit::{Sandbox, TOKEN, report_number, run_bench_tool};
use std::path::Path;

const SIZES: [usize; 2] = [10_000, 40_000];
/// The page of the ties' sandbox: each tie is then several pages long.
const TIE_PAGE: usize = 10;

pub fn run(binaries: &Path) -> Result<(), String> {
    println!(
        "\n## A group of every referral at one updatedDateTime (a migration), sync from no state"
    );
    println!("(processor time of the client's process; the sandbox runs apart)");
    for total in SIZES {
        group(binaries, total, &["--migrated"])?;
    }
    println!("\n## A tie of every referral at both instants (an import), sync from no state");
    for total in SIZES {
        for (paging, args) in [
            ("in order", &["--imported"][..]),
            ("shuffled", &["--imported", "--paging", "shuffled"]),
        ] {
            print!("{paging}, ");
            group(binaries, total, args)?;
        }
    }
    println!("\n## Ties of both instants from a sandbox that shuffles them (pages of {TIE_PAGE})");
    for total in SIZES {
        for count in [true, false] {
            let mut args = vec!["ties".to_owned(), total.to_string(), TIE_PAGE.to_string()];
            if !count {
                args.push("--no-count".to_owned());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let ties = run_bench_tool(binaries, &args)?;
            let (pages, requests) = (
                report_number(&ties, "pages")?,
                report_number(&ties, "requests")?,
            );
            println!(
                "{total:>7} referrals, {:<10} {:>5} in ties, {pages:>4} pages, {requests:>5} \
                 requests ({:>4.2} a page), {} delivered twice, largest state {} bytes",
                if count { "$count:" } else { "no count:" },
                report_number(&ties, "referrals")?,
                requests / pages,
                report_number(&ties, "delivered_again")?,
                report_number(&ties, "largest_state_bytes")?
            );
        }
    }
    Ok(())
}

/// A sync from no state and the plain loop over a sandbox of `total` referrals started with
/// `args`: processor time of the client's process, their ratio, the largest state saved.
fn group(binaries: &Path, total: usize, args: &[&str]) -> Result<(), String> {
    let sandbox = Sandbox::start_with(binaries, total, args)?;
    let raw = run_bench_tool(binaries, &["raw", &sandbox.url, TOKEN])?;
    let sync = run_bench_tool(binaries, &["sync", &sandbox.url, TOKEN])?;
    let (plain, synced) = (
        report_number(&raw, "cpu_seconds")?,
        report_number(&sync, "cpu_seconds")?,
    );
    println!(
        "{total:>7} referrals: sync {:>6.2} s cpu ({:>5.1} µs/referral), plain loop {:>6.2} s \
         cpu; {:>5.2} of the plain loop; largest state {} bytes",
        synced,
        synced * 1e6 / total as f64,
        plain,
        synced / plain,
        report_number(&sync, "largest_state_bytes")?
    );
    Ok(())
}
