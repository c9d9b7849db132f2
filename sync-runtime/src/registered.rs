//! [`Registered`]: a compiled-in mapping as a catalogue lists it, its generic
//! entry points (sync, verify, the type check of `check`) behind plain function
//! pointers.

use std::path::Path;

use postgres::types::Type;

use crate::Mapping;
use crate::error::Result;
use crate::options::SyncOptions;
use crate::source::config::SourceConfig;
use crate::spec::MappingSpec;
use crate::summary::Summary;
use crate::sync::sync;
use crate::verify::{Verification, verify};

/// A compiled-in mapping, as the catalogue registers it for the command line.
#[derive(Clone, Copy)]
pub struct Registered {
    /// The mapping's static description.
    pub spec: &'static MappingSpec,
    sync: fn(&SourceConfig, &Path, &SyncOptions) -> Result<Summary>,
    accepts: fn(usize, &Type) -> bool,
    verify: fn(&SourceConfig, &Path, usize) -> Result<Verification>,
}

impl Registered {
    /// Registers mapping `M`.
    pub const fn of<M: Mapping>() -> Registered {
        Registered {
            spec: M::SPEC,
            sync: sync::<M>,
            accepts: M::accepts,
            verify: verify::<M>,
        }
    }

    /// Whether field `field` can decode a source column of type `ty`
    /// (`data-sync check`).
    pub(crate) fn accepts(&self, field: usize, ty: &Type) -> bool {
        (self.accepts)(field, ty)
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
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("mapping", &self.spec.name)
            .finish()
    }
}
