//! A partner's job on the change feed: receive Partner Center's events into a mirror, keep a
//! table of the partner's own shape (`crm_leads` in `crm.sqlite`) current from the mirror's
//! changes within a moment, and every `--every` minutes accept the pending US and Canadian
//! leads and write the active co-sell referrals to a CSV file.
//!
//! ```sh
//! # Against the sandbox (it prints the file of its events' root):
//! PARTNER_ROOT=http://127.0.0.1:8080 PARTNER_TOKEN=secret SANDBOX=127.0.0.1:8080 \
//!   ROOT=/tmp/referrals-sandbox-8080-events-root.pem \
//!   cargo run -p referrals-mirror --example crm_leads -- --every 5
//! # and, once: referrals webhooks register --url http://127.0.0.1:8090/events
//! ```

use std::future::{pending, ready};
use std::time::Duration;

use referrals_client::types::{Referral, ReferralStatus, ReferralSubstatus, ReferralType};
use referrals_client::{Client, Decision, StatusChange, flat::Columns};
use referrals_events::Verifier;
use referrals_mirror::{Mirror, Start, Table, receiver::Receiver};
use rusqlite::Connection;

type Fallible<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The partner's table: its columns, and the leaf of the referral that each holds.
const CRM_LEADS: &str = "id, customer = customerProfile/name, \
    country = customerProfile/address/country, status, substatus, deal_value = details/dealValue, \
    currency = details/currency, updated = updatedDateTime";

#[tokio::main]
async fn main() -> Fallible {
    let every = std::env::args().skip_while(|arg| arg != "--every").nth(1);
    let minutes: u64 = every.as_deref().unwrap_or("5").parse()?;
    let client = Client::from_env()?;
    let verifier = match std::env::var("SANDBOX") {
        Ok(origin) => Verifier::for_sandbox(&origin, std::fs::read(std::env::var("ROOT")?)?)?,
        Err(_) => Verifier::builder().build()?, // the documented host, the platform's roots
    };
    let receiver = Receiver::new(client.clone(), "referrals.sqlite", verifier).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8090").await?;
    let crm = Connection::open("crm.sqlite")?;
    let crm_leads = Table::sqlite(&crm, "crm_leads", CRM_LEADS)?;
    let mut mirror = Mirror::open("referrals.sqlite")?;
    let mut feed = mirror.feed("crm", Start::Snapshot)?;
    // Each change upserts its row, in order, acknowledged once stored; again after a crash.
    let follow = feed.follow(|change| ready(crm_leads.keep(&change)));
    tokio::try_join!(
        async { Fallible::Ok(receiver.serve(listener, pending()).await?) },
        async { Fallible::Ok(follow.await.map(drop)?) },
        triage_and_export(minutes, &client, &mut mirror),
    )?;
    Ok(())
}

/// Every `minutes`: accepts the pending US and Canadian leads, and writes the active co-sell
/// referrals to a CSV file.
async fn triage_and_export(minutes: u64, client: &Client, mirror: &mut Mirror) -> Fallible {
    let columns = Columns::leaves(&["id", "customerProfile/name", "details/dealValue"])?;
    loop {
        for lead in mirror.referrals()?.into_iter().filter(is_pending) {
            let decided = client.decide(&lead, triage).await?; // again on a 412
            mirror.apply(decided.referral())?;
        }
        mirror.write_csv("co-sell.csv", &columns, |referral| {
            referral.status == Some(ReferralStatus::Active)
                && referral.type_ == Some(ReferralType::Shared)
        })?;
        tokio::time::sleep(Duration::from_secs(minutes * 60)).await;
    }
}

fn is_pending(lead: &Referral) -> bool {
    lead.substatus == Some(ReferralSubstatus::Pending)
}

/// Decided on the version that the service has, again if the lead changed meanwhile.
fn triage(lead: &Referral) -> Decision {
    match lead.country() {
        Some("US" | "CA") if is_pending(lead) => StatusChange::Accept.into(),
        _ => Decision::Leave,
    }
}
