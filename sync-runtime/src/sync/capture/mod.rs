//! Change capture from PostgreSQL's write-ahead log (`capture: log`): logical
//! decoding with the built-in `pgoutput` plugin, read through the SQL interface of a
//! replication slot over the ordinary connection.
//!
//! The first run creates the slot, then copies the table from a snapshot taken after
//! it, and in the same SQLite transaction replays the slot's changes up to the WAL
//! position `P` read inside that snapshot; it stores `P`. Later runs apply the
//! changes committed between the stored position and the WAL position at their
//! start, whole source transactions per SQLite transaction, each storing the
//! position it reaches; the slot is advanced only after the SQLite commit. Why that
//! is exact is argued in `docs/capture.md`.

pub(crate) mod apply;
pub(crate) mod fanout;
pub(crate) mod filter;
pub(crate) mod guards;
pub(crate) mod lsn;
pub(crate) mod member;
pub(crate) mod pgoutput;
pub(crate) mod position;
pub(crate) mod prerequisites;
pub(crate) mod slot;

#[cfg(test)]
mod tests;

use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio_postgres::types::Type;

use self::lsn::Lsn;
use self::member::{Apply, Member};
use self::pgoutput::Message;
use self::position::CaptureState;
use crate::Mapping;
use crate::error::{Error, Result};
use crate::options::SyncOptions;
use crate::progress::Progress;
use crate::source::CopyReader;
use crate::source::client::{Client, Snapshot};
use crate::source::config::SourceConfig;
use crate::spec::MappingSpec;
use crate::summary::{Summary, TargetSummary};
use crate::target::state::{self, MappingState};
use crate::target::target_error;

/// Messages per `pg_logical_slot_peek_binary_changes` call of a `sync` drain (whole
/// transactions: the server stops at the first commit past it). Each call decodes
/// the WAL again from the slot's restart point, which moves only now and then, so a
/// drain makes few large calls: the server keeps a call's result in a tuplestore
/// (on disk past `work_mem`) and the client streams it, applying as it goes.
const PEEK_CHANGES: i32 = 5_000_000;

/// Messages per call of `follow`. The server hands a call's rows over only once it
/// has decoded them all, so a `follow` that is behind applies in steps of about this
/// many rather than waiting for the whole backlog.
const FOLLOW_PEEK_CHANGES: i32 = 100_000;

/// How long `follow` waits before asking the server again when it has flushed no new
/// WAL: the question is one cheap query (`pg_current_wal_flush_lsn()`).
const FOLLOW_IDLE: Duration = Duration::from_millis(10);

/// The longest `follow` waits after a decoding call that brought nothing of the
/// mapping's table (WAL of other tables): each call decodes from the slot's restart
/// point, so such calls back off, doubling from [`FOLLOW_IDLE`] up to this.
const FOLLOW_BACKOFF: Duration = Duration::from_millis(100);

/// How often, at most, `follow` records its run in `_data_sync_state` (rows applied,
/// when) while changes keep coming: the position itself is stored with every
/// commit.
const RECORD_EVERY: Duration = Duration::from_secs(1);

/// How often, at most, `follow` confirms its committed position to the slot. A
/// confirm (`pg_replication_slot_advance`) decodes the WAL again from the slot's
/// restart point, as a peek does, so confirming after every step would double the
/// server's work per step; the stored position (not the slot's) is what a run
/// skips changes by, so a later confirm only means the next peek sends again
/// (and the run skips) what came since.
const CONFIRM_EVERY: Duration = Duration::from_secs(1);

/// WAL between a slot's restart point and its confirmed position past which a run
/// has the server write a record of the transactions running, so that the restart
/// point moves up (see [`slot::log_running_transactions`]): every peek and advance
/// decodes this again.
const RESTART_LAG: u64 = 16 * 1024 * 1024;

/// How often, at most, `follow` looks at its slot's restart point.
const RESTART_CHECK_EVERY: Duration = Duration::from_secs(2);

/// A SQLite transaction begun with `BEGIN IMMEDIATE`, rolled back unless committed.
struct Open<'c> {
    connection: &'c Connection,
    open: bool,
}

impl<'c> Open<'c> {
    fn begin(connection: &'c Connection) -> rusqlite::Result<Self> {
        connection.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Open {
            connection,
            open: true,
        })
    }

    /// [`Open::begin`], with foreign-key checks deferred to the commit when `defer`
    /// (the targets of a group of linked mappings).
    fn begin_deferred(connection: &'c Connection, defer: bool) -> rusqlite::Result<Self> {
        let open = Self::begin(connection)?;
        if defer {
            connection.execute_batch("PRAGMA defer_foreign_keys = ON")?;
        }
        Ok(open)
    }

    /// Commits; a commit that fails (a deferred foreign key broken) leaves the
    /// transaction open for the caller to inspect and roll back.
    fn commit(mut self) -> rusqlite::Result<()> {
        self.open = false;
        self.connection.execute_batch("COMMIT")
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

/// A capture mapping's table as a session found it.
struct Table {
    member: &'static dyn Member,
    /// The source table's OID.
    table: u32,
    /// The live types of the mapping's source columns, `None` when the table no
    /// longer has them (a drain then stops at the change that altered it).
    types: Option<Vec<Type>>,
    /// The mapping's filter settings ([`crate::filter::FilterSpec::settings`]).
    filter: Vec<(&'static str, String)>,
    /// The filter parameters the targets hold the rows of, as the state records them.
    params: Option<String>,
}

/// A connection to the source that holds the slot of a group of capture mappings
/// (one mapping, or several linked by references, parents first).
struct Session {
    client: Client,
    tables: Vec<Table>,
    /// The filter settings of every member, for the first copy's snapshot.
    filter: Vec<(&'static str, String)>,
    /// `--allow-empty`: a first copy may empty targets that hold rows.
    allow_empty: bool,
    _cancel: crate::sync::signal::CancelOnSignal,
}

impl Session {
    /// The group's first mapping, which names the slot and its errors.
    fn spec(&self) -> &'static MappingSpec {
        self.tables[0].member.spec()
    }

    /// Every member's mapping name, in order.
    fn names(&self) -> Vec<&'static str> {
        self.tables
            .iter()
            .map(|table| table.member.spec().name)
            .collect()
    }

    /// Every member's mapping, in order.
    fn specs(&self) -> Vec<&'static MappingSpec> {
        self.tables
            .iter()
            .map(|table| table.member.spec())
            .collect()
    }
}

/// Connects, checks the prerequisites and each member's source table, and takes
/// the slot's lock.
fn open_session(
    source: &SourceConfig,
    members: &[&'static dyn Member],
    slot_name: &str,
    options: &SyncOptions,
) -> Result<Session> {
    let leader = members[0].spec();
    let mut client = source.connect()?;
    let cancel = crate::sync::signal::cancel_on_signal(source, &client);
    slot::check_prerequisites(&mut client, leader)?;
    let mut tables = Vec::with_capacity(members.len());
    let mut filter: Vec<(&'static str, String)> = Vec::new();
    for &member in members {
        let table = open_table(&mut client, member, options)?;
        for setting in &table.filter {
            if !filter.contains(setting) {
                filter.push(setting.clone());
            }
        }
        tables.push(table);
    }
    slot::lock_slot(&mut client, leader, slot_name)?;
    Ok(Session {
        client,
        tables,
        filter,
        allow_empty: options.allow_empty,
        _cancel: cancel,
    })
}

/// Checks one member's source table: its replica identity, its key, its types.
fn open_table(
    client: &mut Client,
    member: &'static dyn Member,
    options: &SyncOptions,
) -> Result<Table> {
    let spec = member.spec();
    let (table, identity, identity_columns) = slot::table_identity(client, spec)?;
    slot::check_identity(spec, &identity, &identity_columns)?;
    // Rows sharing a key would be merged silently, as in any other run.
    if !options.assume_unique_key {
        let unique: bool = client
            .query_one(
                crate::source::guard::KEY_IS_UNIQUE,
                &[
                    &spec.source.schema,
                    &spec.source.table,
                    &crate::source::guard::key_columns(spec),
                ],
            )
            .map_err(slot::source_error(spec))?
            .get(0);
        if !unique {
            return Err(crate::source::guard::key_not_unique(spec));
        }
    }
    // The changes before an ALTER TABLE are applied, and the first after it stops
    // the run (see `apply`): a table that no longer reads is no error yet.
    let types = match client.prepare(spec.source.select) {
        Ok(statement) => {
            let types = crate::source::column_types(statement.columns());
            member.check_types(&types).map(|()| types).ok()
        }
        Err(error)
            if error
                .code()
                .is_some_and(|code| code.code().starts_with("42")) =>
        {
            None
        }
        Err(error) => return Err(slot::source_error(spec)(error)),
    };
    if let Some(types) = &types {
        filter::check_types(spec, types)?;
    }
    Ok(Table {
        member,
        table,
        types,
        filter: options.filter_settings(spec)?,
        params: crate::filter::identity(spec.source.filter.as_ref(), &options.params),
    })
}

/// One `sync` of capture mapping `M` alone; see [`sync_group`].
pub(crate) fn sync<M: Mapping>(
    source: &SourceConfig,
    connection: &mut Connection,
    path: &Path,
    options: &SyncOptions,
    started_at: &str,
) -> Result<Summary> {
    sync_group(
        &[member::member::<M>()],
        source,
        connection,
        path,
        options,
        started_at,
    )
    .map(|mut summaries| summaries.remove(0))
}

/// One `sync` of a group of capture mappings (`members`, parents first, reading
/// one slot): the first copy, or a drain up to the WAL position at the start; a
/// summary per member, in order.
pub(crate) fn sync_group(
    members: &[&'static dyn Member],
    source: &SourceConfig,
    connection: &mut Connection,
    path: &Path,
    options: &SyncOptions,
    started_at: &str,
) -> Result<Vec<Summary>> {
    let prepared = prepare(members, connection, path, options)?;
    match prepared.stored {
        Some(stored) if stored.position.is_some() && !options.full => {
            let mut session = open_session(source, members, &stored.slot, options)?;
            for table in &session.tables {
                guards::check_source(&mut session.client, table.member.spec(), connection, path)?;
            }
            // Before the run's end position is read: a record written now lies before
            // it, so this run's confirm moves the restart point past the changes it
            // drains, and the next run (or `follow`) does not decode them again.
            let nudged = move_restart_point_ahead(&mut session, &stored.slot);
            let leader = session.spec();
            let upto = slot::current_position(&mut session.client, leader)?;
            drain(
                &mut session,
                connection,
                path,
                &stored,
                upto,
                nudged,
                options,
                started_at,
            )
        }
        stored => {
            let slot_name = slot_name_of(members[0].spec(), stored.as_ref());
            let mut session = open_session(source, members, &slot_name, options)?;
            first_copy(
                &mut session,
                connection,
                path,
                &slot_name,
                &prepared.others,
                options,
                started_at,
            )
            .map(|(summaries, _)| summaries)
        }
    }
}

/// `follow` of capture mapping `M` alone; see [`follow_group`].
pub(crate) fn follow<M: Mapping>(
    source: &SourceConfig,
    connection: &mut Connection,
    path: &Path,
    options: &SyncOptions,
    started_at: &str,
) -> Result<Summary> {
    follow_group(
        &[member::member::<M>()],
        source,
        connection,
        path,
        options,
        started_at,
    )
    .map(|mut summaries| summaries.remove(0))
}

/// `follow` of a group of capture mappings (`members`, parents first): the first
/// copy if there is none yet, then applies the changes as the server flushes them
/// (see [`follow_changes`]) until a signal; reconnects after a dropped connection
/// with the run's retry policy. A signal ends it cleanly, with the position of the
/// last committed source transaction recorded. A summary per member.
pub(crate) fn follow_group(
    members: &[&'static dyn Member],
    source: &SourceConfig,
    connection: &mut Connection,
    path: &Path,
    options: &SyncOptions,
    started_at: &str,
) -> Result<Vec<Summary>> {
    let leader = members[0].spec();
    let mut total: Vec<Summary> = members
        .iter()
        .map(|member| empty_summary(member.spec(), "follow"))
        .collect();
    let mut changes_before = vec![0; members.len()];
    let mut attempt = || -> Result<()> {
        let prepared = prepare(members, connection, path, options)?;
        let stored = prepared.stored;
        // One session, and so one hold on the slot, from the first copy to the end.
        let slot_name = slot_name_of(leader, stored.as_ref());
        let mut session = open_session(source, members, &slot_name, options)?;
        if stored
            .as_ref()
            .is_some_and(|stored| stored.position.is_some())
        {
            for table in &session.tables {
                guards::check_source(&mut session.client, table.member.spec(), connection, path)?;
            }
        }
        let stored = match stored {
            Some(stored) if stored.position.is_some() => stored,
            _ => {
                let (summaries, state) = first_copy(
                    &mut session,
                    connection,
                    path,
                    &slot_name,
                    &prepared.others,
                    options,
                    started_at,
                )?;
                for (total, summary) in total.iter_mut().zip(&summaries) {
                    add(total, summary);
                    let spec = members
                        .iter()
                        .map(|member| member.spec())
                        .find(|spec| spec.name == summary.mapping)
                        .unwrap_or(leader);
                    options.observer().followed(spec, summary, 0);
                    // Progress so far counted rows copied; from here on, changes.
                    options.observer().start(spec, "follow");
                }
                state
            }
        };
        let mut drained = Drained::start(&mut session, &stored)?;
        drained.base.clone_from(&changes_before);
        let result = follow_changes(
            &mut session,
            connection,
            path,
            &stored,
            &mut drained,
            options,
            started_at,
        );
        for (index, summary) in drained.total.iter().enumerate() {
            add(&mut total[index], summary);
            changes_before[index] += summary.rows_read;
        }
        if result.is_err() && crate::sync::signal::received().is_some() {
            // Stopped by a signal: what is committed is confirmed and on record. Should
            // this fail, the next run confirms it.
            let _ = drained.confirm(&mut session, &slot_name);
            let _ = drained.record(connection, path, &session, started_at);
        }
        result
    };
    // A dropped connection or a restarting server: again, with the usual backoff.
    let result = loop {
        match crate::sync::retry::run(leader, &options.retry, &mut attempt) {
            Err(Error::Interrupted { .. }) => break Ok(()),
            Err(error) if crate::sync::signal::received().is_some() => {
                tracing::debug!(error = %error, "follow stopped by a signal");
                break Ok(());
            }
            Err(error) => break Err(error),
            Ok(()) => {}
        }
    };
    result.map(|()| total)
}

/// Releases mapping `M`'s slot (and the publication data-sync created for it), and
/// forgets it in the target file for every mapping that reads it (the members of
/// its group), so the next `sync` copies again; whether there was a slot.
pub(crate) fn drop_slot<M: Mapping>(source: &SourceConfig, path: &Path) -> Result<bool> {
    let spec = M::SPEC;
    let Some(path) = &fanout::slot_file(spec, path) else {
        return Ok(false);
    };
    let Some((connection, stored)) = stored_capture(spec, path)? else {
        return Ok(false);
    };
    let mut client = source.connect()?;
    slot::lock_slot(&mut client, spec, &stored.slot)?;
    let dropped = slot::drop_slot(&mut client, spec, &stored.slot)?;
    if stored.owns_publication {
        slot::drop_publication(&mut client, spec, &stored.publication)?;
    }
    position::clear_slot(&connection, &stored.slot).map_err(target_error(path))?;
    Ok(dropped)
}

/// What `status` shows of a capture mapping's slot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SlotStatus {
    /// The mapping.
    pub mapping: String,
    /// The slot's name.
    pub slot: String,
    /// The position the target's rows reach.
    pub position: Option<String>,
    /// The position the server has as confirmed; `None` when the slot is gone.
    pub confirmed: Option<String>,
    /// Bytes of WAL the slot keeps on the source's disk.
    pub retained_bytes: Option<i64>,
    /// `reserved`, `extended`, `unreserved` or `lost`; `missing` when the slot is gone.
    pub wal_status: String,
}

/// The slot of mapping `M` in the target file `path`, as the server reports it;
/// `None` when the mapping has no slot there.
pub(crate) fn slot_status<M: Mapping>(
    source: &SourceConfig,
    path: &Path,
) -> Result<Option<SlotStatus>> {
    let spec = M::SPEC;
    let Some(path) = &fanout::slot_file(spec, path) else {
        return Ok(None);
    };
    let Some((_connection, stored)) = stored_capture(spec, path)? else {
        return Ok(None);
    };
    let mut client = source.connect()?;
    let info = slot::slot_info(&mut client, spec, &stored.slot)?;
    Ok(Some(SlotStatus {
        mapping: spec.name.to_owned(),
        slot: stored.slot,
        position: stored.position.map(|lsn| lsn.to_string()),
        confirmed: info
            .as_ref()
            .and_then(|info| info.confirmed)
            .map(|lsn| lsn.to_string()),
        retained_bytes: info.as_ref().and_then(|info| info.retained_bytes),
        wal_status: info
            .and_then(|info| info.wal_status)
            .unwrap_or_else(|| "missing".to_owned()),
    }))
}

/// The target file `path` and what it stores of mapping `spec`'s slot, for
/// `drop-slot` and `status`; `None` when the mapping has no slot there (or the
/// file does not exist: a template's state file before its first run).
fn stored_capture(spec: &MappingSpec, path: &Path) -> Result<Option<(Connection, CaptureState)>> {
    if !path.exists() {
        return Ok(None);
    }
    let connection = crate::target::open(path)?;
    let target_error = target_error(path);
    state::ensure(&connection).map_err(&target_error)?;
    position::ensure(&connection).map_err(&target_error)?;
    let stored = position::load(&connection, spec.name).map_err(&target_error)?;
    Ok(stored.map(|stored| (connection, stored)))
}

/// What a target file stores of a group's slot.
struct Prepared {
    /// The slot every member reads, when they all read one; its position when they
    /// all reach one.
    stored: Option<CaptureState>,
    /// The other slots members read (made before they were grouped, or by another
    /// grouping): the group's first copy drops them.
    others: Vec<CaptureState>,
}

/// Creates the state and target tables where missing, and loads the members'
/// capture state.
///
/// # Errors
///
/// [`Error::MappingChanged`] when the targets were built by another definition of
/// a mapping, [`Error::ParamsChanged`] with other filter parameters, and `--full`
/// was not given.
fn prepare(
    members: &[&'static dyn Member],
    connection: &Connection,
    path: &Path,
    options: &SyncOptions,
) -> Result<Prepared> {
    let target_error = target_error(path);
    let transaction = Open::begin(connection).map_err(&target_error)?;
    state::ensure(connection).map_err(&target_error)?;
    position::ensure(connection).map_err(&target_error)?;
    transaction.commit().map_err(&target_error)?;
    let mut stored_all = Vec::with_capacity(members.len());
    for member in members {
        stored_all.push(position::load(connection, member.spec().name).map_err(&target_error)?);
    }
    let first = stored_all[0].clone();
    let shared = first.as_ref().is_some_and(|first| {
        stored_all.iter().all(|stored| {
            stored
                .as_ref()
                .is_some_and(|stored| stored.slot == first.slot)
        })
    });
    let stored = first.filter(|_| shared).map(|mut first| {
        // Members stored at different positions (a state this version never
        // writes): copied again.
        if stored_all
            .iter()
            .any(|stored| stored.as_ref().map(|stored| stored.position) != Some(first.position))
        {
            first.position = None;
        }
        first
    });
    let mut others: Vec<CaptureState> = Vec::new();
    for stored_one in stored_all.into_iter().flatten() {
        if stored
            .as_ref()
            .is_none_or(|stored| stored.slot != stored_one.slot)
            && !others.iter().any(|other| other.slot == stored_one.slot)
        {
            others.push(stored_one);
        }
    }
    if let Some(stored) = &stored
        && stored.position.is_some()
        && !options.full
    {
        for member in members {
            let spec = member.spec();
            let Some(previous) = state::load(connection, spec.name).map_err(&target_error)? else {
                continue;
            };
            crate::sync::incremental::check_params(
                spec,
                previous.params.as_deref(),
                &options.params,
            )?;
            // Names what changed: a capture mapping migrates only with `--full`.
            previous.migration_for(spec)?;
        }
        // A drain writes into the tables as they are; a first copy makes them
        // afresh (see `first_copy`).
        let transaction = Open::begin(connection).map_err(&target_error)?;
        for member in members {
            crate::target::ensure_tables(connection, member.spec()).map_err(&target_error)??;
        }
        transaction.commit().map_err(&target_error)?;
    }
    Ok(Prepared { stored, others })
}

/// The slot of `stored`, or a new name when the target file has none.
fn slot_name_of(spec: &MappingSpec, stored: Option<&CaptureState>) -> String {
    stored.map_or_else(|| new_slot_name(spec), |stored| stored.slot.clone())
}

/// A slot name for `spec` in a new target file: `data_sync_`, the mapping name
/// (letters and digits, lowercase), and a random id.
fn new_slot_name(spec: &MappingSpec) -> String {
    let mapping: String = spec
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("data_sync_{mapping}_{:016x}", hasher.finish())
}

/// The first run: a slot, a copy of every member's table from one snapshot taken
/// after it (parents first), and the slot's changes up to the snapshot's WAL
/// position, all in one SQLite transaction whose foreign keys are checked at its
/// commit. `others` are slots members read before (dropped, with the publications
/// data-sync made for them).
fn first_copy(
    session: &mut Session,
    connection: &mut Connection,
    path: &Path,
    slot_name: &str,
    others: &[CaptureState],
    options: &SyncOptions,
    started_at: &str,
) -> Result<(Vec<Summary>, CaptureState)> {
    let leader = session.spec();
    let target_error = target_error(path);
    let slot_name = slot_name.to_owned();
    let client = &mut session.client;
    // Whether each member built its targets (its state row says so): then a table
    // of another shape is rebuilt, else refused; asked before this run's own
    // record below.
    let mut rebuild = Vec::with_capacity(session.tables.len());
    for table in &session.tables {
        rebuild.push(
            state::load(connection, table.member.spec().name)
                .map_err(&target_error)?
                .is_some_and(|state| state.mode != state::NEVER_SYNCED),
        );
    }
    let mut identities = Vec::with_capacity(session.tables.len());
    for table in &session.tables {
        let spec = table.member.spec();
        guards::check_readable(client, spec, &table.filter)?;
        identities.push(guards::identity(client, spec)?);
    }
    // A slot left by a first copy that did not commit (killed, failed) starts over.
    slot::drop_slot(client, leader, &slot_name)?;
    for other in others.iter().filter(|other| other.slot != slot_name) {
        slot::drop_slot(client, leader, &other.slot)?;
        if other.owns_publication {
            slot::drop_publication(client, leader, &other.publication)?;
        }
    }
    let (publication, owns_publication) = group_publication(session, &slot_name)?;
    let client = &mut session.client;
    let mut capture = CaptureState {
        slot: slot_name.clone(),
        publication,
        owns_publication,
        position: None,
    };
    // The slot's name is in the target file before the slot exists, so that a
    // killed run's slot is found and dropped by the next one.
    {
        let transaction = Open::begin(connection).map_err(&target_error)?;
        for table in &session.tables {
            let spec = table.member.spec();
            let running = running_state(spec, table.params.clone(), started_at, 0);
            state::record(connection, &running).map_err(&target_error)?;
            position::record_slot(connection, spec.name, &capture).map_err(&target_error)?;
        }
        transaction.commit().map_err(&target_error)?;
    }
    // (1) The slot, in its own transaction: every transaction that commits after
    // its consistent point is decoded.
    slot::create_slot(client, leader, &slot_name)?;

    let transaction =
        Open::begin_deferred(connection, session.tables.len() > 1).map_err(&target_error)?;
    // The targets, made afresh in the mapping's shape (children first): a table of
    // another shape is rebuilt when this mapping built it, and refused when
    // something else did, as in a full sync.
    let mut replaced = Vec::with_capacity(session.tables.len());
    for (table, rebuild) in session.tables.iter().zip(&rebuild).rev() {
        replaced.push(
            crate::target::swap::replace(connection, table.member.spec(), *rebuild)
                .map_err(&target_error)??,
        );
    }
    replaced.reverse();
    // (2) The snapshot, and P inside it.
    let (copied, upto) = {
        let mut snapshot = client
            .snapshot(&session.filter)
            .map_err(slot::source_error(leader))?;
        let upto: String = snapshot
            .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
            .map_err(slot::source_error(leader))?
            .get(0);
        let upto = upto
            .parse::<Lsn>()
            .map_err(|error: lsn::ParseLsnError| Error::Capture {
                mapping: leader.name.to_owned(),
                message: error.to_string(),
            })?
            .as_record_end();
        // (3) The copy of every member, parents first.
        let mut copied = Vec::with_capacity(session.tables.len());
        for (table, replaced) in session.tables.iter().zip(&replaced) {
            let spec = table.member.spec();
            let types = match &table.types {
                Some(types) => types.clone(),
                None => {
                    // The copy reads the table as it is: its error says what is wrong.
                    let statement = snapshot
                        .prepare(spec.source.select)
                        .map_err(slot::source_error(spec))?;
                    let types = crate::source::column_types(statement.columns());
                    table.member.check_types(&types)?;
                    types
                }
            };
            let had_rows = replaced.had_rows;
            let (rows_read, skipped) =
                table
                    .member
                    .copy(&mut snapshot, connection, path, &types, options)?;
            guards::check_not_emptied(spec, had_rows, rows_read - skipped, session.allow_empty)?;
            copied.push((rows_read, skipped));
        }
        snapshot.commit().map_err(slot::source_error(leader))?;
        (copied, upto)
    };
    // (4) The slot's changes committed before P, in the same SQLite transaction.
    slot::wait_flushed(&mut session.client, leader, upto)?;
    let mut appliers = appliers(session, connection);
    let mut position = Lsn::ZERO;
    peek_apply(
        &mut session.client,
        leader,
        &capture,
        &mut position,
        upto,
        None,
        &mut appliers,
        &mut |_| Ok(()),
    )?;
    for applier in &mut appliers {
        applier.refetch(&mut session.client)?;
    }
    capture.position = Some(upto);
    let mut summaries = Vec::with_capacity(session.tables.len());
    for (table, replaced) in session.tables.iter().zip(&replaced) {
        replaced
            .restore(connection, table.member.spec())
            .map_err(&target_error)?;
    }
    for ((table, applier), (identity, (rows_read, skipped))) in session
        .tables
        .iter()
        .zip(&appliers)
        .zip(identities.iter().zip(copied))
    {
        let spec = table.member.spec();
        position::record_position(connection, spec.name, upto).map_err(&target_error)?;
        let mut done = running_state(spec, table.params.clone(), started_at, rows_read);
        done.finished_at = Some(crate::target::state::now());
        done.last_outcome = "ok".to_owned();
        state::record_finished(connection, &done, &identity.to_json()).map_err(&target_error)?;
        summaries.push(Summary {
            mapping: spec.name.to_owned(),
            mode: "full".to_owned(),
            rows_read,
            targets: spec
                .targets
                .iter()
                .enumerate()
                .map(|(index, target)| TargetSummary {
                    table: target.name.to_owned(),
                    rows: rows_read - skipped + applier.written()[index],
                    deleted: applier.deleted()[index],
                })
                .collect(),
            seconds: 0.0,
            migrated: Vec::new(),
        });
    }
    drop(appliers);
    if let Err(error) = transaction.commit() {
        return Err(commit_failed(error, connection, path, &session.specs()));
    }
    // Only now the slot may let go of what came before P.
    slot::advance(&mut session.client, leader, &slot_name, upto)?;
    Ok((summaries, capture))
}

/// The publication of a group's slot `slot_name`, and whether data-sync creates
/// (and `drop-slot` drops) it: the one every member names, or one data-sync
/// creates over every member's table.
///
/// # Errors
///
/// [`Error::Capture`] when members name different publications, or some name one
/// and others none.
fn group_publication(session: &mut Session, slot_name: &str) -> Result<(String, bool)> {
    let leader = session.spec();
    let named: Vec<Option<&'static str>> = session
        .tables
        .iter()
        .map(|table| {
            table
                .member
                .spec()
                .source
                .capture
                .as_ref()
                .and_then(|c| c.publication)
        })
        .collect();
    match named[0] {
        Some(publication) if named.iter().all(|named| *named == Some(publication)) => {
            for table in &session.tables {
                slot::check_publication(&mut session.client, table.member.spec(), publication)?;
            }
            Ok((publication.to_owned(), false))
        }
        None if named.iter().all(Option::is_none) => {
            let specs: Vec<&MappingSpec> = session
                .tables
                .iter()
                .map(|table| table.member.spec())
                .collect();
            slot::create_publication(&mut session.client, &specs, slot_name)?;
            Ok((slot_name.to_owned(), true))
        }
        _ => Err(Error::Capture {
            mapping: leader.name.to_owned(),
            message: format!(
                "the capture mappings {} are linked by references and read one slot, so they \
                 must name one `publication` or none: give each the same `publication` (then \
                 `cargo xtask gen` and rebuild)",
                session
                    .tables
                    .iter()
                    .map(|table| format!("`{}`", table.member.spec().name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// An applier per member, in order.
fn appliers<'c>(session: &Session, connection: &'c Connection) -> Vec<Box<dyn Apply + 'c>> {
    session
        .tables
        .iter()
        .map(|table| {
            table.member.applier(
                connection,
                table.table,
                table.types.clone(),
                table.filter.clone(),
            )
        })
        .collect()
}

/// The error of a commit that failed: a foreign key its rows break (checked at the
/// commit in a group) is [`Error::ForeignKey`], naming the row; the transaction is
/// rolled back, so nothing is committed.
fn commit_failed(
    error: rusqlite::Error,
    connection: &Connection,
    path: &Path,
    specs: &[&'static MappingSpec],
) -> Error {
    let broken = crate::target::broken_row(connection, specs).ok().flatten();
    if !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    match broken {
        Some((mapping, message)) => Error::ForeignKey { mapping, message },
        None => target_error(path)(error),
    }
}

/// The state row of a capture run in progress.
fn running_state(
    spec: &MappingSpec,
    params: Option<String>,
    started_at: &str,
    rows: u64,
) -> MappingState {
    MappingState::of_run(spec, params, "capture", None, rows, started_at, false)
}

/// Replaces every target's rows by the snapshot's, in the caller's transaction,
/// through the full sync's reader and batch writer: the `COPY` read and checked on
/// a thread of its own, written in multi-row `INSERT`s; returns the rows read and
/// those a soft-delete column left out.
fn copy<M: Mapping>(
    snapshot: &mut Snapshot<'_>,
    connection: &Connection,
    path: &Path,
    types: &[Type],
    options: &SyncOptions,
) -> Result<(u64, u64)> {
    let spec = M::SPEC;
    let target_error = target_error(path);
    for target in spec.targets.iter().rev() {
        connection
            .execute(target.delete_all, [])
            .map_err(&target_error)?;
    }
    let progress = options.observer();
    if let Some(rows) =
        crate::sync::full::estimate(snapshot, spec).map_err(slot::source_error(spec))?
    {
        progress.estimate(spec, rows);
    }
    let batch_size = options.batch_size.max(1);
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(crate::options::QUEUE_DEPTH);
        let reader = scope.spawn(move || {
            let table = spec.source.display_name();
            let stream_error = |source| Error::SourceStream {
                mapping: spec.name.to_owned(),
                table: table.clone(),
                source,
            };
            let copy = crate::source::copy_out_sql(spec.source.select);
            let stream = snapshot
                .copy_out(copy.as_str())
                .map_err(slot::source_error(spec))?;
            let mut reader = CopyReader::new(stream, types.to_vec()).map_err(stream_error)?;
            crate::sync::batch::read::<M, _>(&mut reader, batch_size, None, &sender, &stream_error)
        });
        let written = crate::sync::batch::write::<M>(connection, receiver, path, progress);
        let read = reader.join().unwrap_or_else(|_| {
            Err(Error::ReaderPanicked {
                mapping: spec.name.to_owned(),
            })
        });
        // A reader error explains a writer that stopped early, so it comes first.
        let read = read?;
        written?;
        Ok((read.rows, read.skipped))
    })
}

/// What [`peek_apply`] tells its caller as it goes.
enum Step {
    /// A source transaction to apply begins: its changes follow.
    Begin,
    /// The source transaction ended at `end` (`position` is there now), with
    /// `changes` applied so far in the call; `whole` when no row waits to be read
    /// again.
    Commit { end: Lsn, changes: u64, whole: bool },
}

/// Reads the slot's changes of transactions that commit at or after `position` and
/// before `upto`, applies those of the members' tables with their `appliers` (each
/// change by the applier of its table, in log order), and calls `step` as each
/// applied transaction begins and ends; returns the transactions applied and the
/// messages read. `changes` bounds the messages read (the server ends at a
/// transaction's end).
#[allow(clippy::too_many_arguments)]
fn peek_apply(
    client: &mut Client,
    spec: &MappingSpec,
    capture: &CaptureState,
    position: &mut Lsn,
    upto: Lsn,
    changes: Option<i32>,
    appliers: &mut [Box<dyn Apply + '_>],
    step: &mut dyn FnMut(Step) -> Result<()>,
) -> Result<(u64, u64)> {
    let mut skip = true;
    let mut applied = 0;
    let protocol_error = |error: pgoutput::ProtocolError| Error::Capture {
        mapping: spec.name.to_owned(),
        message: error.to_string(),
    };
    let messages = slot::peek(
        client,
        spec,
        &capture.slot,
        &capture.publication,
        upto,
        changes.unwrap_or(i32::MAX),
        &mut |bytes| {
            // The changes and end of a transaction applied already (the slot sends
            // again what it has not been confirmed) are not even decoded.
            if skip && matches!(bytes.first(), Some(b'I' | b'U' | b'D' | b'T' | b'C')) {
                return Ok(());
            }
            match pgoutput::decode(bytes).map_err(protocol_error)? {
                Message::Begin { final_lsn, .. } => {
                    // Committed before the position: applied already. At or after
                    // `upto`: the next run's.
                    skip = final_lsn < *position || final_lsn >= upto;
                    if !skip {
                        step(Step::Begin)?;
                    }
                }
                // A shape that no longer matches stops the run at the first change it
                // would apply, not in a transaction applied already.
                Message::Relation(relation) => {
                    if let Some(index) = of(appliers, relation.id) {
                        appliers[index].relation(&relation, skip)?;
                    }
                }
                Message::Insert { relation, new } if !skip => {
                    if let Some(index) = of(appliers, relation) {
                        appliers[index].insert(&new)?;
                    }
                }
                Message::Update { relation, old, new } if !skip => {
                    if let Some(index) = of(appliers, relation) {
                        appliers[index].update(old.as_ref(), &new)?;
                    }
                }
                Message::Delete { relation, old } if !skip => {
                    if let Some(index) = of(appliers, relation) {
                        appliers[index].delete(&old)?;
                    }
                }
                // Children first: a member's targets may be referenced by the
                // targets of the members after it.
                Message::Truncate { relations, .. } if !skip => {
                    for applier in appliers.iter_mut().rev() {
                        if relations.iter().any(|&relation| applier.is_table(relation)) {
                            applier.truncate()?;
                        }
                    }
                }
                Message::Commit { end_lsn, .. } if !skip => {
                    applied += 1;
                    *position = end_lsn;
                    step(Step::Commit {
                        end: end_lsn,
                        changes: appliers.iter().map(|applier| applier.changes()).sum(),
                        whole: !appliers.iter().any(|applier| applier.waits_for_source()),
                    })?;
                    skip = true;
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    Ok((applied, messages))
}

/// The index of the applier of table `relation`, if a member reads it.
fn of(appliers: &[Box<dyn Apply + '_>], relation: u32) -> Option<usize> {
    appliers
        .iter()
        .position(|applier| applier.is_table(relation))
}

/// Where the changes of a `sync` or `follow` stand.
struct Drained {
    /// The position the committed rows reach (the one stored in the target file).
    committed: Lsn,
    /// The position last confirmed to the slot.
    confirmed: Lsn,
    /// What was applied so far, per member.
    total: Vec<Summary>,
    /// Changes applied before, per member, by earlier sessions of the same
    /// `follow`: progress counts from there.
    base: Vec<u64>,
}

impl Drained {
    /// Checks that the slot of `stored` still serves, and confirms the stored
    /// position to it where a run was killed between its SQLite commit and the
    /// confirm.
    ///
    /// # Errors
    ///
    /// [`Error::Capture`] when the slot is gone or was invalidated.
    fn start(session: &mut Session, stored: &CaptureState) -> Result<Self> {
        let spec = session.spec();
        let start = stored.position.unwrap_or(Lsn::ZERO);
        let info = slot::slot_info(&mut session.client, spec, &stored.slot)?;
        slot::check_slot(spec, &stored.slot, info.as_ref())?;
        let confirmed = match info.and_then(|info| info.confirmed) {
            // A run killed between its SQLite commit and the slot's advance.
            Some(confirmed) if confirmed < start => {
                slot::advance(&mut session.client, spec, &stored.slot, start)?;
                start
            }
            confirmed => confirmed.unwrap_or(start),
        };
        Ok(Drained {
            committed: start,
            confirmed,
            total: session
                .tables
                .iter()
                .map(|table| empty_summary(table.member.spec(), "capture"))
                .collect(),
            base: vec![0; session.tables.len()],
        })
    }

    /// The changes applied so far, of every member.
    fn changes(&self) -> u64 {
        self.total.iter().map(|summary| summary.rows_read).sum()
    }

    /// Records the run of every member as finished in the target file, with the
    /// changes applied so far.
    fn record(
        &self,
        connection: &Connection,
        path: &Path,
        session: &Session,
        started_at: &str,
    ) -> Result<()> {
        for (table, total) in session.tables.iter().zip(&self.total) {
            let spec = table.member.spec();
            let mut done = running_state(spec, table.params.clone(), started_at, total.rows_read);
            done.finished_at = Some(crate::target::state::now());
            done.last_outcome = "ok".to_owned();
            state::record(connection, &done).map_err(target_error(path))?;
        }
        Ok(())
    }

    /// Has the server write a record of the transactions running when the slot's
    /// restart point lags its confirmed position by more than [`RESTART_LAG`]
    /// (after a burst of changes), so that the next advance moves it there instead
    /// of every call decoding the burst again until the server writes one itself
    /// (every 15 s). Best effort: a failure is only logged.
    fn move_restart_point(&self, session: &mut Session, slot: &str) {
        let confirmed = u64::from(self.confirmed);
        nudge_restart_point(session, slot, |info| {
            info.restart
                .map_or(0, |restart| confirmed.saturating_sub(u64::from(restart)))
        });
    }

    /// Confirms the committed position to the slot, if it moved: the server may now
    /// let go of those changes. Call only after the SQLite commit.
    fn confirm(&mut self, session: &mut Session, slot: &str) -> Result<()> {
        if self.committed > self.confirmed {
            let spec = session.spec();
            slot::advance(&mut session.client, spec, slot, self.committed)?;
            self.confirmed = self.committed;
        }
        Ok(())
    }

    /// Adds what `appliers` applied to the totals, and reports the progress.
    fn add(&mut self, appliers: &[Box<dyn Apply + '_>], progress: &dyn Progress) {
        for (index, applier) in appliers.iter().enumerate() {
            let total = &mut self.total[index];
            for (target, summary) in total.targets.iter_mut().enumerate() {
                summary.rows += applier.written()[target];
                summary.deleted += applier.deleted()[target];
            }
            total.rows_read += applier.changes();
            if applier.changes() > 0 {
                progress.advance(applier.spec(), self.base[index] + total.rows_read);
            }
        }
    }
}

/// Applies the changes of the source transactions that committed from
/// `drained.committed` up to `upto`, whole source transactions per SQLite
/// transaction (at least `batch_size` changes each, where there are that many),
/// each storing the position it reaches; `changes` messages per decoding call.
/// Confirms the slot only between calls, when a call stopped at `changes`. Returns
/// the source transactions applied.
#[allow(clippy::too_many_arguments)]
fn apply_upto(
    session: &mut Session,
    connection: &Connection,
    path: &Path,
    stored: &CaptureState,
    drained: &mut Drained,
    upto: Lsn,
    changes: i32,
    batch_size: u64,
    progress: &dyn Progress,
) -> Result<u64> {
    let spec = session.spec();
    let target_error = target_error(path);
    let names = session.names();
    let specs = session.specs();
    // Foreign keys between members' targets are checked at each commit.
    let defer = names.len() > 1;
    let mut transactions = 0;
    loop {
        let mut appliers = appliers(session, connection);
        // Begun at the first transaction to apply: no write lock on the target file
        // while a call brings nothing.
        let mut group: Option<Open<'_>> = None;
        let mut group_start = 0u64;
        let mut position = drained.committed;
        let mut committed_at = position;
        let before = drained.changes();
        // The changes applied when the last source transaction ended.
        let mut whole_changes = 0u64;
        let mut failed_commit = None;
        let peeked = peek_apply(
            &mut session.client,
            spec,
            stored,
            &mut position,
            upto,
            Some(changes),
            &mut appliers,
            &mut |step| {
                match step {
                    Step::Begin if group.is_none() => {
                        group =
                            Some(Open::begin_deferred(connection, defer).map_err(&target_error)?);
                    }
                    Step::Begin => {}
                    // Rows waiting to be read again keep the group open until they are.
                    Step::Commit {
                        end,
                        changes,
                        whole,
                    } => {
                        whole_changes = changes;
                        if whole && changes - group_start >= batch_size {
                            // Whole source transactions, with the position they reach.
                            move_positions(connection, path, &names, committed_at, end)?;
                            if let Some(transaction) = group.take()
                                && let Err(error) = transaction.commit()
                            {
                                failed_commit = Some(error);
                                return Err(target_error(rusqlite::Error::InvalidQuery));
                            }
                            progress.advance(spec, before + changes);
                            committed_at = end;
                            group_start = changes;
                            crate::sync::signal::check(spec)?;
                        }
                    }
                }
                Ok(())
            },
        )
        .and_then(|peeked| {
            for applier in &mut appliers {
                applier.refetch(&mut session.client)?;
            }
            Ok(peeked)
        });
        if let Some(error) = failed_commit {
            return Err(commit_failed(error, connection, path, &specs));
        }
        let (applied, messages) = match peeked {
            Ok(peeked) => peeked,
            Err(error) => {
                // The whole source transactions before the one that failed (a table
                // altered, a value that does not decode, a dropped connection) are
                // kept, with their position; nothing of that one is.
                let changed: u64 = appliers.iter().map(|applier| applier.changes()).sum();
                if changed == whole_changes
                    && !appliers.iter().any(|applier| applier.waits_for_source())
                    && position > committed_at
                    && let Some(transaction) = group.take()
                    && move_positions(connection, path, &names, committed_at, position).is_ok()
                {
                    match transaction.commit() {
                        Ok(()) => {
                            let _ =
                                slot::advance(&mut session.client, spec, &stored.slot, position);
                        }
                        Err(commit) => return Err(commit_failed(commit, connection, path, &specs)),
                    }
                }
                return Err(error);
            }
        };
        if let Some(transaction) = group.take()
            && position > committed_at
        {
            move_positions(connection, path, &names, committed_at, position)?;
            if let Err(error) = transaction.commit() {
                return Err(commit_failed(error, connection, path, &specs));
            }
            committed_at = position;
        }
        drained.committed = committed_at;
        transactions += applied;
        drained.add(&appliers, progress);
        drop(appliers);
        // A call that ended before its limit reached `upto`.
        if messages < u64::try_from(changes).unwrap_or(0) {
            return Ok(transactions);
        }
        // Confirmed before the next call, which then sends only what comes after.
        drained.confirm(session, &stored.slot)?;
        crate::sync::signal::check(spec)?;
    }
}

/// Applies the changes committed from the stored position up to `upto` (see
/// [`apply_upto`]), confirms the slot, and records the run.
#[allow(clippy::too_many_arguments)]
fn drain(
    session: &mut Session,
    connection: &Connection,
    path: &Path,
    stored: &CaptureState,
    upto: Lsn,
    nudged: bool,
    options: &SyncOptions,
    started_at: &str,
) -> Result<Vec<Summary>> {
    let started = Instant::now();
    let mut drained = Drained::start(session, stored)?;
    let leader = session.spec();
    slot::wait_flushed(&mut session.client, leader, upto)?;
    apply_upto(
        session,
        connection,
        path,
        stored,
        &mut drained,
        upto,
        PEEK_CHANGES,
        options.batch_size.max(1) as u64,
        options.observer(),
    )?;
    // `apply_upto` returned: every source transaction committed before `upto` was
    // seen, those that changed no member's table too. When a record of the running
    // transactions was written before `upto` was read (`nudged`), the position
    // stored and confirmed is `upto` itself, not the last applied commit (which lies
    // before the record): the confirm then passes the record and moves the restart
    // point past the drained burst, so the next run or `follow` does not decode it
    // again. The next run skips exactly what this one saw (commits before `upto`).
    if nudged && drained.committed < upto {
        let open = Open::begin(connection).map_err(target_error(path))?;
        move_positions(connection, path, &session.names(), drained.committed, upto)?;
        open.commit().map_err(target_error(path))?;
        drained.committed = upto;
    }
    // Only after the SQLite commit: the server may now let go of those changes.
    drained.confirm(session, &stored.slot)?;
    drained.move_restart_point(session, &stored.slot);
    drained.record(connection, path, session, started_at)?;
    let mut total = drained.total;
    for summary in &mut total {
        summary.seconds = started.elapsed().as_secs_f64();
    }
    Ok(total)
}

/// Has the server write a record of the transactions running (see
/// [`slot::log_running_transactions`]) when the slot holds back more than
/// [`RESTART_LAG`] of WAL, before a drain reads its end position: the changes
/// waiting in the slot (a burst committed since the last run) then lie before the
/// record, and the drain's confirm, past the record, moves the restart point past
/// them. Whether the record was written.
fn move_restart_point_ahead(session: &mut Session, slot: &str) -> bool {
    nudge_restart_point(session, slot, |info| {
        info.retained_bytes
            .map_or(0, |bytes| u64::try_from(bytes).unwrap_or(0))
    })
}

/// Has the server write a record of the transactions running when `lag` of the
/// slot's state is more than [`RESTART_LAG`] bytes. Best effort: a failure is only
/// logged. Whether the record was written.
fn nudge_restart_point(
    session: &mut Session,
    slot: &str,
    lag: impl FnOnce(&slot::SlotInfo) -> u64,
) -> bool {
    let spec = session.spec();
    match slot::slot_info(&mut session.client, spec, slot) {
        Ok(Some(info)) if lag(&info) > RESTART_LAG => {
            match slot::log_running_transactions(&mut session.client, spec, slot) {
                Ok(()) => true,
                Err(error) => {
                    tracing::debug!(mapping = spec.name, error = %error, "restart point not moved");
                    false
                }
            }
        }
        Ok(_) => false,
        Err(error) => {
            tracing::debug!(mapping = spec.name, error = %error, "restart point not read");
            false
        }
    }
}

/// `follow`'s loop on one session: asks the server how far it has flushed its WAL,
/// and as soon as that passes a position where a record ended, applies the
/// changes up to it; waits [`FOLLOW_IDLE`] when nothing new was flushed. Returns
/// on a signal ([`Error::Interrupted`]) or an error.
fn follow_changes(
    session: &mut Session,
    connection: &Connection,
    path: &Path,
    stored: &CaptureState,
    drained: &mut Drained,
    options: &SyncOptions,
    started_at: &str,
) -> Result<()> {
    let spec = session.spec();
    let progress = options.observer();
    let batch_size = options.batch_size.max(1) as u64;
    // Insert positions read so far that the flush has not reached: each is the end
    // of a record, so a decoding call up to one stops there instead of waiting for
    // the rest of a record a flush at a page start cut (until the next flush).
    let mut inserted = std::collections::VecDeque::new();
    let mut peeked = drained.committed;
    let mut wait = FOLLOW_IDLE;
    // Since when the flush has been past what was read, with no position to stop at.
    let mut stalled: Option<Instant> = None;
    let (mut recorded_rows, mut recorded_at) = (0, Instant::now());
    let (mut confirmed_at, mut restart_checked_at) = (Instant::now(), None::<Instant>);
    loop {
        crate::sync::signal::check(spec)?;
        // Only after the SQLite commit: the server may now let go of those changes.
        if drained.committed > drained.confirmed && confirmed_at.elapsed() >= CONFIRM_EVERY {
            drained.confirm(session, &stored.slot)?;
            confirmed_at = Instant::now();
            if restart_checked_at.is_none_or(|at| at.elapsed() >= RESTART_CHECK_EVERY) {
                drained.move_restart_point(session, &stored.slot);
                restart_checked_at = Some(Instant::now());
            }
        }
        let asked = Instant::now();
        let (insert, flush) = slot::wal_positions(&mut session.client, spec)?;
        if inserted.back().is_none_or(|&last| last < insert) {
            inserted.push_back(insert);
        }
        let mut upto = None;
        while let Some(&front) = inserted.front()
            && front <= flush
        {
            upto = Some(front);
            inserted.pop_front();
        }
        // The flush ends where a record ended (a commit flushed, an asynchronous one
        // by the WAL writer), unless it is at a page start: then a record may go on
        // past it, and the insert positions read earlier are where a call can stop.
        if !flush.is_page_start() {
            upto = Some(flush);
        }
        // A flush at a page start no insert position read reaches, for a while: read
        // up to it anyway, which may wait for the rest of a record until the server
        // flushes it, rather than leave the commits before it waiting.
        if upto.is_none_or(|upto| upto <= peeked) && flush > peeked {
            let since = *stalled.get_or_insert(asked);
            if asked.duration_since(since) >= FOLLOW_BACKOFF {
                upto = Some(flush);
            }
        } else {
            stalled = None;
        }
        let Some(upto) = upto.filter(|&upto| upto > peeked) else {
            crate::sync::signal::sleep(spec, FOLLOW_IDLE)?;
            continue;
        };
        let decoding = Instant::now();
        let before = drained.changes();
        let (round_start, behind) = (
            drained.total.clone(),
            u64::from(flush).saturating_sub(u64::from(drained.committed)),
        );
        let applied = apply_upto(
            session,
            connection,
            path,
            stored,
            drained,
            upto,
            FOLLOW_PEEK_CHANGES,
            batch_size,
            progress,
        )?;
        peeked = upto;
        for (summary, start) in drained.total.iter().zip(&round_start) {
            let member = session
                .tables
                .iter()
                .map(|table| table.member.spec())
                .find(|spec| spec.name == summary.mapping)
                .unwrap_or(spec);
            progress.followed(member, &since(summary, start), behind);
        }
        let applying = decoding.elapsed();
        if drained.changes() > recorded_rows && recorded_at.elapsed() >= RECORD_EVERY {
            drained.record(connection, path, session, started_at)?;
            (recorded_rows, recorded_at) = (drained.changes(), Instant::now());
        }
        tracing::debug!(
            mapping = spec.name,
            upto = %upto,
            transactions = applied,
            changes = drained.changes() - before,
            ask_ms = (decoding - asked).as_secs_f64() * 1000.0,
            apply_ms = applying.as_secs_f64() * 1000.0,
            "follow applied"
        );
        if applied > 0 {
            wait = FOLLOW_IDLE;
        } else {
            // WAL of other tables: each call decodes, so back off.
            crate::sync::signal::sleep(spec, wait)?;
            wait = (wait * 2).min(FOLLOW_BACKOFF);
        }
    }
}

/// Moves the stored position of every mapping of `names` from `from` to `to` in
/// the open transaction.
///
/// # Errors
///
/// [`Error::ConcurrentRun`] when another run moved one meanwhile (a second
/// consumer that got in while this one reconnected): this run stops, and its
/// transaction rolls back.
fn move_positions(
    connection: &Connection,
    path: &Path,
    names: &[&'static str],
    from: Lsn,
    to: Lsn,
) -> Result<()> {
    for name in names {
        if !position::move_position(connection, name, from, to).map_err(target_error(path))? {
            return Err(Error::ConcurrentRun {
                mapping: (*name).to_owned(),
            });
        }
    }
    Ok(())
}

/// A summary with nothing done yet.
fn empty_summary(spec: &MappingSpec, mode: &str) -> Summary {
    Summary {
        mapping: spec.name.to_owned(),
        mode: mode.to_owned(),
        rows_read: 0,
        targets: spec
            .targets
            .iter()
            .map(|target| TargetSummary {
                table: target.name.to_owned(),
                rows: 0,
                deleted: 0,
            })
            .collect(),
        seconds: 0.0,
        migrated: Vec::new(),
    }
}

/// What `total` did after it was `before`.
fn since(total: &Summary, before: &Summary) -> Summary {
    let mut round = total.clone();
    round.rows_read -= before.rows_read;
    for (round, before) in round.targets.iter_mut().zip(&before.targets) {
        round.rows -= before.rows;
        round.deleted -= before.deleted;
    }
    round
}

/// Adds what `summary` did to `total`.
fn add(total: &mut Summary, summary: &Summary) {
    total.rows_read += summary.rows_read;
    for (total, summary) in total.targets.iter_mut().zip(&summary.targets) {
        total.rows += summary.rows;
        total.deleted += summary.deleted;
    }
}
