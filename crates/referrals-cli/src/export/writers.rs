//! The files an export writes while it reads: a file for each part, and the export's own file
//! (`FILE.partial`), into which each part is copied as soon as it and every part before it in
//! the order of the file are complete. The copies are made while later parts are still read,
//! so that the end of an export has little left to copy: with a rate limit, whose pace leaves
//! the processor and the disk idle, the export of 100,000 referrals had spent a fifth of a
//! second at its end copying 270 MB, and as much again syncing it. The checkpoint records how
//! many parts were copied and how long the file was then; a run that goes on cuts the file
//! back to that length. A part's file is opened when its first page of a run comes and closed
//! once its last is written, so that an export holds open only the files of the parts being
//! read, however many it was cut in.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use anyhow::Context as _;

use super::checkpoint::{self, Checkpoint};
use super::files::{Files, copy_part};
use super::{ExportFormat, PART_BUFFER};
use crate::output::Writer;
use referrals_client::flat::Columns;

/// The writer of a part's file: its rows come made ([`Rows`]).
pub(super) type PartWriter = BufWriter<File>;

/// How rows are made, the same in the readers' pages and in the export's file (its header).
#[derive(Clone)]
pub(super) struct Rows {
    pub(super) format: ExportFormat,
    pub(super) columns: Columns,
    /// CSV cells as the service sent them (`--raw-csv`).
    pub(super) raw_csv: bool,
}

impl Rows {
    /// A writer of these rows to `out`.
    pub(super) fn writer<W: Write>(&self, out: W) -> Writer<W> {
        Writer::new(out, self.format.output(), self.columns.clone()).raw_csv(self.raw_csv)
    }
}

/// The writers of an export's files.
pub(super) struct Writers {
    /// Each part's, by its index in the checkpoint; `None` until its first page of this run,
    /// and again once it is complete.
    parts: Vec<Option<PartWriter>>,
    /// The export's file.
    file: Writer<BufWriter<File>>,
}

impl Writers {
    /// The writers of the files of `checkpoint`: the export's file cut back to what it counts
    /// (made when there is none), with its header when it has nothing yet; the parts' files
    /// are opened as their pages come ([`Self::part`]).
    /// A complete part not copied yet must still hold its bytes, checked before any request.
    pub(super) fn open(
        files: &Files,
        checkpoint: &Checkpoint,
        (rows, descending): (&Rows, bool),
    ) -> anyhow::Result<Self> {
        let order = checkpoint.order(descending);
        for &index in order.iter().skip(checkpoint.assembled.parts) {
            let part = &checkpoint.parts[index];
            if part.done() {
                holds(&files.part(index), part.bytes)?;
            }
        }
        let parts = checkpoint.parts.iter().map(|_| None).collect();
        let bytes = checkpoint.assembled.bytes;
        let file = checkpoint::reopen(&files.partial, bytes)?;
        let mut file = rows.writer(BufWriter::with_capacity(PART_BUFFER, file));
        if bytes == 0 {
            file.start()?;
        }
        Ok(Self { parts, file })
    }

    /// Room for the writer of the part split off at `index`.
    pub(super) fn add(&mut self, index: usize) {
        debug_assert_eq!(index, self.parts.len(), "parts are added in order");
        self.parts.push(None);
    }

    /// The writer of part `index` of `checkpoint`, which is still read: at its first page of
    /// this run, on its file cut back to the bytes that the checkpoint counts (made when there
    /// is none).
    pub(super) fn part(
        &mut self,
        files: &Files,
        checkpoint: &Checkpoint,
        index: usize,
    ) -> anyhow::Result<&mut PartWriter> {
        let part = checkpoint.parts.get(index);
        let slot = self.parts.get_mut(index);
        let (Some(part), Some(slot)) = (part, slot) else {
            anyhow::bail!("part {index} is not one of the export's");
        };
        if part.done() {
            anyhow::bail!("part {index} got a page after its last");
        }
        if slot.is_none() {
            *slot = Some(open_part(&files.part(index), part.bytes)?);
        }
        slot.as_mut()
            .with_context(|| format!("part {index} has no file"))
    }

    /// Copies into the export's file each complete part that comes next in the order of the
    /// file (`descending`: newest first).
    pub(super) fn assemble(
        &mut self,
        files: &Files,
        checkpoint: &mut Checkpoint,
        descending: bool,
    ) -> anyhow::Result<()> {
        self.close_complete(checkpoint)?;
        let order = checkpoint.order(descending);
        let before = checkpoint.assembled.parts;
        while let Some(&index) = order.get(checkpoint.assembled.parts) {
            if !checkpoint.parts[index].done() {
                break;
            }
            let bytes = checkpoint.parts[index].bytes;
            copy_part(&files.part(index), bytes, self.file.get_mut())?;
            checkpoint.assembled.parts += 1;
        }
        if checkpoint.assembled.parts > before {
            flushed(self.file.get_mut())?;
            start_writing_out(self.file.get_mut().get_ref());
        }
        Ok(())
    }

    /// Closes the files of the parts whose last page is written, once their length is
    /// recorded in `checkpoint`.
    fn close_complete(&mut self, checkpoint: &mut Checkpoint) -> anyhow::Result<()> {
        for (writer, part) in self.parts.iter_mut().zip(checkpoint.parts.iter_mut()) {
            if part.done()
                && let Some(mut open) = writer.take()
            {
                part.bytes = flushed(&mut open)?;
            }
        }
        Ok(())
    }

    /// Flushes every file and records in `checkpoint` how long each is.
    pub(super) fn flush(&mut self, checkpoint: &mut Checkpoint) -> anyhow::Result<()> {
        for (writer, part) in self.parts.iter_mut().zip(checkpoint.parts.iter_mut()) {
            if let Some(writer) = writer {
                part.bytes = flushed(writer)?;
            }
        }
        checkpoint.assembled.bytes = flushed(self.file.get_mut())?;
        Ok(())
    }

    /// The export's file, with every part copied, flushed.
    pub(super) fn finish(self) -> anyhow::Result<File> {
        drop(self.parts);
        let file = self
            .file
            .finish()?
            .into_inner()
            .map_err(|error| error.into_error())?;
        Ok(file)
    }
}

/// Asks the system to start writing `file` to its disk, without waiting for it: the sync at
/// the end then finds little left to write (it took 0.2 s of an export of 270 MB).
#[cfg(target_os = "linux")]
fn start_writing_out(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is the open file's own, and sync_file_range only starts the
    // write-out of its pages (offset and length 0: all of them). A failure leaves the
    // write-out to the sync at the end, so it is not an error.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Elsewhere the sync at the end writes the whole file.
#[cfg(not(target_os = "linux"))]
fn start_writing_out(_: &File) {}

/// Whether the part's file at `path` holds at least `bytes` (none are needed of a part of no
/// rows).
fn holds(path: &Path, bytes: u64) -> anyhow::Result<()> {
    let length = match std::fs::metadata(path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    if length < bytes {
        anyhow::bail!(
            "{} has {length} bytes, fewer than the {bytes} of its checkpoint: it was changed, cut \
             or removed; add --restart to export again",
            path.display()
        );
    }
    Ok(())
}

/// Flushes `out`, and gives the length of what it wrote.
fn flushed(out: &mut BufWriter<File>) -> anyhow::Result<u64> {
    out.flush().context("cannot write the partial export")?;
    out.get_mut()
        .stream_position()
        .context("cannot read the position in the partial export")
}

/// The writer of the part's file at `path`, cut back to `bytes` (made when there is none).
fn open_part(path: &Path, bytes: u64) -> anyhow::Result<PartWriter> {
    let file = checkpoint::reopen(path, bytes)?;
    Ok(BufWriter::with_capacity(PART_BUFFER, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::checkpoint::{Assembled, Part};

    fn done(bytes: u64) -> Part {
        Part {
            bytes,
            pages: 1,
            referrals: bytes / 10,
            ..Part::default()
        }
    }

    #[test]
    fn a_complete_part_not_copied_must_hold_its_bytes_before_any_request() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::of(&dir.path().join("leads.ndjson"));
        let rows = Rows {
            format: ExportFormat::Ndjson,
            columns: Columns::new(None),
            raw_csv: false,
        };
        let mut checkpoint = Checkpoint::new(Vec::new(), ExportFormat::Ndjson, false);
        // Part 1 has no rows and no file: nothing to copy, nothing missing.
        checkpoint.parts = vec![done(40), done(0)];
        std::fs::write(files.part(0), [b'x'; 40]).unwrap();
        assert!(Writers::open(&files, &checkpoint, (&rows, false)).is_ok());
        std::fs::write(files.part(0), [b'x'; 39]).unwrap();
        let error = Writers::open(&files, &checkpoint, (&rows, false))
            .err()
            .unwrap();
        assert!(error.to_string().contains("--restart"), "{error}");
        // Once copied into the export's file, its own file no longer counts.
        checkpoint.assembled = Assembled { parts: 1, bytes: 0 };
        assert!(Writers::open(&files, &checkpoint, (&rows, false)).is_ok());
    }
}
