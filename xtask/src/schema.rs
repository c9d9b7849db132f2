//! `cargo xtask schema [--check]`: snapshot, from `pg_catalog`, every source table a
//! mapping names (every `mappings/*.yaml` and every `#[derive(Mapping)]` struct of
//! `mappings/src/custom/*.rs`) into `mappings/schema/<schema>.<table>.json`, which
//! the derive and `cargo xtask gen` read offline (sqlx's `.sqlx/`).
//!
//! The source is `DATA_SYNC_SOURCE` (a libpq URL or key=value string; `PG*` variables,
//! `.pgpass` and `sslmode` work as for `data-sync`). Mappings are read from their
//! files, not from the compiled catalogue, so that a snapshot can be refreshed while
//! a stale one keeps the catalogue from compiling.
//!
//! `--check` writes nothing and fails, listing each difference, when a snapshot is
//! missing, stale (drift of the live database) or names no mapping's table.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sync_macros_core::snapshot::{self, Table};
use sync_macros_core::{Ctxt, Mapping};
use sync_runtime::{SourceConfig, TableSchema};

use crate::r#gen::{Mode, ensure_file_contents, list};

/// The command to bring the snapshot up to date, for messages.
const COMMAND: &str = "cargo xtask schema";

/// Where snapshot files go, relative to the workspace root.
pub const SCHEMA: &str = "mappings/schema";

/// `cargo xtask schema [--check]`.
pub fn main(args: &[String]) -> Result<()> {
    let mode = match args {
        [] => Mode::Overwrite,
        [flag] if flag == "--check" => Mode::Check,
        _ => bail!("usage: {COMMAND} [--check]"),
    };
    let source = std::env::var("DATA_SYNC_SOURCE").unwrap_or_default();
    let mut client = SourceConfig::parse(&source)?.connect()?;
    run(&crate::project_root(), &mut client, mode)
}

/// A source table as a mapping spells it, and the first file that names it.
type Sources = BTreeMap<(Option<String>, String), String>;

/// Snapshots (or, in [`Mode::Check`], compares) every source table the mappings of
/// the workspace at `root` name, read through `client`.
pub fn run(root: &Path, client: &mut sync_runtime::Client, mode: Mode) -> Result<()> {
    let sources = sources(root)?;
    let mut problems = Vec::new();
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    for ((schema, table), named_by) in &sources {
        let qualified = match schema {
            Some(schema) => format!("{schema}.{table}"),
            None => table.clone(),
        };
        let shown = format!("{SCHEMA}/{}", snapshot::file_name(schema.as_deref(), table));
        let Some(live) = sync_runtime::describe_table(client, schema.as_deref(), table)
            .with_context(|| format!("reading `{qualified}` from pg_catalog"))?
        else {
            problems.push(format!(
                "{named_by}: source table `{qualified}` does not exist in the database"
            ));
            continue;
        };
        let live = from_live(live);
        if mode == Mode::Check {
            match fs::read_to_string(root.join(&shown)) {
                Err(_) => problems.push(format!("{shown} is missing; run `{COMMAND}`")),
                Ok(text) => match snapshot::from_json(&text) {
                    Err(error) => problems.push(format!("{shown}: {error}")),
                    Ok(old) => {
                        for difference in snapshot::differences(&old, &live) {
                            problems.push(format!("{shown}: `{qualified}` {difference}"));
                        }
                        if problems.is_empty() && text != snapshot::to_json(&live) {
                            problems.push(format!("{shown} is not formatted; run `{COMMAND}`"));
                        }
                    }
                },
            }
        }
        outputs.insert(shown, snapshot::to_json(&live));
    }
    for file in list(&root.join(SCHEMA), &["json"])? {
        let shown = format!("{SCHEMA}/{file}");
        if outputs.contains_key(&shown) {
            continue;
        }
        match mode {
            Mode::Check => problems.push(format!(
                "{shown} is the snapshot of no mapping's source table; run `{COMMAND}` to remove it"
            )),
            Mode::Overwrite => {
                fs::remove_file(root.join(&shown)).with_context(|| format!("removing {shown}"))?;
                eprintln!("removed {shown}");
            }
        }
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{problem}");
        }
        bail!(
            "{} difference{} between {SCHEMA} and the database; run `{COMMAND}`",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
    }
    if mode == Mode::Overwrite {
        for (shown, text) in &outputs {
            ensure_file_contents(root, Path::new(shown), text, mode)?;
        }
    }
    Ok(())
}

/// Every source table the mappings name: `mappings/*.yaml`, and the derives of
/// `mappings/src/custom/*.rs`.
fn sources(root: &Path) -> Result<Sources> {
    let mut sources = Sources::new();
    for file in list(&root.join("mappings"), &["yaml"])? {
        let shown = format!("mappings/{file}");
        let text =
            fs::read_to_string(root.join(&shown)).with_context(|| format!("reading {shown}"))?;
        let cx = Ctxt::new();
        let mut found = None;
        // The source is all this needs: the rest may not compile without a snapshot.
        let _ = Mapping::from_yaml_with(&cx, &shown, &text, &mut |source| {
            found = Some(key(source));
            None
        });
        let errors = cx.check().err().unwrap_or_default();
        let Some(found) = found else {
            for error in &errors {
                eprintln!("{error}");
            }
            bail!("{shown}: cannot read its `source`");
        };
        sources.entry(found).or_insert(shown);
    }
    for file in list(&root.join("mappings/src/custom"), &["rs"])? {
        let shown = format!("mappings/src/custom/{file}");
        let text =
            fs::read_to_string(root.join(&shown)).with_context(|| format!("reading {shown}"))?;
        let parsed = syn::parse_file(&text).with_context(|| format!("parsing {shown}"))?;
        for item in parsed.items {
            let syn::Item::Struct(item) = item else {
                continue;
            };
            let input = syn::DeriveInput::from(item);
            if !input.attrs.iter().any(|attr| attr.path().is_ident("sync")) {
                continue;
            }
            let cx = Ctxt::new();
            let mapping = Mapping::from_attrs(&cx, &input);
            // The derive reports the mapping's own errors when the crate compiles.
            let _ = cx.check();
            if let Some(mapping) = mapping {
                sources.entry(key(&mapping.source)).or_insert(shown.clone());
            }
        }
    }
    Ok(sources)
}

fn key(source: &sync_macros_core::model::Source) -> (Option<String>, String) {
    (
        source.schema.as_ref().map(|schema| schema.value.clone()),
        source.table.value.clone(),
    )
}

/// The snapshot of a table as `pg_catalog` described it.
pub fn from_live(live: TableSchema) -> Table {
    Table {
        columns: live
            .columns
            .into_iter()
            .map(|column| snapshot::Column {
                domain: column.domain,
                element_type: column.element_type,
                enum_labels: column.enum_labels,
                name: column.name,
                not_null: column.not_null,
                pg_type: column.pg_type,
            })
            .collect(),
        kind: live.kind,
        primary_key: live.primary_key,
        schema: live.schema,
        table: live.table,
        unique: live.unique,
        version: snapshot::VERSION,
    }
}

#[cfg(test)]
mod tests;
