//! The change log of a PostgreSQL mirror, as the writes append to it: any number of writers at
//! once, and still sequence numbers in the order of the commits.
//!
//! - A writer locks the ids it writes (transaction advisory locks, in the order of their
//!   hashes, so that two writers never wait for each other in a circle) before it reads a row's
//!   JSON and upserts it: the JSON it compares with is the one it replaces, even when another
//!   writer inserted the row a moment before.
//! - It appends its changes last, under the lock of `change_counter`'s one row, held until its
//!   commit: the numbers it takes follow every committed change, and no later commit can show
//!   a smaller number. `NOTIFY` in the same transaction wakes the consumers at the commit.

use std::time::Duration;

use crate::change::{self, ChangeKind};
use crate::feed::terms::{DEFAULT_RETENTION, MAX_RETENTION, prune_due};
use crate::{Applied, Error};

/// The channel of `NOTIFY` that a commit with changes sends on.
pub(crate) const CHANNEL: &str = "referrals_mirror_changes";

/// The advisory lock that one pruning holds at a time.
const PRUNE_LOCK: i64 = i64::from_be_bytes(*b"RFRLprun");

/// The setting that holds the retention, in seconds.
const RETENTION: &str = "change_retention_seconds";
/// The setting that holds the last sequence number pruned.
const PRUNED_THROUGH: &str = "pruned_through";

/// A change to append.
pub(crate) struct NewChange {
    id: String,
    kind: ChangeKind,
    e_tag: Option<String>,
    updated: Option<String>,
    members: String,
}

impl NewChange {
    /// The columns of `changes` as arrays of the append: ids, kinds, eTags, times, members.
    pub(crate) fn columns(changes: &[Self]) -> [Vec<Option<&str>>; 5] {
        let column = |get: fn(&Self) -> Option<&str>| changes.iter().map(get).collect();
        [
            column(|change| Some(&change.id)),
            column(|change| Some(change.kind.as_str())),
            column(|change| change.e_tag.as_deref()),
            column(|change| change.updated.as_deref()),
            column(|change| Some(&change.members)),
        ]
    }

    /// The change of writing `json` (the referral `id`, at `e_tag` and `updated`) over the
    /// row's `previous` JSON, or `None` when nothing was written.
    pub(crate) fn of(
        applied: Applied,
        referral: &referrals_client::types::Referral,
        previous: Option<&str>,
        json: &str,
        place: &str,
    ) -> Result<Option<Self>, Error> {
        let (Some(id), true) = (
            referral.id.as_ref(),
            matches!(applied, Applied::Inserted | Applied::Updated),
        ) else {
            return Ok(None);
        };
        let (kind, members) = match previous {
            Some(previous) if applied != Applied::Inserted => {
                let previous = canonical(previous);
                let members = change::members(&previous, json).map_err(|source| Error::Row {
                    path: place.into(),
                    id: id.clone(),
                    error: source,
                })?;
                (ChangeKind::Changed, members)
            }
            _ => (ChangeKind::New, "[]".to_owned()),
        };
        Ok(Some(Self {
            id: id.clone(),
            kind,
            e_tag: referral.e_tag.clone(),
            updated: referral
                .updated_date_time
                .as_ref()
                .map(referrals_client::instant_text),
            members,
        }))
    }
}

/// The JSON of a row as the generated types write it (`jsonb` writes it in its own form:
/// another order of members, spaces), so that its leaves compare with a new version's text; a
/// row that does not decode is compared as it is.
fn canonical(json: &str) -> String {
    serde_json::from_str::<referrals_client::types::Referral>(json)
        .and_then(|referral| serde_json::to_string(&referral))
        .unwrap_or_else(|_| json.to_owned())
}

/// A setting of the mirror (in `referrals_mirror`).
pub(crate) async fn setting(
    client: &impl tokio_postgres::GenericClient,
    key: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    let row = client
        .query_opt(super::schema::SETTING_SQL, &[&key])
        .await?;
    Ok(row.map(|row| row.get(0)))
}

/// Sets a setting of the mirror (in `referrals_mirror`).
pub(crate) async fn set(
    client: &impl tokio_postgres::GenericClient,
    key: &str,
    value: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO referrals_mirror (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = $2",
            &[&key, &value],
        )
        .await?;
    Ok(())
}

/// The last sequence number that pruning removed (0: none).
pub(crate) async fn pruned_through(
    client: &impl tokio_postgres::GenericClient,
) -> Result<i64, tokio_postgres::Error> {
    Ok(setting(client, PRUNED_THROUGH)
        .await?
        .and_then(|text| text.parse().ok())
        .unwrap_or(0))
}

/// The retention of the log.
pub(crate) async fn retention(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Duration, tokio_postgres::Error> {
    Ok(setting(client, RETENTION)
        .await?
        .and_then(|text| text.parse().ok())
        .map_or(DEFAULT_RETENTION, Duration::from_secs)
        .min(MAX_RETENTION))
}

/// Sets the retention of the log.
pub(crate) async fn set_retention(
    client: &impl tokio_postgres::GenericClient,
    retention: Duration,
) -> Result<(), tokio_postgres::Error> {
    let seconds = retention.min(MAX_RETENTION).as_secs();
    set(client, RETENTION, &seconds.to_string()).await
}

/// Removes the changes that every consumer acknowledged, and those older than the retention,
/// and records how far.
pub(crate) async fn prune(
    client: &mut tokio_postgres::Client,
) -> Result<(), tokio_postgres::Error> {
    let seconds = retention(&*client).await?.as_secs_f64();
    let transaction = client.transaction().await?;
    // One pruning at a time, so that `pruned_through` only grows. A consumer placed meanwhile
    // before the slowest one meets `pruned_through` when it reads.
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&PRUNE_LOCK])
        .await?;
    let slowest: Option<i64> = transaction
        .query_one(
            "SELECT min(position) FILTER (WHERE position >= 0) FROM consumers",
            &[],
        )
        .await?
        .get(0);
    let old: Option<i64> = transaction
        .query_one(
            "WITH gone AS (DELETE FROM changes
                 WHERE recorded < now() - make_interval(secs => $1) RETURNING seq)
             SELECT max(seq) FROM gone",
            &[&seconds],
        )
        .await?
        .get(0);
    if let Some(slowest) = slowest {
        transaction
            .execute("DELETE FROM changes WHERE seq <= $1", &[&slowest])
            .await?;
    }
    let last: i64 = transaction
        .query_one("SELECT last FROM change_counter WHERE one = 1", &[])
        .await?
        .get(0);
    let through = pruned_through(&transaction)
        .await?
        .max(old.unwrap_or(0))
        .max(slowest.unwrap_or(0).min(last));
    set(&transaction, PRUNED_THROUGH, &through.to_string()).await?;
    transaction.commit().await
}

/// Prunes the log unless this process did in the last minute. The write or acknowledgement
/// before it was committed: a failure here is told (`tracing`), not returned.
pub(crate) async fn prune_now_and_then(client: &mut tokio_postgres::Client, place: &str) {
    if !prune_due(place) {
        return;
    }
    if let Err(error) = prune(client).await {
        tracing::warn!("{}", Error::postgres(place, "prune the change log", error));
    }
}
