//! The guards every full and incremental run has, for capture runs too: the first
//! copy refuses to empty a populated target without `--allow-empty`
//! ([`Error::WouldEmpty`]); a drain refuses a source other than the one the target
//! was built from ([`Error::OtherSource`], stored in `_data_sync_state.source`); and
//! a role that row-level security would filter is refused before the first copy
//! creates anything ([`Error::RowSecurity`], through the run's classification of the
//! source error).

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::source::client::Client;
use crate::source::guard::SourceIdentity;
use crate::spec::MappingSpec;
use crate::target::{state, target_error};

fn source_error(spec: &MappingSpec) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        source,
    }
}

/// The identity of the source behind `client`.
pub(crate) fn identity(client: &mut Client, spec: &MappingSpec) -> Result<SourceIdentity> {
    crate::source::identity(client, spec).map_err(source_error(spec))
}

/// Checks that the source behind `client` is the one the target file was built
/// from, as every incremental run does.
///
/// # Errors
///
/// [`Error::OtherSource`] naming both.
pub(crate) fn check_source(
    client: &mut Client,
    spec: &MappingSpec,
    connection: &Connection,
    path: &Path,
) -> Result<()> {
    let identity = identity(client, spec)?;
    let stored = state::load_source(connection, spec.name).map_err(target_error(path))?;
    if let Some(stored) = stored.as_deref().and_then(SourceIdentity::from_json)
        && identity.differs(&stored)
    {
        return Err(identity.other_source_error(spec, &stored));
    }
    Ok(())
}

/// Reads nothing, but as the first copy reads (in a snapshot with row-level security
/// off and the filter's settings): a role a policy would filter gets the run's error
/// before the copy drops or creates anything.
pub(crate) fn check_readable(
    client: &mut Client,
    spec: &MappingSpec,
    filter: &[(&str, String)],
) -> Result<()> {
    let mut snapshot = client.snapshot(filter).map_err(source_error(spec))?;
    snapshot
        .prepare(spec.source.select)
        .map_err(source_error(spec))?;
    snapshot.commit().map_err(source_error(spec))
}

/// Refuses a first copy that wrote no row into targets that held rows, unless
/// `allow_empty`, as a full sync does.
///
/// # Errors
///
/// [`Error::WouldEmpty`].
pub(crate) fn check_not_emptied(
    spec: &MappingSpec,
    had_rows: bool,
    written: u64,
    allow_empty: bool,
) -> Result<()> {
    if had_rows && written == 0 && !allow_empty {
        return Err(Error::WouldEmpty {
            mapping: spec.name.to_owned(),
            table: spec.source.display_name(),
            run: "the first copy of change capture",
        });
    }
    Ok(())
}
