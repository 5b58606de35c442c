//! `referrals create --from FILE.json`: a referral from a JSON file, and with
//! `--share-with-microsoft` the two steps of a shared (co-sell) referral.

use std::path::PathBuf;

use anyhow::Context as _;
use referrals_client::types::{NewReferral, ReferralType};

use crate::output::Format;
use crate::{Context, Usage};

pub const HELP: &str = "\
Examples:
  referrals create --from referral.json
  referrals create --from referral.json --share-with-microsoft
  referrals api create-referral --json-body-template     (the JSON Schema of the file)

The file holds the body of the create operation, as in the document's example: `type`,
`customerProfile`, `consent` and `details` are required. The created referrals go to standard
output. With --share-with-microsoft (the file's type must be Shared), the referral is
created, then a second one joins its engagement and invites Microsoft; if the second step
fails, the message says how to run it alone (--engagement-id). A file that names an
engagementId already takes only the second step.";

/// The largest file read.
const LIMIT: u64 = 4 << 20;

/// The options of `create`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The JSON file of the referral (`-` for standard input).
    #[arg(long, value_name = "FILE.json")]
    from: PathBuf,
    /// Make it a co-sell referral: type Shared, then a second referral of the same engagement
    /// that invites Microsoft.
    #[arg(long)]
    share_with_microsoft: bool,
    /// With --share-with-microsoft: only invite Microsoft to this existing engagement (the
    /// second step alone, as when the file has an engagementId).
    #[arg(long, value_name = "ID", requires = "share_with_microsoft")]
    engagement_id: Option<String>,
    /// How to write the created referrals [default: table on a terminal, ndjson otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

pub async fn run(context: &Context, args: &Args) -> anyhow::Result<()> {
    let new = read(args)?;
    if !args.share_with_microsoft {
        let created = context.client.create(&new).await?;
        context.say(format_args!(
            "created {}",
            created.id.as_deref().unwrap_or("a referral")
        ));
        return crate::print_referrals(args.format, &[created]);
    }
    share(context, args, &new).await
}

/// The referral of `--from`: one JSON value, a `NewReferral`.
fn read(args: &Args) -> anyhow::Result<NewReferral> {
    let text = crate::read_bounded(&args.from, LIMIT, "the referral file")?;
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    let new: NewReferral =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let at = error.path().to_string();
            anyhow::anyhow!(
                "{} is not a referral to create: {}{}",
                args.from.display(),
                error.inner(),
                if at == "." {
                    String::new()
                } else {
                    format!(" (at `{at}`)")
                }
            )
        })?;
    deserializer
        .end()
        .with_context(|| format!("{} holds more than one JSON value", args.from.display()))?;
    Ok(new)
}

/// The two steps of a shared referral: the referral of type Shared (unless an engagement is
/// named: then the second step alone), and the one of the same engagement that invites
/// Microsoft.
async fn share(context: &Context, args: &Args, new: &NewReferral) -> anyhow::Result<()> {
    if new.type_ != ReferralType::Shared {
        return Err(Usage(format!(
            "{} says type {}; --share-with-microsoft shares a referral of type Shared: set its \
             type to Shared",
            args.from.display(),
            new.type_
        ))
        .into());
    }
    let mut created = Vec::new();
    // An engagement named by the flag or the file is joined: the second step alone.
    let joined = args
        .engagement_id
        .clone()
        .or_else(|| new.engagement_id.clone());
    let engagement = match joined {
        Some(engagement) => engagement,
        None => {
            let first = context.client.create(new).await?;
            let engagement = first.engagement_id.clone().with_context(|| {
                format!(
                    "the service created {} without an engagementId, which the second step \
                     needs",
                    first.id.as_deref().unwrap_or("the referral")
                )
            })?;
            context.say(format_args!(
                "created {} in the engagement {engagement}",
                first.id.as_deref().unwrap_or("a referral")
            ));
            created.push(first);
            engagement
        }
    };
    match context.client.invite_microsoft(new, &engagement).await {
        Ok(invitation) => {
            context.say(format_args!(
                "invited Microsoft to the engagement {engagement} ({})",
                invitation.id.as_deref().unwrap_or("a referral")
            ));
            created.push(invitation);
            crate::print_referrals(args.format, &created)
        }
        Err(error) => {
            // The first referral exists: show it, and how to finish.
            if !created.is_empty() {
                crate::print_referrals(args.format, &created)?;
            }
            Err(anyhow::Error::new(error).context(format!(
                "inviting Microsoft to the engagement {engagement} failed; to try that step \
                 again: referrals create --from {} --share-with-microsoft --engagement-id {engagement}",
                args.from.display()
            )))
        }
    }
}
