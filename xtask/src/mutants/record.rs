//! What the steps of `cargo xtask mutants` detected, kept between runs in
//! `<target dir>/mutants/record`: one file of names for each step's detected mutants, one for
//! the unviable ones, and a copy of the sources they were measured on.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{Outcome, Step};

pub(super) struct Record {
    folder: PathBuf,
    client: BTreeSet<String>,
    contract: BTreeSet<String>,
    unviable: BTreeSet<String>,
    /// The detected mutants whose tests ran out of time (hung, or slowed by a busy machine).
    timeout: BTreeSet<String>,
}

const CLIENT: &str = "client.txt";
const CONTRACT: &str = "contract.txt";
const UNVIABLE: &str = "unviable.txt";
const TIMEOUT: &str = "timeout.txt";

impl Record {
    /// An empty record for the sources `files`: the last run's, and the steps' reports, are
    /// dropped.
    pub(super) fn start(out: &Path, files: &[String]) -> Result<Self, String> {
        let folder = out.join("record");
        for step in ["client", "contract"] {
            remove(&out.join(step).join("mutants.out"))?;
            remove(&out.join(step).join("mutants.out.old"))?;
        }
        remove(&folder)?;
        let sources = folder.join("sources");
        std::fs::create_dir_all(&sources).map_err(|error| cannot("create", &sources, error))?;
        for (name, text) in read_sources(files)? {
            let path = sources.join(name);
            std::fs::write(&path, text).map_err(|error| cannot("write", &path, error))?;
        }
        let record = Self {
            folder,
            client: BTreeSet::new(),
            contract: BTreeSet::new(),
            unviable: BTreeSet::new(),
            timeout: BTreeSet::new(),
        };
        record.save()?;
        Ok(record)
    }

    /// The last run's record, when it was measured on the sources `files` are now.
    pub(super) fn read(out: &Path, files: &[String]) -> Result<Self, String> {
        let folder = out.join("record");
        let sources = folder.join("sources");
        let mut kept = BTreeMap::new();
        let entries = std::fs::read_dir(&sources).map_err(|error| {
            format!(
                "no record of an earlier run in {} ({error}); run without --again",
                folder.display()
            )
        })?;
        for entry in entries {
            let path = entry
                .map_err(|error| cannot("read", &sources, error))?
                .path();
            let text = std::fs::read(&path).map_err(|error| cannot("read", &path, error))?;
            kept.insert(file_name(&path), text);
        }
        if kept != read_sources(files)? {
            return Err(
                "the sync's sources changed since the last run, whose mutants were other ones; \
                 run without --again"
                    .to_owned(),
            );
        }
        // A record made before timeouts were kept apart has no file of them.
        let names = |file: &str| read_names(&folder.join(file), file == TIMEOUT);
        Ok(Self {
            client: names(CLIENT)?,
            contract: names(CONTRACT)?,
            unviable: names(UNVIABLE)?,
            timeout: names(TIMEOUT)?,
            folder,
        })
    }

    /// Adds what a step found: its caught and timed-out mutants as detected by it. Only the
    /// client step, which builds every mutant, says which are unviable: one that built there
    /// and not for the contract tests stays not detected.
    pub(super) fn add(&mut self, which: Step, outcome: &Outcome) -> Result<(), String> {
        let detected = outcome.caught.iter().chain(&outcome.timeout).cloned();
        self.timeout.extend(outcome.timeout.iter().cloned());
        match which {
            Step::Client => {
                self.client.extend(detected);
                self.unviable.extend(outcome.unviable.iter().cloned());
            }
            Step::Contract => self.contract.extend(detected),
        }
        self.save()
    }

    /// Every name the record holds.
    pub(super) fn names(&self) -> impl Iterator<Item = &String> {
        self.client
            .iter()
            .chain(&self.contract)
            .chain(&self.unviable)
    }

    pub(super) fn detected(&self, name: &str) -> bool {
        self.client.contains(name) || self.contract.contains(name)
    }

    /// Whether the mutant was detected by a timeout.
    pub(super) fn timed_out(&self, name: &str) -> bool {
        self.timeout.contains(name)
    }

    pub(super) fn unviable(&self, name: &str) -> bool {
        self.unviable.contains(name)
    }

    /// Detected, or unviable: nothing left to measure.
    pub(super) fn settled(&self, name: &str) -> bool {
        self.detected(name) || self.unviable(name)
    }

    /// How many of `all` the step detected (the contract step: those the client's did not).
    pub(super) fn by(&self, which: Step, all: &BTreeSet<String>) -> usize {
        let by_client = |name: &String| self.client.contains(name);
        match which {
            Step::Client => all.iter().filter(|name| by_client(name)).count(),
            Step::Contract => all
                .iter()
                .filter(|name| self.contract.contains(*name) && !by_client(name))
                .count(),
        }
    }

    /// Makes the run of cargo-mutants whose report is `report` skip the settled mutants: with
    /// `--iterate`, it skips the names of `mutants.out/previously_caught.txt` (and of that
    /// folder's `caught.txt` and `unviable.txt`, so the last report is dropped first).
    pub(super) fn skip_settled(&self, report: &Path) -> Result<(), String> {
        let folder = report.join("mutants.out");
        remove(&folder)?;
        remove(&report.join("mutants.out.old"))?;
        std::fs::create_dir_all(&folder).map_err(|error| cannot("create", &folder, error))?;
        let path = folder.join("previously_caught.txt");
        std::fs::write(&path, lines(self.names())).map_err(|error| cannot("write", &path, error))
    }

    fn save(&self) -> Result<(), String> {
        for (file, names) in [
            (CLIENT, &self.client),
            (CONTRACT, &self.contract),
            (UNVIABLE, &self.unviable),
            (TIMEOUT, &self.timeout),
        ] {
            let path = self.folder.join(file);
            std::fs::write(&path, lines(names.iter()))
                .map_err(|error| cannot("write", &path, error))?;
        }
        Ok(())
    }
}

/// The sources `files` (relative to the workspace root), by file name.
fn read_sources(files: &[String]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut sources = BTreeMap::new();
    for file in files {
        let path = crate::root().join(file);
        let text = std::fs::read(&path).map_err(|error| cannot("read", &path, error))?;
        sources.insert(file_name(&path), text);
    }
    Ok(sources)
}

/// The names in the file at `path`, one a line; none when there is no such file and it may be
/// `missing`.
pub(super) fn read_names<T: FromIterator<String>>(path: &Path, missing: bool) -> Result<T, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
        Err(error) if missing && error.kind() == ErrorKind::NotFound => {
            Ok(std::iter::empty().collect())
        }
        Err(error) => Err(cannot("read", path, error)),
    }
}

/// Removes the folder at `path`, if there is one.
fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(cannot("remove", path, error)),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn lines<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(|name| format!("{name}\n")).collect()
}

fn cannot(what: &str, path: &Path, error: std::io::Error) -> String {
    format!("cannot {what} {}: {error}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(caught: &[&str], timeout: &[&str], unviable: &[&str]) -> Outcome {
        let names = |list: &[&str]| list.iter().map(|name| (*name).to_owned()).collect();
        Outcome {
            caught: names(caught),
            timeout: names(timeout),
            unviable: names(unviable),
        }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    /// Sources of the workspace that a record can be made on.
    fn sources() -> Vec<String> {
        vec!["xtask/Cargo.toml".to_owned()]
    }

    #[test]
    fn a_record_counts_each_mutant_once_and_reads_back_as_it_was_saved() {
        let out = tempfile::tempdir().unwrap();
        let mut record = Record::start(out.path(), &sources()).unwrap();
        record
            .add(Step::Client, &outcome(&["a", "b"], &["c"], &["u"]))
            .unwrap();
        // The contract step catches b again, and says x does not build: neither counts.
        record
            .add(Step::Contract, &outcome(&["b", "d"], &[], &["x"]))
            .unwrap();
        let all = set(&["a", "b", "c", "d", "e", "u", "x"]);
        for record in [record, Record::read(out.path(), &sources()).unwrap()] {
            assert_eq!(record.by(Step::Client, &all), 3, "a, b and c");
            assert_eq!(record.by(Step::Contract, &all), 1, "d alone");
            assert!(record.timed_out("c") && !record.timed_out("a"));
            assert!(record.unviable("u") && !record.unviable("x"));
            let settled: BTreeSet<&str> = (all.iter())
                .map(String::as_str)
                .filter(|name| record.settled(name))
                .collect();
            assert_eq!(settled, ["a", "b", "c", "d", "u"].into());
        }
    }

    #[test]
    fn a_record_of_other_sources_or_none_is_refused() {
        let out = tempfile::tempdir().unwrap();
        let none = Record::read(out.path(), &sources()).err().unwrap();
        assert!(none.contains("no record of an earlier run"), "{none}");
        Record::start(out.path(), &sources()).unwrap();
        let other = vec![
            "xtask/Cargo.toml".to_owned(),
            "xtask/src/main.rs".to_owned(),
        ];
        let changed = Record::read(out.path(), &other).err().unwrap();
        assert!(changed.contains("sources changed"), "{changed}");
        // A record from before timeouts were kept reads as one without them.
        std::fs::remove_file(out.path().join("record").join(TIMEOUT)).unwrap();
        let read = Record::read(out.path(), &sources()).unwrap();
        assert!(read.names().next().is_none());
        std::fs::remove_file(out.path().join("record").join(CLIENT)).unwrap();
        let damaged = Record::read(out.path(), &sources()).err().unwrap();
        assert!(damaged.contains(CLIENT), "{damaged}");
    }

    #[test]
    fn a_step_skips_every_settled_mutant_and_no_report_of_before() {
        let out = tempfile::tempdir().unwrap();
        let mut record = Record::start(out.path(), &sources()).unwrap();
        record
            .add(Step::Client, &outcome(&["a"], &["c"], &["u"]))
            .unwrap();
        record
            .add(Step::Contract, &outcome(&["d"], &[], &[]))
            .unwrap();
        let report = out.path().join("contract");
        let old = report.join("mutants.out");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("caught.txt"), "z\n").unwrap();
        record.skip_settled(&report).unwrap();
        assert!(
            !old.join("caught.txt").exists(),
            "the last report is dropped"
        );
        let skipped: BTreeSet<String> =
            read_names(&old.join("previously_caught.txt"), false).unwrap();
        assert_eq!(skipped, set(&["a", "c", "d", "u"]));
    }
}
