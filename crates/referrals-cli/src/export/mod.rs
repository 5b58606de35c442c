//! `referrals export`: every page of a listing into a file, with progress, resumable, read by
//! several requests at once.
//!
//! An export in the order of creation (the default) is cut into parts, disjoint ranges of
//! `createdDateTime` ([`plan`]), read at once by `--concurrency` requests ([`fetch`]), fewer
//! while the service answers 429; a reader with no part left to start splits off the far half
//! of a part being read ([`split`]); another order is read as one part, a page after another.
//! Each part's rows go to a file of its own, `FILE.partial.N`; after each stretch of pages (a
//! quarter of a second at most), the checkpoint `FILE.partial-checkpoint` records the query,
//! the parts, and for each part the bytes of its file that are complete and the continuation
//! of its next page. A run that finds a checkpoint of the same export asks for those pages and
//! cuts each part's file back to those bytes when its first page comes (a complete part is
//! copied up to them): whatever stopped the last run (Ctrl-C, a failure after the client's
//! retries, a kill, a crash), no row is lost or written twice.
//! `FILE.partial` gets the header at the start, and each part, in the order of the ranges,
//! as soon as it and the parts before it are complete ([`writers`]); when the last is copied,
//! it is synced and renamed to `FILE`, so that `FILE` is never half written.

mod checkpoint;
mod fetch;
mod files;
mod plan;
mod split;
mod writers;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::ArgMatches;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use referrals_client::concurrency::Concurrency;
use referrals_client::query::{OrderBy, Query, SortKey};
use referrals_client::{ErrorKind, Trail};
use serde::{Deserialize, Serialize};

use self::checkpoint::Checkpoint;
use self::split::Ranges;
use self::writers::{PartWriter, Rows, Writers};
use crate::output::Format;
use crate::stop::Stop;
use crate::{Context, QueryArgs, Usage};

use files::{Files, sync_directory};

/// How long pages are written between two checkpoints, at most.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// The buffer of each part's file.
const PART_BUFFER: usize = 1 << 13;

/// The options of `export`; the filter flags are added from the document's tables.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to write; it appears only when the export is complete.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The format [default: csv when FILE ends in .csv, ndjson otherwise].
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,
    #[command(flatten)]
    query: QueryArgs,
    /// Discard the partial export of an earlier run and start from the first page.
    #[arg(long)]
    restart: bool,
    /// CSV: write text cells as the service sent them, even one that a spreadsheet would run
    /// as a formula (by default such a cell gets a leading ').
    #[arg(long)]
    raw_csv: bool,
    /// How many pages to ask for at once, at most (fewer while the service answers 429 Too
    /// Many Requests, whose Retry-After also sets the pace of the requests after it). An export in the order of creation (the default: createdDateTime asc)
    /// is read in ranges of createdDateTime at once; another --orderby is read a page after
    /// another.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
}

/// The formats of a file export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One JSON object per line.
    Ndjson,
    /// A header of the document's leaves and a row per referral.
    Csv,
}

impl ExportFormat {
    fn output(self) -> Format {
        match self {
            Self::Ndjson => Format::Ndjson,
            Self::Csv => Format::Csv,
        }
    }
}

pub async fn run(context: &Context, args: &Args, matches: &ArgMatches) -> anyhow::Result<()> {
    let format = format_of(args)?;
    let mut query = args.query.query(matches)?;
    if query.order_by.is_none() {
        // The order of creation, which parts keep: the file is the same whatever
        // --concurrency was.
        query = query.order_by(OrderBy::asc(SortKey::CreatedDateTime));
    }
    // From here on, Ctrl-C stops after the page in hand.
    let stop = Stop::listen(context.quiet);
    let files = Files::of(&args.out);
    if args.restart {
        files.remove_all()?;
    }
    // The columns are the file's too: the same columns resume it.
    let mut parameters = query.parameters();
    if let Some(leaves) = &args.query.columns {
        parameters.push(("columns".to_owned(), leaves.text()));
    }
    let Some(mut checkpoint) = start(context, &files, parameters, (format, args.raw_csv))? else {
        return Ok(());
    };
    let concurrency = usize::from(args.concurrency);
    // The planning's requests count toward the pace that a 429 teaches, as the pages' do.
    let pace = Concurrency::new(concurrency);
    if checkpoint.parts.is_empty() {
        plan_parts(
            context,
            &files,
            (&query, &pace),
            concurrency,
            &mut checkpoint,
        )
        .await?;
    }
    let progress = progress(context.quiet, &checkpoint);
    let descending = plan::creation_order(&query) == Some(true);
    let rows = rows(&checkpoint, args);
    let mut writers = Writers::open(&files, &checkpoint, (&rows, descending))?;
    let export = Export {
        context,
        files: &files,
        progress: &progress,
        stop: &stop,
        concurrency: pace,
        ranges: Arc::new(Ranges::new(&checkpoint.parts, descending, checkpoint.span)),
        descending,
        rows,
    };
    if !export
        .pages(&query, &mut writers, &mut checkpoint, concurrency)
        .await?
    {
        return Ok(());
    }
    export.finish(writers, &mut checkpoint)
}

/// How the export's rows are made: the checkpoint's format, the columns asked for.
fn rows(checkpoint: &Checkpoint, args: &Args) -> Rows {
    Rows {
        format: checkpoint.format,
        columns: args.query.columns(),
        raw_csv: args.raw_csv,
    }
}

/// The parts of the export, planned and recorded, each with an empty file.
async fn plan_parts(
    context: &Context,
    files: &Files,
    (query, pace): (&Query, &Concurrency),
    concurrency: usize,
    checkpoint: &mut Checkpoint,
) -> anyhow::Result<()> {
    let plan = plan::plan(&context.client, query, (pace, concurrency))
        .await
        .map_err(|error| {
            anyhow::Error::new(error).context(format!(
                "the export to {} could not start (run the same command again)",
                files.out.display()
            ))
        })?;
    for index in 0..plan.parts.len() {
        let path = files.part(index);
        referrals_mirror::private::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
    }
    (checkpoint.parts, checkpoint.total, checkpoint.span) = (plan.parts, plan.total, plan.span);
    checkpoint::write(&files.checkpoint, checkpoint)
}

/// The format of the export: the flag's, or CSV for a `.csv` file and NDJSON otherwise.
fn format_of(args: &Args) -> anyhow::Result<ExportFormat> {
    if args.out.as_os_str() == "-" || args.out.is_dir() {
        return Err(Usage(format!(
            "--out {} must name a file; `referrals list` writes to standard output",
            args.out.display()
        ))
        .into());
    }
    let format = args.format.unwrap_or_else(|| {
        match args
            .out
            .extension()
            .and_then(|extension| extension.to_str())
        {
            Some(extension) if extension.eq_ignore_ascii_case("csv") => ExportFormat::Csv,
            // Columns are CSV's.
            _ if args.query.columns.is_some() => ExportFormat::Csv,
            _ => ExportFormat::Ndjson,
        }
    });
    let extension = args
        .out
        .extension()
        .and_then(|extension| extension.to_str());
    let json_name = extension.is_some_and(|extension| {
        extension.eq_ignore_ascii_case("json") || extension.eq_ignore_ascii_case("ndjson")
    });
    if args.query.columns.is_some() && json_name {
        return Err(Usage(format!(
            "--columns writes CSV, and {} is named as JSON; name it .csv",
            args.out.display()
        ))
        .into());
    }
    args.query.check_format(format.output())?;
    Ok(format)
}

/// Where the export starts: the checkpoint of the last run of the same export, or a new one.
/// `None` when the last run was complete.
fn start(
    context: &Context,
    files: &Files,
    parameters: Vec<(String, String)>,
    (format, raw_csv): (ExportFormat, bool),
) -> anyhow::Result<Option<Checkpoint>> {
    let Some(checkpoint) = checkpoint::read(&files.checkpoint)? else {
        // The checkpoint comes first: a partial file without one is not ours to overwrite.
        if let Some(partial) = [files.partial.clone(), files.part(0)]
            .into_iter()
            .find(|path| path.exists())
        {
            bail!(
                "{} exists and no checkpoint says it is an export in progress; remove it, or \
                 add --restart to replace it",
                partial.display()
            );
        }
        let checkpoint = Checkpoint::new(parameters, format, raw_csv);
        checkpoint::write(&files.checkpoint, &checkpoint)?;
        return Ok(Some(checkpoint));
    };
    if checkpoint.query != parameters
        || checkpoint.format != format
        || checkpoint.raw_csv != raw_csv
    {
        bail!(
            "{} is the checkpoint of another export ({} as {:?}); run that command again \
             to finish it, or add --restart to discard it",
            files.checkpoint.display(),
            describe(&checkpoint.query),
            checkpoint.format
        );
    }
    resume(context, files, checkpoint)
}

/// The export of `checkpoint`, to go on with.
fn resume(
    context: &Context,
    files: &Files,
    checkpoint: Checkpoint,
) -> anyhow::Result<Option<Checkpoint>> {
    // Every part copied (version 3), or no part's file left (version 2, which copied them
    // all at the end): the partial file that is gone was renamed.
    let copied = checkpoint.assembled.parts == checkpoint.parts.len() || !files.part(0).exists();
    if checkpoint.done() && copied && !files.partial.exists() && files.out.exists() {
        // The last run renamed the file and stopped before it removed the parts' files or
        // the checkpoint.
        files.remove_all()?;
        context.say(format_args!(
            "the export to {} was complete: {} referrals",
            files.out.display(),
            checkpoint.referrals()
        ));
        return Ok(None);
    }
    context.say(format_args!(
        "going on with the export to {} after {} referrals in {} pages",
        files.out.display(),
        checkpoint.referrals(),
        checkpoint.pages()
    ));
    Ok(Some(checkpoint))
}

/// An export under way.
struct Export<'a> {
    context: &'a Context,
    files: &'a Files,
    progress: &'a ProgressBar,
    stop: &'a Stop,
    concurrency: Concurrency,
    /// The parts' ranges as the tasks read and split them.
    ranges: Arc<Ranges>,
    /// Whether the file is in the order of creation newest first.
    descending: bool,
    /// How the readers make their pages' rows.
    rows: Rows,
}

impl Export<'_> {
    /// Writes every page of every part from where `checkpoint` stands, with a checkpoint after
    /// each stretch of pages. `false` when Ctrl-C stopped it (after a checkpoint).
    async fn pages(
        &self,
        query: &Query,
        writers: &mut Writers,
        checkpoint: &mut Checkpoint,
        tasks: usize,
    ) -> anyhow::Result<bool> {
        let max_pages = self.context.client.runtime().max_pages();
        let mut trails: Vec<Trail> = Vec::new();
        let mut last_checkpoint = Instant::now();
        let (resumed, mut pages_written) = (checkpoint.pages() > 0, 0u64);
        let client = (&self.context.client, &self.concurrency);
        let ranges = (&self.ranges, &self.rows);
        // Much of what the start ran is not run again: what runs from here is mapped again.
        crate::resident::drop_read_only_pages();
        let mut pages = fetch::fetch(client, query, checkpoint, ranges, tasks);
        loop {
            let Some(fetched) = pages.recv().await else {
                self.save(writers, checkpoint)?;
                if !checkpoint.done() {
                    bail!("the listing stopped before its last page; run the same command again");
                }
                return Ok(true);
            };
            let part = fetched.part;
            let written = match fetched.page {
                Ok(written) => written,
                Err(error) => {
                    let first_of_resumed = resumed && pages_written == 0;
                    return Err(self.failed(error, first_of_resumed, writers, checkpoint));
                }
            };
            self.adopt(writers, checkpoint);
            let next = if fetched.ends { Ok(None) } else { written.next };
            self.write(
                part,
                (written.rows?, written.referrals, written.count),
                writers.part(self.files, checkpoint, part)?,
                checkpoint,
            )?;
            let next = next?;
            pages_written += 1;
            if trails.len() <= part {
                trails.resize_with(part + 1, || Trail::new(max_pages));
            }
            trails[part].follow(next.as_ref())?;
            let complete = next.is_none();
            checkpoint.parts[part].next = next;
            if complete {
                writers.assemble(self.files, checkpoint, self.descending)?;
            }
            let done = checkpoint.done();
            if done || self.stop.asked() || last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                self.save(writers, checkpoint)?;
                last_checkpoint = Instant::now();
            }
            if done {
                return Ok(true);
            }
            if self.stop.asked() {
                self.progress.abandon();
                self.context.say(format_args!(
                    "stopped after {} referrals in {} pages; run the same command again to go on",
                    checkpoint.referrals(),
                    checkpoint.pages()
                ));
                return Ok(false);
            }
        }
    }

    /// Brings the checkpoint's parts in step with the tasks' ranges: the ranges that splits
    /// made shorter, and room for the writer of each part split off (its file is made at its
    /// first page).
    fn adopt(&self, writers: &mut Writers, checkpoint: &mut Checkpoint) {
        let first_new = self.ranges.record(&mut checkpoint.parts);
        for index in first_new..checkpoint.parts.len() {
            writers.add(index);
        }
    }

    /// Flushes the rows written so far, then records them and the parts' ranges in the
    /// checkpoint.
    fn save(&self, writers: &mut Writers, checkpoint: &mut Checkpoint) -> anyhow::Result<()> {
        self.adopt(writers, checkpoint);
        writers.flush(checkpoint)?;
        checkpoint::write(&self.files.checkpoint, checkpoint)
    }

    /// Writes the rows of a page of part `part` (`referrals` of them, with the service's
    /// `count` if the page had it) and counts them.
    fn write(
        &self,
        part: usize,
        (rows, referrals, count): (Vec<u8>, u64, Option<i64>),
        writer: &mut PartWriter,
        checkpoint: &mut Checkpoint,
    ) -> anyhow::Result<()> {
        writer
            .write_all(&rows)
            .context("cannot write the partial export")?;
        let counted = &mut checkpoint.parts[part];
        counted.pages = counted.pages.saturating_add(1);
        counted.referrals = counted.referrals.saturating_add(referrals);
        if checkpoint.total.is_none() {
            checkpoint.total = count;
            if let Some(total) = count {
                self.progress.set_length(u64::try_from(total).unwrap_or(0));
                self.progress.set_style(bar_style());
            }
        }
        self.progress.set_position(checkpoint.referrals());
        self.progress
            .set_message(format!("{} pages", checkpoint.pages()));
        Ok(())
    }

    /// The error of a page that failed, after a checkpoint of what was written.
    fn failed(
        &self,
        error: referrals_client::Error,
        first_of_resumed: bool,
        writers: &mut Writers,
        checkpoint: &mut Checkpoint,
    ) -> anyhow::Error {
        self.progress.abandon();
        let hint = if first_of_resumed
            && matches!(
                error.kind(),
                ErrorKind::Service | ErrorKind::InvalidContinuation
            ) {
            "the checkpoint may be too old for the service: add --restart to export again from the first page"
        } else {
            "run the same command again to go on from the last checkpoint"
        };
        if let Err(saving) = self.save(writers, checkpoint) {
            return saving;
        }
        anyhow::Error::new(error).context(format!(
            "the export to {} stopped after {} referrals in {} pages ({hint})",
            self.files.out.display(),
            checkpoint.referrals(),
            checkpoint.pages()
        ))
    }

    /// Makes the complete file appear: the last parts copied into the partial file, which is
    /// synced and renamed; then the parts and the checkpoint are removed.
    fn finish(&self, mut writers: Writers, checkpoint: &mut Checkpoint) -> anyhow::Result<()> {
        let Files { out, partial, .. } = self.files;
        writers.assemble(self.files, checkpoint, self.descending)?;
        if checkpoint.assembled.parts != checkpoint.parts.len() {
            bail!(
                "{} holds {} of the {} parts; add --restart to export again",
                partial.display(),
                checkpoint.assembled.parts,
                checkpoint.parts.len()
            );
        }
        let file = writers.finish()?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", partial.display()))?;
        drop(file);
        std::fs::rename(partial, out)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
        sync_directory(out);
        self.progress.finish_and_clear();
        // The parts' files, and one made for a split that no checkpoint recorded. The export is
        // complete and in place now: a clean-up that fails is said, not the command's failure.
        if let Err(error) = self.files.remove_all() {
            self.context.warn(format_args!(
                "{} is complete, but the files of its progress beside it could not all be \
                 removed ({error:#}); the same command again removes them",
                out.display()
            ));
        }
        self.say_done(checkpoint);
        Ok(())
    }

    fn say_done(&self, checkpoint: &Checkpoint) {
        let (answers, throttled) = self.concurrency.answers();
        let pace = match self.concurrency.rate() {
            Some(rate) => {
                format!(", and from then on the export kept to {rate:.1} requests a second")
            }
            None => ", and the export asked less at once".to_owned(),
        };
        let throttling = if throttled > 0 {
            format!("; the service answered 429 to {throttled} of {answers} requests{pace}")
        } else {
            String::new()
        };
        let parts = match checkpoint.parts.len() {
            1 => String::new(),
            parts => format!(" ({parts} parts)"),
        };
        self.context.say(format_args!(
            "exported {} referrals in {} pages{parts} to {}{throttling}",
            checkpoint.referrals(),
            checkpoint.pages(),
            self.files.out.display()
        ));
    }
}

fn progress(quiet: bool, checkpoint: &Checkpoint) -> ProgressBar {
    // indicatif draws nothing when standard error is not a terminal.
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    match checkpoint.total {
        Some(total) => {
            bar.set_length(u64::try_from(total).unwrap_or(0));
            bar.set_style(bar_style());
        }
        None => bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} referrals, {msg} ({rate})")
                .map(|style| style.with_key("rate", crate::output::whole_rate))
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    }
    bar.set_position(checkpoint.referrals());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:30} {pos}/{len} referrals, {msg}, {rate}, about {eta} left")
        .map(|style| style.with_key("rate", crate::output::whole_rate))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn describe(query: &[(String, String)]) -> String {
    if query.is_empty() {
        return "every referral".to_owned();
    }
    query
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}
