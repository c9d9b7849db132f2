//! The mapping-specific half of change capture behind trait objects, so that one
//! run can apply the changes of several mappings' tables read from one slot: the
//! capture mappings linked by references across mappings (a group, see
//! `docs/capture.md`). A mapping captured alone is a group of one.

use std::marker::PhantomData;
use std::path::Path;

use rusqlite::Connection;
use tokio_postgres::types::Type;

use super::apply::Applier;
use super::pgoutput::{OldTuple, Relation, Tuple};
use crate::Mapping;
use crate::error::Result;
use crate::options::SyncOptions;
use crate::source::client::{Client, Snapshot};
use crate::spec::MappingSpec;

/// What the capture run needs of one mapping's generated code.
pub(crate) trait Member: Sync {
    /// The mapping.
    fn spec(&self) -> &'static MappingSpec;

    /// Checks that the mapping's fields read the source columns of `types`.
    fn check_types(&self, types: &[Type]) -> Result<()>;

    /// Replaces the mapping's target rows by the snapshot's, in the caller's
    /// transaction; the rows read and those a soft-delete column left out.
    fn copy(
        &self,
        snapshot: &mut Snapshot<'_>,
        connection: &Connection,
        path: &Path,
        types: &[Type],
        options: &SyncOptions,
    ) -> Result<(u64, u64)>;

    /// An applier of the changes of the mapping's source table (OID `table`).
    fn applier<'c>(
        &self,
        connection: &'c Connection,
        table: u32,
        live: Option<Vec<Type>>,
        filter: Vec<(&'static str, String)>,
    ) -> Box<dyn Apply + 'c>;
}

/// Applies the decoded changes of one mapping's source table; see [`Applier`].
pub(crate) trait Apply {
    /// The mapping.
    fn spec(&self) -> &'static MappingSpec;
    /// Whether `relation` is the mapping's source table.
    fn is_table(&self, relation: u32) -> bool;
    /// See [`Applier::relation`].
    fn relation(&mut self, relation: &Relation<'_>, defer: bool) -> Result<()>;
    /// See [`Applier::insert`].
    fn insert(&mut self, new: &Tuple<'_>) -> Result<()>;
    /// See [`Applier::update`].
    fn update(&mut self, old: Option<&OldTuple<'_>>, new: &Tuple<'_>) -> Result<()>;
    /// See [`Applier::delete`].
    fn delete(&mut self, old: &OldTuple<'_>) -> Result<()>;
    /// See [`Applier::truncate`].
    fn truncate(&mut self) -> Result<()>;
    /// Changes applied so far.
    fn changes(&self) -> u64;
    /// Rows written and deleted per target, in `spec().targets` order.
    fn written(&self) -> &[u64];
    /// See [`Apply::written`].
    fn deleted(&self) -> &[u64];
    /// Whether rows wait to be read again from the source.
    fn waits_for_source(&self) -> bool;
    /// Reads again the rows that wait for it, and writes them.
    fn refetch(&mut self, client: &mut Client) -> Result<()>;
}

/// [`Member`] of mapping `M`.
struct Typed<M>(PhantomData<fn() -> M>);

/// Mapping `M` as a [`Member`].
pub(crate) fn member<M: Mapping>() -> &'static dyn Member {
    &Typed::<M>(PhantomData)
}

impl<M: Mapping> Member for Typed<M> {
    fn spec(&self) -> &'static MappingSpec {
        M::SPEC
    }

    fn check_types(&self, types: &[Type]) -> Result<()> {
        crate::source::decode::check_types::<M>(types)
    }

    fn copy(
        &self,
        snapshot: &mut Snapshot<'_>,
        connection: &Connection,
        path: &Path,
        types: &[Type],
        options: &SyncOptions,
    ) -> Result<(u64, u64)> {
        super::copy::<M>(snapshot, connection, path, types, options)
    }

    fn applier<'c>(
        &self,
        connection: &'c Connection,
        table: u32,
        live: Option<Vec<Type>>,
        filter: Vec<(&'static str, String)>,
    ) -> Box<dyn Apply + 'c> {
        Box::new(Applier::<M>::new(connection, table, live, filter))
    }
}

impl<M: Mapping> Apply for Applier<'_, M> {
    fn spec(&self) -> &'static MappingSpec {
        M::SPEC
    }

    fn is_table(&self, relation: u32) -> bool {
        Applier::is_table(self, relation)
    }

    fn relation(&mut self, relation: &Relation<'_>, defer: bool) -> Result<()> {
        Applier::relation(self, relation, defer)
    }

    fn insert(&mut self, new: &Tuple<'_>) -> Result<()> {
        Applier::insert(self, new)
    }

    fn update(&mut self, old: Option<&OldTuple<'_>>, new: &Tuple<'_>) -> Result<()> {
        Applier::update(self, old, new)
    }

    fn delete(&mut self, old: &OldTuple<'_>) -> Result<()> {
        Applier::delete(self, old)
    }

    fn truncate(&mut self) -> Result<()> {
        Applier::truncate(self)
    }

    fn changes(&self) -> u64 {
        self.changes
    }

    fn written(&self) -> &[u64] {
        &self.written
    }

    fn deleted(&self) -> &[u64] {
        &self.deleted
    }

    fn waits_for_source(&self) -> bool {
        !self.refetch.is_empty()
    }

    fn refetch(&mut self, client: &mut Client) -> Result<()> {
        if self.refetch.is_empty() {
            return Ok(());
        }
        let spec = M::SPEC;
        let key_types = self.key_types().to_vec();
        let filter = self.filter.clone();
        Applier::refetch(self, &mut |key, each| {
            super::slot::fetch_row(client, spec, &filter, &key_types, key, each)
        })
    }
}
