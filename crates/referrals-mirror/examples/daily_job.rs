//! A partner's daily job: keep a copy of the referrals, accept the pending US and Canadian
//! leads, decline the leads pending for more than ten days, and list the active co-sell
//! referrals in a CSV file; again every `--every` minutes.
//!
//! ```sh
//! PARTNER_ROOT=http://127.0.0.1:8080 PARTNER_TOKEN=secret \
//!     cargo run -p referrals-mirror --example daily_job -- --every 5
//! ```

use std::time::Duration;

use chrono::Utc;
use referrals_client::flat::Columns;
use referrals_client::types::{Referral, ReferralStatus, ReferralSubstatus, ReferralType};
use referrals_client::{Client, Decision, StatusChange, sync::SyncOptions};
use referrals_mirror::Mirror;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let every = std::env::args().skip_while(|arg| arg != "--every").nth(1);
    let client = Client::from_env()?;
    let mut mirror = Mirror::open("referrals.sqlite")?;
    let columns = Columns::leaves(&["id", "customerProfile/name", "details/dealValue"])?;
    loop {
        let report = mirror.sync(&client, SyncOptions::new()).await?;
        println!(
            "{} changed, {} in the copy",
            report.changed,
            mirror.count()?
        );
        for lead in mirror.referrals()?.iter().filter(|lead| is_pending(lead)) {
            let decided = client.decide(lead, triage).await?;
            mirror.apply(decided.referral())?;
        }
        mirror.write_csv("co-sell.csv", &columns, |referral| {
            referral.status == Some(ReferralStatus::Active)
                && referral.type_ == Some(ReferralType::Shared)
        })?;
        let Some(minutes) = &every else { return Ok(()) };
        tokio::time::sleep(Duration::from_secs(minutes.parse::<u64>()? * 60)).await;
    }
}

fn is_pending(lead: &Referral) -> bool {
    lead.substatus == Some(ReferralSubstatus::Pending)
}

/// Decided on the version that the service has, again if the lead changes meanwhile.
fn triage(lead: &Referral) -> Decision {
    let waiting = lead.created_date_time.map(|created| Utc::now() - created);
    match lead.country() {
        _ if !is_pending(lead) => Decision::Leave,
        Some("US" | "CA") => StatusChange::Accept.into(),
        _ if waiting.is_some_and(|waiting| waiting > chrono::Duration::days(10)) => {
            StatusChange::Decline {
                reason: "No capacity in this region".into(),
            }
            .into()
        }
        _ => Decision::Leave,
    }
}
