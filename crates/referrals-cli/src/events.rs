//! `referrals events`: the events that a receiver (`referrals listen`) stored, counted, and those
//! it set aside after they failed too often, listed and put back to be worked off. The mirror
//! alone: no service, no token.

use std::io::Write as _;
use std::path::PathBuf;

use referrals_mirror::Db;

use crate::Messages;

pub const HELP: &str = concat!(
    "Examples:\n",
    "  referrals events --db referrals.sqlite\n",
    "  referrals events --db referrals.sqlite --retry 4211\n",
    "  referrals events --db postgres://crm@db.internal/referrals --retry-all\n\n",
    "An event whose work fails (its referral cannot be read or written) is tried again with a\n",
    "growing pause, and after 10 tries set aside: it no longer holds back the events after it,\n",
    "and the metric referrals_events_aside counts it. This lists those set aside on standard\n",
    "output, one a line, tab-separated: seq, received, attempts, event, referral, last error;\n",
    "the counts go to standard error. --retry puts one back, --retry-all all of them: the\n",
    "receiver works them off at its next turn, their attempts counted from zero."
);

/// The options of `events`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mirror that `referrals listen` keeps: a SQLite file, or a PostgreSQL database
    /// (postgres://..., the password in PGPASSWORD).
    #[arg(long, value_name = "FILE|URL")]
    db: PathBuf,
    /// Put the event of this seq, set aside, back to be worked off.
    #[arg(long, value_name = "SEQ", conflicts_with = "retry_all")]
    retry: Option<i64>,
    /// Put every event set aside back to be worked off.
    #[arg(long)]
    retry_all: bool,
}

pub async fn run(messages: Messages, args: &Args) -> anyhow::Result<()> {
    let mut db = Db::open(&args.db).await?;
    if args.retry.is_some() || args.retry_all {
        let retried = db.retry_events(args.retry).await?;
        if let (Some(seq), 0) = (args.retry, retried) {
            anyhow::bail!("no event {seq} is set aside in {}", db.name());
        }
        messages.say(format_args!("{retried} events put back to be worked off"));
        return Ok(());
    }
    let counts = db.event_counts().await?;
    let aside = db.aside_events().await?;
    let mut out = std::io::stdout().lock();
    for event in &aside {
        let error = event.error.replace(['\t', '\n', '\r'], " ");
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{error}",
            event.seq,
            event.received,
            event.attempts,
            event.name,
            event.referral_id.as_deref().unwrap_or("-"),
        )?;
    }
    out.flush()?;
    messages.say(format_args!(
        "{}: {} events to work off (the oldest received {:.0} s ago), {} set aside",
        db.name(),
        counts.pending,
        counts.oldest_pending_seconds,
        counts.aside
    ));
    Ok(())
}
