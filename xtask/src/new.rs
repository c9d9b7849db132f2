//! `cargo xtask new NAME --table [schema.]table [--source URL]`: a first mapping
//! written from the live table, so nobody types every column and type by hand.
//!
//! It reads the table from `pg_catalog` (the function `data-sync check` and `cargo
//! xtask schema` use), writes `mappings/NAME.yaml` with one target holding every
//! column it can carry (`format_type` names, nullability, the primary key as the
//! key, an indexed `updated_at`-like column as the cursor; comments show how to
//! split the target), writes the table's schema snapshot, and runs `gen`. A table
//! without a primary key, or a column of a type outside the type table, gets a file
//! that says so where the choice is the user's, and a message naming the file.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sync_macros_core::snapshot;
use sync_macros_core::types::parse_pg_type;
use sync_runtime::{ColumnSchema, SourceConfig, TableSchema};

use crate::r#gen::{self, Mode, ensure_file_contents};

/// The usage of `cargo xtask new`.
const USAGE: &str = "usage: cargo xtask new NAME --table [SCHEMA.]TABLE [--source URL]

Write mappings/NAME.yaml from the live table: one target NAME holding every column,
the primary key as the key, an indexed updated_at-like column as the cursor; then its
schema snapshot (mappings/schema/), then run `cargo xtask gen`.

  --table TABLE   the source table, schema-qualified or on the search path
  --source URL    the database (default: DATA_SYNC_SOURCE; PG* variables and .pgpass work)";

/// Column names taken for a cursor when a timestamp column of that name exists,
/// best first.
const CURSOR_NAMES: [&str; 5] = [
    "updated_at",
    "modified_at",
    "last_modified",
    "changed_at",
    "updated",
];

/// `cargo xtask new NAME --table [schema.]table [--source URL]`.
pub fn main(args: &[String]) -> Result<()> {
    let mut name = None;
    let mut table = None;
    let mut source = std::env::var("DATA_SYNC_SOURCE").unwrap_or_default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--table" => table = Some(args.next().context("`--table` takes a table")?.clone()),
            "--source" => source = args.next().context("`--source` takes a URL")?.clone(),
            other if other.starts_with('-') => bail!("unknown option `{other}`\n\n{USAGE}"),
            other if name.is_none() => name = Some(other.to_owned()),
            other => bail!("unexpected argument `{other}`\n\n{USAGE}"),
        }
    }
    let (Some(name), Some(table)) = (name, table) else {
        bail!("`cargo xtask new` takes a NAME and `--table`\n\n{USAGE}");
    };
    let config = SourceConfig::parse(&source)?;
    let mut client = config.connect()?;
    let outcome = run(&crate::project_root(), &mut client, &name, &table)
        .with_context(|| format!("source `{}`", config.endpoint()))?;
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    eprintln!("wrote {}; {}", outcome.file, next_steps(&name, &outcome));
    Ok(())
}

/// The commands that follow `cargo xtask new NAME`, as docs/first-mapping.md gives
/// them: each runs as written (the target file named); a file waiting for its key
/// comes first.
fn next_steps(name: &str, outcome: &Outcome) -> String {
    let build = format!(
        "`cargo build --release`, then `target/release/data-sync --target {name}.sqlite check --mapping {name}` and `target/release/data-sync --target {name}.sqlite sync --mapping {name}` (docs/first-mapping.md)"
    );
    if outcome.complete {
        format!("next: {build}")
    } else {
        format!(
            "next: name the key in {} where it says CHOOSE THE KEY, run `cargo xtask gen`, then {build}",
            outcome.file
        )
    }
}

/// What [`run`] wrote and what the user must look at.
#[derive(Debug)]
pub struct Outcome {
    /// The mapping file, relative to the workspace root.
    pub file: String,
    /// What the file could not decide (no primary key, columns skipped), each naming
    /// the file.
    pub notes: Vec<String>,
    /// Whether the file compiled as written (`gen` ran); `false` while it waits for
    /// the user's choice of the key.
    pub complete: bool,
}

/// Writes the mapping `name` of `table` (read through `client`) and its snapshot
/// into the workspace at `root`, then runs `gen` there (unless the file needs the
/// user's choice first).
pub fn run(
    root: &Path,
    client: &mut sync_runtime::Client,
    name: &str,
    table: &str,
) -> Result<Outcome> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        bail!(
            "the mapping name `{name}` must be lowercase letters, digits and `_`, not starting with a digit"
        );
    }
    let file = format!("mappings/{name}.yaml");
    if root.join(&file).exists() {
        bail!("{file} exists; remove it or choose another name");
    }
    let (schema, bare) = match table.split_once('.') {
        Some((schema, bare)) => (Some(schema), bare),
        None => (None, table),
    };
    let live = sync_runtime::describe_table(client, schema, bare)
        .with_context(|| format!("reading `{table}` from pg_catalog"))?
        .with_context(|| format!("no table or view `{table}` in this database"))?;
    let indexed = indexed_columns(client, &live)?;
    let (text, notes, complete) = mapping_yaml(name, &live, &indexed, &file);
    let snapshot_file = format!(
        "{}/{}",
        crate::schema::SCHEMA,
        snapshot::file_name(Some(&live.schema), &live.table)
    );
    let snapshot = snapshot::to_json(&crate::schema::from_live(live.clone()));
    ensure_file_contents(root, Path::new(&file), &text, Mode::Overwrite)?;
    ensure_file_contents(root, Path::new(&snapshot_file), &snapshot, Mode::Overwrite)?;
    if complete {
        r#gen::run(root, Mode::Overwrite).with_context(|| {
            format!("{file} was written but does not compile; edit it, then run `cargo xtask gen`")
        })?;
    }
    Ok(Outcome {
        file,
        notes,
        complete,
    })
}

/// The columns that lead an index of `table`, for the cursor.
fn indexed_columns(client: &mut sync_runtime::Client, table: &TableSchema) -> Result<Vec<String>> {
    let rows = client.query(
        "SELECT a.attname::text
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE n.nspname::text = $1 AND c.relname::text = $2",
        &[&table.schema, &table.table],
    )?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The YAML of the mapping, the notes for the user, and whether it is complete
/// enough to compile.
fn mapping_yaml(
    name: &str,
    live: &TableSchema,
    indexed: &[String],
    file: &str,
) -> (String, Vec<String>, bool) {
    let mut notes = Vec::new();
    let mut complete = true;
    let qualified = format!("{}.{}", live.schema, live.table);
    let carried: Vec<&ColumnSchema> = live.columns.iter().filter(|c| supported(c)).collect();
    // The key: the primary key, else a unique index on NOT NULL columns.
    let key: Vec<String> = if live.primary_key.is_empty() {
        live.unique
            .iter()
            .find(|columns| {
                columns.iter().all(|column| {
                    live.columns
                        .iter()
                        .any(|live| &live.name == column && live.not_null && supported(live))
                })
            })
            .cloned()
            .unwrap_or_default()
    } else {
        live.primary_key.clone()
    };
    let cursor = CURSOR_NAMES.iter().find_map(|wanted| {
        carried.iter().find(|column| {
            column.name == *wanted && column.not_null && column.pg_type.starts_with("timestamp")
        })
    });

    let mut yaml = String::new();
    let _ = writeln!(
        yaml,
        "# Written by `cargo xtask new {name} --table {qualified}` from the live table; edit\n\
         # it freely, then run `cargo xtask gen` and build. See docs/mapping.md for every key.\n\
         #\n\
         # One target holds every column. To split the row across tables, add a target\n\
         # under `targets:` and move columns into it; each target repeats the key as its\n\
         # `primary_key`, and may reference the first one:\n\
         #\n\
         #   {name}_detail:\n\
         #     columns:\n\
         #       {key}: {{ primary_key: true, references: {name}.{key} }}",
        key = key.first().map_or("id", String::as_str)
    );
    yaml.push_str("source:\n");
    let _ = writeln!(yaml, "  table: {}", quote(&qualified));
    match key.as_slice() {
        [] => {
            complete = false;
            yaml.push_str(
                "  # CHOOSE THE KEY: the table has no primary key and no unique index on NOT NULL\n  \
                 # columns. Name the columns that identify a row (`key: id` or `key: [a, b]`),\n  \
                 # mark them `primary_key: true` below, and give them a unique index in the source.\n  \
                 key: ~\n",
            );
            notes.push(format!(
                "{file}: `{qualified}` has no primary key: choose the key where the file says CHOOSE THE KEY, then run `cargo xtask gen`"
            ));
        }
        [one] => {
            let _ = writeln!(yaml, "  key: {}", quote(one));
            if live.primary_key.is_empty() {
                let _ = writeln!(
                    yaml,
                    "  # (no primary key: this is a unique index on NOT NULL columns)"
                );
            }
        }
        several => {
            let names: Vec<String> = several.iter().map(|column| quote(column)).collect();
            let _ = writeln!(yaml, "  key: [{}]", names.join(", "));
        }
    }
    match cursor {
        Some(column) => {
            let why = if indexed.contains(&column.name) {
                "indexed"
            } else {
                "not indexed: add an index, or incremental runs scan the table"
            };
            let _ = writeln!(
                yaml,
                "  cursor: {}   # `{}`, {why}; incremental runs read the rows past the last value",
                quote(&column.name),
                column.pg_type
            );
        }
        None => yaml.push_str(
            "  # No cursor: every run is full. With an `updated_at` column a writer keeps\n  \
             # current, `cursor: updated_at` makes runs incremental.\n",
        ),
    }
    yaml.push_str("targets:\n");
    let _ = writeln!(yaml, "  {}:\n    columns:", quote(name));
    let width = carried
        .iter()
        .map(|c| quote(&c.name).len())
        .max()
        .unwrap_or(0)
        + 1;
    for column in &live.columns {
        if !supported(column) {
            let _ = writeln!(
                yaml,
                "      # {}: skipped, type `{}` is outside the type table (docs/types.md); cast it in a view to carry it",
                column.name, column.pg_type
            );
            notes.push(format!(
                "{file}: column `{}` of `{qualified}` is `{}`, which data-sync cannot carry: left out (see the comment in the file)",
                column.name, column.pg_type
            ));
            continue;
        }
        let mut settings = Vec::new();
        if column.enum_labels.is_none() {
            settings.push(format!("type: {}", quote_always(&column.pg_type)));
        }
        if key.contains(&column.name) {
            settings.push("primary_key: true".to_owned());
        }
        if !column.not_null {
            settings.push("nullable: true".to_owned());
        }
        let label = format!("{}:", quote(&column.name));
        let _ = writeln!(yaml, "      {label:width$} {{ {} }}", settings.join(", "));
    }
    (yaml, notes, complete)
}

/// Whether data-sync can carry the column: a type of the type table, or an enum.
fn supported(column: &ColumnSchema) -> bool {
    column.enum_labels.is_some() || parse_pg_type(&column.pg_type).is_some()
}

/// `name` as a YAML plain scalar when it is a plain identifier, else double-quoted.
fn quote(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if plain {
        name.to_owned()
    } else {
        quote_always(name)
    }
}

/// `text` double-quoted for YAML.
fn quote_always(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests;
