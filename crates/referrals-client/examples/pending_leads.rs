//! Lists the pending incoming leads, newest first, as a table.
//!
//! ```text
//! cargo run -p referrals-client --example pending_leads -- [--root URL] [--token TOKEN] [--top N]
//! ```
//!
//! The root defaults to `https://api.partner.microsoft.com`; the token to the `PARTNER_TOKEN`
//! environment variable. Against the local sandbox:
//!
//! ```text
//! cargo run -p referrals-sandbox -- --addr 127.0.0.1:8080 --token secret &
//! cargo run -p referrals-client --example pending_leads -- --root http://127.0.0.1:8080 --token secret
//! ```

use std::process::ExitCode;

use futures_util::TryStreamExt;
use referrals_client::query::{self, OrderBy, Query};
use referrals_client::types::{Referral, ReferralDirection, ReferralSubstatus};
use referrals_client::{Client, StaticToken};

/// Lists the pending incoming leads of a service, newest first, as a table.
#[derive(Debug, clap::Parser)]
#[command(
    after_help = "Against the local sandbox:\n  pending_leads --root http://127.0.0.1:8080 --token secret"
)]
struct Options {
    /// The service root.
    #[arg(long, default_value = "https://api.partner.microsoft.com")]
    root: String,
    /// The bearer token.
    #[arg(long, env = "PARTNER_TOKEN", hide_env_values = true)]
    token: String,
    /// The most leads to list [default: all].
    #[arg(long)]
    top: Option<u32>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = <Options as clap::Parser>::parse();
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder(&options.root, StaticToken::new(options.token))
        // The sandbox listens on plain http on loopback; nothing else may.
        .allow_http_to_loopback(true)
        .build()?;
    let mut query = Query::new()
        .filter(
            query::direction()
                .eq(ReferralDirection::Incoming)
                .and(query::substatus().eq(ReferralSubstatus::Pending)),
        )
        .order_by(OrderBy::newest_first());
    if let Some(top) = options.top {
        query = query.top(top);
    }

    let header = [
        "created",
        "customer",
        "country",
        "deal value",
        "status",
        "id",
    ];
    let mut rows = Vec::new();
    let mut leads = std::pin::pin!(client.list_all(query));
    while let Some(lead) = leads.try_next().await? {
        rows.push(row(&lead));
    }
    print_table(&header, &rows);
    println!("{} pending incoming lead(s)", rows.len());
    Ok(())
}

fn row(lead: &Referral) -> [String; 6] {
    let customer = lead.customer_profile.as_ref();
    let details = lead.details.as_ref();
    let value = match (
        details.and_then(|d| d.deal_value.as_ref()),
        details.and_then(|d| d.currency.as_deref()),
    ) {
        (Some(value), Some(currency)) => format!("{value} {currency}"),
        (Some(value), None) => value.to_string(),
        _ => String::new(),
    };
    let status = match (&lead.status, &lead.substatus) {
        (Some(status), Some(substatus)) => format!("{status}/{substatus}"),
        (Some(status), None) => status.to_string(),
        _ => String::new(),
    };
    [
        lead.created_date_time
            .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default(),
        customer.and_then(|c| c.name.clone()).unwrap_or_default(),
        customer
            .and_then(|c| c.address.as_ref())
            .and_then(|a| a.country.clone())
            .unwrap_or_default(),
        value,
        status,
        lead.id.clone().unwrap_or_default(),
    ]
}

fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|title| title.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    line(
        widths
            .iter()
            .map(|width| "-".repeat(*width))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
