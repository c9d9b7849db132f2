//! `data-sync drop-slot`: releases the replication slot (and the publication
//! data-sync created) of capture mappings for the target file.

use std::path::Path;

use sync_runtime::{Registered, SourceConfig};

use crate::args::MappingArgs;
use crate::command::follow::capture_mappings;
use crate::error::Result;
use crate::output::outln;

/// The options of `data-sync drop-slot`.
#[derive(Debug, clap::Args)]
pub(crate) struct DropSlotArgs {
    #[command(flatten)]
    pub(crate) selection: MappingArgs,
}

/// Drops the slot of every capture mapping of `mappings` in `target`.
pub(crate) fn run(
    mappings: &[&Registered],
    source: &SourceConfig,
    target: &Path,
    args: &DropSlotArgs,
) -> Result<()> {
    for mapping in capture_mappings(mappings, !args.selection.mappings.is_empty())? {
        let name = mapping.spec.name;
        if mapping.drop_slot(source, target)? {
            outln!("{name}: replication slot dropped; the next sync copies the table again")?;
        } else {
            outln!("{name}: no replication slot for this target")?;
        }
    }
    Ok(())
}
