//! `referrals changes`: a named consumer of the mirror's change log ([`referrals_mirror::feed`]),
//! printed as NDJSON, given to a command (`--exec`), or posted to an endpoint signed as
//! Standard Webhooks says (`--post`); the consumer's position is saved in the mirror as each
//! change is handled.

mod exec;

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use referrals_mirror::feed::{Delivery, Endpoint, Failure, OnFailure, SetAside};
use referrals_mirror::{Change, Db, Feed, Opened, Start};

use crate::stop::Stop;
use crate::{Messages, Usage};

/// The variable that holds the secret of `--post`.
pub const SECRET: &str = "REFERRALS_POST_SECRET";

pub const HELP: &str = concat!(
    "Examples:\n",
    "  referrals changes --db referrals.sqlite --consumer crm --follow\n",
    "  referrals changes --db referrals.sqlite --consumer crm --from snapshot --exec './to-crm.sh'\n",
    "  REFERRALS_POST_SECRET=whsec_... referrals changes --db postgres://crm@db/referrals \\\n",
    "      --consumer flow --follow --post https://example.com/hooks/referrals\n\n",
    "Each change is {\"change\": {...}, \"referral\": {...}}: its sequence number (seq), kind (new,\n",
    "changed, snapshot), id, eTag, updatedDateTime and the members that changed with their\n",
    "previous and new values; and the referral as the mirror holds it. The consumer's position is\n",
    "saved in the mirror: run again, it goes on after the last change handled (a change may come\n",
    "twice after a crash: seq tells). One process serves a consumer at a time; another waits and\n",
    "takes over when it ends.\n\n",
    "--exec runs CMD with sh -c, the change on standard input and REFERRALS_CHANGE_SEQ,\n",
    "REFERRALS_CHANGE_KIND and REFERRALS_REFERRAL_ID in its environment; exit status 0 handles the\n",
    "change. --post sends it with the headers webhook-id (seq), webhook-timestamp and\n",
    "webhook-signature, signed with the secret in REFERRALS_POST_SECRET (whsec_...); a 2xx handles\n",
    "it. A failure is tried again (1 s, 2 s, 4 s... or the endpoint's Retry-After); a change that\n",
    "fails every attempt stops the command (exit status 1), or with --set-aside is listed by\n",
    "--failed and sent again by --retry-failed."
);

/// The options of `changes`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mirror whose changes to follow (kept by `sync --db` or `listen --db`): a SQLite file
    /// or a PostgreSQL database (postgres://..., the password in PGPASSWORD).
    #[arg(long, value_name = "FILE|URL")]
    db: PathBuf,
    /// The consumer: letters, digits, - and _. Its position is saved in the mirror.
    #[arg(long, value_name = "NAME", value_parser = consumer)]
    consumer: String,
    /// Where a consumer that the mirror does not know starts: now (the changes from now on),
    /// snapshot (every referral first, then the changes), or after a sequence number.
    #[arg(long, value_name = "now|snapshot|SEQ", default_value = "now", value_parser = start)]
    from: Start,
    /// Move the consumer to --from even when the mirror knows it (after it was pruned away, or
    /// to read everything again).
    #[arg(long)]
    restart: bool,
    /// Wait for more changes after the last one, as tail -f does, until Ctrl-C.
    #[arg(long)]
    follow: bool,
    /// Run CMD with sh -c for each change (the change as JSON on standard input).
    #[arg(long, value_name = "CMD", conflicts_with = "post")]
    exec: Option<String>,
    /// POST each change to URL, signed with the secret in REFERRALS_POST_SECRET.
    #[arg(long, value_name = "URL")]
    post: Option<String>,
    /// How many changes --exec or --post handles at once; one referral's changes always one
    /// after another, in order.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// How many times a change is tried before it stops the command (or is set aside).
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    attempts: u32,
    /// How long one attempt may take: a command still running is stopped, and the attempt
    /// fails.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = timeout)]
    timeout: Duration,
    /// Set a change that fails every attempt aside (see --failed) and go on, instead of
    /// stopping.
    #[arg(long)]
    set_aside: bool,
    /// List the changes that this consumer set aside, as NDJSON, and exit.
    #[arg(long, conflicts_with_all = ["exec", "post", "follow", "retry_failed", "restart"])]
    failed: bool,
    /// Send the changes that this consumer set aside again (with --exec or --post); those
    /// handled leave the list.
    #[arg(long, conflicts_with_all = ["follow", "restart"])]
    retry_failed: bool,
    /// Remove the consumer from the mirror (its position, its snapshot, what it set aside),
    /// so that the log is pruned without waiting for it, and exit.
    #[arg(long, conflicts_with_all = ["exec", "post", "follow", "failed", "retry_failed", "restart"])]
    forget: bool,
    /// How long the mirror keeps a change that some consumer has not read (for every consumer
    /// of this mirror; a week unless set).
    #[arg(long, value_name = "DURATION", value_parser = retention)]
    keep_changes: Option<Duration>,
}

fn consumer(text: &str) -> Result<String, String> {
    referrals_mirror::feed::check_name(text)
        .map(|()| text.to_owned())
        .map_err(|error| error.to_string())
}

fn start(text: &str) -> Result<Start, String> {
    match text {
        "now" => Ok(Start::Now),
        "snapshot" => Ok(Start::Snapshot),
        seq => seq
            .parse::<i64>()
            .ok()
            .filter(|seq| *seq >= 0)
            .map(Start::After)
            .ok_or_else(|| format!("`{text}` is not now, snapshot or a sequence number")),
    }
}

fn timeout(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if duration < Duration::from_millis(10) || duration > Duration::from_secs(24 * 3600) {
        return Err(format!("`{text}` is not between 10ms and 24h"));
    }
    Ok(duration)
}

fn retention(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if duration < Duration::from_secs(60) || duration > referrals_mirror::feed::MAX_RETENTION {
        return Err(format!(
            "`{text}` is not between a minute and a hundred years"
        ));
    }
    Ok(duration)
}

/// Says that the mirror was upgraded and that its change log starts empty.
pub fn say_upgraded(messages: Messages, db: &Db) {
    if let Opened::Upgraded {
        from,
        log_started: true,
    } = db.opened()
    {
        messages.say(format_args!(
            "{}: upgraded from version {from}; its change log starts empty (a consumer that \
             needs every referral starts with --from snapshot)",
            db.name()
        ));
    }
}

/// How the changes are handled.
#[allow(clippy::large_enum_variant, reason = "one per command")]
enum Handler {
    Print,
    Exec(String),
    Post(Endpoint),
}

impl Handler {
    fn of(args: &Args) -> anyhow::Result<Self> {
        if let Some(command) = &args.exec {
            return Ok(Self::Exec(command.clone()));
        }
        let Some(url) = &args.post else {
            if args.retry_failed {
                return Err(Usage("--retry-failed needs --exec or --post".into()).into());
            }
            return Ok(Self::Print);
        };
        let secret = std::env::var(SECRET).map_err(|_| {
            Usage(format!(
                "--post signs each change with the secret in {SECRET} (whsec_ and base64)"
            ))
        })?;
        let endpoint = Endpoint::new(url, &secret, args.timeout)
            .map_err(|error| Usage(format!("--post: {error}")))?;
        Ok(Self::Post(endpoint))
    }

    async fn handle(&self, change: Change) -> Result<(), Failure> {
        match self {
            Self::Print => Ok(()),
            Self::Exec(command) => exec::run(command, change).await,
            Self::Post(endpoint) => endpoint.send(&change).await,
        }
    }
}

pub async fn run(messages: Messages, args: &Args) -> anyhow::Result<()> {
    let handler = Handler::of(args)?;
    let is_file = args
        .db
        .to_str()
        .is_none_or(|db| !referrals_mirror::is_server(db));
    if is_file && !args.db.exists() {
        anyhow::bail!(
            "{}: no such file; a mirror is made by `referrals sync --db` or `referrals listen --db`",
            args.db.display()
        );
    }
    let db = Db::open(&args.db).await?;
    say_upgraded(messages, &db);
    if let Some(keep) = args.keep_changes {
        db.set_change_retention(keep).await?;
    }
    let mut feed = db.feed(&args.consumer, args.from).await?;
    if args.failed {
        return print_set_aside(&mut feed).await;
    }
    if args.forget {
        feed.forget().await?;
        messages.say(format_args!("{}: forgotten", args.consumer));
        return Ok(());
    }
    let stop = Stop::listen(messages.quiet);
    if !hold(messages, &mut feed, args, &stop).await? {
        return Ok(());
    }
    if args.retry_failed {
        return retry_set_aside(messages, &db, &mut feed, &handler, args).await;
    }
    if let Handler::Print = handler {
        return print(&mut feed, args.follow, &stop).await;
    }
    let on_failure = if args.set_aside {
        OnFailure::SetAside
    } else {
        OnFailure::Stop
    };
    let delivery = Delivery::new()
        .concurrency(usize::from(args.concurrency))
        .attempts(args.attempts)
        .timeout(args.timeout)
        .on_failure(on_failure)
        .follow(args.follow);
    let wait = stop.clone();
    let report = feed
        .deliver(&delivery, |change| handler.handle(change), async move {
            wait.wait().await
        })
        .await?;
    messages.say(format_args!(
        "{}: {} changes handled, {} set aside, {} retries; at change {}",
        args.consumer, report.delivered, report.set_aside, report.retries, report.position
    ));
    Ok(())
}

/// Holds the consumer (saying so while another process serves it), moves it with --restart,
/// and says where a new one starts; `false` when a stop came first.
async fn hold(
    messages: Messages,
    feed: &mut Feed,
    args: &Args,
    stop: &Stop,
) -> anyhow::Result<bool> {
    let held = tokio::select! {
        held = feed.hold() => held?,
        () = tokio::time::sleep(Duration::from_secs(1)) => {
            messages.say(format_args!(
                "another process serves the consumer {}: waiting to take over",
                args.consumer
            ));
            tokio::select! {
                held = feed.hold() => held?,
                () = stop.wait() => return Ok(false),
            }
        }
    };
    if args.restart {
        let position = feed.restart(args.from).await?;
        messages.say(format_args!(
            "{}: restarted after change {position}",
            args.consumer
        ));
    } else if held.new {
        let from = match args.from {
            Start::Snapshot => "every referral of the mirror first, then the changes",
            Start::Now => "the changes from now on",
            Start::After(_) => "the changes after it",
        };
        messages.say(format_args!(
            "{}: a new consumer, after change {} ({from})",
            args.consumer, held.position
        ));
    }
    Ok(true)
}

/// Prints the changes as NDJSON, saving the position after each page written.
async fn print(feed: &mut Feed, follow: bool, stop: &Stop) -> anyhow::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    loop {
        let changes = if follow {
            tokio::select! {
                changes = feed.next(256) => changes?,
                () = stop.wait() => return Ok(()),
            }
        } else {
            feed.changes(256).await?
        };
        let Some(last) = changes.last().map(|change| change.seq) else {
            return Ok(());
        };
        for change in &changes {
            writeln!(out, "{}", change.payload()?)?;
        }
        out.flush()?;
        feed.ack(last).await?;
        if stop.asked() {
            return Ok(());
        }
    }
}

/// Prints the changes set aside, as NDJSON.
async fn print_set_aside(feed: &mut Feed) -> anyhow::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    for SetAside {
        change,
        error,
        attempts,
        failed,
    } in feed.set_aside_list().await?
    {
        let payload: serde_json::Value = serde_json::from_str(&change.payload()?)?;
        let line = serde_json::json!({
            "change": payload["change"], "referral": payload["referral"],
            "error": error, "attempts": attempts, "failed": failed,
        });
        writeln!(out, "{line}")?;
    }
    out.flush().context("cannot write to standard output")
}

/// Sends the changes set aside again, one at a time, in order, each with the referral as the
/// mirror holds it now (the one it was set aside with may be older than one delivered since);
/// those handled leave the list.
async fn retry_set_aside(
    messages: Messages,
    db: &Db,
    feed: &mut Feed,
    handler: &Handler,
    args: &Args,
) -> anyhow::Result<()> {
    let (mut handled, mut failing) = (0u64, 0u64);
    for SetAside {
        mut change,
        attempts,
        ..
    } in feed.set_aside_list().await?
    {
        if let Some(now) = db.get(&change.id).await? {
            change.referral = Some(now);
        }
        let outcome = tokio::time::timeout(args.timeout, handler.handle(change.clone())).await;
        let failure = match outcome {
            Ok(Ok(())) => {
                feed.forget_set_aside(change.seq).await?;
                handled += 1;
                continue;
            }
            Ok(Err(failure)) => failure.message().to_owned(),
            Err(_) => "no end within the timeout".to_owned(),
        };
        feed.set_aside(&change, &failure, attempts.saturating_add(1))
            .await?;
        failing += 1;
    }
    messages.say(format_args!(
        "{}: {handled} changes set aside were handled, {failing} still fail",
        args.consumer
    ));
    if failing > 0 {
        return Err(crate::Reported.into());
    }
    Ok(())
}
