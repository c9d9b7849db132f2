//! [`Registered`]: a compiled-in mapping as a catalogue lists it, its generic
//! entry points (sync, verify, repair, the type check of `check`) behind plain function
//! pointers.

use std::path::Path;

use tokio_postgres::types::Type;

use crate::Mapping;
use crate::error::Result;
use crate::options::SyncOptions;
use crate::partition::Selection;
use crate::source::config::SourceConfig;
use crate::spec::MappingSpec;
use crate::summary::Summary;
use crate::sync::capture::SlotStatus;
use crate::sync::{drop_slot, follow, sync};
use crate::verify::{FanoutVerification, Verification, repair, verify, verify_fanout};

/// A compiled-in mapping, as the catalogue registers it for the command line.
#[derive(Clone, Copy)]
pub struct Registered {
    /// The mapping's static description.
    pub spec: &'static MappingSpec,
    sync: fn(&SourceConfig, &Path, &SyncOptions) -> Result<Summary>,
    sync_on: fn(
        &SourceConfig,
        &mut rusqlite::Connection,
        &Path,
        &SyncOptions,
        Option<&str>,
    ) -> Result<Summary>,
    follow: fn(&SourceConfig, &Path, &SyncOptions) -> Result<Summary>,
    drop_slot: fn(&SourceConfig, &Path) -> Result<bool>,
    slot_status: fn(&SourceConfig, &Path) -> Result<Option<SlotStatus>>,
    capture_member: fn() -> &'static dyn crate::sync::capture::member::Member,
    accepts: fn(usize, &Type) -> bool,
    verify: fn(&SourceConfig, &Path, usize) -> Result<Verification>,
    repair: fn(&SourceConfig, &Path, usize) -> Result<Verification>,
    verify_fanout: fn(&SourceConfig, &Path, &Selection, usize) -> Result<FanoutVerification>,
}

impl Registered {
    /// Registers mapping `M`.
    pub const fn of<M: Mapping>() -> Registered {
        Registered {
            spec: M::SPEC,
            sync: sync::<M>,
            sync_on: crate::sync::sync_on::<M>,
            follow: follow::<M>,
            drop_slot: drop_slot::<M>,
            slot_status: crate::sync::capture::slot_status::<M>,
            capture_member: crate::sync::capture::member::member::<M>,
            accepts: M::accepts,
            verify: verify::<M>,
            repair: repair::<M>,
            verify_fanout: verify_fanout::<M>,
        }
    }

    /// Whether field `field` can decode a source column of type `ty`
    /// (`data-sync check`).
    pub(crate) fn accepts(&self, field: usize, ty: &Type) -> bool {
        (self.accepts)(field, ty)
    }

    /// The mapping as a member of a group of capture mappings.
    pub(crate) fn capture_member(&self) -> &'static dyn crate::sync::capture::member::Member {
        (self.capture_member)()
    }

    /// Runs the mapping; see [`sync`].
    ///
    /// # Errors
    ///
    /// As [`sync`].
    pub fn sync(
        &self,
        source: &SourceConfig,
        target: &Path,
        options: &SyncOptions,
    ) -> Result<Summary> {
        (self.sync)(source, target, options)
    }

    /// [`Registered::sync`] reading the exported source snapshot `snapshot`, if any.
    pub(crate) fn sync_with(
        &self,
        source: &SourceConfig,
        target: &Path,
        options: &SyncOptions,
        snapshot: Option<&str>,
    ) -> Result<Summary> {
        // A partitioned mapping reads its own snapshot: each of its files stands
        // alone, and `target` is their template, not a file.
        if snapshot.is_none() || self.spec.source.partition_by.is_some() {
            return self.sync(source, target, options);
        }
        let mut connection = crate::target::open(target)?;
        (self.sync_on)(source, &mut connection, target, options, snapshot)
    }

    /// A run on an open target connection, maybe inside a group's transaction.
    pub(crate) fn sync_on(
        &self,
        source: &SourceConfig,
        connection: &mut rusqlite::Connection,
        target: &Path,
        options: &SyncOptions,
        snapshot: Option<&str>,
    ) -> Result<Summary> {
        (self.sync_on)(source, connection, target, options, snapshot)
    }

    /// Follows a capture mapping's changes until a signal; see [`follow`].
    ///
    /// # Errors
    ///
    /// As [`follow`].
    pub fn follow(
        &self,
        source: &SourceConfig,
        target: &Path,
        options: &SyncOptions,
    ) -> Result<Summary> {
        (self.follow)(source, target, options)
    }

    /// Drops a capture mapping's replication slot (and the publication data-sync
    /// created for it); see [`drop_slot`].
    ///
    /// # Errors
    ///
    /// As [`drop_slot`].
    pub fn drop_slot(&self, source: &SourceConfig, target: &Path) -> Result<bool> {
        (self.drop_slot)(source, target)
    }

    /// A capture mapping's slot as the source reports it; `None` for a mapping
    /// without one in `target`.
    ///
    /// # Errors
    ///
    /// The target file cannot be read, or the source cannot be reached.
    pub fn slot_status(&self, source: &SourceConfig, target: &Path) -> Result<Option<SlotStatus>> {
        (self.slot_status)(source, target)
    }

    /// Compares the mapping's targets with the source; see
    /// [`verify`](crate::verify()).
    ///
    /// # Errors
    ///
    /// As [`verify`](crate::verify()).
    pub fn verify(
        &self,
        source: &SourceConfig,
        target: &Path,
        max_keys: usize,
    ) -> Result<Verification> {
        (self.verify)(source, target, max_keys)
            .map_err(|error| error.with_timeouts(source.read_timeout()))
    }

    /// Compares the mapping's targets with the source and repairs what differs; see
    /// [`repair`](crate::repair()).
    ///
    /// # Errors
    ///
    /// As [`repair`](crate::repair()).
    pub fn repair(
        &self,
        source: &SourceConfig,
        target: &Path,
        max_keys: usize,
    ) -> Result<Verification> {
        (self.repair)(source, target, max_keys)
            .map_err(|error| error.with_timeouts(source.read_timeout()))
    }
}

impl Registered {
    /// Compares the files of a fan-out template with the source; see
    /// [`verify_fanout`](crate::verify_fanout()).
    ///
    /// # Errors
    ///
    /// As [`verify_fanout`](crate::verify_fanout()).
    pub fn verify_fanout(
        &self,
        source: &SourceConfig,
        template: &Path,
        selection: &Selection,
        max_keys: usize,
    ) -> Result<FanoutVerification> {
        (self.verify_fanout)(source, template, selection, max_keys)
            .map_err(|error| error.with_timeouts(source.read_timeout()))
    }
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("mapping", &self.spec.name)
            .finish()
    }
}
