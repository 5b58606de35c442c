//! `referrals drift`: what the service sends that the document does not say. It reads pages
//! of the listing as they come (not decoded, see `Client::list_raw`) and reports, grouped and
//! counted, every member that the document does not declare, every value outside a known set,
//! every member of another JSON type than the document's, and every status or header of an
//! answer that the document does not list for the operation. Read-only.

mod walk;

use std::io::Write as _;

use referrals_client::query::Query;
use referrals_client::types::ReferralList;
use referrals_client::{Continuation, Operation, RawAnswer};
use schemars::schema::Schema;
use serde_json::Value;

use self::walk::{Findings, Walker};
use crate::Context;

/// The exit status when something drifted (0: nothing did; 1: the check could not run).
pub const DRIFTED: u8 = 4;

/// Headers of HTTP itself (RFC 9110, 9111, 9112) and of the transport, which a document does
/// not declare; any other header that the document does not list is drift.
const HTTP_HEADERS: [&str; 12] = [
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "server",
    "vary",
    "cache-control",
    "expires",
    "strict-transport-security",
];

const LIST: Operation = Operation::ListReferrals;

/// The options of `drift`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The most pages of the listing to read.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pages: u32,
    /// How to write the report [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    format: Option<ReportFormat>,
}

/// The formats of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Kind, where, what and how often, one line each.
    Table,
    /// One JSON object, for CI.
    Json,
}

/// Something drifted: the report was written, and the exit status says so.
#[derive(Debug, thiserror::Error)]
#[error("the service sends what the document does not say")]
pub struct Drifted;

pub async fn run(context: &Context, args: &Args) -> anyhow::Result<()> {
    let root = schemars::schema_for!(ReferralList);
    let mut findings = Findings::default();
    let (query, mut from): (Query, Option<Continuation>) = (Query::new(), None);
    let mut pages = 0u32;
    while pages < args.pages {
        let answer = context.client.list_raw(&query, from.as_ref()).await?;
        pages += 1;
        check_answer(&answer, &mut findings);
        if !(200..300).contains(&answer.status) {
            break;
        }
        let body: Value = match serde_json::from_slice(&answer.body) {
            Ok(body) => body,
            Err(error) => anyhow::bail!("page {pages} of the listing is not JSON: {error}"),
        };
        Walker {
            definitions: &root.definitions,
            findings: &mut findings,
        }
        .walk(&body, &Schema::Object(root.schema.clone()), "");
        let Some(link) = body.get("@odata.nextLink").and_then(Value::as_str) else {
            break;
        };
        from = Some(context.client.follow(&query, from.as_ref(), link)?);
    }
    let format = args.format.unwrap_or_else(|| {
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            ReportFormat::Table
        } else {
            ReportFormat::Json
        }
    });
    write_report(&findings, format, pages)?;
    if findings.is_empty() {
        Ok(())
    } else {
        Err(Drifted.into())
    }
}

/// The status and the headers of an answer, against the operation's answers in the document.
fn check_answer(answer: &RawAnswer, findings: &mut Findings) {
    let status = answer.status.to_string();
    let range = format!("{}XX", answer.status / 100);
    let documented = LIST
        .responses()
        .iter()
        .find(|(listed, _)| *listed == status || listed.eq_ignore_ascii_case(&range))
        .or_else(|| {
            LIST.responses()
                .iter()
                .find(|(listed, _)| *listed == "default")
        });
    // The headers of the status's answer; for an undocumented status, those of any answer.
    let declared: Vec<&str> = match documented {
        Some((_, headers)) => headers.to_vec(),
        None => {
            let count = findings.statuses.entry(answer.status).or_default();
            *count = count.saturating_add(1);
            LIST.responses()
                .iter()
                .flat_map(|(_, headers)| headers.iter().copied())
                .collect()
        }
    };
    for (name, _) in &answer.headers {
        let known = HTTP_HEADERS.contains(&name.as_str())
            || declared
                .iter()
                .any(|header| header.eq_ignore_ascii_case(name));
        if !known {
            let count = findings.headers.entry(name.clone()).or_default();
            *count = count.saturating_add(1);
        }
    }
}

/// The report: a table of kind, where, what and count, or one JSON object.
fn write_report(findings: &Findings, format: ReportFormat, pages: u32) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if format == ReportFormat::Json {
        let report = serde_json::json!({
            "pages": pages,
            "drifted": !findings.is_empty(),
            "undeclared_members": findings.undeclared.iter()
                .map(|(path, count)| serde_json::json!({"path": path, "count": count}))
                .collect::<Vec<_>>(),
            "unknown_values": findings.values.iter()
                .map(|((path, value), count)| serde_json::json!({"path": path, "value": value, "count": count}))
                .collect::<Vec<_>>(),
            "wrong_types": findings.types.iter()
                .map(|((path, expected, found), count)| serde_json::json!({"path": path, "document": expected, "found": found, "count": count}))
                .collect::<Vec<_>>(),
            "undocumented_statuses": findings.statuses.iter()
                .map(|(status, count)| serde_json::json!({"status": status, "count": count}))
                .collect::<Vec<_>>(),
            "undocumented_headers": findings.headers.iter()
                .map(|(name, count)| serde_json::json!({"header": name, "count": count}))
                .collect::<Vec<_>>(),
        });
        writeln!(out, "{report}")?;
        return Ok(());
    }
    if findings.is_empty() {
        writeln!(
            out,
            "no drift in {pages} pages: the service sends what the document says"
        )?;
        return Ok(());
    }
    let rows = table_rows(findings);
    let width = rows
        .iter()
        .map(|row| row.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    writeln!(
        out,
        "{:<18} {:<width$} {:<30} {:>6}",
        "KIND", "WHERE", "WHAT", "COUNT"
    )?;
    for (kind, place, what, count) in rows {
        writeln!(out, "{kind:<18} {place:<width$} {what:<30} {count:>6}")?;
    }
    Ok(())
}

/// The rows of the table: kind, where, what, count.
fn table_rows(findings: &Findings) -> Vec<(&'static str, String, String, u64)> {
    let mut rows = Vec::new();
    for (path, count) in &findings.undeclared {
        rows.push(("undeclared member", path.clone(), String::new(), *count));
    }
    for ((path, value), count) in &findings.values {
        rows.push(("unknown value", path.clone(), value.clone(), *count));
    }
    for ((path, expected, found), count) in &findings.types {
        rows.push((
            "wrong type",
            path.clone(),
            format!("{found}, not {expected}"),
            *count,
        ));
    }
    for (status, count) in &findings.statuses {
        rows.push((
            "undocumented status",
            LIST.id().to_owned(),
            status.to_string(),
            *count,
        ));
    }
    for (name, count) in &findings.headers {
        rows.push((
            "undocumented header",
            LIST.id().to_owned(),
            name.clone(),
            *count,
        ));
    }
    rows
}
