//! A run over several mappings ([`sync_all`]): every mapping reads one source
//! snapshot, exported once (`pg_export_snapshot()`) and imported by each reader
//! (`SET TRANSACTION SNAPSHOT`); mappings linked by references across mappings are
//! synced in one SQLite transaction, with foreign-key checks deferred to its
//! commit, so that no committed state of the target breaks a foreign key.

use std::path::Path;

use rusqlite::Connection;

use crate::catalogue;
use crate::error::{Error, Result};
use crate::options::SyncOptions;
use crate::registered::Registered;
use crate::source::config::SourceConfig;
use crate::spec::MappingSpec;
use crate::summary::Summary;
use crate::target::{self, state, target_error};

/// A source transaction that exported its snapshot; it stays open (and so the
/// snapshot importable) until dropped, when its connection goes back to `source`.
pub(crate) struct Exported<'a> {
    client: Option<crate::source::client::Client>,
    /// The snapshot's name, for `SET TRANSACTION SNAPSHOT`.
    pub(crate) id: String,
    source: &'a SourceConfig,
}

impl Drop for Exported<'_> {
    fn drop(&mut self) {
        // The transaction only read: a connection that cannot end it is closed.
        if let Some(mut client) = self.client.take()
            && client.batch_execute("COMMIT").is_ok()
        {
            self.source.give_back(client);
        }
    }
}

/// Opens a `REPEATABLE READ READ ONLY` transaction on the source and exports its
/// snapshot.
pub(crate) fn export(source: &SourceConfig) -> Result<Exported<'_>> {
    let mut client = source.take_connection()?;
    let source_error = |source| Error::Source {
        mapping: "(all)".to_owned(),
        table: "pg_export_snapshot()".to_owned(),
        source,
    };
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .map_err(source_error)?;
    let id: String = client
        .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
        .map_err(source_error)?
        .get(0);
    Ok(Exported {
        client: Some(client),
        id,
        source,
    })
}

/// Syncs `mappings` (in the order [`plan`](crate::plan) gives, parents first) of
/// `catalogue` into `target`, reporting each mapping's outcome to `on_outcome` as it
/// is known: `Some(result)`, or `None` for a mapping not tried after a run a signal
/// stopped.
///
/// Every mapping without `capture: log` reads one snapshot of the source, exported
/// once. A mapping that references another mapping's target, or whose targets
/// another mapping references, is synced together with the linked mappings of the
/// run, in one SQLite transaction (an incremental run then commits once, not per
/// batch): foreign-key checks are deferred to its commit, and a commit that would
/// leave a row without its parent fails with [`Error::ForeignKey`] and commits
/// nothing. One failing member fails the group; the others report
/// [`Error::NotCommitted`].
pub fn sync_all(
    catalogue: &[Registered],
    mappings: &[Registered],
    source: &SourceConfig,
    target: &Path,
    options: &SyncOptions,
    on_outcome: &mut dyn FnMut(&'static str, Option<Result<Summary>>),
) {
    let readers = mappings
        .iter()
        .filter(|mapping| mapping.spec.source.capture.is_none())
        .count();
    // One reader needs no shared snapshot. An export that fails (a source that
    // cannot be reached) leaves each mapping to report its own error.
    let exported = if readers > 1 {
        export(source)
            .inspect_err(|error| tracing::warn!(error = %error, "cannot export a snapshot"))
            .ok()
    } else {
        None
    };
    let snapshot = exported.as_ref().map(|exported| exported.id.as_str());
    let mut done = vec![false; mappings.len()];
    let mut interrupted = false;
    for index in 0..mappings.len() {
        if done[index] {
            continue;
        }
        let group = group_of(catalogue, mappings, index);
        for &member in &group {
            done[member] = true;
        }
        if interrupted {
            for &member in &group {
                on_outcome(mappings[member].spec.name, None);
            }
            continue;
        }
        let linked = group.len() > 1 || catalogue::is_linked(catalogue, mappings[index].spec);
        if !linked {
            for &member in &group {
                let mapping = &mappings[member];
                let result = mapping.sync_with(source, target, options, snapshot);
                interrupted |= matches!(&result, Err(error) if error.kind() == "interrupted");
                on_outcome(mapping.spec.name, Some(result));
            }
            continue;
        }
        let members: Vec<&Registered> = group.iter().map(|&member| &mappings[member]).collect();
        let captured = members
            .iter()
            .filter(|member| member.spec.source.capture.is_some())
            .count();
        let results = if captured == members.len() {
            crate::sync::sync_capture_group(&members, source, target, options)
        } else if captured > 0 {
            let names: Vec<&'static str> = members.iter().map(|member| member.spec.name).collect();
            let failed = members
                .iter()
                .position(|member| member.spec.source.capture.is_some())
                .unwrap_or(0);
            fail_all(&names, failed, mixed_group(&members, failed))
        } else {
            sync_group(&members, source, target, options, snapshot)
        };
        for (name, result) in results {
            interrupted |= matches!(&result, Err(error) if error.kind() == "interrupted");
            on_outcome(name, Some(result));
        }
    }
}

/// The error of a group of linked mappings some of which read a change log and
/// some not: `members[failed]` is the first with `capture: log`.
fn mixed_group(members: &[&Registered], failed: usize) -> Error {
    let captured = members[failed].spec.name;
    let other = members
        .iter()
        .find(|member| member.spec.source.capture.is_none())
        .map_or("", |member| member.spec.name);
    Error::Capture {
        mapping: captured.to_owned(),
        message: format!(
            "it reads the change log (`capture: log`) and is linked by references to `{other}`, \
             which does not: mappings linked by references are synced together, so they must \
             all have `capture: log` or none; change one of them (then `cargo xtask gen` and \
             rebuild), nothing was synced"
        ),
    }
}

/// The indices of `mappings` synced with `mappings[index]`: the mappings of the run
/// linked to it by references, directly or not, in run order.
fn group_of(catalogue: &[Registered], mappings: &[Registered], index: usize) -> Vec<usize> {
    let linked = |a: &Registered, b: &Registered| {
        let parents_of_a = catalogue::parents(catalogue, a.spec);
        let parents_of_b = catalogue::parents(catalogue, b.spec);
        parents_of_a.iter().any(|p| p.spec.name == b.spec.name)
            || parents_of_b.iter().any(|p| p.spec.name == a.spec.name)
    };
    let mut group = vec![index];
    let mut next = 0;
    while next < group.len() {
        let current = &mappings[group[next]];
        for (other, mapping) in mappings.iter().enumerate() {
            if !group.contains(&other) && linked(current, mapping) {
                group.push(other);
            }
        }
        next += 1;
    }
    group.sort_unstable();
    group
}

/// Syncs `members` in one SQLite transaction with deferred foreign keys; the
/// outcome of each member, in order.
fn sync_group(
    members: &[&Registered],
    source: &SourceConfig,
    target: &Path,
    options: &SyncOptions,
    snapshot: Option<&str>,
) -> Vec<(&'static str, Result<Summary>)> {
    let names: Vec<&'static str> = members.iter().map(|member| member.spec.name).collect();
    let target_error = target_error(target);
    let mut connection = match target::open(target) {
        Ok(connection) => connection,
        Err(error) => return fail_all(&names, 0, error),
    };
    if let Err(error) = connection
        .execute_batch("BEGIN IMMEDIATE; PRAGMA defer_foreign_keys = ON")
        .map_err(target_error)
    {
        return fail_all(&names, 0, error);
    }
    let mut summaries = Vec::with_capacity(members.len());
    let mut failure = None;
    for (index, member) in members.iter().enumerate() {
        match member.sync_on(source, &mut connection, target, options, snapshot) {
            Ok(summary) => summaries.push(summary),
            Err(error) => {
                failure = Some((index, error));
                break;
            }
        }
    }
    if failure.is_none() {
        failure = match connection.execute_batch("COMMIT") {
            Ok(()) => None,
            Err(error) => Some(match broken_reference(&connection, members) {
                Ok(Some((index, message))) => (
                    index,
                    Error::ForeignKey {
                        mapping: names[index].to_owned(),
                        message,
                    },
                ),
                _ => (0, target_error(error)),
            }),
        };
    }
    let Some((failed, error)) = failure else {
        return names
            .into_iter()
            .zip(summaries.into_iter().map(Ok))
            .collect();
    };
    if !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    // The members' own records went with the rollback.
    state::record_failure(&connection, names.iter().copied(), &error);
    tracing::info!(
        mappings = names.join(" ").as_str(),
        outcome = "error",
        error = %error,
        "sync of linked mappings failed"
    );
    fail_all(&names, failed, error)
}

/// `error` for member `failed`, [`Error::NotCommitted`] for the others.
pub(crate) fn fail_all(
    names: &[&'static str],
    failed: usize,
    error: Error,
) -> Vec<(&'static str, Result<Summary>)> {
    let mut error = Some(error);
    names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let result = if index == failed {
                Err(error.take().expect("one failed member"))
            } else {
                Err(Error::NotCommitted {
                    mapping: (*name).to_owned(),
                    failed: names[failed].to_owned(),
                })
            };
            (*name, result)
        })
        .collect()
}

/// The first row of the target file whose foreign key finds no parent, as the index
/// of the member that holds it (0 for a table of no member) and a message; inside
/// the failed transaction.
fn broken_reference(
    connection: &Connection,
    members: &[&Registered],
) -> rusqlite::Result<Option<(usize, String)>> {
    let specs: Vec<&MappingSpec> = members.iter().map(|member| member.spec).collect();
    Ok(
        target::broken_row(connection, &specs)?.map(|(mapping, message)| {
            let member = members
                .iter()
                .position(|member| member.spec.name == mapping)
                .unwrap_or(0);
            (member, message)
        }),
    )
}
