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
    let mappings = capture_mappings(mappings, !args.selection.mappings.is_empty())?;
    // Capture mappings linked by references share one slot, which dropping it for
    // one forgets for all: each mapping's slot is read first.
    let mut slots = Vec::with_capacity(mappings.len());
    for mapping in &mappings {
        slots.push(
            mapping
                .slot_status(source, target)?
                .map(|status| status.slot),
        );
    }
    let mut dropped: Vec<(&str, &str)> = Vec::new();
    for (mapping, slot) in mappings.iter().zip(&slots) {
        let name = mapping.spec.name;
        if let Some(slot) = slot
            && let Some((_, by)) = dropped.iter().find(|(known, _)| known == slot)
        {
            outln!(
                "{name}: replication slot dropped with `{by}` (linked capture mappings read one slot); the next sync copies the table again"
            )?;
            continue;
        }
        if mapping.drop_slot(source, target)? {
            outln!("{name}: replication slot dropped; the next sync copies the table again")?;
            dropped.extend(slot.as_deref().map(|slot| (slot, name)));
        } else {
            outln!("{name}: no replication slot for this target")?;
        }
    }
    Ok(())
}
