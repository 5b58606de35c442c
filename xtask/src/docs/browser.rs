//! The reference page in a real browser: headless Chromium, driven by puppeteer-core
//! (`check.mjs`), loads the page, opens each tag of its menu, and the page must show every
//! operation of the document and every section of its facts, with no script or console error.
//! A screenshot is written for a reviewer.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The driver, copied beside the pinned node modules that it imports.
const CHECK: &str = include_str!("check.mjs");

pub fn check(page: &Path, document: &Value, screenshot: &Path) -> Result<(), String> {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(which)
        .ok_or("no headless browser: install chromium (apt-get install chromium)")?;
    let tools = super::node_tools()?;
    let script = tools.join("check-reference.mjs");
    std::fs::write(&script, CHECK)
        .map_err(|error| format!("cannot write {}: {error}", script.display()))?;
    let operations = super::operation_texts(document);
    let sections = super::table_headings(document);
    let expected = serde_json::json!({ "operations": operations, "sections": sections });
    let output = Command::new("node")
        .arg(&script)
        .arg(page)
        .arg(screenshot)
        .arg(&browser)
        .arg(expected.to_string())
        .output()
        .map_err(|error| format!("cannot run node: {error}"))?;
    let report = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the reference failed its check in {browser}: {report}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    println!(
        "{browser}: the page shows the {} operations and the {} sections, with no error \
         ({}); screenshot {}",
        operations.len(),
        sections.len(),
        report.trim(),
        screenshot.display()
    );
    Ok(())
}

/// The full path of `program` on the PATH.
fn which(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|folder| folder.join(program))
        .find(|candidate| candidate.is_file())
        .map(|found| found.display().to_string())
}
