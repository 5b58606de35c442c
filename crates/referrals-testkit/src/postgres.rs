//! A PostgreSQL server of a test's own: `initdb` and `pg_ctl` in a temporary folder, on a
//! free loopback port, stopped when dropped. PostgreSQL refuses to run as root: under root the
//! server runs as the user `postgres` (or `nobody`), through `runuser`.
//!
//! Where the binaries are missing, `Server::start` returns `None` after saying so, and the
//! test skips; with `REFERRALS_REQUIRE_POSTGRES=1` (CI sets it) it panics instead.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The variable that turns a skip into a failure.
pub const REQUIRE: &str = "REFERRALS_REQUIRE_POSTGRES";

/// A running server; stopped when dropped.
pub struct Server {
    folder: tempfile::TempDir,
    bin: PathBuf,
    user: Option<String>,
    port: u16,
}

impl Server {
    /// Starts a server, or says why not and returns `None` (a panic under `REQUIRE`).
    pub fn start() -> Option<Self> {
        let Some(bin) = binaries() else {
            let message = "PostgreSQL's initdb and pg_ctl are not installed (apt-get install \
                           postgresql): skipping this test";
            assert!(
                std::env::var_os(REQUIRE).is_none(),
                "{message}, and {REQUIRE} is set"
            );
            eprintln!("{message}");
            return None;
        };
        let user = is_root().then(|| {
            ["postgres", "nobody"]
                .into_iter()
                .find(|user| uid(user).is_some())
                .expect("a user other than root to run PostgreSQL")
                .to_owned()
        });
        let folder = tempfile::tempdir().expect("a temporary folder");
        if let Some(user) = &user {
            let uid = uid(user).unwrap_or_default();
            std::os::unix::fs::chown(folder.path(), Some(uid), None).expect("chown the folder");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let server = Self {
            folder,
            bin,
            user,
            port,
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            server.port,
            server.folder.path().display()
        );
        let log = server.folder.path().join("log").display().to_string();
        server.run(
            "pg_ctl",
            &[
                "-D",
                &server.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
        Some(server)
    }

    /// The URL of the database `postgres`, as the superuser `postgres`.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of `database` on this server.
    pub fn database_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Restarts the server (`pg_ctl restart -m fast`): every connection to it is closed.
    ///
    /// # Panics
    /// When `pg_ctl` fails: the test cannot go on.
    pub fn restart(&self) {
        let log = self.folder.path().join("log").display().to_string();
        let args = [
            "-D",
            &self.data(),
            "-m",
            "fast",
            "-l",
            &log,
            "-w",
            "restart",
        ];
        self.run("pg_ctl", &args);
    }

    fn data(&self) -> String {
        self.folder.path().join("data").display().to_string()
    }

    /// `program` of the server's binaries, as the user that runs the server.
    fn command(&self, program: &str) -> (Command, PathBuf) {
        let program = self.bin.join(program);
        let command = match &self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        (command, program)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let (mut command, program) = self.command(program);
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.data();
        let (mut command, _) = self.command("pg_ctl");
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The folder of `initdb` and `pg_ctl`: on the `PATH`, or Debian's `/usr/lib/postgresql/N/bin`.
fn binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            let mut folders: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path().join("bin"))
                .collect();
            folders.sort();
            folders.reverse();
            folders
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(debian)
        .find(|folder| has(folder, "initdb") && has(folder, "pg_ctl"))
}

fn has(folder: &Path, program: &str) -> bool {
    folder.join(program).is_file()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn uid(user: &str) -> Option<u32> {
    let output = Command::new("id").args(["-u", user]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}
