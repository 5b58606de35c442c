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

/// What a server that partners' managed databases resemble needs: TLS with a certificate
/// of a test authority, and passwords (SCRAM).
#[derive(Debug, Clone)]
pub struct Secure {
    /// The server's certificate chain (PEM).
    pub certificate: String,
    /// Its private key (PEM).
    pub key: String,
    /// The password of the superuser `postgres`.
    pub password: String,
}

/// How many ports a server's start tries.
const START_ATTEMPTS: u32 = 3;

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl Server {
    /// Starts a server, or says why not and returns `None` (a panic under `REQUIRE`).
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// Starts a server that takes only TLS connections over TCP, with the password of
    /// `secure` checked by SCRAM (`hostssl ... scram-sha-256`; a plain connection is refused).
    pub fn start_secure(secure: &Secure) -> Option<Self> {
        Self::start_with(Some(secure))
    }

    fn start_with(secure: Option<&Secure>) -> Option<Self> {
        let server = Self::folder()?;
        let mut init = vec![
            "-D".to_owned(),
            server.data(),
            "-U".to_owned(),
            "postgres".to_owned(),
        ];
        init.extend(["-E", "UTF8"].map(str::to_owned));
        match secure {
            None => init.push("--auth=trust".to_owned()),
            Some(secure) => {
                let file = server.own_file("password", &secure.password);
                init.push("--auth-local=trust".to_owned());
                init.push("--auth-host=scram-sha-256".to_owned());
                init.push(format!("--pwfile={file}"));
            }
        }
        let init: Vec<&str> = init.iter().map(String::as_str).collect();
        server.run("initdb", &init);
        let mut server = server;
        // The port was free when it was chosen; another process may take it before the server
        // binds it (tests start servers at once), so a start that fails tries another port.
        for attempt in 1..=START_ATTEMPTS {
            match server.try_start(secure) {
                Ok(()) => return Some(server),
                Err(error) if attempt == START_ATTEMPTS => panic!("{error}"),
                Err(error) => eprintln!("{error}; trying another port"),
            }
            server.port = free_port();
        }
        None
    }

    /// Starts the server on its port.
    fn try_start(&self, secure: Option<&Secure>) -> Result<(), String> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.folder.path().display()
        );
        if let Some(secure) = secure {
            options.push_str(&self.secure(secure));
        }
        let log = self.folder.path().join("log").display().to_string();
        let data = self.data();
        let start = ["-D", &data, "-o", &options, "-l", &log, "-w", "start"];
        self.try_run("pg_ctl", &start)
    }

    /// The server's folder, owned by the user that runs it, and a free port; `None` (a panic
    /// under `REQUIRE`) without the binaries.
    fn folder() -> Option<Self> {
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
        Some(Self {
            folder,
            bin,
            user,
            port: free_port(),
        })
    }

    /// Writes `text` to the file `name` of the server's folder, readable by the server's user
    /// alone (as PostgreSQL wants its key); its path.
    fn own_file(&self, name: &str, text: &str) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.folder.path().join(name);
        std::fs::write(&path, text).expect("write a file of the server");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod a file of the server");
        if let Some(user) = &self.user {
            let uid = uid(user).unwrap_or_default();
            std::os::unix::fs::chown(&path, Some(uid), None).expect("chown a file of the server");
        }
        path.display().to_string()
    }

    /// The options of TLS, with `pg_hba.conf` replaced: TCP only over TLS, with a password.
    fn secure(&self, secure: &Secure) -> String {
        let certificate = self.own_file("server.crt", &secure.certificate);
        let key = self.own_file("server.key", &secure.key);
        let hba = self.own_file(
            "pg_hba.conf",
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        );
        format!(
            " -c ssl=on -c ssl_cert_file={certificate} -c ssl_key_file={key} -c hba_file={hba} \
             -c password_encryption=scram-sha-256"
        )
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
        if let Err(error) = self.try_run(program, args) {
            panic!("{error}");
        }
    }

    /// Runs `program` of the server's binaries with `args`; why it failed, if it did.
    fn try_run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let (mut command, program) = self.command(program);
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "{} {args:?} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
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
