//! `referrals export`: every page of a listing into a file, with progress, resumable.
//!
//! The rows go to `FILE.partial`; after each stretch of pages (a quarter of a second at most),
//! a checkpoint `FILE.partial-checkpoint` records the query, the bytes of the partial file that
//! are complete, and the continuation of the next page. A run that finds a checkpoint of the
//! same export cuts the partial file back to those bytes and asks for that page: whatever
//! stopped the last run (Ctrl-C, a failure after the client's retries, a kill, a crash), no row
//! is lost or written twice. When the last page is written, the partial file is synced and
//! renamed to `FILE`, so that `FILE` is never half written.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::ArgMatches;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use referrals_client::query::Query;
use referrals_client::{Continuation, ErrorKind, Page, Trail};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::output::{Format, Writer};
use crate::stop::Stop;
use crate::{Context, QueryArgs, Usage};

/// How long pages are written between two checkpoints, at most.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// The version of the checkpoint's form.
const VERSION: u32 = 1;
/// A checkpoint is small; a larger file is not one.
const CHECKPOINT_LIMIT: u64 = 1 << 20;

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

/// What a checkpoint records.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    version: u32,
    /// The query parameters of the first page (filter, order, selection).
    query: Vec<(String, String)>,
    format: ExportFormat,
    /// Whether CSV cells are written as the service sent them (`--raw-csv`).
    #[serde(default)]
    raw_csv: bool,
    /// The bytes of the partial file that hold whole rows.
    bytes: u64,
    pages: u64,
    referrals: u64,
    /// `@odata.count`, when the service gave it.
    total: Option<i64>,
    /// The page to ask for next; `None` before the first page.
    next: Option<Continuation>,
}

pub async fn run(context: &Context, args: &Args, matches: &ArgMatches) -> anyhow::Result<()> {
    let format = format_of(args)?;
    let query = args.query.query(matches)?;
    // From here on, Ctrl-C stops after the page in hand.
    let stop = Stop::listen(context.quiet);
    let files = Files {
        partial: sibling(&args.out, ".partial"),
        checkpoint: sibling(&args.out, ".partial-checkpoint"),
        out: args.out.clone(),
    };
    if args.restart {
        remove_if_present(&files.checkpoint)?;
        remove_if_present(&files.partial)?;
    }
    let Some((mut checkpoint, file)) =
        start(context, &files, query.parameters(), (format, args.raw_csv))?
    else {
        return Ok(());
    };
    let progress = progress(context.quiet, &checkpoint);
    let output = match format {
        ExportFormat::Ndjson => Format::Ndjson,
        ExportFormat::Csv => Format::Csv,
    };
    let mut writer = Writer::new(
        BufWriter::with_capacity(1 << 16, file),
        output,
        args.query.columns(),
    )
    .raw_csv(args.raw_csv);
    if checkpoint.pages == 0 {
        writer.start()?;
    }
    let export = Export {
        context,
        files: &files,
        progress: &progress,
        stop: &stop,
    };
    if !export.pages(query, &mut writer, &mut checkpoint).await? {
        return Ok(());
    }
    export.finish(writer, &checkpoint)
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
    Ok(args.format.unwrap_or_else(|| {
        match args
            .out
            .extension()
            .and_then(|extension| extension.to_str())
        {
            Some(extension) if extension.eq_ignore_ascii_case("csv") => ExportFormat::Csv,
            _ => ExportFormat::Ndjson,
        }
    }))
}

/// The files of an export: the file it makes, the partial file and its checkpoint.
struct Files {
    out: PathBuf,
    partial: PathBuf,
    checkpoint: PathBuf,
}

/// Where the export starts: the checkpoint of the last run of the same export and its partial
/// file cut back to it, or a new checkpoint and an empty partial file. `None` when the last run
/// was complete.
fn start(
    context: &Context,
    files: &Files,
    parameters: Vec<(String, String)>,
    (format, raw_csv): (ExportFormat, bool),
) -> anyhow::Result<Option<(Checkpoint, File)>> {
    let Some(checkpoint) = read_checkpoint(&files.checkpoint)? else {
        let checkpoint = Checkpoint {
            version: VERSION,
            query: parameters,
            format,
            raw_csv,
            bytes: 0,
            pages: 0,
            referrals: 0,
            total: None,
            next: None,
        };
        // The checkpoint comes first: a partial file without one is not ours to overwrite.
        if files.partial.exists() {
            bail!(
                "{} exists and no checkpoint says it is an export in progress; remove it, or \
                 add --restart to replace it",
                files.partial.display()
            );
        }
        write_checkpoint(&files.checkpoint, &checkpoint)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&files.partial)
            .with_context(|| format!("cannot create {}", files.partial.display()))?;
        return Ok(Some((checkpoint, file)));
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
) -> anyhow::Result<Option<(Checkpoint, File)>> {
    if checkpoint.pages > 0
        && checkpoint.next.is_none()
        && !files.partial.exists()
        && files.out.exists()
    {
        // The last run renamed the file and stopped before it removed the checkpoint.
        remove_if_present(&files.checkpoint)?;
        context.say(format_args!(
            "the export to {} was complete: {} referrals",
            files.out.display(),
            checkpoint.referrals
        ));
        return Ok(None);
    }
    let file = reopen(&files.partial, checkpoint.bytes)?;
    context.say(format_args!(
        "going on with the export to {} after {} referrals in {} pages",
        files.out.display(),
        checkpoint.referrals,
        checkpoint.pages
    ));
    Ok(Some((checkpoint, file)))
}

/// An export under way.
struct Export<'a> {
    context: &'a Context,
    files: &'a Files,
    progress: &'a ProgressBar,
    stop: &'a Stop,
}

impl Export<'_> {
    /// Writes every page from where `checkpoint` stands, with a checkpoint after each stretch
    /// of pages. `false` when Ctrl-C stopped it (after a checkpoint).
    async fn pages(
        &self,
        query: Query,
        writer: &mut Writer<BufWriter<File>>,
        checkpoint: &mut Checkpoint,
    ) -> anyhow::Result<bool> {
        let mut trail = Trail::new(self.context.client.runtime().max_pages());
        let mut last_checkpoint = Instant::now();
        let resumed = checkpoint.pages > 0;
        // The next page is fetched while this one is written: one page ahead, no more.
        let mut pages = fetch_ahead(self.context.client.clone(), query, checkpoint);
        loop {
            let Some(page) = pages.recv().await else {
                if checkpoint.pages == 0 || checkpoint.next.is_some() {
                    bail!("the listing stopped before its last page; run the same command again");
                }
                return Ok(true);
            };
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    return Err(self.failed(
                        error,
                        resumed && trail.pages() == 0,
                        writer,
                        checkpoint,
                    ));
                }
            };
            self.write(&page, writer, checkpoint)?;
            checkpoint.next = page.next()?.cloned();
            trail.follow(checkpoint.next.as_ref())?;
            let done = checkpoint.next.is_none();
            if done || self.stop.asked() || last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                save(writer, &self.files.checkpoint, checkpoint)?;
                last_checkpoint = Instant::now();
            }
            if done {
                return Ok(true);
            }
            if self.stop.asked() {
                self.progress.abandon();
                self.context.say(format_args!(
                    "stopped after {} referrals in {} pages; run the same command again to go on",
                    checkpoint.referrals, checkpoint.pages
                ));
                return Ok(false);
            }
        }
    }

    /// Writes the referrals of `page` and counts them.
    fn write(
        &self,
        page: &Page,
        writer: &mut Writer<BufWriter<File>>,
        checkpoint: &mut Checkpoint,
    ) -> anyhow::Result<()> {
        for referral in &page.items {
            writer.write(referral)?;
        }
        checkpoint.pages = checkpoint.pages.saturating_add(1);
        checkpoint.referrals = checkpoint.referrals.saturating_add(page.items.len() as u64);
        if checkpoint.total.is_none() {
            checkpoint.total = page.count;
            if let Some(total) = page.count {
                self.progress.set_length(u64::try_from(total).unwrap_or(0));
                self.progress.set_style(bar_style());
            }
        }
        self.progress.set_position(checkpoint.referrals);
        self.progress
            .set_message(format!("{} pages", checkpoint.pages));
        Ok(())
    }

    /// The error of a page that failed, after a checkpoint of what was written.
    fn failed(
        &self,
        error: referrals_client::Error,
        first_of_resumed: bool,
        writer: &mut Writer<BufWriter<File>>,
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
        if let Err(saving) = save(writer, &self.files.checkpoint, checkpoint) {
            return saving;
        }
        anyhow::Error::new(error).context(format!(
            "the export to {} stopped after {} referrals in {} pages ({hint})",
            self.files.out.display(),
            checkpoint.referrals,
            checkpoint.pages
        ))
    }

    /// Makes the complete file appear: the partial file synced and renamed, the checkpoint
    /// removed.
    fn finish(
        &self,
        writer: Writer<BufWriter<File>>,
        checkpoint: &Checkpoint,
    ) -> anyhow::Result<()> {
        let Files {
            out,
            partial,
            checkpoint: checkpoint_path,
        } = self.files;
        let file = writer
            .finish()?
            .into_inner()
            .map_err(|error| error.into_error())?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", partial.display()))?;
        drop(file);
        std::fs::rename(partial, out)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
        sync_directory(out);
        remove_if_present(checkpoint_path)?;
        self.progress.finish_and_clear();
        self.context.say(format_args!(
            "exported {} referrals in {} pages to {}",
            checkpoint.referrals,
            checkpoint.pages,
            out.display()
        ));
        Ok(())
    }
}

/// The pages from where `checkpoint` stands, fetched by a task of their own one page ahead of
/// the reader. Only the first page of an export asks for the count, which sizes the progress
/// bar. The listing ends after the
/// last page or the first error; dropping the receiver stops it.
fn fetch_ahead(
    client: referrals_client::Client,
    query: Query,
    checkpoint: &Checkpoint,
) -> mpsc::Receiver<Result<Page, referrals_client::Error>> {
    let (sender, receiver) = mpsc::channel(1);
    let (mut from, fresh) = (checkpoint.next.clone(), checkpoint.pages == 0);
    if !fresh && from.is_none() {
        // The last page was written already.
        return receiver;
    }
    tokio::spawn(async move {
        let mut first = fresh;
        loop {
            let page = if first {
                client.list_page(&query.clone().count(true), None).await
            } else {
                client.list_page(&query, from.as_ref()).await
            };
            first = false;
            let next = match &page {
                Ok(page) => page.next().ok().flatten().cloned(),
                Err(_) => None,
            };
            if sender.send(page).await.is_err() || next.is_none() {
                return;
            }
            from = next;
        }
    });
    receiver
}

/// Flushes the rows written so far, then records them in the checkpoint.
fn save(
    writer: &mut Writer<BufWriter<File>>,
    path: &Path,
    checkpoint: &mut Checkpoint,
) -> anyhow::Result<()> {
    let out = writer.get_mut();
    out.flush().context("cannot write the partial export")?;
    checkpoint.bytes = out
        .get_mut()
        .stream_position()
        .context("cannot read the position in the partial export")?;
    write_checkpoint(path, checkpoint)
}

fn write_checkpoint(path: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let text = serde_json::to_string(checkpoint)?;
    let temporary = sibling(path, ".new");
    std::fs::write(&temporary, text)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The checkpoint at `path`, if there is one; an unreadable one is an error that names it.
fn read_checkpoint(path: &Path) -> anyhow::Result<Option<Checkpoint>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = crate::read_bounded(path, CHECKPOINT_LIMIT, "the checkpoint")?;
    let checkpoint: Checkpoint = serde_json::from_str(&text).map_err(|error| {
        anyhow::anyhow!(
            "{} is not a checkpoint of `referrals export` ({error}); remove it, or add --restart \
             to discard it",
            path.display()
        )
    })?;
    if checkpoint.version != VERSION {
        bail!(
            "{} is a checkpoint of version {}, and this referrals reads version {VERSION}; add \
             --restart to export again",
            path.display(),
            checkpoint.version
        );
    }
    Ok(Some(checkpoint))
}

/// The partial file, cut back to the `bytes` that the checkpoint counts.
fn reopen(partial: &Path, bytes: u64) -> anyhow::Result<File> {
    let mut file = match OpenOptions::new().write(true).open(partial) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound && bytes == 0 => {
            File::create(partial).with_context(|| format!("cannot create {}", partial.display()))?
        }
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "cannot open {}, which the checkpoint counts on; add --restart to export again",
                    partial.display()
                )
            });
        }
    };
    let length = file.metadata()?.len();
    if length < bytes {
        bail!(
            "{} has {length} bytes, fewer than the {bytes} of its checkpoint: it was changed or \
             cut; add --restart to export again",
            partial.display()
        );
    }
    file.set_len(bytes)
        .with_context(|| format!("cannot cut {} back to its checkpoint", partial.display()))?;
    file.seek(io::SeekFrom::Start(bytes))?;
    Ok(file)
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
    bar.set_position(checkpoint.referrals);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:30} {pos}/{len} referrals, {msg}, {rate}, about {eta} left")
        .map(|style| style.with_key("rate", crate::output::whole_rate))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// `leads.csv` → `leads.csv<suffix>`, in the same directory (so that a rename is atomic).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Makes the rename durable where the platform allows it; a failure only weakens durability
/// against a power loss, so it is not an error.
fn sync_directory(path: &Path) {
    #[cfg(unix)]
    if let Some(directory) = path.parent() {
        let directory = if directory.as_os_str().is_empty() {
            Path::new(".")
        } else {
            directory
        };
        if let Ok(directory) = File::open(directory) {
            let _ = directory.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_stay_in_the_directory() {
        assert_eq!(
            sibling(Path::new("out/leads.csv"), ".partial"),
            Path::new("out/leads.csv.partial")
        );
        assert_eq!(sibling(Path::new("x"), ".new"), Path::new("x.new"));
    }

    #[test]
    fn a_checkpoint_that_is_not_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.csv.partial-checkpoint");
        std::fs::write(&path, "{\"hello\": 1}").unwrap();
        let error = read_checkpoint(&path).unwrap_err().to_string();
        assert!(error.contains("is not a checkpoint"), "{error}");
        assert!(error.contains("leads.csv.partial-checkpoint"), "{error}");
    }

    #[test]
    fn a_cut_partial_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.partial");
        std::fs::write(&path, "abc").unwrap();
        let error = reopen(&path, 10).unwrap_err().to_string();
        assert!(error.contains("fewer than the 10"), "{error}");
        let mut file = reopen(&path, 2).unwrap();
        file.write_all(b"Z").unwrap();
        drop(file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abZ");
    }
}
