//! `referrals`: the Partner API for referrals from the command line. See `referrals --help`,
//! and the README's "For partners".

mod allocator;
mod api;
mod auth;
mod changes;
mod create;
mod drift;
mod events;
mod exit;
mod export;
mod filters;
mod leaves;
mod listen;
mod mirror;
mod observe;
mod output;
mod resident;
mod stop;
mod table;
mod tls;
mod triage;
mod webhooks;

pub use exit::{Exists, Reported, Usage};

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use futures_util::TryStreamExt;
use referrals_client::query::{OrderBy, Query, Select};
use referrals_client::{Client, env};

use crate::output::{Format, Writer};
use referrals_client::flat::Columns;

/// The generated code names the types as `crate::types`.
use referrals_client::types;

/// The Partner API for referrals (leads and co-sell opportunities) from the command line: list,
/// export, keep a SQLite mirror, accept or decline, create.
#[derive(Debug, Parser)]
#[command(
    name = "referrals",
    version,
    after_help = concat!(
        "Examples:\n",
        "  referrals list --status New --direction Incoming\n",
        "  referrals export --format csv --out leads.csv --country US\n",
        "  referrals sync --db referrals.sqlite --every 5m\n",
        "  referrals accept 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1\n",
        "  referrals --root http://127.0.0.1:8080 --token secret list   (a local sandbox)\n\n",
        "Exit status: 0 when the command did its work, 1 when it failed (the service, the network, a\n",
        "file), 2 when the command line is wrong (a flag or a value), 3 when a referral changed since\n",
        "it was read (412) and nothing was changed. Data goes to standard output, messages and\n",
        "progress to standard error."
    )
)]
struct Cli {
    /// The service root (its help, in the attribute, names a sandbox's address).
    #[arg(
        long,
        help = "The service root: the service by default, or a sandbox such as http://127.0.0.1:8080.",
        global = true,
        env = env::ROOT_VARIABLE,
        value_name = "URL",
        help_heading = "Global options"
    )]
    root: Option<String>,
    /// The bearer token; its help is made from the document's scopes ([`token_help`]).
    #[arg(
        long,
        global = true,
        env = env::TOKEN_VARIABLE,
        hide_env_values = true,
        help_heading = "Global options"
    )]
    token: Option<String>,
    /// No progress and no messages on standard error, only errors (none for the exit
    /// statuses 3 and 5, which say it all).
    #[arg(long, short, global = true, help_heading = "Global options")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List referrals, filtered by the members that the API filters on.
    #[command(after_help = concat!(
        "Examples:\n",
        "  referrals list --status New --direction Incoming --orderby 'createdDateTime desc'\n",
        "  referrals list --team-email \"o'neil@contoso.com\" --format json\n",
        "  referrals list --updated-from 2024-05-01 --select id,status,customerProfile --format csv\n",
        "  referrals list --filter \"type eq 'Shared'\" | head\n\n",
        "Values are quoted for OData by the command: a quote in a value is sent as a quote.\n",
        "The format is a table on a terminal and NDJSON otherwise."
    ))]
    List(ListArgs),
    /// Export every matching referral to a file, with progress; resumes after an interruption.
    #[command(after_help = concat!(
        "Examples:\n",
        "  referrals export --out leads.ndjson --direction Incoming\n",
        "  referrals export --format csv --out leads.csv --status Active\n\n",
        "The file appears only when the export is complete: meanwhile it is written to\n",
        "FILE.partial, with a checkpoint in FILE.partial-checkpoint. After an interruption (Ctrl-C,\n",
        "a failure, a kill), the same command goes on from the last checkpoint; --restart starts\n",
        "over. Money is written with the digits that the service sent."
    ))]
    Export(export::Args),
    /// Keep a mirror of the referrals (a SQLite file or a PostgreSQL database), updated
    /// incrementally.
    #[command(after_help = concat!(
        "Examples:\n",
        "  referrals sync --db referrals.sqlite\n",
        "  referrals sync --db incoming.sqlite --direction Incoming --every 5m\n",
        "  referrals sync --db postgres://crm@db.internal/referrals --every 5m\n\n",
        "The database holds the table `referrals` (the JSON of each referral and a column for each\n",
        "member that the document lists as filterable or sortable) and the sync's state; the\n",
        "pages are written in groups, each with the state in one transaction, so a kill at any\n",
        "moment loses nothing and duplicates nothing. Ctrl-C stops after the page in hand. A database keeps\n",
        "the filter it was made with; on PostgreSQL, one sync runs at a time."
    ))]
    Sync(mirror::Args),
    /// Show one referral.
    #[command(
        after_help = "Example:\n  referrals get 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1 --format json"
    )]
    Get(GetArgs),
    /// Accept a lead: status Active, substatus Accepted.
    #[command(after_help = triage::HELP)]
    Accept(triage::Args),
    /// Decline a lead, saying why: status Closed, substatus Declined.
    #[command(after_help = triage::HELP)]
    Decline(triage::ReasonArgs),
    /// Close a referral as won, with the deal's value if given.
    #[command(after_help = triage::HELP)]
    CloseWon(triage::WonArgs),
    /// Close a referral as lost, saying why.
    #[command(after_help = triage::HELP)]
    CloseLost(triage::ReasonArgs),
    /// Move a referral to any status that the document's status rules allow.
    #[command(after_help = triage::status_help())]
    SetStatus(triage::StatusArgs),
    /// Create a referral from a JSON file; with --share-with-microsoft, a co-sell referral.
    #[command(after_help = create::HELP)]
    Create(create::Args),
    /// Receive Partner Center's events and keep a mirror current within seconds.
    #[command(after_help = concat!(
        "Examples:\n",
        "  referrals listen --db referrals.sqlite --addr 0.0.0.0:8090\n",
        "  referrals listen --db referrals.sqlite --tls-cert cert.pem --tls-key key.pem\n\n",
        "Each callback is verified (400 or 401 when refused, logged with the check that failed),\n",
        "stored in the mirror, acknowledged, then its referral is read and written only if newer.\n",
        "The incremental sync runs at start and every --every for the events that never come.\n",
        "Ctrl-C or SIGTERM stops it cleanly."
    ))]
    Listen(listen::Args),
    /// Follow the mirror's changes as a named consumer: print them, run a command for each, or
    /// post each to an endpoint of your own.
    #[command(after_help = changes::HELP)]
    Changes(changes::Args),
    /// Count the events that `listen` stored; list those set aside, and put them back.
    #[command(after_help = events::HELP)]
    Events(events::Args),
    /// Register, show, replace or test the URL that receives Partner Center's events.
    #[command(after_help = webhooks::HELP)]
    Webhooks(webhooks::Args),
    /// Report what the service sends that the document does not say (read-only).
    #[command(after_help = concat!(
        "Examples:\n",
        "  referrals drift\n",
        "  referrals drift --pages 50 --format json > drift.json\n\n",
        "Reads pages of the listing as they come and reports, grouped and counted, every member\n",
        "that the document does not declare, every value outside a known set, every member of\n",
        "another JSON type than the document's, and every status or header of an answer that\n",
        "the document does not list. Exit status: 0 when nothing drifted, 4 when something did,\n",
        "1 when the check could not run."
    ))]
    Drift(drift::Args),
    /// One command per operation of the document, generated from it.
    #[command(
        subcommand_required = true,
        after_help = "Example:\n  referrals api get-referral --id 7e6ac78a-4f37-4f6e-b3e5-3ab4b4ad9fa1"
    )]
    Api,
    /// Print the completion script of a shell.
    #[command(
        after_help = "Example:\n  referrals completions bash > ~/.local/share/bash-completion/completions/referrals"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages of referrals and of each command (roff) into a folder.
    #[command(hide = true)]
    Man {
        /// The folder; made when it is not there.
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
}

/// The options of `list`; the filter flags are added from the document's tables.
#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    query: QueryArgs,
    /// At most this many referrals in all.
    #[arg(long)]
    top: Option<u32>,
    /// Say on standard error how many referrals match in all.
    #[arg(long)]
    count: bool,
    /// How to write them [default: table on a terminal, ndjson otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// CSV: write text cells as the service sent them, even one that a spreadsheet would run
    /// as a formula (by default such a cell gets a leading ').
    #[arg(long)]
    raw_csv: bool,
}

/// What a listing asks for, besides the filter flags.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// An OData filter, combined with the filter flags by `and`.
    #[arg(long, value_name = "FILTER")]
    filter: Option<String>,
    #[arg(long, value_name = "KEYS", help = sort_help())]
    orderby: Option<OrderBy>,
    /// Only these members of each referral, such as id,status,customerProfile.
    #[arg(long, value_name = "MEMBERS")]
    select: Option<Select>,
    /// CSV of these leaves only, in this order, named as the document names them, such as
    /// id,customerProfile/name,details/dealValue,details/currency (asks the service for their
    /// members only).
    #[arg(long, value_name = "LEAVES", conflicts_with = "select")]
    pub columns: Option<leaves::Leaves>,
}

/// The help of `--orderby`: the sort keys of the document's x-sortable.
fn sort_help() -> String {
    let keys: Vec<&str> = referrals_client::query::SortKey::ALL
        .iter()
        .map(|key| key.member())
        .collect();
    format!(
        "Sort keys, each followed by asc or desc, separated by commas, such as \
         'createdDateTime desc'; the keys (the document's x-sortable): {}",
        keys.join(", ")
    )
}

impl QueryArgs {
    /// The query of these options and of the filter flags in `matches`.
    fn query(&self, matches: &ArgMatches) -> Result<Query, Usage> {
        let mut query = Query::new();
        if let Some(filter) = filters::filter(matches).map_err(Usage)? {
            query = query.filter(filter);
        }
        if let Some(order) = &self.orderby {
            query = query.order_by(order.clone());
        }
        let select = match &self.columns {
            Some(leaves) => leaves.select(),
            None => self.select.clone(),
        };
        if let Some(select) = select {
            query = query.select(select);
        }
        Ok(query)
    }

    /// The columns of a flat output of this query.
    fn columns(&self) -> Columns {
        match &self.columns {
            Some(leaves) => leaves.columns(),
            None => Columns::new(self.select.as_ref().map(Select::names)),
        }
    }

    /// Refuses `--columns` with another format than CSV.
    pub fn check_format(&self, format: Format) -> Result<(), Usage> {
        if self.columns.is_some() && format != Format::Csv {
            return Err(Usage(
                "--columns writes CSV; --select chooses the members of JSON, and a table has \
                 columns of its own"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
struct GetArgs {
    /// The referral's id.
    id: String,
    /// Only these members, such as id,eTag,status,customerProfile (the operation has no
    /// $select: the whole referral is read, and the others are left out here).
    #[arg(long, value_name = "MEMBERS")]
    select: Option<Select>,
    /// How to write it [default: table on a terminal, ndjson otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

/// What every command gets.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub quiet: bool,
}

impl Context {
    /// A message on standard error, unless `--quiet`.
    pub fn say(&self, message: std::fmt::Arguments<'_>) {
        self.messages().say(message);
    }

    /// An error that the command goes on after, on standard error even with `--quiet`.
    pub fn warn(&self, message: std::fmt::Arguments<'_>) {
        let _ = writeln!(io::stderr().lock(), "error: {message}");
    }

    /// The messages of a command that needs no client.
    pub fn messages(&self) -> Messages {
        Messages { quiet: self.quiet }
    }
}

/// Messages on standard error, for a command that needs no client (`changes`).
#[derive(Debug, Clone, Copy)]
pub struct Messages {
    pub quiet: bool,
}

impl Messages {
    /// A message on standard error, unless `--quiet`.
    pub fn say(&self, message: std::fmt::Arguments<'_>) {
        if !self.quiet {
            let _ = writeln!(io::stderr().lock(), "{message}");
        }
    }
}

/// The help of `--token`, with the scopes of the document's security schemes.
fn token_help() -> String {
    format!(
        "The bearer token (App+User, for the scope {}). Without it, a build with the feature \
         `azure` asks the account of `az login`.",
        referrals_client::security::SCOPES.join(" or ")
    )
}

/// The whole command line, with the flags made from the document.
fn command() -> clap::Command {
    let command = Cli::command()
        .mut_arg("token", |arg| arg.help(token_help()))
        .mut_subcommand("list", filters::add)
        .mut_subcommand("export", filters::add)
        .mut_subcommand("sync", filters::add)
        .mut_subcommand("api", |command| command.subcommands(api::commands()));
    // Every command's help ends with the exit statuses.
    exit::with_statuses(command)
}

fn main() -> ExitCode {
    allocator::tune();
    let matches = match command().try_get_matches() {
        Ok(matches) => matches,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    // Two workers: an export fetches its next page while it writes the last one.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let quiet = matches.get_flag("quiet");
    match runtime.block_on(run(matches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit::status(&error, quiet),
    }
}

async fn run(matches: ArgMatches) -> anyhow::Result<()> {
    let cli = Cli::from_arg_matches(&matches).map_err(|error| Usage(error.to_string()))?;
    if let Command::Completions { shell } = &cli.command {
        let mut command = command();
        let mut out = BufWriter::new(io::stdout().lock());
        clap_complete::generate(*shell, &mut command, "referrals", &mut out);
        out.flush()?;
        return Ok(());
    }
    if let Command::Man { out } = &cli.command {
        std::fs::create_dir_all(out)?;
        clap_mangen::generate_to(command(), out)?;
        return Ok(());
    }
    if let Command::Changes(args) = &cli.command {
        // The mirror alone: no service, no token.
        return changes::run(Messages { quiet: cli.quiet }, args).await;
    }
    if let Command::Events(args) = &cli.command {
        // The mirror alone, as `changes`.
        return events::run(Messages { quiet: cli.quiet }, args).await;
    }
    let context = Context {
        client: client(&cli)?,
        quiet: cli.quiet,
    };
    let (_, sub) = matches
        .subcommand()
        .ok_or_else(|| Usage("no command given; see referrals --help".into()))?;
    match &cli.command {
        Command::List(args) => list(&context, args, sub).await,
        Command::Export(args) => export::run(&context, args, sub).await,
        Command::Sync(args) => mirror::run(&context, args, sub).await,
        Command::Get(args) => get(&context, args).await,
        Command::Accept(args) => triage::accept(&context, args).await,
        Command::Decline(args) => triage::decline(&context, args).await,
        Command::CloseWon(args) => triage::close_won(&context, args).await,
        Command::CloseLost(args) => triage::close_lost(&context, args).await,
        Command::SetStatus(args) => triage::set_status(&context, args).await,
        Command::Create(args) => create::run(&context, args).await,
        Command::Listen(args) => listen::run(&context, args).await,
        Command::Webhooks(args) => webhooks::run(&context, args, cli.token.clone()).await,
        Command::Drift(args) => drift::run(&context, args).await,
        Command::Api => api::run(&context, sub).await,
        Command::Completions { .. }
        | Command::Man { .. }
        | Command::Changes(_)
        | Command::Events(_) => Ok(()),
    }
}

/// The client of the global options, as `Client::from_env` makes it from the same variables.
fn client(cli: &Cli) -> Result<Client, Usage> {
    let root =
        env::root_or_default(cli.root.as_deref()).map_err(|error| Usage(error.to_string()))?;
    let tokens = auth::provider(cli.token.clone()).map_err(Usage)?;
    Client::builder(root, tokens)
        // A sandbox on this machine speaks plain http; any other root must be https.
        .allow_http_to_loopback(true)
        .build()
        .map_err(|error| Usage(format!("--root {root}: {error}")))
}

async fn list(context: &Context, args: &ListArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let mut query = args.query.query(matches)?.count(args.count);
    if let Some(top) = args.top {
        query = query.top(top);
    }
    let format = match (args.format, &args.query.columns) {
        (Some(format), _) => format,
        // Columns are CSV's, on a terminal too.
        (None, Some(_)) => Format::Csv,
        (None, None) => Format::for_stdout(),
    };
    args.query.check_format(format)?;
    let mut writer = Writer::new(
        BufWriter::new(io::stdout().lock()),
        format,
        args.query.columns(),
    )
    .raw_csv(args.raw_csv);
    let mut pages = std::pin::pin!(context.client.pages(query));
    let mut first = true;
    while let Some(page) = pages.try_next().await? {
        if first {
            // Nothing is written before the first page came: a failed listing prints no header.
            writer.start()?;
            if args.count {
                match page.count {
                    Some(count) => context.say(format_args!("{count} referrals match")),
                    None => context.say(format_args!("the service did not count the referrals")),
                }
            }
        }
        first = false;
        for referral in &page.items {
            writer.write(referral)?;
        }
        // Each page shows as soon as it comes.
        writer.get_mut().flush()?;
    }
    if first {
        writer.start()?;
    }
    writer.finish()?;
    Ok(())
}

async fn get(context: &Context, args: &GetArgs) -> anyhow::Result<()> {
    let referral = context.client.referral(&args.id).await?;
    let Some(select) = &args.select else {
        return print_referrals(args.format, &[referral]);
    };
    // The selected members, each as its JSON text (money keeps its digits), read back as a
    // referral whose other members are absent.
    let mut members: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(&serde_json::to_string(&referral)?)?;
    members.retain(|name, _| select.names().contains(&name.as_str()));
    let selected: types::Referral = serde_json::from_str(&serde_json::to_string(&members)?)?;
    let format = args.format.unwrap_or_else(Format::for_stdout);
    let columns = Columns::new(Some(select.names()));
    let mut writer = Writer::new(BufWriter::new(io::stdout().lock()), format, columns);
    writer.start()?;
    writer.write(&selected)?;
    writer.finish().context("cannot write to standard output")?;
    Ok(())
}

/// Writes `referrals` to standard output in `format` (or the default for it).
pub fn print_referrals(
    format: Option<Format>,
    referrals: &[types::Referral],
) -> anyhow::Result<()> {
    let format = format.unwrap_or_else(Format::for_stdout);
    let mut writer = Writer::new(
        BufWriter::new(io::stdout().lock()),
        format,
        Columns::new(None),
    );
    writer.start()?;
    for referral in referrals {
        writer.write(referral)?;
    }
    writer.finish().context("cannot write to standard output")?;
    Ok(())
}

/// A file's text, read up to `limit` bytes: a larger file is an error that says so.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> anyhow::Result<String> {
    use std::io::Read;
    let file: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(path)
                .with_context(|| format!("cannot open {what} {}", path.display()))?,
        )
    };
    let mut text = String::new();
    let read = file
        .take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {what} {} as UTF-8 text", path.display()))?;
    if read as u64 > limit {
        anyhow::bail!(
            "{what} {} is larger than {limit} bytes; is it the right file?",
            path.display()
        );
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        super::command().debug_assert();
    }
}
