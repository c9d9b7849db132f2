//! An incremental run that first migrates its targets in place: the mapping only
//! gained nullable columns (each fed by a source column) or lost columns in no key
//! since the targets were built (see `target::model`).
//!
//! In one SQLite transaction (a savepoint of a group's): `ALTER TABLE .. DROP
//! COLUMN` for the dropped columns, `ALTER TABLE .. ADD COLUMN` for the added ones,
//! then the backfill: one read of the source, of the key and the added columns'
//! fields only (filtered as the mapping is), `UPDATE`s the added columns of the
//! rows the targets hold; then the incremental run itself, from the same source
//! snapshot, and the record of the migration. A failure or a kill at any point
//! leaves the targets in their old shape, with their old state.

use std::path::Path;

use rusqlite::Connection;
use sync_sql::ident::quote;
use tokio_postgres::types::Type;

use crate::Mapping;
use crate::error::{Error, Result, bind_error, decode_error, write_error};
use crate::options::SyncOptions;
use crate::source::config::SourceConfig;
use crate::source::decode::check_type;
use crate::source::{self, CopyReader, SourceRow, row_key};
use crate::spec::MappingSpec;
use crate::summary::{ColumnMigration, Summary};
use crate::sync::{group, incremental, signal};
use crate::target::state::{self, MappingState, Migration};
use crate::target::target_error;

/// The savepoint of a migrating run inside a group's transaction.
const SAVEPOINT: &str = "data_sync_migrate";

/// Migrates the targets of `M` by `migrations` (drops first), backfills the added
/// columns, then runs incrementally from `previous`, all in one transaction and
/// from one source snapshot (`snapshot`, or one exported here).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sync<M: Mapping>(
    source: &SourceConfig,
    connection: &mut Connection,
    path: &Path,
    options: &SyncOptions,
    previous: &MappingState,
    migrations: Vec<ColumnMigration>,
    snapshot: Option<&str>,
    started_at: &str,
) -> Result<Summary> {
    let target_error = target_error(path);
    let exported = match snapshot {
        Some(_) => None,
        None => Some(group::export(source)?),
    };
    let snapshot = snapshot.or(exported.as_ref().map(|exported| exported.id.as_str()));
    // The incremental run's own transactions become savepoints of this one, so that
    // the migration and the rows commit together, or neither.
    let outer = connection.is_autocommit();
    connection
        .execute_batch(&if outer {
            "BEGIN IMMEDIATE".to_owned()
        } else {
            format!("SAVEPOINT {SAVEPOINT}")
        })
        .map_err(target_error)?;
    let result = run::<M>(
        source, connection, path, options, previous, migrations, snapshot, started_at,
    );
    let end = match (&result, outer) {
        (Ok(_), true) => "COMMIT".to_owned(),
        (Ok(_), false) => format!("RELEASE {SAVEPOINT}"),
        (Err(_), true) => "ROLLBACK".to_owned(),
        (Err(_), false) => format!("ROLLBACK TO {SAVEPOINT}; RELEASE {SAVEPOINT}"),
    };
    match connection.execute_batch(&end) {
        Ok(()) => result,
        // The run's own error explains a failed rollback.
        Err(_) if result.is_err() => result,
        Err(error) => {
            if outer && !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            Err(target_error(error))
        }
    }
}

/// The migration, the backfill and the run, inside the transaction of [`sync`].
#[allow(clippy::too_many_arguments)]
fn run<M: Mapping>(
    source: &SourceConfig,
    connection: &mut Connection,
    path: &Path,
    options: &SyncOptions,
    previous: &MappingState,
    mut migrations: Vec<ColumnMigration>,
    snapshot: Option<&str>,
    started_at: &str,
) -> Result<Summary> {
    let spec = M::SPEC;
    alter(connection, spec, &migrations)?;
    backfill::<M>(source, connection, options, snapshot, &mut migrations)?;
    let mut client = source.take_connection()?;
    client.import_snapshot(snapshot);
    let cancel = signal::cancel_on_signal(source, &client);
    let mut summary =
        incremental::sync::<M>(&mut client, connection, path, options, previous, started_at)?;
    drop(cancel);
    source.give_back(client);
    let migration = Migration {
        at: started_at.to_owned(),
        columns: migrations,
    };
    state::record_migration(connection, spec.name, &migration).map_err(target_error(path))?;
    for column in &migration.columns {
        tracing::info!(
            mapping = spec.name,
            table = column.table.as_str(),
            column = column.column.as_str(),
            change = column.change.as_str(),
            backfilled = column.backfilled,
            "target migrated"
        );
    }
    summary.migrated = migration.columns;
    Ok(summary)
}

/// Drops and adds the columns of `migrations`, in that order.
fn alter(
    connection: &Connection,
    spec: &MappingSpec,
    migrations: &[ColumnMigration],
) -> Result<()> {
    for migration in migrations {
        let table = quote(&migration.table);
        let column = quote(&migration.column);
        let sql = if migration.change == "dropped" {
            format!("ALTER TABLE {table} DROP COLUMN {column}")
        } else {
            let (target, index) =
                target_column(spec, migration).expect("an added column is in the mapping");
            let sqlite_type = spec.targets[target].columns[index].sqlite_type;
            format!("ALTER TABLE {table} ADD COLUMN {column} {sqlite_type}")
        };
        connection
            .execute_batch(&sql)
            .map_err(|error| Error::MappingChanged {
                mapping: spec.name.to_owned(),
                changes: format!(
                    "{}, but SQLite cannot do that in place: {error} (an index, view or trigger of the target file may use the column)",
                    crate::target::model::describe(migration)
                ),
            })?;
    }
    Ok(())
}

/// The target and column index of an added column of `migration`.
fn target_column(spec: &MappingSpec, migration: &ColumnMigration) -> Option<(usize, usize)> {
    let target = spec
        .targets
        .iter()
        .position(|target| target.name == migration.table)?;
    let column = spec.targets[target]
        .columns
        .iter()
        .position(|column| column.name == migration.column)?;
    Some((target, column))
}

/// The field that feeds added column `column` of target `target` (an added column
/// is never computed: see `target::model`).
fn added_field(spec: &MappingSpec, target: usize, column: usize) -> usize {
    spec.targets[target].columns[column]
        .field
        .expect("an added column is fed by a field")
}

/// One `UPDATE` of the backfill: target `target`'s added columns `columns`.
struct Update {
    target: usize,
    columns: Vec<usize>,
    sql: String,
}

/// Fills the added columns of `migrations` from one read of the source in
/// `snapshot`: the key and the added columns' fields only, the rows the filter
/// keeps. Records on each added column the rows written.
fn backfill<M: Mapping>(
    source: &SourceConfig,
    connection: &Connection,
    options: &SyncOptions,
    snapshot: Option<&str>,
    migrations: &mut [ColumnMigration],
) -> Result<()> {
    let spec = M::SPEC;
    let mut updates: Vec<Update> = Vec::new();
    for migration in migrations.iter().filter(|m| m.change == "added") {
        let Some((target, column)) = target_column(spec, migration) else {
            continue;
        };
        match updates.iter_mut().find(|update| update.target == target) {
            Some(update) => update.columns.push(column),
            None => updates.push(Update {
                target,
                columns: vec![column],
                sql: String::new(),
            }),
        }
    }
    if updates.is_empty() {
        return Ok(());
    }
    let key = &spec.source.key;
    // The fields read: the key, in key order, then each added column's field once.
    let mut read: Vec<usize> = key.to_vec();
    for update in &updates {
        for &column in &update.columns {
            let field = added_field(spec, update.target, column);
            if !read.contains(&field) {
                read.push(field);
            }
        }
    }
    for update in &mut updates {
        let target = &spec.targets[update.target];
        let sets: Vec<String> = update
            .columns
            .iter()
            .enumerate()
            .map(|(position, &column)| {
                format!(
                    "{} = ?{}",
                    quote(target.columns[column].name),
                    key.len() + position + 1
                )
            })
            .collect();
        let (_, condition) = target
            .delete_by_key
            .split_once(" WHERE ")
            .expect("a generated DELETE has WHERE");
        update.sql = format!(
            "UPDATE {} SET {} WHERE {condition}",
            quote(target.name),
            sets.join(", ")
        );
    }
    let (expressions, from) = spec.source.select_parts();
    let select = format!(
        "SELECT {}{from}",
        read.iter()
            .map(|&field| expressions[field])
            .collect::<Vec<_>>()
            .join(", ")
    );

    let table = spec.source.display_name();
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: table.clone(),
        source,
    };
    let filter = options.filter_settings(spec)?;
    let mut client = source.connect()?;
    client.import_snapshot(snapshot);
    let _cancel = signal::cancel_on_signal(source, &client);
    let mut transaction = client.snapshot(&filter).map_err(source_error)?;
    let statement = transaction.prepare(&select).map_err(source_error)?;
    let types = source::column_types(statement.columns());
    for (position, &field) in read.iter().enumerate() {
        check_type::<M>(field, &types[position])?;
    }
    // Rows of the mapping's width: the fields read where they are, NULL elsewhere.
    let mut row_types = vec![Type::UNKNOWN; spec.source.columns.len()];
    for (position, &field) in read.iter().enumerate() {
        row_types[field] = types[position].clone();
    }
    let stream = transaction
        .copy_out(&source::copy_out_sql(&select))
        .map_err(source_error)?;
    let stream_error = |source| Error::SourceStream {
        mapping: spec.name.to_owned(),
        table: table.clone(),
        source,
    };
    let mut reader = CopyReader::new(stream, types.clone()).map_err(stream_error)?;
    let mut written = vec![0u64; updates.len()];
    while let Some(row) = reader.next_row().map_err(stream_error)? {
        let mut fields: Vec<Option<&[u8]>> = vec![None; row_types.len()];
        for (position, &field) in read.iter().enumerate() {
            fields[field] = row.raw(position);
        }
        let key_fields: Vec<Option<&[u8]>> = (0..key.len()).map(|index| row.raw(index)).collect();
        let full = SourceRow::from_slices(&row_types, &fields);
        let key_row = SourceRow::from_slices(&types[..key.len()], &key_fields);
        let key_text = || row_key(spec, &full);
        for (update, written) in updates.iter().zip(&mut written) {
            let write_error = |source| write_error(spec, update.target, &key_text, source);
            let mut statement = connection
                .prepare_cached(&update.sql)
                .map_err(write_error)?;
            M::bind_key_row(&key_row, &mut statement)
                .map_err(|error| bind_error(spec, update.target, &key_text, error))?;
            for (position, &column) in update.columns.iter().enumerate() {
                let field = added_field(spec, update.target, column);
                M::bind_row_field(
                    &full,
                    field,
                    &mut statement,
                    key.len() + position + 1,
                    column,
                )
                .map_err(|error| match error {
                    crate::__private::BindError::Decode(error) => decode_error(spec, &full, error),
                    error => bind_error(spec, update.target, &key_text, error),
                })?;
            }
            *written += statement.raw_execute().map_err(write_error)? as u64;
        }
    }
    drop(reader);
    transaction.commit().map_err(source_error)?;
    for migration in migrations.iter_mut() {
        if let Some((target, _)) = target_column(spec, migration)
            && let Some(index) = updates.iter().position(|update| update.target == target)
            && migration.change == "added"
        {
            migration.backfilled = written[index];
        }
    }
    Ok(())
}
