//! The PostgreSQL side of change capture: prerequisites, the publication, the
//! logical replication slot, and reading its changes through SQL
//! (`pg_logical_slot_peek_binary_changes`, `pg_replication_slot_advance`).
//!
//! Every name and position is bound as a parameter; the one statement with an
//! identifier in its text (`CREATE PUBLICATION`) quotes it.

use tokio_postgres::Row;

use sync_sql::ident::{quote, quote_qualified};

use super::lsn::Lsn;
use crate::error::{Error, Result};
use crate::source::client::Client;
use crate::spec::MappingSpec;

/// The advisory lock class a capture run holds on its slot's name, so that a second
/// `follow` or `sync` of the same slot stops with a clear error instead of waiting
/// (the SQL interface holds the slot only while a call decodes).
const LOCK_CLASS: i32 = 0x6473_796e; // "dsyn"

/// What PostgreSQL knows of a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SlotInfo {
    /// The slot's name.
    pub(crate) name: String,
    /// The position confirmed by the consumer: changes committed before it are not
    /// sent again.
    pub(crate) confirmed: Option<Lsn>,
    /// The oldest WAL the slot keeps.
    pub(crate) restart: Option<Lsn>,
    /// Bytes of WAL the slot holds back (current position minus restart position).
    pub(crate) retained_bytes: Option<i64>,
    /// `reserved`, `extended`, `unreserved` or `lost` (invalidated).
    pub(crate) wal_status: Option<String>,
    /// The backend using the slot right now, if any.
    pub(crate) active_pid: Option<i32>,
}

/// The error for a failed statement of mapping `spec`'s capture.
pub(crate) fn source_error(spec: &MappingSpec) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |source| classify(spec, source)
}

/// Turns a server error about a prerequisite into an error saying what to change.
fn classify(spec: &MappingSpec, source: tokio_postgres::Error) -> Error {
    let capture = |message: String| Error::Capture {
        mapping: spec.name.to_owned(),
        message,
    };
    let Some(db) = source.as_db_error() else {
        return Error::Source {
            mapping: spec.name.to_owned(),
            table: spec.source.display_name(),
            source,
        };
    };
    let message = db.message();
    let code = db.code().code();
    if message.contains("wal_level") {
        return capture(wal_level_message("(unknown)"));
    }
    if code == "53400" || message.contains("all replication slots are in use") {
        return capture(
            "all replication slots of the source are in use; raise `max_replication_slots` \
             in postgresql.conf and restart PostgreSQL, or drop an unused slot \
             (`SELECT pg_drop_replication_slot('name')`)"
                .to_owned(),
        );
    }
    if code == "55006" || message.contains("is active for PID") {
        return capture(format!(
            "the replication slot is busy ({message}): another `data-sync follow` or `sync` \
             of this target is running; stop it first"
        ));
    }
    if code == "42501" && message.contains("replication") {
        return capture(format!(
            "the source role may not use replication slots ({message}); run \
             `ALTER ROLE <role> REPLICATION` as a superuser"
        ));
    }

    if code == "55000" && message.contains("can no longer get changes") {
        return capture(format!(
            "the replication slot was invalidated ({message}); rerun with `data-sync sync --full`"
        ));
    }
    Error::Source {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        source,
    }
}

fn wal_level_message(current: &str) -> String {
    format!(
        "the source's `wal_level` is `{current}`, change capture needs `logical`: set \
         `wal_level = logical` in postgresql.conf (or `ALTER SYSTEM SET wal_level = logical`) \
         and restart PostgreSQL"
    )
}

/// Checks the settings change capture needs before anything is created.
///
/// # Errors
///
/// [`Error::Capture`] naming the setting to change.
pub(crate) fn check_prerequisites(client: &mut Client, spec: &MappingSpec) -> Result<()> {
    match prerequisite_problems(client, spec)?.into_iter().next() {
        Some(message) => Err(Error::Capture {
            mapping: spec.name.to_owned(),
            message,
        }),
        None => Ok(()),
    }
}

/// What the settings change capture needs lack: `wal_level`, then the role's
/// `REPLICATION`; each message says what to change.
pub(crate) fn prerequisite_problems(
    client: &mut Client,
    spec: &MappingSpec,
) -> Result<Vec<String>> {
    let row = client
        .query_one(
            "SELECT current_setting('wal_level'),
                    (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .map_err(source_error(spec))?;
    let mut problems = Vec::new();
    let wal_level: String = row.get(0);
    if wal_level != "logical" {
        problems.push(wal_level_message(&wal_level));
    }
    let replication: Option<bool> = row.get(1);
    if replication != Some(true) {
        problems.push(
            "the source role has neither `REPLICATION` nor superuser, which replication slots \
             need; run `ALTER ROLE <role> REPLICATION` as a superuser"
                .to_owned(),
        );
    }
    Ok(problems)
}

/// Whether the mapping's source table exists.
pub(crate) fn table_exists(client: &mut Client, spec: &MappingSpec) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&qualified_name(spec)],
        )
        .map_err(source_error(spec))?
        .get(0))
}

/// The source table's OID and its replica identity (`d`, `n`, `f` or `i`), and the
/// columns of that identity.
pub(crate) fn table_identity(
    client: &mut Client,
    spec: &MappingSpec,
) -> Result<(u32, String, Vec<String>)> {
    let row = client
        .query_one(
            "SELECT c.oid, c.relreplident::text,
                    coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum)
                              FROM pg_index i
                              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                              WHERE i.indrelid = c.oid
                                AND CASE c.relreplident WHEN 'd' THEN i.indisprimary
                                                        WHEN 'i' THEN i.indisreplident
                                                        ELSE false END), '{}')
             FROM pg_class c WHERE c.oid = $1::text::regclass",
            &[&qualified_name(spec)],
        )
        .map_err(source_error(spec))?;
    let oid: u32 = row.get(0);
    Ok((oid, row.get(1), row.get(2)))
}

/// Checks that a delete sends the mapping's key: the replica identity is `FULL`, or
/// its columns include every key column.
pub(crate) fn check_identity(spec: &MappingSpec, identity: &str, columns: &[String]) -> Result<()> {
    if identity == "f" {
        return Ok(());
    }
    let missing: Vec<&str> = spec
        .source
        .key
        .iter()
        .map(|&index| spec.source.columns[index].name)
        .filter(|key| !columns.iter().any(|column| column == key))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let described = match identity {
        "n" => "NOTHING".to_owned(),
        "d" if columns.is_empty() => "DEFAULT, without a primary key".to_owned(),
        _ => format!("on ({})", columns.join(", ")),
    };
    Err(Error::Capture {
        mapping: spec.name.to_owned(),
        message: format!(
            "the replica identity of `{}` is {described}, so a DELETE does not send the key \
             column{} `{}`; run `ALTER TABLE {} REPLICA IDENTITY FULL` (or make the key the \
             primary key)",
            spec.source.display_name(),
            if missing.len() == 1 { "" } else { "s" },
            missing.join("`, `"),
            qualified_name(spec),
        ),
    })
}

/// The table as SQL names it: each part double-quoted.
pub(crate) fn qualified_name(spec: &MappingSpec) -> String {
    quote_qualified(spec.source.schema, spec.source.table)
}

/// Creates the publication `name` for the source table, unless it exists.
pub(crate) fn create_publication(
    client: &mut Client,
    specs: &[&MappingSpec],
    name: &str,
) -> Result<()> {
    let spec = specs[0];
    if !publication_exists(client, spec, name)? {
        let tables: Vec<String> = specs.iter().map(|spec| qualified_name(spec)).collect();
        // `name` is ours (`data_sync_..`, letters, digits and `_`), quoted anyway.
        client
            .batch_execute(&format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                quote(name),
                tables.join(", ")
            ))
            .map_err(|error| match error.as_db_error() {
                // Not the owner of the table, or no CREATE on the database.
                Some(db) if db.code().code() == "42501" => Error::Capture {
                    mapping: spec.name.to_owned(),
                    message: cannot_create_publication(spec, db.message()),
                },
                _ => source_error(spec)(error),
            })?;
    }
    Ok(())
}

/// Whether the publication `name` exists.
pub(crate) fn publication_exists(
    client: &mut Client,
    spec: &MappingSpec,
    name: &str,
) -> Result<bool> {
    Ok(client
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&name])
        .map_err(source_error(spec))?
        .is_some())
}

/// Why the source role could not create the publication for the table, as
/// `CREATE PUBLICATION` would refuse it (no CREATE on the database, not the table's
/// owner); `None` when it may.
pub(crate) fn publication_rights(
    client: &mut Client,
    spec: &MappingSpec,
) -> Result<Option<String>> {
    let row = client
        .query_one(
            "SELECT has_database_privilege(current_database(), 'CREATE'),
                    pg_has_role(c.relowner, 'USAGE'), current_database()::text
             FROM pg_class c WHERE c.oid = $1::text::regclass",
            &[&qualified_name(spec)],
        )
        .map_err(source_error(spec))?;
    let why = if !row.get::<_, bool>(0) {
        format!("permission denied for database {}", row.get::<_, String>(2))
    } else if !row.get::<_, bool>(1) {
        format!("must be owner of table {}", spec.source.table)
    } else {
        return Ok(None);
    };
    Ok(Some(cannot_create_publication(spec, &why)))
}

/// The source role cannot create the publication, because of `why`.
fn cannot_create_publication(spec: &MappingSpec, why: &str) -> String {
    format!(
        "the source role cannot create the publication ({why}); have the table's owner run \
         `CREATE PUBLICATION <name> FOR TABLE {}` and name it with `publication: <name>` in \
         the mapping",
        spec.source.display_name()
    )
}

/// Checks that the target's slot `name` (as [`slot_info`] found it) still exists
/// and was not invalidated.
///
/// # Errors
///
/// [`Error::Capture`] saying to copy again.
pub(crate) fn check_slot(spec: &MappingSpec, name: &str, info: Option<&SlotInfo>) -> Result<()> {
    let message = match info {
        None => format!(
            "the replication slot `{name}` no longer exists on the source; rerun with \
             `data-sync sync --full` to copy again"
        ),
        Some(info) if info.wal_status.as_deref() == Some("lost") => format!(
            "the replication slot `{name}` was invalidated: the source removed WAL it still \
             needed (`max_slot_wal_keep_size`); rerun with `data-sync sync --full` to copy again"
        ),
        Some(_) => return Ok(()),
    };
    Err(Error::Capture {
        mapping: spec.name.to_owned(),
        message,
    })
}

/// Checks that the operator's publication `name` exists and publishes the table.
pub(crate) fn check_publication(client: &mut Client, spec: &MappingSpec, name: &str) -> Result<()> {
    let found = client
        .query_opt(
            "SELECT 1 FROM pg_publication_tables
             WHERE pubname = $1
               AND format('%I.%I', schemaname, tablename)::regclass = $2::text::regclass",
            &[&name, &qualified_name(spec)],
        )
        .map_err(source_error(spec))?;
    if found.is_none() {
        return Err(Error::Capture {
            mapping: spec.name.to_owned(),
            message: format!(
                "publication `{name}` does not exist or does not publish `{}`; run \
                 `CREATE PUBLICATION {} FOR TABLE {}` (or `ALTER PUBLICATION .. ADD TABLE`)",
                spec.source.display_name(),
                quote(name),
                qualified_name(spec),
            ),
        });
    }
    Ok(())
}

/// Drops the publication `name` if it exists.
pub(crate) fn drop_publication(client: &mut Client, spec: &MappingSpec, name: &str) -> Result<()> {
    client
        .batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", quote(name)))
        .map_err(source_error(spec))
}

/// Creates the logical replication slot `name` with `pgoutput`; its position.
pub(crate) fn create_slot(client: &mut Client, spec: &MappingSpec, name: &str) -> Result<Lsn> {
    let row = client
        .query_one(
            "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&name],
        )
        .map_err(source_error(spec))?;
    parse_lsn(spec, row.get(0))
}

/// Drops the slot `name` if it exists; whether it did.
pub(crate) fn drop_slot(client: &mut Client, spec: &MappingSpec, name: &str) -> Result<bool> {
    let dropped = client
        .query_opt(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
             WHERE slot_name = $1",
            &[&name],
        )
        .map_err(source_error(spec))?;
    Ok(dropped.is_some())
}

/// The slot `name`, if it exists.
pub(crate) fn slot_info(
    client: &mut Client,
    spec: &MappingSpec,
    name: &str,
) -> Result<Option<SlotInfo>> {
    let row = client
        .query_opt(
            "SELECT slot_name::text, confirmed_flush_lsn::text, restart_lsn::text,
                    pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,
                    wal_status, active_pid
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .map_err(source_error(spec))?;
    row.map(|row| {
        let lsn = |index: usize| -> Result<Option<Lsn>> {
            row.get::<_, Option<String>>(index)
                .map(|text| parse_lsn(spec, text))
                .transpose()
        };
        Ok(SlotInfo {
            name: row.get(0),
            confirmed: lsn(1)?,
            restart: lsn(2)?,
            retained_bytes: row.get(3),
            wal_status: row.get(4),
            active_pid: row.get(5),
        })
    })
    .transpose()
}

/// The source's current WAL insert position: every transaction committed so far
/// has its commit record before it.
pub(crate) fn current_position(client: &mut Client, spec: &MappingSpec) -> Result<Lsn> {
    let row = client
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .map_err(source_error(spec))?;
    Ok(parse_lsn(spec, row.get(0))?.as_record_end())
}

/// The source's WAL insert position (the end of the last record written, see
/// [`Lsn::as_record_end`]) and the
/// position flushed to disk (the end of what logical decoding can read now), in one
/// query.
pub(crate) fn wal_positions(client: &mut Client, spec: &MappingSpec) -> Result<(Lsn, Lsn)> {
    let row = client
        .query_one(
            "SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text",
            &[],
        )
        .map_err(source_error(spec))?;
    Ok((
        parse_lsn(spec, row.get(0))?.as_record_end(),
        parse_lsn(spec, row.get(1))?,
    ))
}

/// Waits until the server has flushed its WAL up to `position`: logical decoding
/// reads only flushed WAL, and with `synchronous_commit = off` a transaction is
/// visible before its commit record is flushed (the WAL writer does it within
/// `wal_writer_delay`).
///
/// # Errors
///
/// [`Error::Capture`] when the flush does not get there within a minute.
pub(crate) fn wait_flushed(client: &mut Client, spec: &MappingSpec, position: Lsn) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let position_text = position.to_string();
    loop {
        let flushed: bool = client
            .query_one(
                "SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn",
                &[&position_text],
            )
            .map_err(source_error(spec))?
            .get(0);
        if flushed {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::Capture {
                mapping: spec.name.to_owned(),
                message: format!(
                    "the source did not flush its WAL up to {position} within a minute"
                ),
            });
        }
        crate::sync::signal::sleep(spec, std::time::Duration::from_millis(10))?;
    }
}

/// Takes the session's advisory lock on slot `name`.
///
/// # Errors
///
/// [`Error::Capture`] when another session holds it.
pub(crate) fn lock_slot(client: &mut Client, spec: &MappingSpec, name: &str) -> Result<()> {
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext($2)),
                    (SELECT min(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid
                       AND objid = hashtext($2)::oid AND granted AND pid <> pg_backend_pid())",
            &[&LOCK_CLASS, &name],
        )
        .map_err(source_error(spec))?;
    if !row.get::<_, bool>(0) {
        let pid: Option<i32> = row.get(1);
        return Err(Error::Capture {
            mapping: spec.name.to_owned(),
            message: format!(
                "the replication slot `{name}` is busy: another `data-sync follow` or `sync` of \
                 this target is running (server process {}); stop it first",
                pid.map_or_else(|| "unknown".to_owned(), |pid| pid.to_string())
            ),
        });
    }
    Ok(())
}

/// Confirms the slot up to `position`: changes committed before it are not sent
/// again, and the WAL before them may be recycled. Call after the SQLite commit.
pub(crate) fn advance(
    client: &mut Client,
    spec: &MappingSpec,
    name: &str,
    position: Lsn,
) -> Result<()> {
    client
        .query_one(
            "SELECT 1 FROM pg_replication_slot_advance($1, $2::text::pg_lsn)",
            &[&name, &position.to_string()],
        )
        .map_err(source_error(spec))?;
    Ok(())
}

/// How long [`log_running_transactions`] lets its slot creation wait for the
/// transactions running to end: the record it is for is written before that wait.
const RUNNING_TRANSACTIONS_TIMEOUT_MS: u32 = 100;

/// Has the server write a record of the transactions running now (`running_xacts`).
///
/// Logical decoding moves a slot's restart point (where every peek and every
/// advance starts decoding again) only to such a record that a decoding call
/// passed, and the server writes one by itself only every 15 s and at checkpoints:
/// after a burst of changes, every call would decode the whole burst again until
/// then. Creating a logical slot writes one first thing, with the `REPLICATION`
/// right a capture run has anyway, on every PostgreSQL version; so this creates a
/// temporary slot beside `slot` and drops it. The creation then waits for the
/// transactions running to end (to build its snapshot): a statement timeout cuts
/// that wait short, the record being written already.
///
/// # Errors
///
/// The server's error other than that timeout (no free slot, say): the caller
/// carries on without it.
pub(crate) fn log_running_transactions(
    client: &mut Client,
    spec: &MappingSpec,
    slot: &str,
) -> Result<()> {
    // Slot names are ASCII, at most 63 bytes.
    let mut temporary = format!("{slot}_restart");
    temporary.truncate(63);
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL statement_timeout = {RUNNING_TRANSACTIONS_TIMEOUT_MS}"
        ))
        .map_err(source_error(spec))?;
    let created = client.query_one(
        "SELECT 1 FROM pg_create_logical_replication_slot($1, 'pgoutput', true)",
        &[&temporary],
    );
    let ended = client.batch_execute(if created.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    });
    match created {
        Ok(_) => {
            ended.map_err(source_error(spec))?;
            client
                .query_one("SELECT 1 FROM pg_drop_replication_slot($1)", &[&temporary])
                .map_err(source_error(spec))?;
            Ok(())
        }
        // The record is written; the slot was never made.
        Err(error)
            if error
                .as_db_error()
                .is_some_and(|db| db.code().code() == "57014") =>
        {
            ended.map_err(source_error(spec))
        }
        Err(error) => {
            ended.map_err(source_error(spec))?;
            Err(source_error(spec)(error))
        }
    }
}

/// Streams the slot's changes committed before `upto`, about `changes` messages
/// (whole transactions), calling `each` with every message's bytes in order.
pub(crate) fn peek(
    client: &mut Client,
    spec: &MappingSpec,
    slot: &str,
    publication: &str,
    upto: Lsn,
    changes: i32,
    each: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    // `publication_names` is a list of identifiers: quoted, the name is taken as is.
    let publications = quote(publication);
    let upto = upto.to_string();
    let parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
        [&slot, &upto, &changes, &publications];
    let started = std::time::Instant::now();
    let mut rows = client
        .query_raw(
            "SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, $3,
                 'proto_version', '1', 'publication_names', $4, 'binary', 'true')",
            parameters,
        )
        .map_err(source_error(spec))?;
    // The server decodes the whole call before it sends the first row.
    let mut decoded = None;
    let mut count = 0;
    while let Some(row) = rows.next().map_err(source_error(spec))? {
        let row: Row = row;
        decoded.get_or_insert_with(|| started.elapsed());
        count += 1;
        each(row.get::<_, &[u8]>(0))?;
    }
    tracing::debug!(
        mapping = spec.name,
        messages = count,
        decode_ms = decoded.unwrap_or_else(|| started.elapsed()).as_secs_f64() * 1000.0,
        total_ms = started.elapsed().as_secs_f64() * 1000.0,
        "slot read"
    );
    Ok(count)
}

/// What [`fetch_row`] calls with the fields of the row it read (`None`: no row).
pub(crate) type OnRow<'a> = dyn FnMut(Option<&[Option<&[u8]>]>) -> Result<()> + 'a;

/// Reads the row of a key (binary values, key order) and calls the [`OnRow`] with it.
pub(crate) type Fetch<'a> = dyn FnMut(&[Vec<u8>], &mut OnRow<'_>) -> Result<()> + 'a;

/// Reads the source's current row of `key` (binary values, key order), as the
/// mapping's SELECT reads it (its filter with the run's `filter` settings, and
/// row-level security off, as every snapshot reads), and calls `each` with its
/// fields (`None` when there is no such row, or the filter leaves it out).
pub(crate) fn fetch_row(
    client: &mut Client,
    spec: &MappingSpec,
    filter: &[(&str, String)],
    key_types: &[tokio_postgres::types::Type],
    key: &[Vec<u8>],
    each: &mut OnRow<'_>,
) -> Result<()> {
    let columns: Vec<String> = spec
        .source
        .key
        .iter()
        .map(|&index| quote(spec.source.columns[index].name))
        .collect();
    let parameters: Vec<String> = (1..=key.len()).map(|index| format!("${index}")).collect();
    // The SELECT of a filtered mapping ends in its parenthesized condition.
    let sql = format!(
        "{} {} ({}) = ({})",
        spec.source.select,
        if spec.source.filter.is_some() {
            "AND"
        } else {
            "WHERE"
        },
        columns.join(", "),
        parameters.join(", ")
    );
    let values: Vec<crate::sync::watermark::RawValue> = key
        .iter()
        .zip(key_types)
        .map(|(bytes, ty)| crate::sync::watermark::RawValue {
            oid: ty.oid(),
            bytes: bytes.clone(),
        })
        .collect();
    let parameters: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
        .iter()
        .map(|value| value as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let mut snapshot = client.snapshot(filter).map_err(source_error(spec))?;
    let row = snapshot
        .query_opt(sql.as_str(), &parameters)
        .map_err(source_error(spec))?;
    snapshot.commit().map_err(source_error(spec))?;
    match row {
        None => each(None),
        Some(row) => {
            let fields = (0..row.len())
                .map(|index| {
                    row.try_get::<_, crate::sync::watermark::RawField<'_>>(index)
                        .map(|field| field.0)
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(source_error(spec))?;
            each(Some(&fields))
        }
    }
}

fn parse_lsn(spec: &MappingSpec, text: String) -> Result<Lsn> {
    text.parse()
        .map_err(|error: super::lsn::ParseLsnError| Error::Capture {
            mapping: spec.name.to_owned(),
            message: error.to_string(),
        })
}
