//! A connection string read as PostgreSQL's tools read it: a `postgres://` URL or `key=value`
//! words; `sslmode` and `sslrootcert` taken out for [`super::tls`] (tokio-postgres knows
//! neither `verify-ca`, `verify-full` nor `sslrootcert`); without a password in it, the
//! password of `PGPASSWORD`, else of the password file (`PGPASSFILE`, or `~/.pgpass`), as libpq
//! finds them.

use std::path::{Path, PathBuf};

use super::tls::{Check, Roots};

/// What connecting needs.
pub(crate) struct Settings {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) check: Check,
    pub(crate) roots: Roots,
}

/// The parameters taken out of a connection string: `(sslmode, sslrootcert)`, and the string
/// without them.
fn take_tls(text: &str) -> (Option<String>, Option<String>, String) {
    let (mut mode, mut root) = (None, None);
    let mut keep = |key: &str, value: &str| match key {
        "sslmode" => {
            mode = Some(value.to_owned());
            false
        }
        "sslrootcert" => {
            root = Some(value.to_owned());
            false
        }
        _ => true,
    };
    let rest = if let Some((head, query)) = text.split_once('?').filter(|_| is_url(text)) {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                keep(key, &decode(value))
            })
            .collect();
        if kept.is_empty() {
            head.to_owned()
        } else {
            format!("{head}?{}", kept.join("&"))
        }
    } else if is_url(text) {
        text.to_owned()
    } else {
        let kept: Vec<&str> = text
            .split_whitespace()
            .filter(|word| {
                let (key, value) = word.split_once('=').unwrap_or((word, ""));
                keep(key.trim(), value.trim_matches('\''))
            })
            .collect();
        kept.join(" ")
    };
    (mode, root, rest)
}

fn is_url(text: &str) -> bool {
    crate::address::is_url(text)
}

/// A query value with its `%XX` decoded (a path in `sslrootcert` may hold them).
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads `text`; `password` is `PGPASSWORD`'s, `passfile` the password file's path.
pub(crate) fn read(
    text: &str,
    password: Option<String>,
    passfile: Option<PathBuf>,
) -> Result<Settings, String> {
    let (mode, root, rest) = take_tls(text);
    let mut config = rest
        .parse::<tokio_postgres::Config>()
        .map_err(|error| error.to_string())?;
    let (ssl, check) = match mode.as_deref().unwrap_or("prefer") {
        "disable" => (tokio_postgres::config::SslMode::Disable, Check::Nothing),
        "allow" | "prefer" => (tokio_postgres::config::SslMode::Prefer, Check::Nothing),
        // As libpq: `require` with a root file checks the chain, as `verify-ca`.
        "require" if root.as_deref().is_some_and(|root| !root.is_empty()) => {
            (tokio_postgres::config::SslMode::Require, Check::Chain)
        }
        "require" => (tokio_postgres::config::SslMode::Require, Check::Nothing),
        "verify-ca" => (tokio_postgres::config::SslMode::Require, Check::Chain),
        "verify-full" => (tokio_postgres::config::SslMode::Require, Check::Full),
        other => {
            return Err(format!(
                "sslmode={other} is none of disable, allow, prefer, require, verify-ca, \
                 verify-full"
            ));
        }
    };
    config.ssl_mode(ssl);
    // A server that does not answer, or a connection that died without a word (a failover),
    // is found within seconds rather than hours.
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    // Unless the address sets them (libpq's default idle time is two hours).
    if config.get_keepalives_idle() == std::time::Duration::from_secs(2 * 3600) {
        config.keepalives_idle(std::time::Duration::from_secs(30));
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(std::time::Duration::from_secs(10));
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(3);
    }
    let roots = match root.as_deref() {
        None | Some("") => Roots::None,
        Some("system") => Roots::System,
        Some(path) => Roots::File(PathBuf::from(path)),
    };
    if config.get_password().is_none() {
        let found = password
            .filter(|password| !password.is_empty())
            .or_else(|| passfile.and_then(|file| from_passfile(&file, &config)));
        if let Some(password) = found {
            config.password(password);
        }
    }
    Ok(Settings {
        config,
        check,
        roots,
    })
}

/// The password file of the environment: `PGPASSFILE`, or `~/.pgpass`.
pub(crate) fn passfile() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE") {
        Some(file) => Some(PathBuf::from(file)),
        None => std::env::var_os("HOME").map(|home| Path::new(&home).join(".pgpass")),
    }
}

/// The password of the first line of `file` that matches `config`'s host, port, database and
/// user (`*` matches any; `\:` and `\\` are a colon and a backslash). As libpq, a file that
/// others may read is ignored. Written here: no kept crate reads this format.
fn from_passfile(file: &Path, config: &tokio_postgres::Config) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(file).ok()?;
    if !metadata.is_file() || metadata.permissions().mode() & 0o077 != 0 {
        return None;
    }
    // Bounded: a password file is a few lines.
    let text = std::fs::read_to_string(file)
        .ok()
        .filter(|text| text.len() < 1 << 20)?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(_)) | None => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let database = config.get_dbname().unwrap_or(user);
    let wanted = [host.as_str(), port.as_str(), database, user];
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(fields)
        .find(|fields| {
            fields.len() == 5
                && wanted
                    .iter()
                    .zip(fields)
                    .all(|(wanted, field)| field == "*" || field == wanted)
        })
        .and_then(|mut fields| fields.pop())
}

/// The fields of a line of a password file.
fn fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(char) = chars.next() {
        match char {
            '\\' => fields
                .last_mut()
                .into_iter()
                .for_each(|field| field.extend(chars.next())),
            ':' => fields.push(String::new()),
            other => fields
                .last_mut()
                .into_iter()
                .for_each(|field| field.push(other)),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_both_forms() {
        let url = "postgres://crm@db:5432/referrals?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x";
        let (mode, root, rest) = take_tls(url);
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(rest, "postgres://crm@db:5432/referrals?application_name=x");
        let words = "host=db user=crm sslmode=require dbname=referrals";
        let (mode, root, rest) = take_tls(words);
        assert_eq!((mode.as_deref(), root), (Some("require"), None));
        assert_eq!(rest, "host=db user=crm dbname=referrals");
        let settings = read(words, None, None).unwrap();
        assert_eq!(settings.config.get_dbname(), Some("referrals"));
        assert_eq!(settings.check, Check::Nothing);
        assert!(read("postgres://db/x?sslmode=sometimes", None, None).is_err());
    }

    #[test]
    fn the_password_comes_from_the_url_then_pgpassword_then_the_password_file() {
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("pgpass");
        let lines = "# comment\nother:5432:*:crm:wrong\ndb:5432:*:crm:pa\\:ss\n*:*:*:*:any\n";
        crate::private::write(&file, lines).unwrap();
        let password = |url: &str, env: Option<&str>| {
            let settings = read(url, env.map(str::to_owned), Some(file.clone())).unwrap();
            settings.config.get_password().map(<[u8]>::to_vec)
        };
        assert_eq!(
            password("postgres://crm:url@db/r", Some("env")),
            Some(b"url".to_vec())
        );
        assert_eq!(
            password("postgres://crm@db/r", Some("env")),
            Some(b"env".to_vec())
        );
        assert_eq!(
            password("postgres://crm@db/r", None),
            Some(b"pa:ss".to_vec())
        );
        assert_eq!(
            password("host=elsewhere user=x", None),
            Some(b"any".to_vec())
        );
        // A file that others may read is ignored, as libpq ignores it.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(password("postgres://crm@db/r", None), None);
    }
}
