//! The schema snapshot: what `cargo xtask schema` read from `pg_catalog` about one
//! source table, committed as `mappings/schema/<schema>.<table>.json` so that the
//! derive and `cargo xtask gen` check mappings against the real schema offline (as
//! sqlx's `.sqlx/` does for queries).
//!
//! Entry points: [`load`] (the one place the derive and `cargo xtask gen` read a
//! mapping's snapshot, before `check`), [`from_json`] and [`to_json`] (the file
//! format), [`file_name`] (where a table's file is), [`differences`] (drift between
//! two snapshots). Only [`load`] does I/O.
//!
//! The format is pretty-printed JSON with sorted keys and a final newline; columns
//! keep the table's order, constraint lists are sorted, so one change to the table is
//! one small diff.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{self, PgType};

mod load;

pub use self::load::{Directory, load};

/// The directory, beside the mapping files (`mappings/schema/`) or in the crate that
/// derives `Mapping` (`$CARGO_MANIFEST_DIR/schema/`), that holds the snapshot files.
pub const DIRECTORY: &str = "schema";

/// The format version this crate reads and writes.
pub const VERSION: u32 = 1;

/// One source table as the snapshot records it. Fields are declared in key order, so
/// that the JSON keys come out sorted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// The columns, in table order (`attnum`).
    pub columns: Vec<Column>,
    /// `table`, `partitioned table`, `view`, `materialized view` or `foreign table`.
    pub kind: String,
    /// The primary key's columns, in key order; empty without one.
    pub primary_key: Vec<String>,
    /// The schema the table is in (for an unqualified mapping, the one the search
    /// path found).
    pub schema: String,
    /// The table name.
    pub table: String,
    /// Unique constraints and unique indexes on plain columns, without predicate,
    /// other than the primary key; each sorted by position, the list sorted.
    pub unique: Vec<Vec<String>>,
    /// The format version, [`VERSION`].
    pub version: u32,
}

/// One column of a snapshot table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// For a domain, the domain's name; `type` is then its base type (PostgreSQL
    /// sends domain values as the base type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// For an array, the element type as `format_type` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element_type: Option<String>,
    /// For an enum, or an array of one, the labels in sort order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_labels: Option<Vec<String>>,
    /// The column name.
    pub name: String,
    /// Whether the column is `NOT NULL`.
    pub not_null: bool,
    /// The type as `format_type` prints it: `bigint`, `character varying(40)`,
    /// `mood`, `integer[]`.
    #[serde(rename = "type")]
    pub pg_type: String,
}

impl Table {
    /// The column named `name`, exactly.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|column| column.name == name)
    }

    /// `schema.table`, for messages.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// Whether PostgreSQL knows the table's keys: views have no constraints.
    pub fn has_constraints(&self) -> bool {
        matches!(self.kind.as_str(), "table" | "partitioned table")
    }
}

impl Column {
    /// The type data-sync reads this column as, `None` for a type outside the type
    /// table. An enum (or an array of one) is `enum` (`enum[]`).
    pub fn parsed_type(&self) -> Option<PgType> {
        if self.enum_labels.is_some() {
            return Some(match self.element_type {
                Some(_) => PgType::Array(Box::new(PgType::Enum)),
                None => PgType::Enum,
            });
        }
        types::parse_pg_type(&self.pg_type)
    }

    /// The type as `type = ".."` takes it: `format_type`'s spelling, or `enum` for an
    /// enum; `None` for a type outside the type table.
    pub fn declared_type(&self) -> Option<String> {
        let parsed = self.parsed_type()?;
        if self.enum_labels.is_some() {
            return Some(parsed.to_string());
        }
        Some(self.pg_type.clone())
    }

    /// Whether the column may hold NULL.
    pub fn is_nullable(&self) -> bool {
        !self.not_null
    }
}

/// The snapshot a mapping was checked against: the table and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The file as messages name it, e.g. `mappings/schema/public.users.json`.
    pub file: String,
    /// The file's absolute path, for the derive to `include_str!` it (so that an edit
    /// rebuilds the crate); `None` where nothing tracks it.
    pub tracked_path: Option<String>,
    /// What the file says.
    pub table: Table,
}

/// The name of the snapshot file of a mapping's source `schema.table` (or `table`,
/// spelled as the mapping spells it): `public.users.json`. Characters a file name
/// cannot hold on some system (`/`, `\`, `:`, `%`, ...) are `%XX`-escaped.
pub fn file_name(schema: Option<&str>, table: &str) -> String {
    let qualified = match schema {
        Some(schema) => format!("{schema}.{table}"),
        None => table.to_owned(),
    };
    let mut name = String::with_capacity(qualified.len() + 5);
    for character in qualified.chars() {
        if character.is_control() || "/\\:*?\"<>|%".contains(character) {
            let mut buffer = [0; 4];
            for byte in character.encode_utf8(&mut buffer).bytes() {
                name.push_str(&format!("%{byte:02X}"));
            }
        } else {
            name.push(character);
        }
    }
    if name.starts_with('.') {
        name.replace_range(..1, "%2E");
    }
    name.push_str(".json");
    name
}

/// Why a snapshot file could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError(String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

/// Reads a snapshot file.
///
/// # Errors
///
/// Malformed JSON, an unknown key, or another format version.
pub fn from_json(text: &str) -> Result<Table, FormatError> {
    let table: Table =
        serde_json::from_str(text).map_err(|error| FormatError(error.to_string()))?;
    if table.version != VERSION {
        return Err(FormatError(format!(
            "format version {} is not {VERSION}; run `cargo xtask schema`",
            table.version
        )));
    }
    Ok(table)
}

/// Writes a snapshot file: sorted keys, two-space indents, `\n` line endings, a
/// final newline. The constraint lists are sorted here, so that equal tables give
/// equal files.
pub fn to_json(table: &Table) -> String {
    let mut table = table.clone();
    table.unique.sort();
    table.unique.dedup();
    let mut text = serde_json::to_string_pretty(&table).expect("a snapshot serializes");
    text.push('\n');
    text
}

/// How `live` differs from `snapshot`, one line each, in column order; empty when
/// they agree.
pub fn differences(snapshot: &Table, live: &Table) -> Vec<String> {
    let mut differences = Vec::new();
    if snapshot.kind != live.kind {
        differences.push(format!(
            "is a {}, the snapshot says a {}",
            live.kind, snapshot.kind
        ));
    }
    for old in &snapshot.columns {
        let Some(new) = live.column(&old.name) else {
            differences.push(format!("column `{}` was dropped", old.name));
            continue;
        };
        if old.pg_type != new.pg_type || old.element_type != new.element_type {
            differences.push(format!(
                "column `{}` is `{}`, the snapshot says `{}`",
                old.name, new.pg_type, old.pg_type
            ));
        }
        if old.domain != new.domain {
            differences.push(format!(
                "column `{}` has domain {}, the snapshot says {}",
                old.name,
                backticked_or_none(new.domain.as_deref()),
                backticked_or_none(old.domain.as_deref())
            ));
        }
        if old.not_null != new.not_null {
            differences.push(format!(
                "column `{}` is {}, the snapshot says {}",
                old.name,
                nullability(new.not_null),
                nullability(old.not_null)
            ));
        }
        if old.enum_labels != new.enum_labels {
            differences.push(format!(
                "column `{}` has enum labels [{}], the snapshot says [{}]",
                old.name,
                labels(new.enum_labels.as_deref()),
                labels(old.enum_labels.as_deref())
            ));
        }
    }
    for new in &live.columns {
        if snapshot.column(&new.name).is_none() {
            differences.push(format!("column `{}` (`{}`) is new", new.name, new.pg_type));
        }
    }
    if snapshot.primary_key != live.primary_key {
        differences.push(format!(
            "primary key is ({}), the snapshot says ({})",
            labels(Some(&live.primary_key)),
            labels(Some(&snapshot.primary_key))
        ));
    }
    let mut old_unique = snapshot.unique.clone();
    old_unique.sort();
    let mut new_unique = live.unique.clone();
    new_unique.sort();
    if old_unique != new_unique {
        let show = |sets: &[Vec<String>]| {
            sets.iter()
                .map(|set| format!("({})", labels(Some(set))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        differences.push(format!(
            "unique constraints are [{}], the snapshot says [{}]",
            show(&new_unique),
            show(&old_unique)
        ));
    }
    differences
}

fn nullability(not_null: bool) -> &'static str {
    if not_null { "NOT NULL" } else { "nullable" }
}

fn backticked_or_none(name: Option<&str>) -> String {
    name.map_or_else(|| "none".to_owned(), |name| format!("`{name}`"))
}

fn labels(labels: Option<&[String]>) -> String {
    labels
        .unwrap_or_default()
        .iter()
        .map(|label| format!("`{label}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
