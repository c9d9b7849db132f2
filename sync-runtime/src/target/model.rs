//! The model of a mapping stored in `_data_sync_state` beside its fingerprint: per
//! target table the columns with their SQLite type, nullability, primary key,
//! reference, and the source column, type and transform that feed them, plus the
//! source table, key, cursor, soft-delete column, filter and capture. It is
//! [`MappingSpec`] written down, version 1 of a compact JSON.
//!
//! When the compiled-in mapping's fingerprint differs from the stored one,
//! [`compare`] tells a change the next run migrates in place (nullable columns
//! added, fed by a source column; columns dropped that are in no key) from one that
//! needs a full sync, and names each.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::spec::MappingSpec;
use crate::summary::ColumnMigration;
use crate::target::nullability;

/// The version of the JSON this module writes.
const VERSION: u32 = 1;

/// A mapping as its targets were built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Model {
    version: u32,
    source: String,
    key: Vec<String>,
    cursor: Option<String>,
    soft_delete: Option<String>,
    filter: Option<String>,
    capture: Option<String>,
    targets: Vec<TableModel>,
}

/// One target table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TableModel {
    table: String,
    columns: Vec<ColumnModel>,
}

/// One column of a target table, and what feeds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ColumnModel {
    name: String,
    #[serde(rename = "type")]
    sqlite_type: String,
    not_null: bool,
    primary_key: bool,
    references: Option<String>,
    source: Option<String>,
    pg_type: Option<String>,
    rust_type: Option<String>,
    transform: Option<String>,
    computed: Option<String>,
}

impl Model {
    /// The model of `spec`.
    pub(crate) fn of(spec: &MappingSpec) -> Model {
        let source = &spec.source;
        let column_name = |index: usize| source.columns[index].name.to_owned();
        Model {
            version: VERSION,
            source: source.display_name(),
            key: source.key.iter().map(|&index| column_name(index)).collect(),
            cursor: source.cursor.map(column_name),
            soft_delete: source.soft_delete.map(column_name),
            filter: source.filter.as_ref().map(|filter| filter.text.to_owned()),
            capture: source
                .capture
                .as_ref()
                .map(|capture| match capture.publication {
                    Some(publication) => format!("log, publication {publication}"),
                    None => "log".to_owned(),
                }),
            targets: spec
                .targets
                .iter()
                .map(|target| TableModel {
                    table: target.name.to_owned(),
                    columns: target
                        .columns
                        .iter()
                        .map(|column| {
                            // A computed column is fed by its function, from the row.
                            let field = column.field.map(|field| &source.columns[field]);
                            ColumnModel {
                                name: column.name.to_owned(),
                                sqlite_type: column.sqlite_type.to_owned(),
                                not_null: column.not_null,
                                primary_key: column.primary_key,
                                references: column.references.as_ref().map(|reference| {
                                    format!("{}.{}", reference.table, reference.column)
                                }),
                                source: field.map(|field| field.name.to_owned()),
                                pg_type: field.map(|field| field.pg_type.to_owned()),
                                rust_type: field.map(|field| field.rust_type.replace(' ', "")),
                                transform: column.transform.map(str::to_owned),
                                computed: column.computed.map(str::to_owned),
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The model as stored.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a model serializes")
    }

    /// A stored model; `None` for one this version cannot read.
    fn from_json(text: &str) -> Option<Model> {
        serde_json::from_str::<Model>(text)
            .ok()
            .filter(|model| model.version == VERSION)
    }
}

/// What the compiled-in mapping `spec` changed since its targets were built by the
/// definition of fingerprint `fingerprint` (which differs) and model `model` (as
/// stored): the columns to drop and add in place, in that order.
///
/// # Errors
///
/// [`Error::MappingChanged`] naming every change that needs a full sync, or saying
/// why none can be named (a file an earlier version wrote holds no model).
pub(crate) fn compare(
    spec: &MappingSpec,
    fingerprint: &str,
    model: Option<&str>,
) -> Result<Vec<ColumnMigration>, Error> {
    let changed = |changes: Vec<String>| Error::MappingChanged {
        mapping: spec.name.to_owned(),
        changes: changes.join("; "),
    };
    let Some(stored) = model.and_then(Model::from_json) else {
        return Err(changed(vec![format!(
            "its targets were built by an earlier version of data-sync, which recorded only the mapping's fingerprint ({fingerprint}, now {}), not what it held",
            spec.fingerprint
        )]));
    };
    let current = Model::of(spec);
    let (migrations, mut blocking) = differences(&stored, &current);
    if migrations.is_empty() && blocking.is_empty() {
        // The fingerprint covers the SELECT's text too: something changed that the
        // model does not describe.
        blocking.push(format!(
            "its fingerprint changed ({fingerprint}, now {}) in a way the stored model does not show",
            spec.fingerprint
        ));
    }
    if blocking.is_empty() {
        Ok(migrations)
    } else {
        Err(changed(blocking))
    }
}

/// [`Error::MappingChanged`] naming what `spec` changed since the definition of
/// `fingerprint` and `model` (see [`compare`]), for a mapping that migrates only
/// with `--full`, `why`.
pub(crate) fn needs_full(
    spec: &MappingSpec,
    fingerprint: &str,
    model: Option<&str>,
    why: &str,
) -> Error {
    match compare(spec, fingerprint, model) {
        Err(error) => error,
        Ok(migrations) => Error::MappingChanged {
            mapping: spec.name.to_owned(),
            changes: format!(
                "{} ({why})",
                migrations
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}

/// How one migration reads in a message: "column `t`.`c` was added".
pub(crate) fn describe(migration: &ColumnMigration) -> String {
    format!(
        "column `{}`.`{}` was {}",
        migration.table, migration.column, migration.change
    )
}

/// The columns to drop and add in place (drops first), and every change that needs
/// a full sync, one sentence fragment each.
fn differences(stored: &Model, current: &Model) -> (Vec<ColumnMigration>, Vec<String>) {
    let mut blocking = Vec::new();
    let optional = |value: &Option<String>| match value {
        Some(value) => format!("`{value}`"),
        None => "none".to_owned(),
    };
    let list = |names: &[String]| {
        names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if stored.source != current.source {
        blocking.push(format!(
            "the source table is `{}`, was `{}`",
            current.source, stored.source
        ));
    }
    if stored.key != current.key {
        blocking.push(format!(
            "the key is ({}), was ({})",
            list(&current.key),
            list(&stored.key)
        ));
    }
    for (what, now, was) in [
        ("the cursor", &current.cursor, &stored.cursor),
        (
            "the soft-delete column",
            &current.soft_delete,
            &stored.soft_delete,
        ),
        ("the filter", &current.filter, &stored.filter),
        ("change capture", &current.capture, &stored.capture),
    ] {
        if now != was {
            blocking.push(format!(
                "{what} is {}, was {}",
                optional(now),
                optional(was)
            ));
        }
    }
    let mut dropped = Vec::new();
    let mut added = Vec::new();
    for table in &stored.targets {
        if !current.targets.iter().any(|now| now.table == table.table) {
            blocking.push(format!(
                "table `{}` is no longer in the mapping",
                table.table
            ));
        }
    }
    for table in &current.targets {
        let Some(was) = stored.targets.iter().find(|was| was.table == table.table) else {
            blocking.push(format!("table `{}` is new", table.table));
            continue;
        };
        let name = |column: &ColumnModel| format!("column `{}`.`{}`", table.table, column.name);
        for column in &was.columns {
            if table.columns.iter().any(|now| now.name == column.name) {
                continue;
            }
            if column.primary_key {
                blocking.push(format!(
                    "{} was dropped, but it is in the primary key",
                    name(column)
                ));
            } else if let Some(reference) = &column.references {
                blocking.push(format!(
                    "{} was dropped, but it carries a foreign key to `{reference}`",
                    name(column)
                ));
            } else {
                dropped.push(migration(&table.table, &column.name, "dropped"));
            }
        }
        for column in &table.columns {
            let Some(old) = was.columns.iter().find(|old| old.name == column.name) else {
                let reason = if column.not_null {
                    Some("NOT NULL (only a nullable column is added in place)".to_owned())
                } else if column.primary_key {
                    Some("in the primary key".to_owned())
                } else if let Some(reference) = &column.references {
                    Some(format!("a foreign key to `{reference}`"))
                } else if let Some(computed) = &column.computed {
                    Some(format!("computed by `{computed}`"))
                } else {
                    column
                        .transform
                        .as_ref()
                        .map(|transform| format!("written through transform `{transform}`"))
                };
                match reason {
                    Some(reason) => blocking.push(format!("{} is new and {reason}", name(column))),
                    None => added.push(migration(&table.table, &column.name, "added")),
                }
                continue;
            };
            let mut changed = |what: &str, now: String, was: String| {
                if now != was {
                    blocking.push(format!("{} {what} {now}, was {was}", name(column)));
                }
            };
            changed("is", column.sqlite_type.clone(), old.sqlite_type.clone());
            changed(
                "is",
                nullability(column.not_null).to_owned(),
                nullability(old.not_null).to_owned(),
            );
            changed(
                "is",
                key_part(column.primary_key).to_owned(),
                key_part(old.primary_key).to_owned(),
            );
            for (what, now, was) in [
                ("references", &column.references, &old.references),
                ("is fed by source column", &column.source, &old.source),
                ("reads source type", &column.pg_type, &old.pg_type),
                ("is read as", &column.rust_type, &old.rust_type),
                ("goes through transform", &column.transform, &old.transform),
                ("is computed by", &column.computed, &old.computed),
            ] {
                changed(what, optional(now), optional(was));
            }
        }
    }
    dropped.append(&mut added);
    (dropped, blocking)
}

fn migration(table: &str, column: &str, change: &str) -> ColumnMigration {
    ColumnMigration {
        table: table.to_owned(),
        column: column.to_owned(),
        change: change.to_owned(),
        backfilled: 0,
    }
}

fn key_part(primary_key: bool) -> &'static str {
    if primary_key {
        "in the primary key"
    } else {
        "not in the primary key"
    }
}
