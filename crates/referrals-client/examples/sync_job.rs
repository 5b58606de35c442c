//! A sync job: prints the referrals that changed since its last run, one JSON line each, and
//! keeps its state in a file, so that it can run every few minutes (and after a crash) with
//! nothing missed.
//!
//! ```text
//! cargo run -p referrals-sandbox -- --addr 127.0.0.1:8080 --token secret &
//! cargo run -p referrals-client --example sync_job -- --root http://127.0.0.1:8080 --token secret
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use referrals_client::sync::{SyncOptions, SyncState};
use referrals_client::{Client, StaticToken};

/// Prints the referrals that changed since the last run, and saves where it stopped.
#[derive(Debug, clap::Parser)]
struct Options {
    /// The service root.
    #[arg(long, default_value = "https://api.partner.microsoft.com")]
    root: String,
    /// The bearer token.
    #[arg(long, env = "PARTNER_TOKEN", hide_env_values = true)]
    token: String,
    /// The file that keeps the sync's state between runs.
    #[arg(long, default_value = "sync-state.json")]
    state: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = <Options as clap::Parser>::parse();
    match run(options).await {
        Ok(count) => {
            eprintln!("{count} referrals changed");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<usize, Box<dyn std::error::Error>> {
    let client = Client::builder(&options.root, StaticToken::new(options.token))
        .allow_http_to_loopback(true)
        .build()?;
    let mut count = 0;
    // The job itself.
    let saved = std::fs::read_to_string(&options.state).ok();
    let state = saved.as_deref().map(SyncState::from_json).transpose()?;
    let mut run = client.sync(state, SyncOptions::new())?;
    while let Some(batch) = run.next().await? {
        for referral in batch.items() {
            // Upsert by id in a real job: a referral may come twice, with the same id and eTag.
            println!("{}", serde_json::to_string(referral)?);
            count += 1;
        }
        std::fs::write(&options.state, batch.commit().to_json())?;
    }
    Ok(count)
}
