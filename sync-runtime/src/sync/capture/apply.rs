//! The SQLite side of change capture: each decoded change applied to every target
//! of a mapping, idempotently, so that a change applied twice leaves what applying
//! it once leaves.
//!
//! INSERT and UPDATE upsert every target, parents first; DELETE deletes by key,
//! children first; an UPDATE that changes the key deletes the old key and writes the
//! new; TRUNCATE empties the targets. An UPDATE that leaves a TOASTed value
//! unchanged does not send it: the target keeps its value, the sent columns are
//! updated, and a row that is not in the target is left absent (it can only be a
//! row a later change of the same catch-up deletes; see `docs/capture.md`).
//!
//! With a row filter, an insert or update whose new row does not match it deletes
//! the key instead (a row leaving the filter); see `filter`.

use rusqlite::Connection;
use sync_sql::ident::quote;
use tokio_postgres::types::Type;

use super::filter::Verdict;
use super::pgoutput::{OldTuple, Relation, Tuple, Value};
use crate::Mapping;
use crate::error::{Error, Result};
use crate::error::{bind_error, decode_error, write_error};
use crate::source::{SourceRow, key_text};
use crate::spec::TargetSpec;

/// Applies the changes of one source table to the targets of mapping `M`.
pub(crate) struct Applier<'c, M> {
    connection: &'c Connection,
    /// The source table's OID: changes of other tables in the publication are not
    /// this mapping's.
    table: u32,
    /// The type of each field's column when the run started, if the table could
    /// be read then: a relation message with the same type OID takes it (with what
    /// the OID alone does not say, such as an enum's labels).
    live: Option<Vec<Type>>,
    /// The type of each field's column as the last relation message describes it.
    types: Vec<Type>,
    /// Per field, its column's position in the relation the server last described;
    /// `None` until a relation message for the table arrives.
    positions: Option<Vec<usize>>,
    /// Why the last relation message does not match the mapping, when it came in a
    /// transaction applied already: the next change to apply fails with it.
    pending: Option<String>,
    /// Types of the key fields, in key order.
    key_types: Vec<Type>,
    /// Rows written and deleted per target, in `SPEC.targets` order.
    pub(crate) written: Vec<u64>,
    pub(crate) deleted: Vec<u64>,
    /// Changes of the table applied.
    pub(crate) changes: u64,
    /// Keys (binary, key order) of rows an update with unchanged values found
    /// absent, or whose filter columns it did not send: their values are read again
    /// from the source (see [`Applier::refetch`]).
    pub(crate) refetch: Vec<Vec<Vec<u8>>>,
    /// The run's filter settings ([`crate::filter::FilterSpec::settings`]).
    pub(crate) filter: Vec<(&'static str, String)>,
    _mapping: std::marker::PhantomData<M>,
}

impl<'c, M: Mapping> Applier<'c, M> {
    pub(crate) fn new(
        connection: &'c Connection,
        table: u32,
        live: Option<Vec<Type>>,
        filter: Vec<(&'static str, String)>,
    ) -> Self {
        let spec = M::SPEC;
        let types = live.clone().unwrap_or_default();
        let key_types = if types.is_empty() {
            Vec::new()
        } else {
            spec.source
                .key
                .iter()
                .map(|&index| types[index].clone())
                .collect()
        };
        Applier {
            connection,
            table,
            live,
            types,
            positions: None,
            pending: None,
            key_types,
            written: vec![0; spec.targets.len()],
            deleted: vec![0; spec.targets.len()],
            changes: 0,
            refetch: Vec::new(),
            filter,
            _mapping: std::marker::PhantomData,
        }
    }

    /// The types of the key fields, in key order.
    pub(crate) fn key_types(&self) -> &[Type] {
        &self.key_types
    }

    /// Whether `relation` is this mapping's source table.
    pub(crate) fn is_table(&self, relation: u32) -> bool {
        relation == self.table
    }

    /// Takes the table's shape from a relation message: every source column of the
    /// mapping must be there, with the type it had when the run started. A column
    /// the mapping does not read may come and go.
    ///
    /// # Errors
    ///
    /// [`Error::Capture`] when the table no longer matches the mapping; with
    /// `defer`, only at the next change to apply.
    pub(crate) fn relation(&mut self, relation: &Relation<'_>, defer: bool) -> Result<()> {
        self.positions = None;
        self.pending = None;
        match self.match_relation(relation) {
            Ok((positions, types)) => {
                self.key_types = M::SPEC
                    .source
                    .key
                    .iter()
                    .map(|&index| types[index].clone())
                    .collect();
                self.types = types;
                self.positions = Some(positions);
            }
            Err(what) if defer => self.pending = Some(what),
            Err(what) => return Err(self.altered(&what)),
        }
        Ok(())
    }

    /// The position and type of each field in `relation`, or what no longer
    /// matches.
    fn match_relation(
        &self,
        relation: &Relation<'_>,
    ) -> std::result::Result<(Vec<usize>, Vec<Type>), String> {
        let spec = M::SPEC;
        let mut positions = Vec::with_capacity(spec.source.columns.len());
        let mut types = Vec::with_capacity(spec.source.columns.len());
        for (index, column) in spec.source.columns.iter().enumerate() {
            let Some(position) = relation
                .columns
                .iter()
                .position(|candidate| candidate.name == column.name)
            else {
                return Err(format!("column `{}` was dropped or renamed", column.name));
            };
            let sent = relation.columns[position].type_id;
            let live = self
                .live
                .as_ref()
                .map(|live| &live[index])
                .filter(|live| live.oid() == sent);
            let ty = match live {
                Some(live) => live.clone(),
                None => Type::from_oid(sent).ok_or_else(|| {
                    format!(
                        "column `{}` is now of the type with OID {sent}",
                        column.name
                    )
                })?,
            };
            if !M::accepts(index, &ty) {
                return Err(format!(
                    "column `{}` is now `{}`, which field `{}: {}` cannot read",
                    column.name,
                    ty.name(),
                    column.field,
                    column.rust_type.replace(' ', "")
                ));
            }
            positions.push(position);
            types.push(ty);
        }
        Ok((positions, types))
    }

    fn altered(&self, what: &str) -> Error {
        let spec = M::SPEC;
        Error::Capture {
            mapping: spec.name.to_owned(),
            message: format!(
                "source table `{}` changed so that the mapping no longer matches: {what}; \
                 nothing after the change was applied and the position is kept; update the \
                 mapping (then `cargo xtask gen` and rebuild) and run `data-sync sync --full`",
                spec.source.display_name()
            ),
        }
    }

    fn positions(&self) -> Result<&[usize]> {
        if let Some(what) = &self.pending {
            return Err(self.altered(what));
        }
        self.positions.as_deref().ok_or_else(|| Error::Capture {
            mapping: M::SPEC.name.to_owned(),
            message: "the server sent a change before describing the table".to_owned(),
        })
    }

    /// The mapping's fields of `tuple`, in field order.
    fn fields<'t>(&self, tuple: &Tuple<'t>) -> Result<Vec<Value<'t>>> {
        let positions = self.positions()?;
        positions
            .iter()
            .map(|&position| {
                tuple
                    .0
                    .get(position)
                    .copied()
                    .ok_or_else(|| Error::Capture {
                        mapping: M::SPEC.name.to_owned(),
                        message: format!(
                            "a change has {} values, the table {} columns",
                            tuple.0.len(),
                            positions.len()
                        ),
                    })
            })
            .collect()
    }

    /// The raw bytes of field values, `None` for NULL and for an unchanged value.
    fn slices<'t>(&self, values: &[Value<'t>]) -> Result<Vec<Option<&'t [u8]>>> {
        let spec = M::SPEC;
        values
            .iter()
            .enumerate()
            .map(|(index, value)| match *value {
                Value::Binary(bytes) => Ok(Some(bytes)),
                Value::Null | Value::Unchanged => Ok(None),
                Value::Text(_) => Err(Error::Capture {
                    mapping: spec.name.to_owned(),
                    message: format!(
                        "the server sent column `{}` as text, not in binary; its type `{}` has \
                         no binary send function",
                        spec.source.columns[index].name,
                        self.types[index].name()
                    ),
                }),
            })
            .collect()
    }

    /// `INSERT`: upserts the row into every target.
    pub(crate) fn insert(&mut self, new: &Tuple<'_>) -> Result<()> {
        let values = self.fields(new)?;
        self.write(&values, None)
    }

    /// `UPDATE`: upserts the new row; with the old key (a key change) deletes that
    /// first.
    pub(crate) fn update(&mut self, old: Option<&OldTuple<'_>>, new: &Tuple<'_>) -> Result<()> {
        let values = self.fields(new)?;
        let old_key = match old {
            Some(old) => {
                let old_values = self.fields(old.tuple())?;
                let old_key = self.key_of(&old_values)?;
                let new_key = self.key_of(&values)?;
                (old_key != new_key).then_some(old_key)
            }
            None => None,
        };
        self.write(&values, old_key)
    }

    /// `DELETE`: deletes the key from every target, children first.
    pub(crate) fn delete(&mut self, old: &OldTuple<'_>) -> Result<()> {
        let values = self.fields(old.tuple())?;
        let key = self.key_of(&values)?;
        self.changes += 1;
        self.delete_key(&key)
    }

    /// `TRUNCATE`: empties every target, children first.
    pub(crate) fn truncate(&mut self) -> Result<()> {
        let spec = M::SPEC;
        self.changes += 1;
        for (index, target) in spec.targets.iter().enumerate().rev() {
            let deleted = self
                .connection
                .execute(target.delete_all, [])
                .map_err(|source| write_error(spec, index, &|| "all rows".to_owned(), source))?;
            self.deleted[index] += deleted as u64;
        }
        Ok(())
    }

    /// The key values of a row, in key order; every key column must be there.
    fn key_of<'t>(&self, values: &[Value<'t>]) -> Result<Vec<Option<&'t [u8]>>> {
        let spec = M::SPEC;
        spec.source
            .key
            .iter()
            .map(|&index| match values[index] {
                Value::Binary(bytes) => Ok(Some(bytes)),
                _ => Err(Error::Capture {
                    mapping: spec.name.to_owned(),
                    message: format!(
                        "a change of `{}` did not send key column `{}`; run `ALTER TABLE {} \
                         REPLICA IDENTITY FULL` (or make the key the primary key)",
                        spec.source.display_name(),
                        spec.source.columns[index].name,
                        spec.source.display_name()
                    ),
                }),
            })
            .collect()
    }

    /// Deletes the row of `key` (key order) from every target, children first.
    fn delete_key(&mut self, key: &[Option<&[u8]>]) -> Result<()> {
        delete_key::<M>(self.connection, &self.key_types, &mut self.deleted, key)
    }

    /// Writes the row `values` (field order) to every target, parents first, after
    /// deleting `old_key` when the update moved the row to another key.
    fn write(&mut self, values: &[Value<'_>], old_key: Option<Vec<Option<&[u8]>>>) -> Result<()> {
        let spec = M::SPEC;
        self.changes += 1;
        let slices = self.slices(values)?;
        let row = SourceRow::from_slices(&self.types, &slices);
        let unchanged: Vec<bool> = values
            .iter()
            .map(|value| *value == Value::Unchanged)
            .collect();
        let partial = unchanged.iter().any(|&flag| flag);
        if !partial {
            M::check(&row).map_err(|error| decode_error(spec, &row, error))?;
        }
        if let Some(filter) = &spec.source.filter {
            let verdict =
                super::filter::judge(spec, filter, &self.filter, &self.types, &slices, &unchanged)?;
            if verdict != Verdict::Keep {
                let key: Vec<Option<&[u8]>> =
                    spec.source.key.iter().map(|&index| slices[index]).collect();
                if verdict == Verdict::Unsent {
                    // Judged on the row as the source has it now, read again once the
                    // stream ends.
                    self.refetch.push(
                        key.iter()
                            .map(|value| value.unwrap_or_default().to_vec())
                            .collect(),
                    );
                }
                // A row that leaves the filter (or never was in it) leaves the targets;
                // one to read again is written then.
                if let Some(old_key) = &old_key {
                    delete_key::<M>(self.connection, &self.key_types, &mut self.deleted, old_key)?;
                }
                return delete_key::<M>(self.connection, &self.key_types, &mut self.deleted, &key);
            }
        }
        // A row its soft-delete column marks deleted leaves the targets.
        let soft_deleted = spec
            .source
            .soft_delete
            .is_some_and(|index| slices[index].is_some());
        if soft_deleted {
            if let Some(old_key) = &old_key {
                delete_key::<M>(self.connection, &self.key_types, &mut self.deleted, old_key)?;
            }
            let key: Vec<Option<&[u8]>> =
                spec.source.key.iter().map(|&index| slices[index]).collect();
            return delete_key::<M>(self.connection, &self.key_types, &mut self.deleted, &key);
        }
        if !partial {
            if let Some(old_key) = &old_key {
                delete_key::<M>(self.connection, &self.key_types, &mut self.deleted, old_key)?;
            }
            for (index, target) in spec.targets.iter().enumerate() {
                let mut statement =
                    self.connection
                        .prepare_cached(target.upsert)
                        .map_err(|source| {
                            write_error(spec, index, &|| "an upsert".to_owned(), source)
                        })?;
                M::bind_row(&row, index, &mut statement, 0).map_err(|error| {
                    bind_error(spec, index, &|| crate::source::row_key(spec, &row), error)
                })?;
                statement.raw_execute().map_err(|source| {
                    write_error(spec, index, &|| crate::source::row_key(spec, &row), source)
                })?;
                self.written[index] += 1;
            }
            return Ok(());
        }
        // Some values were not sent: each target keeps its own, and a row that is
        // not there stays absent.
        let key: Vec<Option<&[u8]>> = match &old_key {
            Some(old_key) => old_key.clone(),
            None => spec.source.key.iter().map(|&index| slices[index]).collect(),
        };
        let key_row = SourceRow::from_slices(&self.key_types, &key);
        // A computed column needs the whole row, so a mapping with one reads its
        // unsent values from the source too.
        let computed = spec.targets.iter().any(TargetSpec::has_computed);
        if computed || !self.exists(&key_row)? {
            // The row left the targets (a soft delete undone by this update, say): its
            // unsent values are read from the source once the stream ends.
            let new_key = spec
                .source
                .key
                .iter()
                .map(|&index| slices[index].unwrap_or_default().to_vec())
                .collect();
            self.refetch.push(new_key);
            if let Some(old_key) = &old_key {
                delete_key::<M>(self.connection, &self.key_types, &mut self.deleted, old_key)?;
            }
            return Ok(());
        }
        for (index, target) in spec.targets.iter().enumerate() {
            let sql = match old_key {
                None => partial_update(target, &unchanged),
                Some(_) => moved_insert(target, &unchanged),
            };
            let Some(sql) = sql else { continue };
            let mut statement = self
                .connection
                .prepare_cached(&sql)
                .map_err(|source| write_error(spec, index, &|| "an update".to_owned(), source))?;
            M::bind_key_row(&key_row, &mut statement)
                .map_err(|error| bind_error(spec, index, &|| key_text(&key_row), error))?;
            let mut parameter = key.len();
            for (column_index, column) in target.columns.iter().enumerate() {
                let Some(field) = column.field else { continue };
                if unchanged[field] || (old_key.is_none() && column.primary_key) {
                    continue;
                }
                parameter += 1;
                M::bind_row_field(&row, field, &mut statement, parameter, column_index).map_err(
                    |error| bind_error(spec, index, &|| crate::source::row_key(spec, &row), error),
                )?;
            }
            let written = statement.raw_execute().map_err(|source| {
                write_error(spec, index, &|| crate::source::row_key(spec, &row), source)
            })?;
            self.written[index] += written as u64;
        }
        if let Some(old_key) = &old_key {
            delete_key::<M>(self.connection, &self.key_types, &mut self.deleted, old_key)?;
        }
        Ok(())
    }
}

impl<M: Mapping> Applier<'_, M> {
    /// Whether the first target (every target holds the same keys) has the row of
    /// `key` (a key row).
    fn exists(&self, key: &SourceRow<'_>) -> Result<bool> {
        let spec = M::SPEC;
        let target = &spec.targets[0];
        let (_, condition) = target
            .delete_by_key
            .split_once(" WHERE ")
            .expect("a generated DELETE has WHERE");
        let sql = format!("SELECT 1 FROM {} WHERE {condition}", quote(target.name));
        let mut statement = self
            .connection
            .prepare_cached(&sql)
            .map_err(|source| write_error(spec, 0, &|| "a lookup".to_owned(), source))?;
        M::bind_key_row(key, &mut statement)
            .map_err(|error| bind_error(spec, 0, &|| key_text(key), error))?;
        let mut rows = statement.raw_query();
        let found = rows
            .next()
            .map_err(|source| write_error(spec, 0, &|| key_text(key), source))?
            .is_some();
        Ok(found)
    }

    /// Writes the source's current row of each key in [`Applier::refetch`] (the row
    /// read by `fetch`: its fields, `None` when the row is gone), or deletes the key
    /// when the source no longer has it or marks it soft-deleted. Later changes of
    /// the same rows are applied again over it, which leaves what applying them once
    /// leaves.
    pub(crate) fn refetch(&mut self, fetch: &mut super::slot::Fetch<'_>) -> Result<()> {
        let keys = std::mem::take(&mut self.refetch);
        for key in keys {
            fetch(&key, &mut |fields| {
                let key_slices: Vec<Option<&[u8]>> =
                    key.iter().map(|value| Some(&value[..])).collect();
                match fields {
                    None => delete_key::<M>(
                        self.connection,
                        &self.key_types,
                        &mut self.deleted,
                        &key_slices,
                    ),
                    Some(fields) => {
                        let values: Vec<Value<'_>> = fields
                            .iter()
                            .map(|field| field.map_or(Value::Null, Value::Binary))
                            .collect();
                        self.write(&values, None)
                    }
                }
            })?;
        }
        Ok(())
    }
}

/// Deletes the row of `key` (key order) from every target of `M`, children first,
/// counting the rows deleted per target in `deleted`.
fn delete_key<M: Mapping>(
    connection: &Connection,
    key_types: &[Type],
    deleted: &mut [u64],
    key: &[Option<&[u8]>],
) -> Result<()> {
    let spec = M::SPEC;
    let row = SourceRow::from_slices(key_types, key);
    for (index, target) in spec.targets.iter().enumerate().rev() {
        let mut statement = connection
            .prepare_cached(target.delete_by_key)
            .map_err(|source| write_error(spec, index, &|| "a delete".to_owned(), source))?;
        M::bind_key_row(&row, &mut statement)
            .map_err(|error| bind_error(spec, index, &|| key_text(&row), error))?;
        let count = statement
            .raw_execute()
            .map_err(|source| write_error(spec, index, &|| key_text(&row), source))?;
        deleted[index] += count as u64;
    }
    Ok(())
}

/// `UPDATE "t" SET "c" = ?k+1, .. WHERE <key> ` over the sent non-key columns of
/// `target`, the key as `?1..?k`; `None` when no such column is sent.
fn partial_update(target: &TargetSpec, unchanged: &[bool]) -> Option<String> {
    let (_, where_clause) = target.delete_by_key.split_once(" WHERE ")?;
    let key_count = target
        .columns
        .iter()
        .filter(|column| column.primary_key)
        .count();
    let mut parameter = key_count;
    let assignments: Vec<String> = target
        .columns
        .iter()
        .filter(|column| !column.primary_key && column.field.is_some_and(|field| !unchanged[field]))
        .map(|column| {
            parameter += 1;
            format!("{} = ?{parameter}", quote(column.name))
        })
        .collect();
    if assignments.is_empty() {
        return None;
    }
    Some(format!(
        "UPDATE {} SET {} WHERE {where_clause}",
        quote(target.name),
        assignments.join(", ")
    ))
}

/// `INSERT INTO "t" (..) SELECT ?k+1, "unchanged", .. FROM "t" WHERE <old key>
/// ON CONFLICT (key) DO UPDATE ..`: the row moved to a new key, its unchanged values
/// copied from the old row, the old key as `?1..?k`.
fn moved_insert(target: &TargetSpec, unchanged: &[bool]) -> Option<String> {
    let (_, where_clause) = target.delete_by_key.split_once(" WHERE ")?;
    let key_count = target
        .columns
        .iter()
        .filter(|column| column.primary_key)
        .count();
    let mut parameter = key_count;
    let names: Vec<String> = target
        .columns
        .iter()
        .map(|column| quote(column.name))
        .collect();
    let values: Vec<String> = target
        .columns
        .iter()
        .map(|column| {
            if column.field.is_none_or(|field| unchanged[field]) {
                quote(column.name)
            } else {
                parameter += 1;
                format!("?{parameter}")
            }
        })
        .collect();
    let keys: Vec<String> = target
        .columns
        .iter()
        .filter(|column| column.primary_key)
        .map(|column| quote(column.name))
        .collect();
    let updates: Vec<String> = target
        .columns
        .iter()
        .filter(|column| !column.primary_key)
        .map(|column| format!("{0} = excluded.{0}", quote(column.name)))
        .collect();
    let conflict = if updates.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    Some(format!(
        "INSERT INTO {table} ({}) SELECT {} FROM {table} WHERE {where_clause} ON CONFLICT ({}) {conflict}",
        names.join(", "),
        values.join(", "),
        keys.join(", "),
        table = quote(target.name),
    ))
}
