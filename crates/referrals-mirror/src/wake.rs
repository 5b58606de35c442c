//! Waking the consumers of a SQLite mirror when a write committed: at once for a write of this
//! process (a notification), within [`POLL`] for a write of another process (SQLite's
//! `data_version`, which changes when another connection commits). A PostgreSQL mirror wakes
//! its consumers with `LISTEN`/`NOTIFY` instead (`postgres::feed`).

use std::time::Duration;

use tokio::sync::Notify;

/// How often a waiting consumer asks SQLite whether another connection wrote.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// Every SQLite mirror of this process: a consumer woken for another file reads nothing new
/// and waits again.
static WRITTEN: Notify = Notify::const_new();

/// Tells this process's waiting consumers that a write committed.
pub(crate) fn written() {
    WRITTEN.notify_waiters();
}

/// Waits until a write of this process commits, or [`POLL`] passes.
pub(crate) async fn a_while() {
    tokio::select! {
        () = WRITTEN.notified() => {}
        () = tokio::time::sleep(POLL) => {}
    }
}
