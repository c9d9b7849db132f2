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

/// The usage of `cargo xtask schema`.
const USAGE: &str = "usage: cargo xtask schema [--check] [--mapping NAME]... [--source URL]

Snapshot, from pg_catalog, the source table of every mapping (mappings/*.yaml and the
derives of mappings/src/custom/*.rs) into mappings/schema/<schema>.<table>.json, which
`cargo xtask gen` and the derive read offline.

  --check          write nothing; fail listing every snapshot that is missing or stale
  --mapping NAME   only this mapping's table (repeat for several); no snapshot is removed
  --source URL     the database (default: DATA_SYNC_SOURCE; PG* variables and .pgpass work)

A table missing from the database is an error and leaves every snapshot as it was.";

/// `cargo xtask schema [--check] [--mapping NAME]... [--source URL]`.
pub fn main(args: &[String]) -> Result<()> {
    let mut mode = Mode::Overwrite;
    let mut only = Vec::new();
    let mut source = std::env::var("DATA_SYNC_SOURCE").unwrap_or_default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--check" => mode = Mode::Check,
            "--mapping" => match args.next() {
                Some(name) => only.push(name.clone()),
                None => bail!("`--mapping` takes a mapping name\n\n{USAGE}"),
            },
            "--source" => match args.next() {
                Some(url) => source = url.clone(),
                None => bail!("`--source` takes a URL\n\n{USAGE}"),
            },
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    let config = SourceConfig::parse(&source)?;
    let mut client = config.connect()?;
    run_only(&crate::project_root(), &mut client, mode, &only)
        .with_context(|| format!("source `{}`", config.endpoint()))
}

/// A source table as a mapping spells it, and the first file that names it with
/// that mapping's name.
type Sources = BTreeMap<(Option<String>, String), (String, String)>;

/// Snapshots (or, in [`Mode::Check`], compares) every source table the mappings of
/// the workspace at `root` name, read through `client`.
#[cfg(test)]
pub fn run(root: &Path, client: &mut sync_runtime::Client, mode: Mode) -> Result<()> {
    run_only(root, client, mode, &[])
}

/// [`run`] for the mappings named `only` (every mapping when empty). A snapshot is
/// removed only when every mapping was asked for, every table was found, and no
/// mapping names its table.
pub fn run_only(
    root: &Path,
    client: &mut sync_runtime::Client,
    mode: Mode,
    only: &[String],
) -> Result<()> {
    let mut sources = sources(root)?;
    let named: Vec<String> = sources
        .keys()
        .map(|(schema, table)| {
            format!("{SCHEMA}/{}", snapshot::file_name(schema.as_deref(), table))
        })
        .collect();
    if !only.is_empty() {
        for name in only {
            if !sources.values().any(|(_, mapping)| mapping == name) {
                let known: Vec<&str> = sources
                    .values()
                    .map(|(_, mapping)| mapping.as_str())
                    .collect();
                bail!(
                    "no mapping `{name}`; the mappings are: {}",
                    known.join(", ")
                );
            }
        }
        sources.retain(|_, (_, mapping)| only.contains(mapping));
    }
    let mut missing_tables = false;
    // The mappings whose table this database has, for the way out of a missing one.
    let mut found: Vec<&str> = Vec::new();
    let mut problems = Vec::new();
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    for ((schema, table), (named_by, mapping)) in &sources {
        let qualified = match schema {
            Some(schema) => format!("{schema}.{table}"),
            None => table.clone(),
        };
        let shown = format!("{SCHEMA}/{}", snapshot::file_name(schema.as_deref(), table));
        let Some(live) = sync_runtime::describe_table(client, schema.as_deref(), table)
            .with_context(|| format!("reading `{qualified}` from pg_catalog"))?
        else {
            problems.push(format!(
                "{named_by}: source table `{qualified}` does not exist in this database; its snapshot {shown} is kept"
            ));
            missing_tables = true;
            continue;
        };
        found.push(mapping);
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
        // A snapshot some mapping names stays, whether or not its table was read.
        if named.contains(&shown) || !only.is_empty() || missing_tables {
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
        if missing_tables {
            let only_found = if only.is_empty() && !found.is_empty() {
                found.sort_unstable();
                found.dedup();
                let options: Vec<String> = found
                    .iter()
                    .map(|mapping| format!("--mapping {mapping}"))
                    .collect();
                format!(
                    "; or snapshot only the tables it has: `{COMMAND} {}`",
                    options.join(" ")
                )
            } else {
                String::new()
            };
            bail!(
                "nothing written: a mapping's source table is not in this database; point `--source` (or DATA_SYNC_SOURCE) at the database that has it, or fix the mapping's `table`{only_found}"
            );
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
        let name = file.trim_end_matches(".yaml").to_owned();
        sources.entry(found).or_insert((shown, name));
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
                sources
                    .entry(key(&mapping.source))
                    .or_insert((shown.clone(), mapping.name.value.clone()));
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
