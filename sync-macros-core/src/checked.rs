//! A mapping that passed `check`: [`Checked`], the only thing `expand`, `emit` and
//! `sql` take. It holds what those stages look up, resolved once while checking (each
//! field's PostgreSQL and SQLite types, which field feeds each target column, the key
//! and cursor fields, the order targets are written in), so that they cannot meet a
//! lookup that fails.

use std::ops::Deref;

use crate::filter::CheckedFilter;
use crate::model::{Column, Computed, Field, Mapping, Origin, Target};
use crate::snapshot::Column as SnapshotColumn;
use crate::types::{self, PgType, Resolved, SqliteType};

/// A mapping that passed every rule of `check`, with its lookups resolved. It
/// dereferences to the [`Mapping`] it was made from.
#[derive(Clone, Debug)]
pub struct Checked {
    mapping: Mapping,
    fields: Vec<FieldType>,
    key: Vec<usize>,
    cursor: Option<usize>,
    soft_delete: Option<usize>,
    targets: Vec<TargetFields>,
    write_order: Vec<usize>,
    filter: Option<CheckedFilter>,
}

/// What a checked field reads and writes.
#[derive(Clone, Debug)]
pub struct FieldType {
    /// The PostgreSQL type: its `type`, else the snapshot's, else the Rust type's.
    pub pg_type: PgType,
    /// The type as `type = ".."` spells it: as the user wrote it, or as the
    /// snapshot names it, or [`FieldType::pg_type`] printed.
    pub declared: String,
    /// The SQLite column type it writes.
    pub sqlite_type: SqliteType,
    /// The Rust type, parsed.
    pub rust_type: syn::Type,
}

/// Which field feeds each column of one target.
#[derive(Clone, Debug)]
struct TargetFields {
    /// Per column, in declaration order, the index of its field.
    fields: Vec<usize>,
    /// The primary key's column indices, in source key order.
    key_columns: Vec<usize>,
    /// Per column, its transform (`with`), parsed.
    transforms: Vec<Option<syn::Path>>,
    /// Per computed column, its function and types.
    computed: Vec<ComputedType>,
}

/// What a checked computed column calls and writes.
#[derive(Clone, Debug)]
pub struct ComputedType {
    /// The function, parsed.
    pub function: syn::Path,
    /// The SQLite column type it writes.
    pub sqlite_type: SqliteType,
    /// The Rust type the function returns (an `Option` for a nullable column).
    pub rust_type: syn::Type,
}

impl Deref for Checked {
    type Target = Mapping;

    fn deref(&self) -> &Mapping {
        &self.mapping
    }
}

impl Checked {
    /// Resolves the lookups of a mapping on which `check` found nothing wrong. An
    /// `Err` is a rule `check` lacks: a bug, reported at what it concerns.
    pub(crate) fn resolve(
        mapping: Mapping,
        filter: Option<CheckedFilter>,
    ) -> Result<Checked, (Origin, String)> {
        if let (Some(written), None) = (&mapping.source.filter, &filter) {
            return Err((
                written.text.origin.clone(),
                bug("the filter was not checked".to_owned()),
            ));
        }
        let fields = mapping
            .fields
            .iter()
            .map(|field| field_type(&mapping, field))
            .collect::<Result<Vec<_>, _>>()?;
        let source = &mapping.source;
        let field_index = |name: &crate::model::Name| {
            mapping.field_index_by_column(&name.value).ok_or_else(|| {
                (
                    name.origin.clone(),
                    bug(format!("no field reads `{}`", name.value)),
                )
            })
        };
        let key = source
            .key
            .iter()
            .map(field_index)
            .collect::<Result<Vec<_>, _>>()?;
        let cursor = source.cursor.as_ref().map(field_index).transpose()?;
        let soft_delete = source.soft_delete.as_ref().map(field_index).transpose()?;
        let targets = mapping
            .targets
            .iter()
            .map(|target| target_fields(&mapping, target, &key))
            .collect::<Result<Vec<_>, _>>()?;
        let write_order = write_order(&mapping)?;
        Ok(Checked {
            mapping,
            fields,
            key,
            cursor,
            soft_delete,
            targets,
            write_order,
            filter,
        })
    }

    /// The mapping as the front-end read it.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The types of field `index` (in field order).
    pub fn field_type(&self, index: usize) -> &FieldType {
        &self.fields[index]
    }

    /// The fields with their types, in field order.
    pub fn typed_fields(&self) -> impl Iterator<Item = (&Field, &FieldType)> {
        self.mapping.fields.iter().zip(&self.fields)
    }

    /// The key fields' indices, in source key order.
    pub fn key_fields(&self) -> &[usize] {
        &self.key
    }

    /// The cursor field's index, for a mapping with a cursor.
    pub fn cursor_field(&self) -> Option<usize> {
        self.cursor
    }

    /// The soft-delete field's index, for a mapping with one.
    pub fn soft_delete_field(&self) -> Option<usize> {
        self.soft_delete
    }

    /// The index of the field that feeds column `column` of target `target`.
    pub fn column_field(&self, target: usize, column: usize) -> usize {
        self.targets[target].fields[column]
    }

    /// The transform (`with`) of column `column` of target `target`, if any.
    pub fn transform(&self, target: usize, column: usize) -> Option<&syn::Path> {
        self.targets[target].transforms[column].as_ref()
    }

    /// The computed columns of target `target`, which follow its other columns.
    pub fn computed(&self, target: usize) -> impl Iterator<Item = (&Computed, &ComputedType)> {
        self.mapping.targets[target]
            .computed
            .iter()
            .zip(&self.targets[target].computed)
    }

    /// Whether some target has a computed column: its rows are then decoded whole.
    pub fn has_computed(&self) -> bool {
        self.mapping
            .targets
            .iter()
            .any(|target| !target.computed.is_empty())
    }

    /// The columns of target `target` with the index of the field feeding each.
    pub fn columns(&self, target: usize) -> impl Iterator<Item = (&Column, usize)> {
        self.mapping.targets[target]
            .columns
            .iter()
            .zip(self.targets[target].fields.iter().copied())
    }

    /// The primary key columns of target `target`, in source key order.
    pub fn key_columns(&self, target: usize) -> impl Iterator<Item = &Column> {
        let columns = &self.mapping.targets[target].columns;
        self.targets[target]
            .key_columns
            .iter()
            .map(move |&index| &columns[index])
    }

    /// Target indices with every parent before its children, otherwise in
    /// declaration order.
    pub fn write_order(&self) -> &[usize] {
        &self.write_order
    }

    /// The checked row filter, for a mapping with one.
    pub fn filter(&self) -> Option<&CheckedFilter> {
        self.filter.as_ref()
    }

    /// The target at `index`.
    pub fn target_at(&self, index: usize) -> &Target {
        &self.mapping.targets[index]
    }
}

/// The types of `field`: its `type`, else the snapshot's, else the Rust type's.
fn field_type(mapping: &Mapping, field: &Field) -> Result<FieldType, (Origin, String)> {
    let snapshot_type = mapping
        .snapshot
        .as_ref()
        .and_then(|snapshot| snapshot.table.column(&field.column.value))
        .and_then(SnapshotColumn::declared_type);
    let declared = field
        .pg_type
        .as_ref()
        .map(|name| name.value.clone())
        .or(snapshot_type);
    let pg_type = match types::resolve(declared.as_deref(), &field.rust_type.value) {
        Resolved::Type(pg_type) => pg_type,
        other => {
            return Err((
                field.rust_type.origin.clone(),
                bug(format!(
                    "the type of field `{}` does not resolve: {other:?}",
                    field.ident.value
                )),
            ));
        }
    };
    let rust_type = syn::parse_str::<syn::Type>(&field.rust_type.value).map_err(|error| {
        (
            field.rust_type.origin.clone(),
            bug(format!(
                "Rust type `{}` does not parse: {error}",
                field.rust_type.value
            )),
        )
    })?;
    Ok(FieldType {
        sqlite_type: types::sqlite_type(&pg_type, &field.rust_type.value),
        declared: declared.unwrap_or_else(|| pg_type.to_string()),
        pg_type,
        rust_type,
    })
}

/// Which field feeds each column of `target`, and its key columns in source key
/// order.
fn target_fields(
    mapping: &Mapping,
    target: &Target,
    key: &[usize],
) -> Result<TargetFields, (Origin, String)> {
    let fields = target
        .columns
        .iter()
        .map(|column| {
            mapping
                .fields
                .iter()
                .position(|field| field.ident.value == column.field)
                .ok_or_else(|| {
                    (
                        column.origin.clone(),
                        bug(format!(
                            "no field `{}` feeds `{}`",
                            column.field, column.name.value
                        )),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key_columns = key
        .iter()
        .filter_map(|&field| {
            target
                .columns
                .iter()
                .zip(&fields)
                .position(|(column, &feeding)| column.primary_key && feeding == field)
        })
        .collect();
    let transforms = target
        .columns
        .iter()
        .map(|column| {
            column
                .with
                .as_ref()
                .map(|with| {
                    syn::parse_str::<syn::Path>(&with.value).map_err(|error| {
                        (
                            with.origin.clone(),
                            bug(format!(
                                "`with` path `{}` does not parse: {error}",
                                with.value
                            )),
                        )
                    })
                })
                .transpose()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let computed = target
        .computed
        .iter()
        .map(computed_type)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TargetFields {
        fields,
        key_columns,
        transforms,
        computed,
    })
}

/// The function and types of a computed column.
fn computed_type(computed: &Computed) -> Result<ComputedType, (Origin, String)> {
    let failed = |what: String| (computed.origin.clone(), bug(what));
    let function = syn::parse_str::<syn::Path>(&computed.with.value).map_err(|error| {
        failed(format!(
            "computed path `{}` does not parse: {error}",
            computed.with.value
        ))
    })?;
    let pg_type = computed
        .pg_type
        .as_ref()
        .and_then(|pg_type| types::parse_pg_type(&pg_type.value))
        .ok_or_else(|| {
            failed(format!(
                "computed column `{}` has no known type",
                computed.name.value
            ))
        })?;
    let rust_type = types::rust_type_for(&pg_type, None, computed.nullable);
    Ok(ComputedType {
        function,
        sqlite_type: types::sqlite_type(&pg_type, &rust_type),
        rust_type: syn::parse_str::<syn::Type>(&rust_type)
            .map_err(|error| failed(format!("Rust type `{rust_type}` does not parse: {error}")))?,
    })
}

/// Target indices with every parent before its children, otherwise in declaration
/// order.
fn write_order(mapping: &Mapping) -> Result<Vec<usize>, (Origin, String)> {
    let mut order: Vec<usize> = Vec::with_capacity(mapping.targets.len());
    while order.len() < mapping.targets.len() {
        let before = order.len();
        for (index, target) in mapping.targets.iter().enumerate() {
            if order.contains(&index) {
                continue;
            }
            let parents_written = target
                .columns
                .iter()
                .filter_map(|column| column.references.as_ref())
                .filter_map(|reference| {
                    mapping
                        .targets
                        .iter()
                        .position(|t| t.name.value == reference.table.value)
                })
                .all(|parent| order.contains(&parent));
            if parents_written {
                order.push(index);
            }
        }
        if order.len() == before {
            return Err((
                mapping.origin.clone(),
                bug("the targets' `references` have no write order".to_owned()),
            ));
        }
    }
    Ok(order)
}

/// The message of a rule `check` lacks.
fn bug(message: String) -> String {
    format!("internal error: {message}; this mapping passed every check, please report it")
}
