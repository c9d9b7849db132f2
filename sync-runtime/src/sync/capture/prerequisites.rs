//! `data-sync check` for a capture mapping: what its runs need of the source
//! (`wal_level`, the role's `REPLICATION`, the publication or the rights to create
//! it, the replica identity) and, when the target file has one, that its slot exists
//! and is not invalidated. Each problem in the words of the run's own error.

use std::path::Path;

use super::position;
use super::slot;
use crate::error::{Error, Result};
use crate::source::client::Client;
use crate::spec::MappingSpec;
use crate::target::target_error;

/// Every capture prerequisite mapping `spec` misses on the source behind `client`
/// and for the target file `target` (not created when missing).
///
/// # Errors
///
/// A failed query on either side.
pub(crate) fn problems(
    spec: &MappingSpec,
    client: &mut Client,
    target: &Path,
) -> Result<Vec<String>> {
    let mut problems = slot::prerequisite_problems(client, spec)?;
    let stored = stored_capture(spec, target)?;
    // A missing table is told by the source check.
    if !slot::table_exists(client, spec)? {
        return Ok(problems);
    }
    let (_, identity, columns) = slot::table_identity(client, spec)?;
    problems.extend(message_of(slot::check_identity(spec, &identity, &columns))?);
    if spec.source.partition_by.is_some() {
        problems.extend(message_of(super::fanout::require_full_identity(
            spec, &identity,
        ))?);
    }
    match spec
        .source
        .capture
        .as_ref()
        .and_then(|capture| capture.publication)
    {
        Some(publication) => {
            problems.extend(message_of(slot::check_publication(
                client,
                spec,
                publication,
            ))?);
        }
        None => {
            // The publication the target's first copy created needs no rights now.
            let created = match &stored {
                Some(stored) => slot::publication_exists(client, spec, &stored.publication)?,
                None => false,
            };
            if !created {
                problems.extend(slot::publication_rights(client, spec)?);
            }
        }
    }
    if let Some(stored) = stored {
        let info = slot::slot_info(client, spec, &stored.slot)?;
        if let Err(error) = slot::check_slot(spec, &stored.slot, info.as_ref()) {
            problems.extend(message_of(Err(error))?);
        }
    }
    Ok(problems)
}

/// The message of a capture error; other errors stay errors.
fn message_of(result: Result<()>) -> Result<Option<String>> {
    match result {
        Ok(()) => Ok(None),
        Err(Error::Capture { message, .. }) => Ok(Some(message)),
        Err(error) => Err(error),
    }
}

/// What the target file stores of the mapping's slot, read without writing.
fn stored_capture(spec: &MappingSpec, target: &Path) -> Result<Option<position::CaptureState>> {
    if !target.exists() {
        return Ok(None);
    }
    let connection = crate::target::open_for_reading(target)?;
    position::load(&connection, spec.name).map_err(target_error(target))
}
