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

struct Options {
    root: String,
    token: String,
    top: Option<u32>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        root: "https://api.partner.microsoft.com".into(),
        token: std::env::var("PARTNER_TOKEN").unwrap_or_default(),
        top: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--root" => options.root = value()?,
            "--token" => options.token = value()?,
            "--top" => options.top = Some(value()?.parse().map_err(|_| "--top needs a number")?),
            "--help" | "-h" => {
                return Err("usage: pending_leads [--root URL] [--token TOKEN] [--top N]".into());
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if options.token.is_empty() {
        return Err("no token: pass --token or set PARTNER_TOKEN".into());
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
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
