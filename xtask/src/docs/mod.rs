//! `cargo xtask docs`: the reference of the document as one HTML page, built by Redocly's
//! `build-docs` from a copy of the document whose vendor extensions are added as tables
//! ([`facts`]), and the man pages of `referrals` from its clap definition (clap_mangen), in
//! `<target dir>/docs/` (a folder per checkout when the target directory is shared, see
//! [`docs_dir`]). `--browser` then loads the page in headless Chromium: it must show
//! every operation of the document and every table, with no error in the console; a
//! screenshot is written beside it for a reviewer.

mod browser;
mod facts;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use serde_json::Value;

/// The options of `cargo xtask docs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Load the page in headless Chromium (`chromium` on the PATH), check it and write a
    /// screenshot.
    #[arg(long)]
    browser: bool,
    /// Leave out the man pages (which build the CLI).
    #[arg(long)]
    skip_man: bool,
}

pub fn run(args: Args) -> ExitCode {
    match build(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn build(args: &Args) -> Result<(), String> {
    let out = docs_dir()?;
    std::fs::create_dir_all(&out)
        .map_err(|error| format!("cannot create {}: {error}", out.display()))?;
    let source = crate::root().join("openapi/referrals.yaml");
    let text = std::fs::read_to_string(&source)
        .map_err(|error| format!("cannot read {}: {error}", source.display()))?;
    let mut document: Value = serde_norway::from_str(&text)
        .map_err(|error| format!("{} is not YAML: {error}", source.display()))?;
    facts::add_tables(&mut document);
    let rendered = out.join("referrals.json");
    write(&rendered, &document.to_string())?;
    let page = out.join("reference.html");
    redocly(&rendered, &page)?;
    println!("wrote {}", page.display());
    if !args.skip_man {
        man_pages(&out.join("man"))?;
    }
    if args.browser {
        browser::check(&page, &document, &out.join("reference.png"))?;
    }
    Ok(())
}

/// Where the reference goes: `<target dir>/docs`; or, when the target directory is outside the
/// checkout (a `CARGO_TARGET_DIR` that several checkouts share), a folder of this checkout's
/// own below it, `<target dir>/docs/<checkout's name>-<hash of its path>`, so that no checkout
/// overwrites another's reference.
fn docs_dir() -> Result<PathBuf, String> {
    let root = crate::root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        // Relative to the folder cargo was run in, as cargo reads it.
        Some(dir) => std::env::current_dir()
            .map_err(|error| format!("cannot read the current folder: {error}"))?
            .join(dir),
        None => crate::bench_kit::target_dir()?,
    };
    if target.starts_with(&root) {
        return Ok(target.join("docs"));
    }
    let name = root
        .file_name()
        .map_or_else(|| "checkout".into(), |name| name.to_string_lossy());
    Ok(target.join("docs").join(format!(
        "{name}-{:016x}",
        fnv1a(root.as_os_str().as_encoded_bytes())
    )))
}

/// FNV-1a of `bytes`: a name that stays the same across Rust releases (the standard library's
/// hasher may change), written here because no crate of the workspace has one.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The man pages of `referrals`, in `man`.
fn man_pages(man: &Path) -> Result<(), String> {
    run_command(
        Command::new(env!("CARGO"))
            .current_dir(crate::root())
            .args([
                "run",
                "--quiet",
                "-p",
                "referrals-cli",
                "--",
                "man",
                "--out",
            ])
            .arg(man),
        "cargo run -p referrals-cli -- man",
    )?;
    println!("wrote the man pages in {}", man.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// The node modules of `.ci/package.json` (Redocly's CLI, puppeteer-core), installed under
/// `target/ci-tools/node` as `.ci/run` installs them, when they are not there.
fn node_tools() -> Result<std::path::PathBuf, String> {
    let root = crate::root();
    let tools = root.join("target/ci-tools/node");
    let installed = ["node_modules/.bin/redocly", "node_modules/puppeteer-core"]
        .iter()
        .all(|module| tools.join(module).exists());
    if !installed {
        std::fs::create_dir_all(&tools).map_err(|error| error.to_string())?;
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(root.join(".ci").join(file), tools.join(file))
                .map_err(|error| format!("cannot copy .ci/{file}: {error}"))?;
        }
        run_command(
            Command::new("npm").current_dir(&tools).args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ]),
            "npm ci (.ci/package.json)",
        )?;
    }
    Ok(tools)
}

/// Runs Redocly's `build-docs`, the version that CI lints with, with its scripts inlined so
/// that the page needs no network.
fn redocly(document: &Path, page: &Path) -> Result<(), String> {
    let program = node_tools()?.join("node_modules/.bin/redocly");
    run_command(
        Command::new(&program)
            .env("REDOCLY_TELEMETRY", "off")
            .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
            .args(["build-docs", "--inlineBundle"])
            .arg(document)
            .arg("--output")
            .arg(page),
        "redocly build-docs",
    )
}

fn run_command(command: &mut Command, name: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|error| format!("cannot run {name}: {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{name} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// What the page shows of each operation of the document: its summary, or its id.
fn operation_texts(document: &Value) -> Vec<String> {
    let operations = document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(Value::as_object)
        .flat_map(|item| item.values());
    operations
        .filter_map(|operation| {
            operation
                .get("summary")
                .or_else(|| operation.get("operationId"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

/// The headings of the tables that [`facts::add_tables`] added, without their extension.
fn table_headings(document: &Value) -> Vec<String> {
    document["info"]["description"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .filter_map(|heading| heading.split(" (`").next())
        .map(str::to_owned)
        .collect()
}
