//! `ARCHITECTURE.md` stays true: every path it names exists, every bare file name it names is
//! a file of the workspace, and every `Type::function` it names is defined where a `fn` of that
//! name sits in a file that also names the type.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the workspace")
        .to_owned()
}

/// The text between backticks, each once.
fn code_spans(text: &str) -> Vec<&str> {
    let mut spans: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
    spans.sort_unstable();
    spans.dedup();
    spans
}

/// Every `.rs` file of the workspace's crates, tests and xtask.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

fn is_path(span: &str) -> bool {
    span.contains('/') && !span.contains(' ') && !span.starts_with('-') && !span.contains("://")
}

fn is_function(span: &str) -> bool {
    let Some((ty, function)) = span.split_once("::") else {
        return false;
    };
    let word =
        |text: &str| !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '_');
    ty.chars().next().is_some_and(char::is_uppercase) && word(ty) && word(function)
}

#[test]
fn every_path_file_and_function_that_the_map_names_exists() {
    let root = root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut files = Vec::new();
    for dir in ["crates", "tests", "xtask"] {
        sources(&root.join(dir), &mut files);
    }
    let texts: Vec<(PathBuf, String)> = files
        .iter()
        .map(|file| {
            (
                file.clone(),
                std::fs::read_to_string(file).unwrap_or_default(),
            )
        })
        .collect();
    let mut missing = Vec::new();
    let spans = code_spans(&map);
    for span in &spans {
        if is_path(span) {
            if !root.join(span.trim_end_matches('/')).exists() {
                missing.push(format!("path {span}"));
            }
        } else if span.ends_with(".rs") && !span.contains(' ') {
            if !files.iter().any(|file| file.ends_with(span)) {
                missing.push(format!("file {span}"));
            }
        } else if is_function(span) {
            let (ty, function) = span.split_once("::").unwrap_or_default();
            let defined = texts
                .iter()
                .any(|(_, text)| text.contains(&format!("fn {function}")) && text.contains(ty));
            if !defined {
                missing.push(format!("function {span}"));
            }
        }
    }
    assert!(spans.len() > 50, "{} spans read", spans.len());
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what is not there: {missing:#?}"
    );
}
