//! How a mirror is named: a SQLite file, or a PostgreSQL database by its `postgres://` address
//! or a libpq connection string. The command line, [`crate::Db`] and the PostgreSQL settings
//! read names alike.

/// Whether `db` names a PostgreSQL database rather than a file: a `postgres://` or
/// `postgresql://` URL, or a connection string of `key=value` words whose first key is one of
/// libpq's (`host=db.internal dbname=referrals user=crm`).
pub fn is_server(db: &str) -> bool {
    is_url(db) || is_key_value(db)
}

/// Whether `db` is a `postgres://` or `postgresql://` URL.
pub(crate) fn is_url(db: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|scheme| {
        db.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    })
}

/// Whether `db` starts with a `key=` of libpq's connection strings.
fn is_key_value(db: &str) -> bool {
    const KEYS: [&str; 12] = [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "sslmode",
        "sslrootcert",
        "connect_timeout",
        "application_name",
        "options",
        "target_session_attrs",
    ];
    db.trim_start()
        .split_once('=')
        .is_some_and(|(key, _)| KEYS.contains(&key.trim()))
}
