//! `data-sync list`: the compiled-in mappings, their sources and targets.

use sync_runtime::{MappingSpec, Registered};

use crate::args::JsonArgs;
use crate::error::Result;
use crate::output::{outln, print_json};

/// The options of `data-sync list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) output: JsonArgs,
}

/// Prints every mapping of `catalogue`.
pub(crate) fn run(catalogue: &[Registered], args: &ListArgs) -> Result<()> {
    if args.output.json {
        let mappings: Vec<_> = catalogue
            .iter()
            .map(|mapping| list_json(mapping.spec))
            .collect();
        return print_json(&mappings, None);
    }
    for mapping in catalogue {
        let targets: Vec<&str> = mapping
            .spec
            .targets
            .iter()
            .map(|target| target.name)
            .collect();
        outln!(
            "{}: {} -> {}",
            mapping.spec.name,
            mapping.spec.source.display_name(),
            targets.join(", ")
        )?;
    }
    Ok(())
}

/// One mapping of `list --json`.
fn list_json(spec: &MappingSpec) -> serde_json::Value {
    let source = &spec.source;
    let column = |index: usize| source.columns[index].name;
    serde_json::json!({
        "name": spec.name,
        "struct": spec.struct_name,
        "source": source.display_name(),
        "key": source.key.iter().map(|&index| column(index)).collect::<Vec<_>>(),
        "cursor": source.cursor.map(column),
        "soft_delete": source.soft_delete.map(column),
        "targets": spec.targets.iter().map(|target| target.name).collect::<Vec<_>>(),
    })
}
