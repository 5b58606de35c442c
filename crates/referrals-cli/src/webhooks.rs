//! `referrals webhooks register|show|update|test`: the registration of a URL for Partner
//! Center's events, with the same token handling as the other commands.

use std::io::Write;
use std::time::Duration;

use referrals_client::webhooks::types::{WebhookEventName, WebhookRegistration};
use referrals_client::webhooks::{self, Client};

use crate::Context;

pub const HELP: &str = "\
Examples:
  referrals webhooks register --url https://crm.contoso.com/partner-center/events
  referrals webhooks show
  referrals webhooks update --url https://crm.contoso.com/events --event referral-updated
  referrals webhooks test

The registration API is on its own host: --webhooks-root or PARTNER_WEBHOOKS_ROOT, the
document's server by default. Without --event, the four referral events are registered.";

/// The options of `webhooks`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// The registration API's root [default: the document's server].
    #[arg(long, global = true, value_name = "URL", env = webhooks::ROOT_VARIABLE)]
    webhooks_root: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Register a URL for events.
    Register(Registration),
    /// Show the registration.
    Show,
    /// Replace the registration's URL and events.
    Update(Registration),
    /// Send a test-created event to the registered URL and show its delivery attempts.
    Test,
}

#[derive(Debug, clap::Args)]
struct Registration {
    /// The URL that receives the events: https (the sandbox also takes http to a loopback
    /// address).
    #[arg(long)]
    url: String,
    /// An event to receive; repeat for several [default: the four referral events].
    #[arg(long = "event", value_name = "NAME")]
    events: Vec<WebhookEventName>,
    /// Ask for the signature in `x-ms-signature` instead of `Authorization`.
    #[arg(long)]
    ms_signature_header: bool,
}

impl Registration {
    fn body(&self) -> WebhookRegistration {
        let events = if self.events.is_empty() {
            WebhookEventName::REFERRAL_EVENTS.to_vec()
        } else {
            self.events.clone()
        };
        let mut body = WebhookRegistration::new(self.url.clone(), events);
        body.signature_token_to_ms_signature_header = self.ms_signature_header.then_some(true);
        body
    }
}

pub async fn run(context: &Context, args: &Args, token: Option<String>) -> anyhow::Result<()> {
    let root = match &args.webhooks_root {
        Some(root) => root.clone(),
        None => webhooks::servers::ALL
            .first()
            .copied()
            .unwrap_or_default()
            .to_owned(),
    };
    let tokens = crate::auth::provider(token).map_err(crate::Usage)?;
    let client: Client = referrals_client::Client::builder(&root, tokens)
        .allow_http_to_loopback(true)
        .build_webhooks()
        .map_err(|error| crate::Usage(format!("--webhooks-root {root}: {error}")))?;
    match &args.command {
        Command::Register(registration) => {
            let registered = client.register(&registration.body()).await;
            print(&registered.map_err(already_registered)?)
        }
        Command::Show => print(&client.registration().await?),
        Command::Update(registration) => print(&client.replace(&registration.body()).await?),
        Command::Test => test(context, &client).await,
    }
}

/// A 409 to `register`: a registration exists, and `update` replaces it (exit status 5).
fn already_registered(error: referrals_client::Error) -> anyhow::Error {
    if error.status().is_some_and(|status| status.as_u16() == 409) {
        let exists = crate::Exists(
            "a webhook registration exists already; `referrals webhooks update --url URL \
             [--event NAME]...` replaces it, `referrals webhooks show` shows it"
                .to_owned(),
        );
        return anyhow::Error::new(error).context(exists);
    }
    error.into()
}

/// Sends a validation event and shows its attempts as they come, for up to 10 seconds.
async fn test(context: &Context, client: &Client) -> anyhow::Result<()> {
    let sent = client.send_validation().await.map_err(|error| {
        let hint = if error.status().is_some_and(|status| status.as_u16() == 400) {
            "; the registration must include test-created (`referrals webhooks update --url URL \
             --event test-created --event referral-created ...`)"
        } else {
            ""
        };
        anyhow::Error::new(error).context(format!("no test event was sent{hint}"))
    })?;
    let id = sent.correlation_id.clone().unwrap_or_default();
    context.say(format_args!(
        "sent a test event; its correlation id is {id}"
    ));
    let mut attempts = Vec::new();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        attempts = client.validation_deliveries(&id).await?;
        if attempts.iter().any(|attempt| {
            attempt
                .response_code
                .is_some_and(|code| (200..300).contains(&code))
        }) {
            break;
        }
    }
    print(&attempts)
}

fn print(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
