//! `referrals sync --db FILE|postgres://...`: a mirror of the referrals ([`referrals_mirror`]),
//! in a SQLite file or a PostgreSQL database, kept by the client's incremental sync: this
//! command adds the flags, the progress, Ctrl-C and `--every` to the library's `sync`.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use referrals_client::sync::SyncOptions;
use referrals_mirror::{Db, SyncReport};

use crate::stop::Stop;
use crate::{Context, Usage};

/// The options of `sync`; the filter flags are added from the document's tables.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mirror: a SQLite file, created when it does not exist, or a PostgreSQL database
    /// (postgres://user@host:port/database?sslmode=verify-full&sslrootcert=ca.pem, the password
    /// in PGPASSWORD or ~/.pgpass), whose tables are made when it has none.
    #[arg(long, value_name = "FILE|URL")]
    db: PathBuf,
    /// Run again at this interval (such as 30s, 5m, 1h) until Ctrl-C, instead of once.
    #[arg(long, value_name = "INTERVAL", value_parser = interval)]
    every: Option<Duration>,
    /// With --every, serve GET /healthz, /readyz (the last run ended well within twice the
    /// interval) and /metrics (Prometheus) on this address, such as 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR", requires = "every")]
    observe: Option<std::net::SocketAddr>,
    /// How far behind the service's clock a run stops: a change stamped late by up to this much
    /// is still mirrored.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = skew)]
    skew: Duration,
    /// An OData filter, combined with the filter flags by `and`. A database keeps the filter
    /// it was made with.
    #[arg(long, value_name = "FILTER")]
    filter: Option<String>,
    /// How many pages a first sync (an empty mirror, no filter) asks for at once, at most
    /// (fewer while the service answers 429): it reads ranges of createdDateTime at once.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
}

pub(crate) fn interval(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if duration < Duration::from_secs(1) || duration > Duration::from_secs(7 * 24 * 3600) {
        return Err(format!("`{text}` is not between 1s and 7d"));
    }
    Ok(duration)
}

pub(crate) fn skew(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if duration > Duration::from_secs(24 * 3600) {
        return Err(format!("`{text}` is more than a day"));
    }
    Ok(duration)
}

pub async fn run(context: &Context, args: &Args, matches: &ArgMatches) -> anyhow::Result<()> {
    let mut options = SyncOptions::new()
        .skew(args.skew)
        .concurrency(usize::from(args.concurrency));
    if let Some(filter) = crate::filters::filter(matches).map_err(Usage)? {
        options = options.filter(filter);
    }
    let mut mirror = Db::open(&args.db).await?;
    crate::changes::say_upgraded(context.messages(), &mirror);
    let stop = Stop::listen(context.quiet);
    let health = match (args.observe, args.every) {
        (Some(addr), Some(every)) => Some(crate::observe::start(addr, every, &stop).await?),
        _ => None,
    };
    let mut failed = 0u32;
    loop {
        let began = tokio::time::Instant::now();
        let report = match once(context, &mut mirror, options.clone(), &stop).await {
            Ok(report) => report,
            // Once, every error ends the command; with --every, a failed run is said and the
            // next one comes at its time, on the database opened again (a server restarted,
            // a connection lost). A database made for another filter never syncs, and one
            // whose columns another build changed would be aligned again by this one: both
            // end it.
            Err(error) if args.every.is_none() || is_permanent(&error) => {
                return Err(explained(error));
            }
            Err(error) => {
                if let Some(health) = &health {
                    health.failed(began.elapsed());
                }
                failed = failed.saturating_add(1);
                context.warn(format_args!(
                    "this run failed ({failed} in a row), the next in {}: {:#}",
                    humantime::format_duration(args.every.unwrap_or_default()),
                    explained(error)
                ));
                if !wait(args.every, &stop).await {
                    return Ok(());
                }
                match Db::open(&args.db).await {
                    Ok(opened) => mirror = opened,
                    Err(error) => {
                        context.warn(format_args!("cannot open the database again: {error}"))
                    }
                }
                continue;
            }
        };
        failed = 0;
        let rows = say_run(context, &mirror, &report).await;
        if let Some(health) = &health {
            health.succeeded(began.elapsed(), &report, rows);
        }
        if args.every.is_none() || report.stopped || !wait(args.every, &stop).await {
            return Ok(());
        }
    }
}

/// Says what a run did; the mirror's rows, when they could be counted.
async fn say_run(context: &Context, mirror: &Db, report: &SyncReport) -> Option<u64> {
    if report.skipped {
        context.say(format_args!(
            "{}: another process is syncing this database; this run did nothing",
            mirror.name()
        ));
        return None;
    }
    // A count that fails (the connection lost since) is not a failed run.
    let count = mirror.count().await.ok();
    let shown = count.map_or_else(|| "an unknown number".to_owned(), |count| count.to_string());
    context.say(format_args!(
        "{}: {} referrals changed, {shown} in the mirror",
        mirror.name(),
        report.changed,
    ));
    count
}

/// Waits for the next run: `false` when there is none (no interval, or a stop was asked).
async fn wait(every: Option<Duration>, stop: &Stop) -> bool {
    let Some(every) = every else {
        return false;
    };
    if stop.asked() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(every) => true,
        () = stop.wait() => false,
    }
}

/// An error that the next run would meet again whatever happens meanwhile, or whose next run
/// would undo another build's columns (a mirror opened again takes them as its own).
fn is_permanent(error: &referrals_mirror::Error) -> bool {
    matches!(
        error,
        referrals_mirror::Error::OtherFilter { .. } | referrals_mirror::Error::OtherBuild { .. }
    )
}

/// One sync of the mirror, to its end or to a stop, with a spinner on a terminal.
async fn once(
    context: &Context,
    mirror: &mut Db,
    options: SyncOptions,
    stop: &Stop,
) -> Result<SyncReport, referrals_mirror::Error> {
    let progress = if context.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} referrals changed ({rate})")
            .map(|style| style.with_key("rate", crate::output::whole_rate))
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let after_batch = |changed| {
        progress.set_position(changed);
        if stop.asked() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let result = mirror
        .sync_with(&context.client, options, after_batch)
        .await;
    match &result {
        Ok(_) => progress.finish_and_clear(),
        Err(_) => progress.abandon(),
    }
    result
}

/// The error of a run, with what to do for a database of another filter.
fn explained(error: referrals_mirror::Error) -> anyhow::Error {
    match error {
        referrals_mirror::Error::OtherFilter { .. } => anyhow::anyhow!("{error} (another --db)"),
        error => error.into(),
    }
}
