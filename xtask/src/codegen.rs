//! `cargo xtask codegen`: regenerate the reviewable copies of the generated code (the model,
//! the client, the typed httpmock helpers and the CLI's commands), or check that they are
//! current.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use referrals_codegen::Part;
use similar::{ChangeTag, DiffOp, TextDiff};

use crate::{FAILED, STALE, root, shown};

/// `cargo xtask codegen`: with no file named, every reviewable copy of the workspace; with
/// files named, only those.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Change nothing: exit 0 when the copies are current, 1 with a unified diff when not.
    #[arg(long)]
    check: bool,
    /// The OpenAPI document [default: openapi/referrals.yaml].
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// The model's copy [default: crates/referrals-model/generated/model.rs].
    #[arg(long, value_name = "FILE")]
    model_out: Option<PathBuf>,
    /// The client's copy [default: crates/referrals-client/generated/client.rs].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The mocks' copy [default: crates/referrals-httpmock/generated/httpmock.rs].
    #[arg(long, value_name = "FILE")]
    mock_out: Option<PathBuf>,
    /// The CLI commands' copy [default: crates/referrals-cli/generated/cli.rs].
    #[arg(long, value_name = "FILE")]
    cli_out: Option<PathBuf>,
    /// The webhooks document [default: openapi/webhooks/webhooks.yaml].
    #[arg(long, value_name = "FILE")]
    webhooks_spec: Option<PathBuf>,
    /// The model's webhooks module's copy [default: crates/referrals-model/generated/webhooks.rs].
    #[arg(long, value_name = "FILE")]
    webhooks_model_out: Option<PathBuf>,
    /// The client's webhooks module's copy [default: crates/referrals-client/generated/webhooks.rs].
    #[arg(long, value_name = "FILE")]
    webhooks_out: Option<PathBuf>,
}

struct Options {
    check: bool,
    /// The copies to write, each with the part that makes it and its document.
    targets: Vec<Target>,
}

struct Target {
    out: PathBuf,
    part: Part,
    spec: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    let options = options(args);

    // Everything is generated before anything is written: one failure writes nothing.
    let mut generated = Vec::new();
    for target in &options.targets {
        match referrals_codegen::generate(&target.spec, target.part) {
            Ok(text) => generated.push(text),
            Err(error) => {
                eprintln!("error: {error}");
                eprintln!("nothing was written.");
                return ExitCode::from(FAILED);
            }
        }
    }
    let mut currents = Vec::new();
    for target in &options.targets {
        match std::fs::read_to_string(&target.out) {
            Ok(current) => currents.push(Some(current)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => currents.push(None),
            Err(error) => {
                eprintln!("error: cannot read {}: {error}", shown(&target.out));
                return ExitCode::from(FAILED);
            }
        }
    }

    let mut stale = false;
    for ((target, text), current) in options.targets.iter().zip(&generated).zip(currents) {
        let out = shown(&target.out);
        if current.as_deref() == Some(text.as_str()) {
            println!("{out} is up to date with {}.", shown(&target.spec));
            continue;
        }
        if options.check {
            stale = true;
            let old = current.as_deref().unwrap_or("");
            let diff = TextDiff::from_lines(old, text);
            print!(
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{out}"), &format!("b/{out}"))
            );
            eprintln!(
                "error: {out} is {} {}; run `cargo xtask codegen` and commit the result.",
                if current.is_some() {
                    "stale against"
                } else {
                    "missing, generated from"
                },
                shown(&target.spec)
            );
            continue;
        }
        if let Err(error) = write_atomically(&target.out, text) {
            eprintln!("error: cannot write {out}: {error}");
            return ExitCode::from(FAILED);
        }
        match current {
            None => println!("created {out} ({} lines).", text.lines().count()),
            Some(old) => report(&out, &old, text),
        }
    }
    if stale {
        ExitCode::from(STALE)
    } else {
        ExitCode::SUCCESS
    }
}

fn options(args: Args) -> Options {
    let root = root();
    let spec_of = |part: Part| {
        match part {
            Part::WebhooksModel | Part::WebhooksClient => args.webhooks_spec.clone(),
            _ => args.spec.clone(),
        }
        .unwrap_or_else(|| root.join("openapi").join(part.document()))
    };
    let named: Vec<Target> = [
        (args.model_out.clone(), Part::Model),
        (args.out.clone(), Part::Client),
        (args.mock_out.clone(), Part::Httpmock),
        (args.cli_out.clone(), Part::Cli),
        (args.webhooks_model_out.clone(), Part::WebhooksModel),
        (args.webhooks_out.clone(), Part::WebhooksClient),
    ]
    .into_iter()
    .filter_map(|(out, part)| {
        Some(Target {
            out: out?,
            part,
            spec: spec_of(part),
        })
    })
    .collect();
    let targets = if named.is_empty() {
        Part::ALL
            .into_iter()
            .map(|part| Target {
                out: root
                    .join("crates")
                    .join(part.crate_dir())
                    .join("generated")
                    .join(part.file_name()),
                part,
                spec: spec_of(part),
            })
            .collect()
    } else {
        named
    };
    Options {
        check: args.check,
        targets,
    }
}

/// Writes `text` to a temporary file beside `path`, then renames it over `path`: a reader sees
/// the old file or the new one, never a part of it.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = directory.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Prints how many lines changed and in which items of the generated code.
fn report(out: &str, old: &str, new: &str) {
    let diff = TextDiff::from_lines(old, new);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }
    println!("updated {out}: {added} lines added, {removed} removed.");

    match crate::summary::lines(old, new) {
        Some(lines) if !lines.is_empty() => {
            println!("items:");
            for line in lines {
                println!("  {line}");
            }
        }
        Some(_) => {}
        None => changed_items(old, new, &diff),
    }
    println!("review the change with `git diff {out}`.");
}

/// The items around the changed lines, for a version that does not parse.
fn changed_items(old: &str, new: &str, diff: &TextDiff<'_, '_, str>) {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let mut items = Vec::new();
    for op in diff.ops() {
        let item = match *op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete { old_index, .. } => enclosing_item(&old_lines, old_index),
            DiffOp::Insert { new_index, .. } | DiffOp::Replace { new_index, .. } => {
                enclosing_item(&new_lines, new_index)
            }
        };
        if let Some(item) = item
            && !items.contains(&item)
        {
            items.push(item);
        }
    }
    if !items.is_empty() {
        println!("changed items:");
        for item in items {
            println!("  {item}");
        }
    }
}

/// The item that line `index` belongs to, such as `pub struct Referral`: the item that a doc
/// comment or attribute introduces, or else the nearest item declaration above the line.
fn enclosing_item(lines: &[&str], index: usize) -> Option<String> {
    const STARTS: [&str; 7] = [
        "pub struct ",
        "pub enum ",
        "pub async fn ",
        "pub fn ",
        "pub mod ",
        "impl ",
        "impl<",
    ];
    let is_item = |line: &&str| STARTS.iter().any(|start| line.starts_with(start));
    let name = |line: &str| line.trim_end_matches('{').trim().to_owned();
    let index = index.min(lines.len().checked_sub(1)?);
    let is_preamble =
        |line: &str| line.starts_with("///") || line.starts_with("#[") || line.starts_with("#![");
    if is_preamble(lines[index].trim()) {
        let next = lines[index..]
            .iter()
            .map(|line| line.trim())
            .find(|line| !is_preamble(line));
        if let Some(line) = next.filter(is_item) {
            return Some(name(line));
        }
    }
    lines[..=index]
        .iter()
        .rev()
        .map(|line| line.trim())
        .find(is_item)
        .map(name)
}
