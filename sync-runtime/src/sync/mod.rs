//! Running a mapping: [`sync`] opens the target, picks a full run ([`full`]) or an
//! incremental one ([`incremental`]), retries it after a transient source fault
//! ([`retry`]), stops it on a signal ([`signal`]), and records how it ended.

pub(crate) mod batch;
pub(crate) mod capture;
pub(crate) mod fanout;
pub(crate) mod fanout_changes;
pub(crate) mod full;
pub(crate) mod group;
pub(crate) mod incremental;
pub(crate) mod key_merge;
pub(crate) mod migrate;
pub(crate) mod retry;
pub(crate) mod routes;
pub(crate) mod signal;
pub(crate) mod watermark;

use std::path::Path;
use std::time::Instant;

use crate::Mapping;
use crate::error::{Error, Result};
use crate::options::SyncOptions;
use crate::source::config::SourceConfig;
use crate::spec::MappingSpec;
use crate::summary::{Summary, TargetSummary};
use crate::target::{self, state, target_error};

/// Syncs mapping `M` from `source` into the SQLite file `target`: every target table
/// is replaced by the source's rows in one transaction, so a reader sees the old
/// contents or the new, never a mix, and a failure leaves the old contents intact.
///
/// # Errors
///
/// Any [`Error`]: connection, source, type, value or target problems. Nothing of a
/// failed run is committed.
pub fn sync<M: Mapping>(
    source: &SourceConfig,
    target: &Path,
    options: &SyncOptions,
) -> Result<Summary> {
    let spec = M::SPEC;
    // A partitioned mapping writes one file per value: `target` is their template.
    if spec.source.partition_by.is_some() {
        // A capture mapping's changes come from one slot, routed to the files.
        let result = if spec.source.capture.is_some() {
            capture::fanout::sync::<M>(source, target, options)
        } else {
            fanout::fanout::<M>(source, target, options)
        }
        .and_then(|summary| summary.into_result(spec));
        options.observer().finish(spec, result.as_ref());
        return result;
    }
    // A missing or unreadable filter parameter stops the run before it touches the
    // source or the target.
    if let Err(error) = options.filter_settings(spec) {
        let result = Err(error);
        log_run(spec, None, 0.0, &result);
        return result;
    }
    let mut connection = match target::open(target) {
        Ok(connection) => connection,
        Err(error) => {
            let result = Err(error);
            log_run(spec, None, 0.0, &result);
            return result;
        }
    };
    sync_on::<M>(source, &mut connection, target, options, None)
}

/// [`sync`] on an open target connection, which may be inside the transaction of a
/// group of linked mappings (see `group`): then the run's transactions are
/// savepoints of it. `snapshot` is an exported source snapshot to read.
pub(crate) fn sync_on<M: Mapping>(
    source: &SourceConfig,
    connection: &mut rusqlite::Connection,
    target: &Path,
    options: &SyncOptions,
    snapshot: Option<&str>,
) -> Result<Summary> {
    let spec = M::SPEC;
    // A partitioned mapping is not synced with others in one file's transaction.
    if spec.source.partition_by.is_some() {
        return Err(Error::Partition {
            mapping: spec.name.to_owned(),
            message: "a partitioned mapping cannot be synced in one transaction with \
                      mappings it references or that reference it"
                .to_owned(),
        });
    }
    let started = Instant::now();
    let started_at = state::now();
    let progress = options.observer();
    let mut mode = None;
    if let Err(error) = options.filter_settings(spec) {
        let result = Err(error);
        log_run(spec, None, started.elapsed().as_secs_f64(), &result);
        return result;
    }
    // The attempt is on record before its own transaction begins, so that a run
    // killed before it commits shows as `running` (issue 19).
    if let Err(error) =
        state::record_attempt(connection, spec.name, &started_at).map_err(target_error(target))
    {
        let result = Err(error);
        log_run(spec, None, started.elapsed().as_secs_f64(), &result);
        return result;
    }
    // One attempt. A transient source fault runs it again (see `retry`): an
    // incremental run resumes from its last committed batch, a full run starts over.
    let mut attempt = || {
        signal::check(spec)?;
        if spec.source.capture.is_some() {
            mode = Some("capture");
            progress.start(spec, "capture");
            return capture::sync::<M>(source, connection, target, options, &started_at);
        }
        incremental::previous::<M>(connection, target, options).and_then(|previous| {
            let run_mode = if previous.is_some() {
                "incremental"
            } else {
                "full"
            };
            mode = Some(run_mode);
            progress.start(spec, run_mode);
            match previous {
                Some((previous, migrations)) if !migrations.is_empty() => migrate::sync::<M>(
                    source,
                    connection,
                    target,
                    options,
                    &previous,
                    migrations,
                    snapshot,
                    &started_at,
                ),
                Some((previous, _)) => {
                    let mut client = source.take_connection()?;
                    client.import_snapshot(snapshot);
                    let cancel = signal::cancel_on_signal(source, &client);
                    let result = incremental::sync::<M>(
                        &mut client,
                        connection,
                        target,
                        options,
                        &previous,
                        &started_at,
                    );
                    drop(cancel);
                    if result.is_ok() {
                        source.give_back(client);
                    }
                    result
                }
                None => {
                    let mut client = source.take_connection()?;
                    client.import_snapshot(snapshot);
                    let cancel = signal::cancel_on_signal(source, &client);
                    let result =
                        full::sync::<M>(&mut client, connection, target, options, &started_at);
                    drop(cancel);
                    if result.is_ok() {
                        source.give_back(client);
                    }
                    result.map(|(rows_read, rows_written)| Summary {
                        mapping: spec.name.to_owned(),
                        mode: "full".to_owned(),
                        rows_read,
                        targets: spec
                            .targets
                            .iter()
                            .map(|target| TargetSummary {
                                table: target.name.to_owned(),
                                rows: rows_written,
                                deleted: 0,
                            })
                            .collect(),
                        seconds: 0.0,
                        migrated: Vec::new(),
                    })
                }
            }
        })
    };
    // A timeout is told apart from other source errors before retry sees it.
    let read_timeout = source.read_timeout();
    let result = retry::run(spec, &options.retry, &mut || {
        attempt().map_err(|error| error.with_timeouts(read_timeout))
    })
    .map_err(|error| crate::source::guard::classify(spec, error));
    // A run a signal stopped reports that, whatever error the stop caused.
    let result = signal::classify(spec, result);
    // A read-only, full or broken file refuses every row: a fault of the target.
    let result = result.map_err(|error| error.with_file_faults_of(target));
    let seconds = started.elapsed().as_secs_f64();
    let result = result.map(|mut summary| {
        summary.seconds = seconds;
        summary
    });
    if let Err(error) = &result {
        // The run's own transaction is gone.
        state::record_failure(connection, [spec.name], error);
    }
    log_run(spec, mode, seconds, &result);
    progress.finish(spec, result.as_ref());
    result
}

/// Syncs capture mappings linked by references (`members`, parents first) from one
/// replication slot into `target`: every source transaction is applied as one
/// SQLite transaction (or with others, whole), whatever members' tables it
/// touches, with foreign-key checks at each commit (see `capture`). The outcome of
/// each member, in order; one failing fails them all.
pub(crate) fn sync_capture_group(
    members: &[&crate::Registered],
    source: &SourceConfig,
    target: &Path,
    options: &SyncOptions,
) -> Vec<(&'static str, Result<Summary>)> {
    let specs: Vec<&'static MappingSpec> = members.iter().map(|member| member.spec).collect();
    let leader = specs[0];
    let started = Instant::now();
    let started_at = state::now();
    let progress = options.observer();
    let result = (|| {
        for spec in &specs {
            options.filter_settings(spec)?;
        }
        let mut connection = target::open(target)?;
        for spec in &specs {
            state::record_attempt(&mut connection, spec.name, &started_at)
                .map_err(target_error(target))?;
            progress.start(spec, "capture");
        }
        let captured: Vec<&'static dyn capture::member::Member> = members
            .iter()
            .map(|member| member.capture_member())
            .collect();
        let read_timeout = source.read_timeout();
        let result = retry::run(leader, &options.retry, &mut || {
            signal::check(leader)?;
            capture::sync_group(
                &captured,
                source,
                &mut connection,
                target,
                options,
                &started_at,
            )
            .map_err(|error| error.with_timeouts(read_timeout))
        })
        .map_err(|error| crate::source::guard::classify(leader, error));
        let result =
            signal::classify(leader, result).map_err(|error| error.with_file_faults_of(target));
        if let Err(error) = &result {
            state::record_failure(&connection, specs.iter().map(|spec| spec.name), error);
        }
        result
    })();
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(summaries) => specs
            .iter()
            .zip(summaries)
            .map(|(spec, mut summary)| {
                summary.seconds = seconds;
                let result = Ok(summary);
                log_run(spec, Some("capture"), seconds, &result);
                progress.finish(spec, result.as_ref());
                (spec.name, result)
            })
            .collect(),
        Err(error) => {
            let names: Vec<&'static str> = specs.iter().map(|spec| spec.name).collect();
            let results = group::fail_all(&names, 0, error);
            for ((_, result), spec) in results.iter().zip(&specs) {
                log_run(spec, Some("capture"), seconds, result);
                progress.finish(spec, result.as_ref());
            }
            results
        }
    }
}

/// Follows capture mappings linked by references (`members`, parents first) from
/// one replication slot into `target` until SIGINT or SIGTERM, as [`follow`] does
/// one mapping: each source transaction is applied as one SQLite transaction,
/// whatever members' tables it touches. A summary per member, in order.
///
/// # Errors
///
/// As [`follow`]; [`Error::Capture`] for a member without `capture: log`.
pub fn follow_group(
    members: &[crate::Registered],
    source: &SourceConfig,
    target: &Path,
    options: &SyncOptions,
) -> Result<Vec<Summary>> {
    let Some(leader) = members.first().map(|member| member.spec) else {
        return Ok(Vec::new());
    };
    for member in members {
        if member.spec.source.capture.is_none() {
            return Err(Error::Capture {
                mapping: member.spec.name.to_owned(),
                message: "`follow` needs a mapping with `capture: log`".to_owned(),
            });
        }
        if member.spec.source.partition_by.is_some() {
            return Err(capture::fanout::no_follow(member.spec, target));
        }
    }
    let started = Instant::now();
    let started_at = state::now();
    let progress = options.observer();
    let mut connection = target::open(target)?;
    for member in members {
        progress.start(member.spec, "follow");
    }
    let captured: Vec<&'static dyn capture::member::Member> = members
        .iter()
        .map(|member| member.capture_member())
        .collect();
    let result = capture::follow_group(
        &captured,
        source,
        &mut connection,
        target,
        options,
        &started_at,
    )
    .map(|mut summaries| {
        for summary in &mut summaries {
            summary.seconds = started.elapsed().as_secs_f64();
        }
        summaries
    });
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(summaries) => {
            for (member, summary) in members.iter().zip(summaries) {
                let result = Ok(summary.clone());
                log_run(member.spec, Some("follow"), seconds, &result);
                progress.finish(member.spec, result.as_ref());
            }
        }
        Err(error) => {
            let names = members.iter().map(|member| member.spec.name);
            state::record_failure(&connection, names, error);
            let failed: Result<Summary> = Err(Error::Capture {
                mapping: leader.name.to_owned(),
                message: error.to_string(),
            });
            log_run(leader, Some("follow"), seconds, &failed);
            for member in members {
                progress.finish(member.spec, failed.as_ref());
            }
        }
    }
    result
}

/// Follows the changes of capture mapping `M` (`capture: log`) into `target` until
/// SIGINT or SIGTERM: a first copy when the target has none, then every change as
/// it commits (as soon as the source has flushed it), each applied once. A signal
/// ends it cleanly; the position of the last applied transaction is recorded. A
/// dropped connection or a restarting server is retried with `options.retry`.
///
/// # Errors
///
/// [`Error::Capture`] for a mapping without `capture: log`, a missing prerequisite,
/// a busy or invalidated slot, or a source table that no longer matches; any error
/// of [`sync`].
pub fn follow<M: Mapping>(
    source: &SourceConfig,
    target: &Path,
    options: &SyncOptions,
) -> Result<Summary> {
    let spec = M::SPEC;
    if spec.source.capture.is_none() {
        return Err(Error::Capture {
            mapping: spec.name.to_owned(),
            message: "`follow` needs a mapping with `capture: log`".to_owned(),
        });
    }
    if spec.source.partition_by.is_some() {
        return Err(capture::fanout::no_follow(spec, target));
    }
    let started = Instant::now();
    let started_at = state::now();
    let progress = options.observer();
    let mut connection = target::open(target)?;
    progress.start(spec, "follow");
    let result = capture::follow::<M>(source, &mut connection, target, options, &started_at).map(
        |mut summary| {
            summary.seconds = started.elapsed().as_secs_f64();
            summary
        },
    );
    if let Err(error) = &result {
        state::record_failure(&connection, [spec.name], error);
    }
    log_run(
        spec,
        Some("follow"),
        started.elapsed().as_secs_f64(),
        &result,
    );
    progress.finish(spec, result.as_ref());
    result
}

/// Drops the replication slot of capture mapping `M` for the target file `target`
/// (and the publication data-sync created for it), so that an abandoned target no
/// longer holds WAL on the source; the next `sync` copies again. Returns whether a
/// slot was dropped.
///
/// # Errors
///
/// The target file cannot be read, the source cannot be reached, or the slot is
/// in use ([`Error::Capture`]).
pub fn drop_slot<M: Mapping>(source: &SourceConfig, target: &Path) -> Result<bool> {
    capture::drop_slot::<M>(source, target)
}

/// Logs the run's one line, at `info`: mapping, mode, rows read, rows per target,
/// duration and outcome. A failure is logged at `info` too, since the caller reports
/// the error itself (the command line prints it once, as `error: ...`).
fn log_run(spec: &MappingSpec, mode: Option<&str>, seconds: f64, result: &Result<Summary>) {
    let mode = mode.unwrap_or("unknown");
    match result {
        Ok(summary) => {
            let targets = summary
                .targets
                .iter()
                .map(|target| {
                    if target.deleted == 0 {
                        format!("{}={}", target.table, target.rows)
                    } else {
                        format!("{}={}(-{})", target.table, target.rows, target.deleted)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            tracing::info!(
                mapping = spec.name,
                mode,
                rows = summary.rows_read,
                targets = targets.as_str(),
                seconds,
                outcome = "ok",
                "sync finished"
            );
        }
        Err(error) => {
            tracing::info!(
                mapping = spec.name,
                mode,
                seconds,
                outcome = "error",
                error = %error,
                "sync failed"
            );
        }
    }
}
