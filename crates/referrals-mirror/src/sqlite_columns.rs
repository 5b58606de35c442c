//! The columns of a SQLite mirror's `referrals` for the document's members
//! ([`crate::columns::sqlite_members`]): added when a mirror is opened, filled from each row's
//! `json`, and dropped when the document no longer lists their member. Which columns the
//! mirror made is recorded in `mirror_settings`, so a column of the partner's own is never
//! touched.

use rusqlite::{Connection, OptionalExtension};

use crate::columns::{Column, sqlite_members};

/// The key in `mirror_settings` of the names of the member columns made (a JSON array).
const MADE: &str = "member_columns";

/// The names that `sql` selects.
fn names(connection: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = connection.prepare(sql)?;
    let names = statement.query_map([], |row| row.get::<_, String>(0))?;
    names.collect()
}

/// The names of the columns of `referrals`, generated ones included.
fn present(connection: &Connection) -> rusqlite::Result<Vec<String>> {
    names(
        connection,
        "SELECT name FROM pragma_table_xinfo('referrals')",
    )
}

/// The names that `mirror_settings` records as made; none before version 5. A record that
/// cannot be read (not text, not a JSON array of strings) counts as empty: no column is
/// dropped for it, and it is written again.
fn made(connection: &Connection) -> rusqlite::Result<Vec<String>> {
    let value: Option<rusqlite::types::Value> = connection
        .query_row(
            "SELECT value FROM mirror_settings WHERE key = ?1",
            [MADE],
            |row| row.get(0),
        )
        .optional()?;
    Ok(match value {
        Some(rusqlite::types::Value::Text(text)) => serde_json::from_str(&text).unwrap_or_default(),
        _ => Vec::new(),
    })
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|other| other.eq_ignore_ascii_case(name))
}

/// The member columns that `referrals` lacks.
fn missing(present: &[String]) -> Vec<&'static Column> {
    sqlite_members()
        .iter()
        .filter(|column| !has(present, &column.name))
        .collect()
}

/// Whether `name` may be a column made for a member: named as [`crate::columns`] names them,
/// and neither a fixed column nor a member's of this document. A record is read from the file,
/// so this is what keeps a damaged one from dropping the mirror's own columns.
fn may_be_made(name: &str) -> bool {
    let snake = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    snake
        && !crate::schema::is_fixed(name)
        && !sqlite_members()
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name))
}

/// The columns made for members that the document no longer lists (and that are there, as
/// columns of their own).
fn obsolete(connection: &Connection, made: &[String]) -> rusqlite::Result<Vec<String>> {
    let plain = crate::schema::columns_of(connection, "referrals")?;
    Ok(made
        .iter()
        .filter(|name| may_be_made(name) && has(&plain, name))
        .cloned()
        .collect())
}

/// The member columns that another build changed: those it made that this build's document
/// does not list (this build would leave them unfilled), and those of this build's that it
/// dropped.
pub(crate) fn changed_by_another_build(connection: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut changed = obsolete(connection, &made(connection)?)?;
    let missing = missing(&present(connection)?);
    changed.extend(missing.iter().map(|column| column.name.clone()));
    Ok(changed)
}

/// Whether each sort key's column has its index, and no other member's column has one.
fn indexed(connection: &Connection) -> rusqlite::Result<bool> {
    let mut statement = connection.prepare(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'referrals'
         AND name = 'referrals_by_' || ?1",
    )?;
    for column in sqlite_members() {
        let found: i64 = statement.query_row([&column.name], |row| row.get(0))?;
        if (found > 0) != column.sortable {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the member columns are those of the document, indexed and recorded (read
/// without a lock).
pub(crate) fn aligned(connection: &Connection) -> rusqlite::Result<bool> {
    let made = made(connection)?;
    let recorded = made.len() == sqlite_members().len()
        && sqlite_members()
            .iter()
            .all(|column| has(&made, &column.name));
    Ok(recorded
        && missing(&present(connection)?).is_empty()
        && obsolete(connection, &made)?.is_empty()
        && indexed(connection)?)
}

/// Drops the column `name` that the mirror made, with its index. An index, a view or a
/// trigger of the partner's own on it keeps it: it is left as it is, theirs from then on.
fn drop_made(connection: &Connection, name: &str) -> rusqlite::Result<()> {
    let quoted = name.replace('"', "\"\"");
    connection.execute_batch("SAVEPOINT drop_made;")?;
    let dropped = connection.execute_batch(&format!(
        "DROP INDEX IF EXISTS \"referrals_by_{quoted}\";
         ALTER TABLE referrals DROP COLUMN \"{quoted}\";"
    ));
    match dropped {
        Ok(()) => connection.execute_batch("RELEASE drop_made;"),
        // What SQLite says of an object that reads the column ("error in index ... after drop
        // column"); any other failure (the disk, the lock) fails the transaction.
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.code == rusqlite::ErrorCode::Unknown =>
        {
            connection.execute_batch("ROLLBACK TO drop_made; RELEASE drop_made;")
        }
        Err(error) => Err(error),
    }
}

/// Makes the member columns those of the document, in the caller's transaction: the ones
/// made for members that the document no longer lists dropped ([`drop_made`]); the missing
/// ones added and filled from `json` in one pass over the rows; the sort keys indexed (and
/// only they); the names recorded.
pub(crate) fn align(connection: &Connection) -> rusqlite::Result<()> {
    for name in obsolete(connection, &made(connection)?)? {
        drop_made(connection, &name)?;
    }
    let missing = missing(&present(connection)?);
    let mut steps = String::new();
    for column in &missing {
        let definition = column.sqlite_definition();
        steps.push_str(&format!("ALTER TABLE referrals ADD COLUMN {definition};"));
    }
    if !missing.is_empty() {
        let sets: Vec<String> = missing
            .iter()
            .map(|column| format!("{} = {}", column.name, column.sqlite_read()))
            .collect();
        steps.push_str(&format!("UPDATE referrals SET {};", sets.join(", ")));
    }
    for column in sqlite_members() {
        steps.push_str(&if column.sortable {
            format!(
                "CREATE INDEX IF NOT EXISTS referrals_by_{0} ON referrals ({0});",
                column.name
            )
        } else {
            format!("DROP INDEX IF EXISTS referrals_by_{};", column.name)
        });
    }
    connection.execute_batch(&steps)?;
    let names: Vec<&str> = sqlite_members().iter().map(|c| c.name.as_str()).collect();
    connection.execute(
        "INSERT INTO mirror_settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = ?2",
        [MADE, &serde_json::to_string(&names).unwrap_or_default()],
    )?;
    Ok(())
}

/// Version 5 of the tables: the member columns that version 4 had SQLite compute from `json`
/// (parsing each referral's JSON at each write of an indexed one) dropped, with their
/// indexes, and made again as columns of their own ([`align`]). A generated column of the
/// partner's own (a name that the document does not give a member) stays. An index, a view
/// or a trigger of the partner's own on one of them makes the step fail: the mirror stays at
/// version 4, and is not opened.
pub(crate) fn to_columns_of_their_own(connection: &Connection) -> rusqlite::Result<()> {
    let computed = names(
        connection,
        "SELECT name FROM pragma_table_xinfo('referrals') WHERE hidden IN (2, 3)",
    )?;
    for name in computed {
        if !sqlite_members()
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&name))
        {
            continue;
        }
        connection.execute_batch(&format!(
            "DROP INDEX IF EXISTS referrals_by_{name};
             ALTER TABLE referrals DROP COLUMN {name};"
        ))?;
    }
    align(connection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mirror, Opened};
    use referrals_client::types::Referral;
    use std::path::Path;

    /// Checks that each member's column holds, in every row, what SQLite reads from the row's
    /// `json`, of the same type, and that some row has a value in it.
    fn assert_columns_hold_the_json(connection: &Connection) {
        for column in sqlite_members() {
            let (differing, filled): (i64, i64) = connection
                .query_row(
                    &format!(
                        "SELECT sum(NOT ({0} IS {1} AND typeof({0}) = typeof({1}))), count({0})
                         FROM referrals",
                        column.name,
                        column.sqlite_read()
                    ),
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .unwrap();
            assert_eq!(differing, 0, "{}", column.name);
            assert!(filled > 0, "{} has values", column.name);
        }
    }

    fn count(connection: &Connection, sql: &str) -> i64 {
        connection.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    /// How many of the sort keys' indexes the mirror has, and how many it should have.
    fn indexes(connection: &Connection) -> (i64, i64) {
        let sortable: Vec<String> = sqlite_members()
            .iter()
            .filter(|column| column.sortable)
            .map(|column| format!("'referrals_by_{}'", column.name))
            .collect();
        let sql = format!(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ({})",
            sortable.join(", ")
        );
        (
            count(connection, &sql),
            i64::try_from(sortable.len()).unwrap(),
        )
    }

    /// A mirror at `path` of a sandbox's 300 referrals (and its two examples), synced.
    async fn synced(path: &Path) -> Mirror {
        referrals_client::install_crypto_provider();
        let sandbox = referrals_testkit::start(referrals_sandbox::Config {
            seed_count: 300,
            ..referrals_testkit::config()
        })
        .await;
        let client = referrals_testkit::client(&sandbox.url());
        let mut mirror = Mirror::open(path).unwrap();
        let options = referrals_client::sync::SyncOptions::new();
        mirror.sync(&client, options).await.unwrap();
        assert_eq!(mirror.count().unwrap(), 302);
        mirror
    }

    #[tokio::test]
    async fn a_synced_mirror_holds_in_each_members_column_what_its_json_gives() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = synced(&dir.path().join("mirror.sqlite")).await;
        assert_columns_hold_the_json(mirror.connection());
        let (found, wanted) = indexes(mirror.connection());
        assert_eq!((found, found > 0), (wanted, true));
    }

    /// A synced mirror at `path` whose member columns are made as version 4 made them:
    /// computed from `json`, the sort keys indexed, nothing recorded.
    async fn mirror_of_version_4(path: &Path) {
        drop(synced(path).await);
        let connection = Connection::open(path).unwrap();
        for column in sqlite_members() {
            let name = &column.name;
            let sql_type = column.sqlite_definition();
            let sql_type = sql_type.trim_start_matches(name.as_str());
            let index = if column.sortable {
                format!("CREATE INDEX referrals_by_{name} ON referrals ({name});")
            } else {
                String::new()
            };
            connection
                .execute_batch(&format!(
                    "DROP INDEX IF EXISTS referrals_by_{name};
                     ALTER TABLE referrals DROP COLUMN {name};
                     ALTER TABLE referrals ADD COLUMN {name} {sql_type}
                         GENERATED ALWAYS AS ({}) VIRTUAL; {index}",
                    column.sqlite_read()
                ))
                .unwrap();
        }
        connection
            .execute_batch(&format!(
                "DELETE FROM mirror_settings WHERE key = '{MADE}'; PRAGMA user_version = 4;"
            ))
            .unwrap();
    }

    #[tokio::test]
    async fn a_mirror_of_version_4_gets_columns_of_its_own_with_the_same_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror.sqlite");
        mirror_of_version_4(&path).await;
        let computed = "SELECT count(*) FROM pragma_table_xinfo('referrals') WHERE hidden != 0";
        let old = Connection::open(&path).unwrap();
        let members = i64::try_from(sqlite_members().len()).unwrap();
        assert_eq!(count(&old, computed), members);
        // A computed column of the partner's own stays as it is.
        old.execute_batch(
            "ALTER TABLE referrals ADD COLUMN own_id TEXT
                 GENERATED ALWAYS AS (json ->> '$.id') VIRTUAL;",
        )
        .unwrap();
        drop(old);

        let mut mirror = Mirror::open(&path).unwrap();
        let upgraded = Opened::Upgraded {
            from: 4,
            log_started: false,
        };
        assert_eq!(mirror.opened(), upgraded);
        let connection = mirror.connection();
        assert_eq!(count(connection, computed), 1, "the partner's own");
        let own = "SELECT count(*) FROM referrals WHERE own_id = id";
        assert_eq!(count(connection, own), 302);
        assert_columns_hold_the_json(connection);
        let (found, wanted) = indexes(connection);
        assert_eq!((found, found > 0), (wanted, true));
        assert!(aligned(connection).unwrap());

        // Later versions, by a sync's batch and one at a time, are written to the columns,
        // one of them with no members at all but its id and instant.
        let mut later: Vec<Referral> = mirror.referrals().unwrap().into_iter().take(2).collect();
        later[0].updated_date_time = Some("2099-06-01T00:00:00Z".parse().unwrap());
        later[1] = Referral {
            id: later[1].id.clone(),
            updated_date_time: Some("2099-06-02T00:00:00Z".parse().unwrap()),
            ..Referral::default()
        };
        let state = mirror.state().unwrap().unwrap();
        mirror.write(&later[..1], &state).unwrap();
        mirror.apply(&later[1]).unwrap();
        assert_columns_hold_the_json(mirror.connection());
        let updated = "SELECT count(*) FROM referrals WHERE updated_date_time LIKE '2099-06-0%'";
        assert_eq!(count(mirror.connection(), updated), 2);
    }

    #[test]
    fn a_column_made_for_a_member_the_document_no_longer_lists_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror.sqlite");
        drop(Mirror::open(&path).unwrap());
        let connection = Connection::open(&path).unwrap();
        let mut made = made(&connection).unwrap();
        assert_eq!(made.len(), sqlite_members().len());
        // A member that an earlier document listed, and a column of the partner's own.
        made.push("gone_member".to_owned());
        set_record(&connection, &serde_json::to_string(&made).unwrap());
        connection
            .execute_batch(
                "ALTER TABLE referrals ADD COLUMN gone_member TEXT;
                 CREATE INDEX referrals_by_gone_member ON referrals (gone_member);
                 ALTER TABLE referrals ADD COLUMN notes TEXT;",
            )
            .unwrap();
        assert!(!aligned(&connection).unwrap());
        drop(connection);

        let mirror = Mirror::open(&path).unwrap();
        let present = present(mirror.connection()).unwrap();
        assert!(!has(&present, "gone_member"));
        assert!(has(&present, "notes"), "the partner's own stays");
        assert!(aligned(mirror.connection()).unwrap());
    }

    fn version_at(second: u32) -> Referral {
        let json = format!(r#"{{"id":"a","updatedDateTime":"2026-01-01T00:00:{second:02}Z"}}"#);
        serde_json::from_str(&json).unwrap()
    }

    fn refused_for(error: &crate::Error) -> Vec<String> {
        match error {
            crate::Error::OtherBuild { columns, .. } => columns.clone(),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_build_of_another_document_changing_the_columns_stops_this_ones_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror.sqlite");
        let mut mirror = Mirror::open(&path).unwrap();
        mirror.apply(&version_at(1)).unwrap();
        // A column of the partner's own changes the schema, and nothing else.
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("ALTER TABLE referrals ADD COLUMN notes TEXT;")
            .unwrap();
        mirror.apply(&version_at(2)).unwrap();

        // A build of a document with one more member makes its column, as `align` does.
        let ours = made(&other).unwrap();
        let mut more = ours.clone();
        more.push("new_member".to_owned());
        other
            .execute_batch("ALTER TABLE referrals ADD COLUMN new_member TEXT;")
            .unwrap();
        set_record(&other, &serde_json::to_string(&more).unwrap());
        let error = mirror.apply(&version_at(3)).unwrap_err();
        assert_eq!(refused_for(&error), ["new_member"]);
        let state = referrals_client::sync::SyncState::from_json(
            r#"{"version":1,"filter":null,"watermark":null,"delivered":{},"complete":false,"bound":null}"#,
        )
        .unwrap();
        let error = mirror.write(&[version_at(3)], &state).unwrap_err();
        assert_eq!(refused_for(&error), ["new_member"]);

        // A build of a document with one member fewer drops this build's column.
        let member = sqlite_members()[0].name.clone();
        other
            .execute_batch(&format!(
                "ALTER TABLE referrals DROP COLUMN new_member;
                 DROP INDEX IF EXISTS referrals_by_{member};
                 ALTER TABLE referrals DROP COLUMN {member};"
            ))
            .unwrap();
        let fewer: Vec<&String> = ours.iter().filter(|name| **name != member).collect();
        set_record(&other, &serde_json::to_string(&fewer).unwrap());
        let error = mirror.apply(&version_at(3)).unwrap_err();
        assert_eq!(refused_for(&error), std::slice::from_ref(&member));
        assert_eq!(
            mirror.get("a").unwrap().unwrap(),
            version_at(2),
            "nothing written"
        );

        // Opened again, this build makes the columns its own and writes.
        drop(mirror);
        let mut mirror = Mirror::open(&path).unwrap();
        mirror.apply(&version_at(3)).unwrap();
        let present = present(mirror.connection()).unwrap();
        assert!(has(&present, &member) && !has(&present, "new_member"));
        assert!(aligned(mirror.connection()).unwrap());
    }

    fn set_record(connection: &Connection, record: &dyn rusqlite::ToSql) {
        connection
            .execute(
                "UPDATE mirror_settings SET value = ?1 WHERE key = ?2",
                rusqlite::params![record, MADE],
            )
            .unwrap();
    }

    #[test]
    fn a_damaged_record_drops_none_of_the_mirrors_own_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror.sqlite");
        drop(Mirror::open(&path).unwrap());
        let connection = Connection::open(&path).unwrap();
        let before = present(&connection).unwrap();
        let odd = "a\"b; DROP TABLE sync_state; --";
        connection
            .execute_batch(&format!(
                "ALTER TABLE referrals ADD COLUMN \"{}\" TEXT;",
                odd.replace('"', "\"\"")
            ))
            .unwrap();
        let mut record: Vec<String> = crate::schema::REFERRALS_FIXED
            .iter()
            .map(|name| (*name).to_owned())
            .collect();
        // A member's column in another case, the column itself, and a name carrying SQL.
        let member = &sqlite_members()[0].name;
        record.extend([member.to_uppercase(), member.clone(), odd.to_owned()]);
        set_record(&connection, &serde_json::to_string(&record).unwrap());
        drop(connection);
        let mirror = Mirror::open(&path).unwrap();
        let after = present(mirror.connection()).unwrap();
        assert!(before.iter().all(|name| has(&after, name)), "{after:?}");
        assert!(has(&after, odd), "not a name the mirror makes");
        assert!(aligned(mirror.connection()).unwrap());
        drop(mirror);

        // A record that is not text counts as none.
        let connection = Connection::open(&path).unwrap();
        set_record(&connection, &vec![0_u8, 159, 146, 150]);
        drop(connection);
        let mirror = Mirror::open(&path).unwrap();
        assert!(aligned(mirror.connection()).unwrap());
        assert!(has(&present(mirror.connection()).unwrap(), "json"));
    }

    #[test]
    fn a_column_with_an_index_of_the_partners_own_stays_and_lost_indexes_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror.sqlite");
        drop(Mirror::open(&path).unwrap());
        let connection = Connection::open(&path).unwrap();
        let mut record = made(&connection).unwrap();
        record.push("gone_member".to_owned());
        set_record(&connection, &serde_json::to_string(&record).unwrap());
        let sortable = sqlite_members().iter().find(|c| c.sortable).unwrap();
        connection
            .execute_batch(&format!(
                "ALTER TABLE referrals ADD COLUMN gone_member TEXT;
                 CREATE INDEX mine ON referrals (gone_member);
                 DROP INDEX referrals_by_{};",
                sortable.name
            ))
            .unwrap();
        assert!(!aligned(&connection).unwrap());
        drop(connection);

        let mirror = Mirror::open(&path).unwrap();
        assert!(has(&present(mirror.connection()).unwrap(), "gone_member"));
        assert!(!has(&made(mirror.connection()).unwrap(), "gone_member"));
        let (found, wanted) = indexes(mirror.connection());
        assert_eq!(found, wanted);
        assert!(aligned(mirror.connection()).unwrap());
    }
}
