//! Files that hold personal data (customers' names, e-mail addresses, phone numbers): the
//! mirror, exports, their checkpoints and parts are created readable and writable by their
//! owner alone (mode 0600 on Unix), whatever the umask, so that no other user of the machine
//! reads them. SQLite gives a database's journal and WAL files the database's own mode.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates (or truncates) the file at `path`, for writing, with mode 0600 (a file left
/// there by an earlier version is made so too).
pub fn create(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(file)
}

/// Makes an empty file at `path` if none is there (another process may make it at the same
/// time: its file is left as it is).
pub fn make_empty(path: &Path) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Writes `bytes` to the file at `path`, made as [`create`] makes it.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    io::Write::write_all(&mut create(path)?, bytes.as_ref())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_file_is_its_owner_s_alone() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("export.csv");
        super::write(&path, "name\nZoë\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "name\nZoë\n");
        // A file left readable by others is made its owner's alone when written again.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::write(&path, "again").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    #[test]
    fn a_new_mirror_its_wal_and_its_csv_are_their_owner_s_alone() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("mirror.sqlite");
        let mirror = crate::Mirror::open(&path).unwrap();
        let csv = folder.path().join("referrals.csv");
        let columns = referrals_client::flat::Columns::new(None);
        mirror.write_csv(&csv, &columns, |_| true).unwrap();
        let mut checked = 0;
        for entry in std::fs::read_dir(folder.path()).unwrap() {
            let entry = entry.unwrap();
            let mode = entry.metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{:?}: {mode:o}", entry.file_name());
            checked += 1;
        }
        // The database, its WAL and shared memory, the CSV.
        assert!(checked >= 3, "{checked} files");
    }
}
