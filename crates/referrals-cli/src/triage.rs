//! `accept`, `decline`, `close-won`, `close-lost`: a status change, sent with `If-Match` after
//! the document's status rules allow it; when someone else changed the referral meanwhile (412),
//! the referral is read again, what changed is shown, and the change is checked and tried again
//! on the new version (or not, with `--no-retry`).

use std::io::{self, Write};

use referrals_client::types::Referral;
use referrals_client::{Amount, ErrorKind, StatusChange};

use crate::flat::{Columns, changes};
use crate::output::Format;
use crate::{Context, Reported};

pub const HELP: &str = "\
Examples:
  referrals accept 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1
  referrals decline 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1 --reason 'Out of our region'
  referrals close-won 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1 --deal-value 125000.50
  referrals close-lost 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1 --reason 'Chose another vendor'

The referral is read, the change is checked against the document's status rules, and sent
with If-Match. If the referral changed meanwhile (412), what changed is shown, the rules are
checked again on the new version, and the change is tried again (at most 5 times), unless
--no-retry. The updated referral goes to standard output.";

/// How many times a change is sent, at most, when the referral keeps changing.
const ATTEMPTS: usize = 5;

/// The options of `accept`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The referral's id.
    pub id: String,
    /// Stop at a 412 (the referral changed since it was read) instead of trying again.
    #[arg(long)]
    pub no_retry: bool,
    /// How to write the updated referral [default: table on a terminal, ndjson otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// The options of `decline` and `close-lost`.
#[derive(Debug, clap::Args)]
pub struct ReasonArgs {
    #[command(flatten)]
    pub common: Args,
    /// Why (the referral's statusReason).
    #[arg(long)]
    pub reason: String,
}

/// The options of `close-won`.
#[derive(Debug, clap::Args)]
pub struct WonArgs {
    #[command(flatten)]
    pub common: Args,
    /// The final value of the deal, as a decimal number (kept digit for digit).
    #[arg(long, value_name = "AMOUNT")]
    pub deal_value: Option<Amount>,
}

pub async fn accept(context: &Context, args: &Args) -> anyhow::Result<()> {
    change(context, args, StatusChange::Accept).await
}

pub async fn decline(context: &Context, args: &ReasonArgs) -> anyhow::Result<()> {
    let reason = args.reason.clone();
    change(context, &args.common, StatusChange::Decline { reason }).await
}

pub async fn close_won(context: &Context, args: &WonArgs) -> anyhow::Result<()> {
    let deal_value = args.deal_value.clone();
    change(context, &args.common, StatusChange::CloseWon { deal_value }).await
}

pub async fn close_lost(context: &Context, args: &ReasonArgs) -> anyhow::Result<()> {
    let reason = args.reason.clone();
    change(context, &args.common, StatusChange::CloseLost { reason }).await
}

async fn change(context: &Context, args: &Args, change: StatusChange) -> anyhow::Result<()> {
    let (status, substatus) = change.target();
    let mut referral = context.client.referral(&args.id).await?;
    for attempt in 1..=ATTEMPTS {
        if change.is_done(&referral) {
            context.say(format_args!(
                "{} is already {status} / {substatus}; nothing was sent",
                args.id
            ));
            return crate::print_referrals(args.format, &[referral]);
        }
        match context.client.change(&referral, &change).await {
            Ok(updated) => {
                context.say(format_args!("{}: now {status} / {substatus}", args.id));
                return crate::print_referrals(args.format, &[updated]);
            }
            Err(error) if error.kind() == ErrorKind::PreconditionFailed => {
                let fresh = context.client.referral(&args.id).await?;
                show_changes(&referral, &fresh)?;
                referral = fresh;
                if args.no_retry {
                    anyhow::bail!(
                        "{} changed since it was read (412), and --no-retry is set: nothing was \
                         changed",
                        args.id
                    );
                }
                if attempt < ATTEMPTS {
                    context.say(format_args!(
                        "checking the change again on the new version..."
                    ));
                }
            }
            Err(error) if error.kind() == ErrorKind::InvalidTransition => {
                let _ = writeln!(
                    io::stderr().lock(),
                    "error: {}: {}; nothing was sent",
                    args.id,
                    error.message()
                );
                return Err(Reported.into());
            }
            Err(error) => return Err(error.into()),
        }
    }
    anyhow::bail!(
        "{} changed each of the {ATTEMPTS} times the change was sent (412); nothing was changed",
        args.id
    )
}

/// Writes to standard error what changed between two versions of a referral.
fn show_changes(before: &Referral, after: &Referral) -> anyhow::Result<()> {
    let columns = Columns::new(None);
    let changed = changes(
        &columns,
        &serde_json::to_string(before)?,
        &serde_json::to_string(after)?,
    )?;
    let mut err = io::stderr().lock();
    writeln!(err, "the referral changed since it was read (412):")?;
    for (member, old, new) in changed {
        let shown = |text: &str| {
            if text.is_empty() {
                "(none)".to_owned()
            } else {
                text.to_owned()
            }
        };
        writeln!(err, "  {member}: {} -> {}", shown(&old), shown(&new))?;
    }
    Ok(())
}
