//! The files of an export: the file it makes, the partial file and its checkpoint, a file for
//! each part, and how they are copied, synced and removed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The files of an export: the file it makes, the partial file, its checkpoint and the files
/// of its parts.
pub(super) struct Files {
    pub(super) out: PathBuf,
    pub(super) partial: PathBuf,
    pub(super) checkpoint: PathBuf,
}

impl Files {
    pub(super) fn of(out: &Path) -> Self {
        Self {
            partial: sibling(out, ".partial"),
            checkpoint: sibling(out, ".partial-checkpoint"),
            out: out.to_owned(),
        }
    }

    /// The file of part `index`.
    pub(super) fn part(&self, index: usize) -> PathBuf {
        sibling(&self.out, &format!(".partial.{index}"))
    }

    /// The files of parts found beside the export's file, whatever their indices, part 0
    /// first: a removal stopped halfway leaves gaps, which a walk up to the first missing
    /// index would not pass, and a run that finds part 0 gone knows that the last one had
    /// renamed its file ([`super::resume`]).
    fn parts(&self) -> anyhow::Result<Vec<PathBuf>> {
        let directory = match self.out.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut prefix = self.out.file_name().unwrap_or_default().to_os_string();
        prefix.push(".partial.");
        let prefix = prefix.as_encoded_bytes();
        let entries = std::fs::read_dir(directory)
            .with_context(|| format!("cannot list {}", directory.display()))?;
        let mut parts = Vec::new();
        for entry in entries {
            let name = entry.context("cannot list the parts' files")?.file_name();
            let index = name.as_encoded_bytes().strip_prefix(prefix);
            let index = index.and_then(|index| std::str::from_utf8(index).ok());
            // Digits alone (`+1` or ` 1` would parse too).
            if let Some(index) =
                index.filter(|index| index.bytes().all(|byte| byte.is_ascii_digit()))
                && let Ok(index) = index.parse::<u128>()
            {
                parts.push((index, self.out.with_file_name(name)));
            }
        }
        parts.sort_unstable();
        Ok(parts.into_iter().map(|(_, path)| path).collect())
    }

    /// Removes the partial export: the files of parts, the partial file, and last the
    /// checkpoint, which claims the others (files without one are refused, not overwritten).
    pub(super) fn remove_all(&self) -> anyhow::Result<()> {
        for part in self.parts()? {
            remove_if_present(&part)?;
        }
        remove_if_present(&self.partial)?;
        remove_if_present(&self.checkpoint)
    }
}

/// Copies the first `bytes` of the part's file at `path` to `out`.
pub(super) fn copy_part(path: &Path, bytes: u64, out: &mut impl Write) -> anyhow::Result<()> {
    let file = match File::open(path) {
        Ok(file) => file,
        // A part of no rows whose file is gone has nothing to copy.
        Err(error) if error.kind() == io::ErrorKind::NotFound && bytes == 0 => return Ok(()),
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "cannot open {}, which the checkpoint counts on; add --restart to export again",
                    path.display()
                )
            });
        }
    };
    let copied = io::copy(&mut file.take(bytes), out)
        .with_context(|| format!("cannot copy {}", path.display()))?;
    if copied < bytes {
        bail!(
            "{} has {copied} bytes, fewer than the {bytes} of its checkpoint: it was changed or \
             cut; add --restart to export again",
            path.display()
        );
    }
    Ok(())
}

/// `leads.csv` → `leads.csv<suffix>`, in the same directory (so that a rename is atomic).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

pub(super) fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Makes the rename durable where the platform allows it; a failure only weakens durability
/// against a power loss, so it is not an error.
pub(super) fn sync_directory(path: &Path) {
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
        assert_eq!(
            Files::of(Path::new("out/leads.csv")).part(3),
            Path::new("out/leads.csv.partial.3")
        );
    }

    #[test]
    fn removing_a_partial_export_finds_parts_after_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::of(&dir.path().join("leads.csv"));
        for index in [1, 7, 300, 301] {
            std::fs::write(files.part(index), b"rows").unwrap();
        }
        std::fs::write(&files.partial, b"rows").unwrap();
        std::fs::write(&files.checkpoint, b"{}").unwrap();
        // Not the export's: another file's parts, a name that only starts alike.
        let others = [
            "leads.csv.partial.x",
            "leads.csv.partial.",
            "other.csv.partial.1",
        ];
        for name in others {
            std::fs::write(dir.path().join(name), b"kept").unwrap();
        }
        // Part 0 first, then by index, not by name.
        std::fs::write(files.part(0), b"rows").unwrap();
        let order = [0, 1, 7, 300, 301].map(|index| files.part(index));
        assert_eq!(files.parts().unwrap(), order);
        files.remove_all().unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort_unstable();
        assert_eq!(
            left,
            [
                "leads.csv.partial.",
                "leads.csv.partial.x",
                "other.csv.partial.1"
            ]
        );
    }
}
