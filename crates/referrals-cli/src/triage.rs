//! `accept`, `decline`, `close-won`, `close-lost`: a status change, sent with `If-Match` after
//! the document's status rules allow it; when someone else changed the referral meanwhile (412),
//! the referral is read again, what changed is shown, and the change is checked and tried again
//! on the new version (or not, with `--no-retry`).

use std::io::{self, Write};

use referrals_client::facts::STATUS_RULES;
use referrals_client::types::{Referral, ReferralStatus, ReferralSubstatus};
use referrals_client::{Amount, DECIDE_ATTEMPTS, Decided, ErrorKind, StatusChange};

use crate::output::Format;
use crate::{Context, Reported};
use referrals_client::flat::{Columns, changes};

pub const HELP: &str = "\
Examples:
  referrals accept 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1
  referrals decline 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1 --reason 'Out of our region'
  referrals close-won 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1 --deal-value 125000.50
  referrals close-lost 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1 --reason 'Chose another vendor'

The referral is read, the change is checked against the document's status rules, and sent
with If-Match. If the referral changed meanwhile (412), what changed is shown, the rules are
checked again on the new version, and the change is tried again (at most 5 times), unless
--no-retry. With --if-match ETAG the referral is not read: the change is sent for the version
of that eTag, the one a script judged, and the service checks the rules.
The updated referral goes to standard output.

Exit status: 0 done (or already so), 1 failed, 2 a wrong command line, 3 the referral changed
since it was read (412) and nothing was changed: read it again and decide again.";

/// The options of `accept`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The referral's id.
    pub id: String,
    /// Stop at a 412 (the referral changed since it was read) instead of trying again.
    #[arg(long)]
    pub no_retry: bool,
    /// Send the change only if the referral's eTag is still ETAG, without reading it first: a
    /// 412 (exit status 3) is the answer when it changed. ETAG as the service sends it
    /// ("abc"), or as a CSV cell holds it ("""abc""", from `get --select eTag --format csv`).
    #[arg(long, value_name = "ETAG", conflicts_with = "no_retry", value_parser = entity_tag)]
    pub if_match: Option<String>,
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

/// The options of `set-status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Args,
    /// The status to move to (see the rules below).
    #[arg(value_name = "STATUS")]
    pub status: ReferralStatus,
    /// The substatus [default: the first of the status's rule].
    #[arg(long, value_name = "SUBSTATUS")]
    pub substatus: Option<ReferralSubstatus>,
    /// Why (the referral's statusReason).
    #[arg(long)]
    pub reason: Option<String>,
}

/// The help of `set-status`: the document's status rules.
pub fn status_help() -> String {
    let mut help = String::from(
        "The status rules of the document (x-status-rules): from each status, the statuses a \
         referral may move to, and the substatuses of the status (the first is given when \
         --substatus is left out):\n",
    );
    for rule in STATUS_RULES {
        let to: Vec<&str> = rule.to.iter().map(|status| status.as_str()).collect();
        let substatus: Vec<&str> = rule.substatus.iter().map(|s| s.as_str()).collect();
        help.push_str(&format!(
            "  {:<10} → {}; substatus {}\n",
            rule.from.as_str(),
            to.join(", "),
            substatus.join(", ")
        ));
    }
    help.push_str(
        "\nExample:\n  referrals set-status 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1 Active\n\n",
    );
    help.push_str(HELP.split_once("\n\n").map_or(HELP, |(_, rest)| rest));
    help
}

pub async fn set_status(context: &Context, args: &StatusArgs) -> anyhow::Result<()> {
    let to = StatusChange::To {
        status: args.status.clone(),
        substatus: args.substatus.clone(),
        reason: args.reason.clone(),
    };
    change(context, &args.common, to).await
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

/// `status / substatus` of a referral, as the service stored it.
fn state(referral: &Referral) -> String {
    let text = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    format!(
        "{} / {}",
        text(referral.status.as_ref().map(ToString::to_string)),
        text(referral.substatus.as_ref().map(ToString::to_string))
    )
}

/// An eTag as given on the command line: a CSV cell's text (`"""abc"""`, quotes doubled inside
/// quotes) is read back to the tag (`"abc"`). An entity tag never holds two quotes in a row,
/// so no tag is read otherwise than meant.
fn entity_tag(text: &str) -> Result<String, String> {
    let cell = text.len() >= 2 && text.starts_with('"') && text.ends_with('"');
    if cell && text.contains("\"\"") {
        return Ok(text[1..text.len() - 1].replace("\"\"", "\""));
    }
    if text.is_empty() {
        return Err("an eTag is not empty".into());
    }
    Ok(text.to_owned())
}

async fn change(context: &Context, args: &Args, change: StatusChange) -> anyhow::Result<()> {
    if let Some(etag) = &args.if_match {
        let sent = context
            .client
            .change_if_match(&args.id, etag, &change)
            .await;
        let updated = sent.map_err(|error| changed_meanwhile(error, &args.id))?;
        context.say(format_args!("{}: now {}", args.id, state(&updated)));
        return crate::print_referrals(args.format, &[updated]);
    }
    let referral = context.client.referral(&args.id).await?;
    let attempts = if args.no_retry { 1 } else { DECIDE_ATTEMPTS };
    let mut judged: Option<Referral> = None;
    let decided = context
        .client
        .decide_within(&referral, attempts, |current| {
            if let Some(before) = &judged {
                // Shown on a best effort: standard error may be closed.
                let _ = show_changes(before, current);
                context.say(format_args!(
                    "checking the change again on the new version..."
                ));
            }
            judged = Some(current.clone());
            change.clone().into()
        })
        .await;
    match decided {
        Ok(Decided::Applied { referral, .. }) => {
            context.say(format_args!("{}: now {}", args.id, state(&referral)));
            crate::print_referrals(args.format, &[referral])
        }
        Ok(decided) => {
            context.say(format_args!(
                "{} is already {}; nothing was sent",
                args.id,
                state(decided.referral())
            ));
            crate::print_referrals(args.format, &[decided.referral().clone()])
        }
        Err(error) if error.kind() == ErrorKind::InvalidTransition => {
            let _ = writeln!(
                io::stderr().lock(),
                "error: {}: {}; nothing was sent",
                args.id,
                error.message()
            );
            Err(Reported.into())
        }
        Err(error) if error.kind() == ErrorKind::PreconditionFailed => {
            if let (Some(before), Ok(fresh)) = (&judged, context.client.referral(&args.id).await) {
                let _ = show_changes(before, &fresh);
            }
            Err(changed_meanwhile(error, &args.id))
        }
        Err(error) => Err(error.into()),
    }
}

/// A 412 says what to do; any other error is itself.
fn changed_meanwhile(error: referrals_client::Error, id: &str) -> anyhow::Error {
    if error.kind() == ErrorKind::PreconditionFailed {
        anyhow::Error::new(error).context(format!(
            "{id} changed since it was read (412); nothing was changed: read it again and decide \
             again"
        ))
    } else {
        error.into()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_is_read_as_sent_or_from_a_csv_cell() {
        assert_eq!(entity_tag("\"abc\"").unwrap(), "\"abc\"");
        assert_eq!(entity_tag("\"\"\"abc\"\"\"").unwrap(), "\"abc\"");
        assert_eq!(entity_tag("\"W/\"\"abc\"\"\"").unwrap(), "W/\"abc\"");
        assert_eq!(entity_tag("abc").unwrap(), "abc");
        assert!(entity_tag("").is_err());
    }
}
