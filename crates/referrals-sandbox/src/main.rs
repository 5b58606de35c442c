//! `referrals-sandbox`: a local server of the Partner API for referrals.
//!
//! ```text
//! cargo run -p referrals-sandbox -- --addr 127.0.0.1:8080 --seed-count 1000 --token secret
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use referrals_sandbox::{Config, Paging};

/// A local server that implements the Partner API for referrals on an in-memory store.
///
/// It prints the address it listens on (`listening on http://...`), then one line per request
/// on standard error.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Example:\n  referrals-sandbox --addr 127.0.0.1:8080 --seed-count 1000 --token secret"
)]
struct Args {
    /// Where to listen; port 0 takes any free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Synthetic referrals to add beside the referrals of the seed examples.
    #[arg(long, default_value_t = 1000)]
    seed_count: usize,
    /// The generator's seed: the same seed and count give the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The one bearer token accepted [default: any non-empty token].
    #[arg(long)]
    token: Option<String>,
    /// The share of requests answered 429 with Retry-After, from 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    fault_429: f64,
    /// The share of requests answered 503 with Retry-After, from 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    fault_503: f64,
    /// The most referrals on a page.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    page_size: u32,
    /// What a $skiptoken holds: the key of the last referral in a snapshot (keyset), or how
    /// many referrals came before, counted anew on each page (offset), as a service whose
    /// pages shift when referrals change; or as offset, with referrals that tie on the order
    /// in a new order on every request (shuffled).
    #[arg(long, value_enum, default_value_t = PagingArg::Keyset)]
    paging: PagingArg,
    /// No line per request.
    #[arg(long)]
    quiet: bool,
    /// The share of webhook events dropped on purpose (listed in the offline queue at
    /// /sandbox/events/offline), from 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    drop_events: f64,
    /// Sign events with a certificate issued by the test root itself, with no intermediate
    /// authority (by default, an intermediate issues it, served at
    /// /sandbox/certificates/intermediate.cer and named by the certificate's AIA).
    #[arg(long)]
    sign_direct: bool,
    /// A time added to every answer, as a service's round trip (such as 50ms).
    #[arg(long, value_name = "DURATION", value_parser = humantime_duration)]
    latency: Option<std::time::Duration>,
    /// Requests a second above which the answer is 429 with Retry-After: 1.
    #[arg(long, value_name = "N/s", value_parser = per_second)]
    rate_limit: Option<u32>,
    /// Leave @odata.count out of every answer, as a service that does not count.
    #[arg(long)]
    no_count: bool,
    /// Answer the listing as a service that drifted from the document (203, an undeclared
    /// header, an undeclared member, an unknown status, a name that is a number), for
    /// `referrals drift`.
    #[arg(long)]
    drift: bool,
    /// Every synthetic referral was last updated by one migration, at one instant (their
    /// creation instants differ): the whole data shares one updatedDateTime.
    #[arg(long)]
    migrated: bool,
    /// Every synthetic referral was created and last updated by one import, at one instant:
    /// the whole data is one tie that shares both createdDateTime and updatedDateTime.
    #[arg(long)]
    imported: bool,
    /// Where to write the test root that signs the events (PEM), for a receiver to trust
    /// [default: a file in the temporary folder, named after the port].
    #[arg(long, value_name = "FILE")]
    events_root: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PagingArg {
    Keyset,
    Offset,
    Shuffled,
}

/// A duration such as `50ms` or `1s`.
fn humantime_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|error| format!("`{text}`: {error}"))
}

/// A rate such as `100/s` or `100`.
fn per_second(text: &str) -> Result<u32, String> {
    text.trim()
        .trim_end_matches("/s")
        .parse()
        .map_err(|_| format!("`{text}` is not a rate such as 100/s"))
}

fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("`{text}` is not a share from 0 to 1")),
    }
}

/// Writes the root that signs the events where a receiver can read it, and says how to trust it.
fn events_root(
    sandbox: &referrals_sandbox::Sandbox,
    path: Option<std::path::PathBuf>,
    quiet: bool,
) {
    let path = path.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "referrals-sandbox-{}-events-root.pem",
            sandbox.addr().port()
        ))
    });
    let written = sandbox
        .events_root_pem()
        .and_then(|pem| std::fs::write(&path, pem).map_err(|error| error.to_string()));
    match written {
        Ok(()) if !quiet => eprintln!(
            "events are signed by a test root, written to {}; a receiver trusts it with\n  \
             referrals listen --trust-root {} --allow-http-certificates {}",
            path.display(),
            path.display(),
            sandbox.addr()
        ),
        Ok(()) => {}
        Err(error) => eprintln!("warning: no events: {error}"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = Config {
        addr: args.addr,
        seed_count: args.seed_count,
        seed: args.seed,
        token: args.token.filter(|token| !token.is_empty()),
        fault_429: args.fault_429,
        fault_503: args.fault_503,
        page_size: args.page_size as usize,
        log: !args.quiet,
        paging: match args.paging {
            PagingArg::Keyset => Paging::Keyset,
            PagingArg::Offset => Paging::Offset,
            PagingArg::Shuffled => Paging::Shuffled,
        },
        drop_events: args.drop_events,
        latency: args.latency.unwrap_or_default(),
        rate_limit: args.rate_limit,
        answer_count: !args.no_count,
        drift: args.drift,
        migrated: args.migrated,
        imported: args.imported,
        sign_direct: args.sign_direct,
        ..Config::default()
    };
    let sandbox = match referrals_sandbox::start(config.clone()).await {
        Ok(sandbox) => sandbox,
        Err(error) => {
            eprintln!("error: cannot listen on {}: {error}", config.addr);
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", sandbox.url());
    let _ = std::io::stdout().flush();
    events_root(&sandbox, args.events_root, args.quiet);
    let _ = tokio::signal::ctrl_c().await;
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}
