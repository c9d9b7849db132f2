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
//! does. A drain reads the slot in large decoding calls of whole source
//! transactions, written to a spill file as they arrive, routes each change by
//! the partition value of its new row (an insert, an update) and of its old row
//! (an update that moved the row, a delete: `REPLICA IDENTITY FULL` sends it), and
//! applies the call in batches of `--batch-size` changes, each batch file by file,
//! each file's changes and its position in one SQLite transaction; a file skips
//! the transactions that committed before its own position (applied by an earlier
//! run killed between two files). Only when every file committed does the state
//! file store the batch's end; the slot is confirmed after each call. A file that
//! fails stops the run after its batch and leaves both where they were, so the
//! next run sends its changes again. Why replaying onto the copy is exact is argued in
//! `docs/capture.md`; the per-file positions in `docs/fanout.md`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
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

/// Messages per `pg_logical_slot_peek_binary_changes` call (whole transactions: the
/// server stops at the first commit past it). Each call decodes the WAL again from
/// the slot's restart point, so calls are few and large; their messages go to the
/// spill file, not to memory, and are applied in batches of `--batch-size` changes.
const PEEK_MESSAGES: i32 = 100_000;

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
    let mut spill = Spill::open(&path)?;
    let batch_size = options.batch_size.max(1) as u64;
    'calls: loop {
        let call = read_call(
            &mut session,
            &template,
            &stored,
            drained.committed,
            upto,
            batch_size,
            &mut spill,
        )?;
        for batch in &call.batches {
            rows_read += batch.changes;
            apply_batch(
                &mut session,
                &stored,
                &call,
                batch,
                &mut spill,
                drained.committed,
                &params,
                &started_at,
                &mut outcomes,
            )?;
            if outcomes.values().any(|outcome| outcome.error.is_some()) {
                break 'calls;
            }
            if batch.end > drained.committed {
                let open = Open::begin(&connection).map_err(&target_error)?;
                if !position::move_position(&connection, spec.name, drained.committed, batch.end)
                    .map_err(&target_error)?
                {
                    return Err(Error::ConcurrentRun {
                        mapping: spec.name.to_owned(),
                    });
                }
                open.commit().map_err(&target_error)?;
                drained.committed = batch.end;
            }
            crate::sync::signal::check(spec)?;
        }
        // Only after every file and the state file committed; once per call, since
        // each confirm decodes the WAL from the slot's restart point.
        drained.confirm(&mut session, &stored.slot)?;
        crate::sync::signal::check(spec)?;
        if call.messages < u64::try_from(PEEK_MESSAGES).unwrap_or(0) {
            break;
        }
    }
    // The batches committed before a file failed.
    drained.confirm(&mut session, &stored.slot)?;
    spill.remove();
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
    require_full_identity(spec, &identity)
}

/// [`Error::Capture`] unless `identity` (`pg_class.relreplident`) is `f`, `FULL`;
/// `data-sync check` reports it too.
pub(crate) fn require_full_identity(spec: &MappingSpec, identity: &str) -> Result<()> {
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

/// What one message does to one file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    /// The table's description, before the file's first change after it.
    Relation,
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
    fn file(&self, tuple: &Tuple<'_>, files: &mut Files) -> Result<usize> {
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
        Ok(match files.index.get(&path) {
            Some(&index) => index,
            None => {
                files.index.insert(path.clone(), files.files.len());
                files
                    .files
                    .push((path, String::from_utf8_lossy(&text).into_owned()));
                files.files.len() - 1
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

/// The files a call's changes go to: path and partition value, in the order
/// first met.
#[derive(Default)]
struct Files {
    files: Vec<(PathBuf, String)>,
    index: HashMap<PathBuf, usize>,
}

/// The messages of one decoding call, written out as they arrive, so that memory
/// holds only where each change is and which file it goes to (about 40 bytes a
/// change, whatever the rows' width). It sits beside the state file,
/// `.data-sync-capture-<mapping>.spill`, and is deleted as soon as it is open
/// where the system allows (Unix), so a killed run leaves none; else at the end
/// of the run, and the next run overwrites a leftover.
struct Spill {
    path: PathBuf,
    writer: BufWriter<File>,
    written: u64,
    buffer: Vec<u8>,
}

impl Spill {
    fn open(state: &Path) -> Result<Self> {
        let path = state.with_extension("spill");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|error| spill_error(&path, error))?;
        // Unix keeps an open file that has no name; elsewhere it is removed at the end.
        let _ = std::fs::remove_file(&path);
        Ok(Spill {
            path,
            writer: BufWriter::with_capacity(1 << 16, file),
            written: 0,
            buffer: Vec::new(),
        })
    }

    /// Empties it for the next call.
    fn clear(&mut self) -> Result<()> {
        let path = &self.path;
        self.writer
            .flush()
            .and_then(|()| self.writer.get_ref().set_len(0))
            .and_then(|()| self.writer.seek(SeekFrom::Start(0)).map(|_| ()))
            .map_err(|error| spill_error(path, error))?;
        self.written = 0;
        Ok(())
    }

    /// Writes `bytes`; where they are.
    fn push(&mut self, bytes: &[u8]) -> Result<(u64, u32)> {
        let offset = self.written;
        let len = u32::try_from(bytes.len()).map_err(|_| {
            spill_error(
                &self.path,
                std::io::Error::other("a message of 4 GiB or more"),
            )
        })?;
        self.writer
            .write_all(bytes)
            .map_err(|error| spill_error(&self.path, error))?;
        self.written += u64::from(len);
        Ok((offset, len))
    }

    /// Makes everything pushed readable.
    fn finish(&mut self) -> Result<()> {
        self.writer
            .flush()
            .map_err(|error| spill_error(&self.path, error))
    }

    /// The bytes pushed at `offset`, `len` long (after [`Spill::finish`]).
    fn read(&mut self, offset: u64, len: u32) -> Result<&[u8]> {
        let path = &self.path;
        self.buffer.resize(len as usize, 0);
        let file = self.writer.get_mut();
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut self.buffer))
            .map_err(|error| spill_error(path, error))?;
        Ok(&self.buffer)
    }

    /// Deletes the file where it still has its name.
    fn remove(self) {
        drop(self.writer);
        let _ = std::fs::remove_file(&self.path);
    }
}

fn spill_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// One message routed to one file: where its bytes are in the spill file.
struct Entry {
    offset: u64,
    len: u32,
    file: u32,
    action: Action,
    /// Where the message's source transaction committed.
    final_lsn: Lsn,
}

/// Whole source transactions applied together: each file they touch gets their
/// changes and `end` in one SQLite transaction.
struct Batch {
    /// Its entries in [`Call::entries`].
    entries: std::ops::Range<usize>,
    /// Where its last transaction ended.
    end: Lsn,
    /// The changes of the mapping's table it holds.
    changes: u64,
}

/// What one decoding call read.
struct Call {
    messages: u64,
    files: Files,
    entries: Vec<Entry>,
    batches: Vec<Batch>,
}

/// Reads the whole source transactions committed from `from` up to `upto` (about
/// [`PEEK_MESSAGES`] messages) into `spill`, routes each change to its files, and
/// cuts them into batches of at least `batch_size` changes (where there are that
/// many).
#[allow(clippy::too_many_arguments)]
fn read_call(
    session: &mut Session,
    template: &Template,
    stored: &CaptureState,
    from: Lsn,
    upto: Lsn,
    batch_size: u64,
    spill: &mut Spill,
) -> Result<Call> {
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
    spill.clear()?;
    let mut files = Files::default();
    let mut entries: Vec<Entry> = Vec::new();
    let mut batches: Vec<Batch> = Vec::new();
    // The table's last description (where it is in the spill file, a count of
    // those seen), and per file the count it last got in the current batch.
    let mut relation: Option<(u64, u32, u32)> = None;
    let mut described: Vec<Option<(usize, u32)>> = Vec::new();
    let mut position_of_column: Option<usize> = None;
    let mut skip = true;
    let mut final_lsn = Lsn::ZERO;
    let mut end = from;
    let (mut changes, mut batch_changes, mut batch_start) = (0u64, 0u64, 0usize);
    let relation_id = table.table;
    let messages = slot::peek(
        &mut session.client,
        spec,
        &stored.slot,
        &stored.publication,
        upto,
        PEEK_MESSAGES,
        &mut |bytes| {
            // The changes of a transaction applied already are not even decoded.
            if skip && matches!(bytes.first(), Some(b'I' | b'U' | b'D' | b'T' | b'C')) {
                return Ok(());
            }
            let message = pgoutput::decode(bytes).map_err(protocol_error)?;
            let route = Route {
                spec,
                template,
                ty: &ty,
                column,
                index: position_of_column,
            };
            let mut to: [Option<(usize, Action)>; 2] = [None, None];
            match &message {
                Message::Begin {
                    final_lsn: commit, ..
                } => {
                    skip = *commit < from || *commit >= upto;
                    final_lsn = *commit;
                }
                Message::Relation(described_relation) if described_relation.id == relation_id => {
                    position_of_column = described_relation
                        .columns
                        .iter()
                        .position(|relation_column| relation_column.name == column);
                    let (offset, len) = spill.push(bytes)?;
                    let count = relation.map_or(0, |(_, _, count)| count + 1);
                    relation = Some((offset, len, count));
                }
                Message::Insert { relation, new } if !skip && *relation == relation_id => {
                    to[0] = Some((route.file(new, &mut files)?, Action::AsIs));
                }
                Message::Update { relation, old, new } if !skip && *relation == relation_id => {
                    let old = route.old(old.as_ref())?;
                    let before = route.file(old, &mut files)?;
                    let after = route.file(new, &mut files)?;
                    if before == after {
                        to[0] = Some((after, Action::AsIs));
                    } else {
                        to = [Some((before, Action::Leave)), Some((after, Action::Enter))];
                    }
                }
                Message::Delete { relation, old } if !skip && *relation == relation_id => {
                    let old = route.old(Some(old))?;
                    to[0] = Some((route.file(old, &mut files)?, Action::AsIs));
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
                    if batch_changes >= batch_size {
                        batches.push(Batch {
                            entries: batch_start..entries.len(),
                            end,
                            changes: batch_changes,
                        });
                        (batch_changes, batch_start) = (0, entries.len());
                    }
                }
                _ => {}
            }
            if to[0].is_none() {
                return Ok(());
            }
            changes += 1;
            batch_changes += 1;
            let (offset, len) = spill.push(bytes)?;
            let batch = batches.len();
            for (file, action) in to.into_iter().flatten() {
                if described.len() <= file {
                    described.resize(file + 1, None);
                }
                let (relation_offset, relation_len, count) =
                    relation.ok_or_else(|| Error::Capture {
                        mapping: spec.name.to_owned(),
                        message: "the server sent a change before describing the table".to_owned(),
                    })?;
                let file_index = u32::try_from(file).unwrap_or(u32::MAX);
                // Each file's applier of a batch is told the table's shape before its
                // first change, and again after every new description.
                if described[file] != Some((batch, count)) {
                    described[file] = Some((batch, count));
                    entries.push(Entry {
                        offset: relation_offset,
                        len: relation_len,
                        file: file_index,
                        action: Action::Relation,
                        final_lsn,
                    });
                }
                entries.push(Entry {
                    offset,
                    len,
                    file: file_index,
                    action,
                    final_lsn,
                });
            }
            Ok(())
        },
    )?;
    spill.finish()?;
    let last = batches.last().map_or(from, |batch| batch.end);
    if end > last || batch_start < entries.len() {
        batches.push(Batch {
            entries: batch_start..entries.len(),
            end,
            changes: batch_changes,
        });
    }
    debug_assert_eq!(
        changes,
        batches.iter().map(|batch| batch.changes).sum::<u64>()
    );
    Ok(Call {
        messages,
        files,
        entries,
        batches,
    })
}

/// Applies `batch` file by file, each file's changes and its position in one SQLite
/// transaction; merges each file's outcome into `outcomes`.
#[allow(clippy::too_many_arguments)]
fn apply_batch(
    session: &mut Session,
    stored: &CaptureState,
    call: &Call,
    batch: &Batch,
    spill: &mut Spill,
    from: Lsn,
    params: &Option<String>,
    started_at: &str,
    outcomes: &mut BTreeMap<PathBuf, PartitionOutcome>,
) -> Result<()> {
    // The batch's entries file by file, each file's in log order.
    let mut order: Vec<usize> = batch.entries.clone().collect();
    order.sort_by_key(|&entry| call.entries[entry].file);
    for entries in order.chunk_by(|&a, &b| call.entries[a].file == call.entries[b].file) {
        let file = call.entries[entries[0]].file as usize;
        let (path, value) = &call.files.files[file];
        let result = apply_file(
            session,
            stored,
            path,
            spill,
            entries.iter().map(|&entry| &call.entries[entry]),
            from,
            batch.end,
            params,
            started_at,
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
    Ok(())
}

/// Applies `entries` (one file's, of one batch, in log order) to the file `path`,
/// skipping the transactions before the file's own position, and stores the
/// position `end` in the same transaction; the rows written and deleted.
#[allow(clippy::too_many_arguments)]
fn apply_file<'e>(
    session: &mut Session,
    stored: &CaptureState,
    path: &Path,
    spill: &mut Spill,
    entries: impl Iterator<Item = &'e Entry>,
    from: Lsn,
    end: Lsn,
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
    for entry in entries {
        // Applied already to this file by an earlier run.
        let skip = entry.final_lsn < from.max(own);
        let bytes = spill.read(entry.offset, entry.len)?;
        match (
            pgoutput::decode(bytes).map_err(protocol_error)?,
            entry.action,
        ) {
            (Message::Relation(relation), _) => applier.relation(&relation, skip)?,
            _ if skip => {}
            (Message::Insert { new, .. }, _) => applier.insert(&new)?,
            (Message::Update { old, new, .. }, Action::AsIs) => {
                applier.update(old.as_ref(), &new)?;
            }
            (Message::Update { old: Some(old), .. }, Action::Leave) => applier.delete(&old)?,
            (Message::Update { new, .. }, _) => applier.insert(&new)?,
            (Message::Delete { old, .. }, _) => applier.delete(&old)?,
            _ => {}
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
