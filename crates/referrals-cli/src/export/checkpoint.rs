//! The checkpoint of an export: the query it answers, its parts (disjoint ranges of
//! `createdDateTime`, in the file in the order of their ranges), for each part the bytes of its
//! file that hold whole rows and the continuation of its next page, and how much of the
//! export's file is assembled.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek};
use std::path::Path;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use referrals_client::Continuation;
use serde::{Deserialize, Serialize};

use super::ExportFormat;

/// The version of the checkpoint's form: 3 when parts may be split while they are read (their
/// order is then that of their ranges, not of the list).
pub(super) const VERSION: u32 = 3;
/// The versions this one reads: a checkpoint of version 2 is one whose parts were never split.
const READS: [u32; 2] = [2, VERSION];
/// A checkpoint is small; a larger file is not one.
const CHECKPOINT_LIMIT: u64 = 1 << 20;

/// What a checkpoint records.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Checkpoint {
    pub(super) version: u32,
    /// The query parameters of the export (filter, order, selection).
    pub(super) query: Vec<(String, String)>,
    pub(super) format: ExportFormat,
    /// Whether CSV cells are written as the service sent them (`--raw-csv`).
    #[serde(default)]
    pub(super) raw_csv: bool,
    /// `@odata.count`, when the service gave it.
    pub(super) total: Option<i64>,
    /// The parts, each a range of creation instants, none until they are planned; those split
    /// off while others were read come after those planned. The file holds them in the order
    /// of their ranges ([`Checkpoint::order`]).
    pub(super) parts: Vec<Part>,
    /// The earliest and the latest creation instants that the plan found.
    #[serde(default)]
    pub(super) span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// How much of the export's file is done.
    #[serde(default)]
    pub(super) assembled: Assembled,
}

/// How much of the export's file is done, as the checkpoint records it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Assembled {
    /// The parts copied into it, the first ones in the order of the file.
    pub(super) parts: usize,
    /// Its bytes once they were copied (and its header written).
    pub(super) bytes: u64,
}

/// One part of an export: the referrals created in a range of instants, read through the
/// service's pages into a file of its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Part {
    /// The first `createdDateTime` of the range; `None`: from the earliest.
    pub(super) from: Option<DateTime<Utc>>,
    /// The `createdDateTime` where the range ends (not included); `None`: to the latest.
    pub(super) until: Option<DateTime<Utc>>,
    /// The bytes of the part's file that hold whole rows.
    pub(super) bytes: u64,
    pub(super) pages: u64,
    pub(super) referrals: u64,
    /// The page to ask for next; `None` before the first page and after the last.
    pub(super) next: Option<Continuation>,
}

impl Part {
    /// Whether its last page was written.
    pub(super) fn done(&self) -> bool {
        self.pages > 0 && self.next.is_none()
    }
}

impl Checkpoint {
    pub(super) fn new(query: Vec<(String, String)>, format: ExportFormat, raw_csv: bool) -> Self {
        Self {
            version: VERSION,
            query,
            format,
            raw_csv,
            total: None,
            parts: Vec::new(),
            span: None,
            assembled: Assembled::default(),
        }
    }

    /// The indexes of the parts in the order of the file: of their ranges, the earliest first
    /// (`descending`: the latest first).
    pub(super) fn order(&self, descending: bool) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.parts.len()).collect();
        // `None` (from the earliest) sorts first.
        order.sort_by_key(|index| self.parts[*index].from);
        if descending {
            order.reverse();
        }
        order
    }

    /// The referrals written so far.
    pub(super) fn referrals(&self) -> u64 {
        self.parts
            .iter()
            .fold(0, |sum, part| sum.saturating_add(part.referrals))
    }

    /// The pages written so far.
    pub(super) fn pages(&self) -> u64 {
        self.parts
            .iter()
            .fold(0, |sum, part| sum.saturating_add(part.pages))
    }

    /// Whether every part was written to its last page.
    pub(super) fn done(&self) -> bool {
        !self.parts.is_empty() && self.parts.iter().all(Part::done)
    }
}

pub(super) fn write(path: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let text = serde_json::to_string(checkpoint)?;
    let temporary = super::files::sibling(path, ".new");
    referrals_mirror::private::write(&temporary, text)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The checkpoint at `path`, if there is one; an unreadable one is an error that names it.
pub(super) fn read(path: &Path) -> anyhow::Result<Option<Checkpoint>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = crate::read_bounded(path, CHECKPOINT_LIMIT, "the checkpoint")?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| not_one(path, error))?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if let Some(version) =
        version.filter(|version| !READS.iter().any(|read| u64::from(*read) == *version))
    {
        bail!(
            "{} is a checkpoint of version {version}, and this referrals reads versions 2 and {VERSION}; \
             add --restart to export again",
            path.display()
        );
    }
    let mut checkpoint: Checkpoint =
        serde_json::from_value(value).map_err(|error| not_one(path, error))?;
    // Saved again as this version: its parts may be split from now on.
    checkpoint.version = VERSION;
    Ok(Some(checkpoint))
}

fn not_one(path: &Path, error: serde_json::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is not a checkpoint of `referrals export` ({error}); remove it, or add --restart to \
         discard it",
        path.display()
    )
}

/// The file of a part, cut back to the `bytes` that the checkpoint counts.
pub(super) fn reopen(path: &Path, bytes: u64) -> anyhow::Result<File> {
    let mut file = match OpenOptions::new().write(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound && bytes == 0 => {
            referrals_mirror::private::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?
        }
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "cannot open {}, which the checkpoint counts on; add --restart to export again",
                    path.display()
                )
            });
        }
    };
    let length = file.metadata()?.len();
    if length < bytes {
        bail!(
            "{} has {length} bytes, fewer than the {bytes} of its checkpoint: it was changed or \
             cut; add --restart to export again",
            path.display()
        );
    }
    // Only a file longer than its checkpoint is cut: on ext4, a file cut to nothing is
    // written out when it is closed (its `auto_da_alloc`), which made the end of an export
    // wait for every part's file (0.3 s of 100,000 referrals).
    if length > bytes {
        file.set_len(bytes)
            .with_context(|| format!("cannot cut {} back to its checkpoint", path.display()))?;
    }
    file.seek(io::SeekFrom::Start(bytes))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_checkpoint_that_is_not_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.csv.partial-checkpoint");
        std::fs::write(&path, "{\"hello\": 1}").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("is not a checkpoint"), "{error}");
        assert!(error.contains("leads.csv.partial-checkpoint"), "{error}");
        std::fs::write(&path, "{\"version\": 1, \"bytes\": 3}").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("of version 1"), "{error}");
    }

    #[test]
    fn a_checkpoint_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut checkpoint = Checkpoint::new(vec![], ExportFormat::Csv, true);
        checkpoint.parts = vec![
            Part {
                until: DateTime::from_timestamp(100, 0),
                pages: 2,
                referrals: 150,
                ..Part::default()
            },
            Part {
                from: DateTime::from_timestamp(100, 0),
                ..Part::default()
            },
        ];
        write(&path, &checkpoint).unwrap();
        let back = read(&path).unwrap().unwrap();
        assert_eq!(back.parts[0].until, checkpoint.parts[0].until);
        assert_eq!(back.parts[1].from, checkpoint.parts[1].from);
        assert_eq!((back.referrals(), back.pages()), (150, 2));
        assert!(back.parts[0].done() && !back.parts[1].done() && !back.done());
    }

    #[test]
    fn a_checkpoint_of_version_2_is_read_and_saved_again_as_this_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let part = r#"{"from":null,"until":null,"bytes":3,"pages":1,"referrals":1,"next":null}"#;
        let old = format!(
            r#"{{"version":2,"query":[],"format":"csv","raw_csv":false,"total":1,"parts":[{part}]}}"#
        );
        std::fs::write(&path, old).unwrap();
        let back = read(&path).unwrap().unwrap();
        assert_eq!(back.version, VERSION);
        assert_eq!((back.span, back.assembled), (None, Assembled::default()));
        assert!(back.done());
    }

    #[test]
    fn a_cut_part_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.partial.0");
        std::fs::write(&path, "abc").unwrap();
        let error = reopen(&path, 10).unwrap_err().to_string();
        assert!(error.contains("fewer than the 10"), "{error}");
        let mut file = reopen(&path, 2).unwrap();
        file.write_all(b"Z").unwrap();
        drop(file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abZ");
    }
}
