//! Change capture of a mapping with `partition_by`: one slot for all the files of
//! the template, each change routed to the file of its partition value.
//!
//! The slot, its publication and the position every file has reached are kept in a
//! small state file beside the files (`.data-sync-capture-<mapping>.sqlite`, a
//! `_data_sync_state` with the capture columns of `position`). Each partition file
//! keeps its own position in its own `_data_sync_state`.
//!
//! The first run creates the slot, then writes every file with the one-pass
//! fan-out from a snapshot taken after it, then drains the slot as every later run
//! does. A drain reads a batch of whole source transactions, routes each change by
//! the partition value of its new row (an insert, an update) and of its old row
//! (an update that moved the row, a delete: `REPLICA IDENTITY FULL` sends it), and
//! applies the batch file by file, each file's changes and its position in one
//! SQLite transaction; a file skips the transactions that committed before its own
//! position (applied by an earlier run killed between two files). Only when every
//! file committed does the state file store the batch's end and the slot get
//! confirmed there; a file that fails leaves both where they were, so the next run
//! sends its changes again. Why replaying onto the copy is exact is argued in
//! `docs/capture.md`; the per-file positions in `docs/fanout.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::Connection;

use super::lsn::Lsn;
use super::pgoutput::{self, Message, Tuple, Value};
use super::position::{self, CaptureState};
use super::{Drained, Open, Session, member, open_session, running_state, slot};
use crate::Mapping;
use crate::error::{Error, Result};
use crate::options::SyncOptions;
use crate::partition::{self, Selection, Template};
use crate::spec::MappingSpec;
use crate::sync::fanout::{FanoutSummary, PartitionOutcome};
use crate::target::state;
use crate::target::target_error;

/// Messages read per batch: a batch is held in memory while it is applied file by
/// file.
const BATCH_MESSAGES: i32 = 100_000;

/// The state file of capture mapping `spec` over `template`.
fn state_path(template: &Template, spec: &MappingSpec) -> PathBuf {
    let name = format!(
        ".data-sync-capture-{}.sqlite",
        partition::file_name(spec.name.as_bytes())
    );
    template
        .directory()
        .map_or_else(|| PathBuf::from(&name), |directory| directory.join(&name))
}

/// The file that keeps mapping `spec`'s slot for the target `path`: the state file
/// beside the files when `spec` has `partition_by` (`path` is then the template;
/// `None` for a path that is none, which no run of `spec` writes), else `path`
/// itself.
pub(crate) fn slot_file(spec: &MappingSpec, path: &Path) -> Option<PathBuf> {
    if spec.source.partition_by.is_none() {
        return Some(path.to_owned());
    }
    Template::parse(spec, path)
        .ok()
        .map(|template| state_path(&template, spec))
}

/// The error of `follow` over a template.
pub(crate) fn no_follow(spec: &MappingSpec, template: &Path) -> Error {
    partition_error(
        spec,
        format!(
            "`follow` does not follow a template of partition files; run `data-sync sync \
             --mapping {} --target '{}' --every 10s` instead",
            spec.name,
            template.display()
        ),
    )
}

fn partition_error(spec: &MappingSpec, message: String) -> Error {
    Error::Partition {
        mapping: spec.name.to_owned(),
        message,
    }
}

/// One `sync` of capture mapping `M` with `partition_by` into the files of
/// `template`: the first run (slot, one-pass copy, drain), or a drain.
///
/// # Errors
///
/// [`Error::Partition`] for `--partition`/`--shard` (a slot cannot be filtered per
/// shard), a row without a partition value, a `TRUNCATE`, or files that failed (the
/// others were synced); [`Error::Capture`] for a source table without `REPLICA
/// IDENTITY FULL` and the prerequisites of any capture run.
pub(crate) fn sync<M: Mapping>(
    source: &crate::source::config::SourceConfig,
    template_path: &Path,
    options: &SyncOptions,
) -> Result<FanoutSummary> {
    let spec = M::SPEC;
    let started = Instant::now();
    let template = Template::parse(spec, template_path)?;
    if options.selection != Selection::All {
        return Err(partition_error(
            spec,
            format!(
                "`--partition` and `--shard` cannot be used with a capture mapping: its one \
                 replication slot carries the changes of every partition; run `data-sync sync \
                 --mapping {} --target '{template}'` for all of them",
                spec.name
            ),
        ));
    }
    let path = state_path(&template, spec);
    crate::target::create_parent(&path)?;
    let connection = crate::target::open(&path)?;
    let target_error = target_error(&path);
    {
        let open = Open::begin(&connection).map_err(&target_error)?;
        state::ensure(&connection).map_err(&target_error)?;
        position::ensure(&connection).map_err(&target_error)?;
        open.commit().map_err(&target_error)?;
    }
    let stored = position::load(&connection, spec.name).map_err(&target_error)?;
    let members = [member::member::<M>()];
    let started_at = state::now();
    let params = crate::filter::identity(spec.source.filter.as_ref(), &options.params);
    let (mut session, stored, first) = match stored {
        Some(stored) if stored.position.is_some() && !options.full => {
            let session = open_session(source, &members, &stored.slot, options)?;
            (session, stored, None)
        }
        stored => {
            let slot_name = super::slot_name_of(spec, None);
            let mut session = open_session(source, &members, &slot_name, options)?;
            check_identity(&mut session, spec)?;
            // A slot of an earlier first run (killed, failed, or `--full`) starts over.
            if let Some(old) = &stored {
                slot::drop_slot(&mut session.client, spec, &old.slot)?;
                if old.owns_publication {
                    slot::drop_publication(&mut session.client, spec, &old.publication)?;
                }
            }
            let (publication, owns_publication) =
                super::group_publication(&mut session, &slot_name)?;
            let mut capture = CaptureState {
                slot: slot_name.clone(),
                publication,
                owns_publication,
                position: None,
            };
            // Named before it exists, so that a killed run's slot is dropped by the next.
            {
                let open = Open::begin(&connection).map_err(&target_error)?;
                state::record(
                    &connection,
                    &running_state(spec, params.clone(), &started_at, 0),
                )
                .map_err(&target_error)?;
                position::record_slot(&connection, spec.name, &capture).map_err(&target_error)?;
                open.commit().map_err(&target_error)?;
            }
            // Every transaction that commits after the slot's consistent point is
            // decoded; the copy's snapshot is taken after it, and the drain below
            // replays onto the copy what committed in between.
            let consistent = slot::create_slot(&mut session.client, spec, &slot_name)?;
            let mut copy_options = options.clone();
            copy_options.full = true;
            let copied = crate::sync::fanout::fanout::<M>(source, template_path, &copy_options)?;
            if copied.failures().count() > 0 {
                // The position stays unset: the next run copies again.
                return Ok(copied);
            }
            capture.position = Some(consistent);
            let open = Open::begin(&connection).map_err(&target_error)?;
            position::record_position(&connection, spec.name, consistent).map_err(&target_error)?;
            open.commit().map_err(&target_error)?;
            (session, capture, Some(copied))
        }
    };
    check_identity(&mut session, spec)?;
    let mut drained = Drained::start(&mut session, &stored)?;
    let upto = slot::current_position(&mut session.client, spec)?;
    slot::wait_flushed(&mut session.client, spec, upto)?;
    let mut outcomes: BTreeMap<PathBuf, PartitionOutcome> = BTreeMap::new();
    let mut rows_read = 0;
    loop {
        let (messages, end, changes) = drain_batch(
            &mut session,
            &template,
            &stored,
            drained.committed,
            upto,
            &params,
            &started_at,
            &mut outcomes,
        )?;
        rows_read += changes;
        if outcomes.values().any(|outcome| outcome.error.is_some()) {
            break;
        }
        if end > drained.committed {
            let open = Open::begin(&connection).map_err(&target_error)?;
            if !position::move_position(&connection, spec.name, drained.committed, end)
                .map_err(&target_error)?
            {
                return Err(Error::ConcurrentRun {
                    mapping: spec.name.to_owned(),
                });
            }
            open.commit().map_err(&target_error)?;
            drained.committed = end;
            // Only after every file and the state file committed.
            drained.confirm(&mut session, &stored.slot)?;
        }
        crate::sync::signal::check(spec)?;
        if messages < u64::try_from(BATCH_MESSAGES).unwrap_or(0) {
            break;
        }
    }
    drained.move_restart_point(&mut session, &stored.slot);
    let failed = outcomes.values().any(|outcome| outcome.error.is_some());
    {
        let mut done = running_state(spec, params, &started_at, rows_read);
        done.finished_at = Some(state::now());
        done.last_outcome = if failed { "error" } else { "ok" }.to_owned();
        state::record(&connection, &done).map_err(&target_error)?;
    }
    let mut summary = first.unwrap_or_else(|| FanoutSummary {
        mapping: spec.name.to_owned(),
        mode: "capture".to_owned(),
        rows_read: 0,
        partitions: Vec::new(),
        stale: Vec::new(),
        seconds: 0.0,
    });
    summary.rows_read += rows_read;
    for (path, outcome) in outcomes {
        match summary
            .partitions
            .iter_mut()
            .find(|partition| partition.path.as_deref() == Some(path.as_path()))
        {
            Some(partition) => {
                partition.rows += outcome.rows;
                partition.deleted += outcome.deleted;
                partition.error = outcome.error;
            }
            None => summary.partitions.push(outcome),
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Refuses a source table whose changes do not carry the old row: an update that
/// moves a row and a delete are routed by the old row's partition value.
fn check_identity(session: &mut Session, spec: &MappingSpec) -> Result<()> {
    let (_, identity, _) = slot::table_identity(&mut session.client, spec)?;
    if identity != "f" {
        return Err(Error::Capture {
            mapping: spec.name.to_owned(),
            message: format!(
                "a capture mapping with `partition_by` routes deletes and moved rows by the old \
                 row's partition value, which PostgreSQL sends only with `REPLICA IDENTITY \
                 FULL`: run `ALTER TABLE {} REPLICA IDENTITY FULL`",
                spec.source.display_name()
            ),
        });
    }
    Ok(())
}

/// What one change does to one file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Apply the change as it is (insert, update in place, delete).
    AsIs,
    /// The row left this file: delete its old row.
    Leave,
    /// The row entered this file: insert its new row.
    Enter,
}

/// How a change finds its file.
struct Route<'a> {
    spec: &'static MappingSpec,
    template: &'a Template,
    ty: &'a tokio_postgres::types::Type,
    column: &'static str,
    /// The partition column's position in the relation's tuples, once described.
    index: Option<usize>,
}

impl Route<'_> {
    /// The index in `files` of the file of `tuple`'s partition value, added there
    /// when new.
    fn file(&self, tuple: &Tuple<'_>, files: &mut Vec<(PathBuf, String)>) -> Result<usize> {
        let spec = self.spec;
        let column = self.column;
        let index = self.index.ok_or_else(|| Error::Capture {
            mapping: spec.name.to_owned(),
            message: "the server sent a change before describing the table".to_owned(),
        })?;
        let raw = match tuple.0.get(index) {
            Some(Value::Binary(raw)) => *raw,
            _ => {
                return Err(partition_error(
                    spec,
                    format!(
                        "a change of `{}` has no value of the partition column `{column}` (NULL, \
                         or not sent); every row needs one",
                        spec.source.display_name()
                    ),
                ));
            }
        };
        let text = partition::text_form(self.ty, raw).ok_or_else(|| {
            partition_error(spec, format!("`{column}` has a type without a text form"))
        })?;
        let path = self.template.path(&text);
        Ok(match files.iter().position(|(known, _)| *known == path) {
            Some(index) => index,
            None => {
                files.push((path, String::from_utf8_lossy(&text).into_owned()));
                files.len() - 1
            }
        })
    }

    /// The whole old row of an update or delete.
    fn old<'t, 'o>(&self, old: Option<&'o pgoutput::OldTuple<'t>>) -> Result<&'o Tuple<'t>> {
        match old {
            Some(pgoutput::OldTuple::Full(tuple)) => Ok(tuple),
            _ => Err(Error::Capture {
                mapping: self.spec.name.to_owned(),
                message: format!(
                    "a change of `{}` came without its old row: run `ALTER TABLE {} REPLICA \
                     IDENTITY FULL`",
                    self.spec.source.display_name(),
                    self.spec.source.display_name()
                ),
            }),
        }
    }
}

/// Reads one batch of whole source transactions committed from `from` up to
/// `upto` and applies it file by file; returns the messages read, the position
/// the batch reaches, and the changes routed. Each file's outcome is merged into
/// `outcomes`.
#[allow(clippy::too_many_arguments)]
fn drain_batch(
    session: &mut Session,
    template: &Template,
    stored: &CaptureState,
    from: Lsn,
    upto: Lsn,
    params: &Option<String>,
    started_at: &str,
    outcomes: &mut BTreeMap<PathBuf, PartitionOutcome>,
) -> Result<(u64, Lsn, u64)> {
    let table = &session.tables[0];
    let spec = table.member.spec();
    let field = spec
        .source
        .partition_by
        .ok_or_else(|| partition_error(spec, "the mapping has no `partition_by`".to_owned()))?;
    let column = spec.source.columns[field].name;
    let ty = table
        .types
        .as_ref()
        .map(|types| types[field].clone())
        .ok_or_else(|| Error::Capture {
            mapping: spec.name.to_owned(),
            message: format!(
                "the source table `{}` no longer has the mapping's columns",
                spec.source.display_name()
            ),
        })?;
    let protocol_error = |error: pgoutput::ProtocolError| Error::Capture {
        mapping: spec.name.to_owned(),
        message: error.to_string(),
    };
    // The batch's messages, and per message the files it goes to.
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut routes: Vec<Vec<(usize, Action)>> = Vec::new();
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut position_of_column: Option<usize> = None;
    let mut skip = true;
    let mut end = from;
    let mut changes = 0u64;
    let relation_id = table.table;
    let messages = slot::peek(
        &mut session.client,
        spec,
        &stored.slot,
        &stored.publication,
        upto,
        BATCH_MESSAGES,
        &mut |bytes| {
            let message = pgoutput::decode(bytes).map_err(protocol_error)?;
            let mut to: Vec<(usize, Action)> = Vec::new();
            let route = Route {
                spec,
                template,
                ty: &ty,
                column,
                index: position_of_column,
            };
            match &message {
                Message::Begin { final_lsn, .. } => {
                    skip = *final_lsn < from || *final_lsn >= upto;
                }
                Message::Relation(relation) if relation.id == relation_id => {
                    position_of_column = relation
                        .columns
                        .iter()
                        .position(|relation_column| relation_column.name == column);
                }
                Message::Insert { relation, new } if !skip && *relation == relation_id => {
                    to.push((route.file(new, &mut files)?, Action::AsIs));
                    changes += 1;
                }
                Message::Update { relation, old, new } if !skip && *relation == relation_id => {
                    let old = route.old(old.as_ref())?;
                    let before = route.file(old, &mut files)?;
                    let after = route.file(new, &mut files)?;
                    if before == after {
                        to.push((after, Action::AsIs));
                    } else {
                        to.push((before, Action::Leave));
                        to.push((after, Action::Enter));
                    }
                    changes += 1;
                }
                Message::Delete { relation, old } if !skip && *relation == relation_id => {
                    let old = route.old(Some(old))?;
                    to.push((route.file(old, &mut files)?, Action::AsIs));
                    changes += 1;
                }
                Message::Truncate { relations, .. }
                    if !skip && relations.contains(&relation_id) =>
                {
                    return Err(partition_error(
                        spec,
                        format!(
                            "`{}` was truncated, which cannot be routed to the partition files; \
                             run `data-sync sync --mapping {} --full --target '{template}'` to \
                             copy every file again",
                            spec.source.display_name(),
                            spec.name
                        ),
                    ));
                }
                Message::Commit { end_lsn, .. } if !skip => {
                    end = *end_lsn;
                    skip = true;
                }
                _ => {}
            }
            batch.push(bytes.to_vec());
            routes.push(to);
            Ok(())
        },
    )?;
    // File by file: its changes and its position in one SQLite transaction.
    for (index, (path, value)) in files.iter().enumerate() {
        let result = apply_file(
            session, stored, path, index, &batch, &routes, from, end, upto, params, started_at,
        );
        let outcome = outcomes
            .entry(path.clone())
            .or_insert_with(|| PartitionOutcome {
                value: Some(value.clone()),
                path: Some(path.clone()),
                rows: 0,
                deleted: 0,
                error: None,
            });
        match result {
            Ok((written, deleted)) => {
                outcome.rows += written;
                outcome.deleted += deleted;
            }
            Err(error) => outcome.error = Some(error),
        }
    }
    Ok((messages, end, changes))
}

/// Applies the changes of `batch` routed to file `file` (`path`), skipping the
/// transactions before the file's own position, and stores the position `end` in
/// the same transaction; the rows written and deleted.
#[allow(clippy::too_many_arguments)]
fn apply_file(
    session: &mut Session,
    stored: &CaptureState,
    path: &Path,
    file: usize,
    batch: &[Vec<u8>],
    routes: &[Vec<(usize, Action)>],
    from: Lsn,
    end: Lsn,
    upto: Lsn,
    params: &Option<String>,
    started_at: &str,
) -> Result<(u64, u64)> {
    let table = &session.tables[0];
    let spec = table.member.spec();
    let target_error = target_error(path);
    crate::target::create_parent(path)?;
    let connection: Connection = crate::target::open(path)?;
    let open = Open::begin(&connection).map_err(&target_error)?;
    state::ensure(&connection).map_err(&target_error)?;
    position::ensure(&connection).map_err(&target_error)?;
    crate::target::ensure_tables(&connection, spec).map_err(&target_error)??;
    let known = state::load(&connection, spec.name).map_err(&target_error)?;
    if known.is_none() {
        // A new partition: its file starts with the rows the changes bring.
        state::record(
            &connection,
            &running_state(spec, params.clone(), started_at, 0),
        )
        .map_err(&target_error)?;
    }
    // A position of another slot (an earlier copy, `drop-slot`) says nothing of
    // this one's changes.
    let own = position::load(&connection, spec.name)
        .map_err(&target_error)?
        .filter(|own| own.slot == stored.slot)
        .and_then(|own| own.position)
        .unwrap_or(Lsn::ZERO);
    let mut applier = table.member.applier(
        &connection,
        table.table,
        table.types.clone(),
        table.filter.clone(),
    );
    let protocol_error = |error: pgoutput::ProtocolError| Error::Capture {
        mapping: spec.name.to_owned(),
        message: error.to_string(),
    };
    let mut skip = true;
    for (bytes, to) in batch.iter().zip(routes) {
        let message = pgoutput::decode(bytes).map_err(protocol_error)?;
        match &message {
            Message::Begin { final_lsn, .. } => {
                // Applied already to this file by an earlier run, or not this batch's.
                skip = *final_lsn < from.max(own) || *final_lsn >= upto;
            }
            Message::Relation(relation) => {
                if applier.is_table(relation.id) {
                    applier.relation(relation, skip)?;
                }
            }
            _ if skip => {}
            _ => {
                for &(target, action) in to {
                    if target != file {
                        continue;
                    }
                    match (&message, action) {
                        (Message::Insert { new, .. }, _) => applier.insert(new)?,
                        (Message::Update { old, new, .. }, Action::AsIs) => {
                            applier.update(old.as_ref(), new)?;
                        }
                        (Message::Update { old: Some(old), .. }, Action::Leave) => {
                            applier.delete(old)?;
                        }
                        (Message::Update { new, .. }, _) => applier.insert(new)?,
                        (Message::Delete { old, .. }, _) => applier.delete(old)?,
                        _ => {}
                    }
                }
            }
        }
    }
    applier.refetch(&mut session.client)?;
    let written: u64 = applier.written().iter().copied().max().unwrap_or(0);
    let deleted: u64 = applier.deleted().iter().copied().max().unwrap_or(0);
    let changes = applier.changes();
    drop(applier);
    let reached = CaptureState {
        position: Some(end.max(own)),
        ..stored.clone()
    };
    position::record_slot(&connection, spec.name, &reached).map_err(&target_error)?;
    let mut done = running_state(spec, params.clone(), started_at, changes);
    done.finished_at = Some(state::now());
    done.last_outcome = "ok".to_owned();
    state::record(&connection, &done).map_err(&target_error)?;
    open.commit().map_err(&target_error)?;
    Ok((written, deleted))
}
