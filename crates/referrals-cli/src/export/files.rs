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

    /// The files of parts, from the first up to the first that is not there.
    pub(super) fn parts(&self) -> impl Iterator<Item = PathBuf> + '_ {
        (0..)
            .map(|index| self.part(index))
            .take_while(|path| path.exists())
    }

    /// Removes the partial export: the files of parts, the partial file, and last the
    /// checkpoint, which claims the others (files without one are refused, not overwritten).
    pub(super) fn remove_all(&self) -> anyhow::Result<()> {
        for part in self.parts().collect::<Vec<_>>() {
            remove_if_present(&part)?;
        }
        remove_if_present(&self.partial)?;
        remove_if_present(&self.checkpoint)
    }
}

/// Copies the first `bytes` of the part's file at `path` to `out`.
pub(super) fn copy_part(path: &Path, bytes: u64, out: &mut impl Write) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
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
}
