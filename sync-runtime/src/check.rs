//! `data-sync check`: each compiled-in mapping against the live source table and the
//! live target file, every difference listed. The source side asks what a run would
//! ask: do the columns exist, can each field decode its column's live type (the
//! generated `accepts`, fed the types PostgreSQL reports for the mapping's own
//! SELECT), may a column hold NULL that its field cannot. The target side is the
//! check every run makes before writing (`target::differences`).
//!
//! [`describe_table`] reads one table from `pg_catalog`; `cargo xtask schema` writes
//! its snapshot from the same function.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio_postgres::types::Type;

use crate::error::{Error, Result};
use crate::registered::Registered;
use crate::source::client::Client;
use crate::source::config::SourceConfig;
use crate::source::guard;
use crate::spec::{MappingSpec, SourceColumn};
use crate::target::{self, target_error};

/// One table as `pg_catalog` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSchema {
    /// The schema the table is in.
    pub schema: String,
    /// The table name.
    pub table: String,
    /// `table`, `partitioned table`, `view`, `materialized view` or `foreign table`.
    pub kind: String,
    /// The columns, in table order.
    pub columns: Vec<ColumnSchema>,
    /// The primary key's columns, in key order; empty without one.
    pub primary_key: Vec<String>,
    /// Unique constraints and unique indexes on plain columns without predicate, other
    /// than the primary key; each in index order, the list sorted.
    pub unique: Vec<Vec<String>>,
}

/// One column as `pg_catalog` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSchema {
    /// The column name.
    pub name: String,
    /// The type as `format_type` prints it; for a domain, its base type's.
    pub pg_type: String,
    /// The domain's name, for a column of a domain type.
    pub domain: Option<String>,
    /// Whether the column is `NOT NULL`.
    pub not_null: bool,
    /// For an array, the element type as `format_type` prints it.
    pub element_type: Option<String>,
    /// For an enum or an array of one, the labels in sort order.
    pub enum_labels: Option<Vec<String>>,
}

/// Reads `schema.table` (or `table` on the search path, for `schema: None`) from
/// `pg_catalog`; `None` when there is no such table or view.
///
/// # Errors
///
/// A failed query.
pub fn describe_table(
    client: &mut Client,
    schema: Option<&str>,
    table: &str,
) -> std::result::Result<Option<TableSchema>, tokio_postgres::Error> {
    let Some(row) = client.query_opt(
        "SELECT c.oid, n.nspname::text,
                CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                     WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                     ELSE 'foreign table' END
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relname::text = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND CASE WHEN $1::text IS NULL THEN pg_table_is_visible(c.oid)
                    ELSE n.nspname::text = $1 END",
        &[&schema, &table],
    )?
    else {
        return Ok(None);
    };
    let oid: u32 = row.get(0);
    let columns = client
        .query(
            "SELECT a.attname::text,
                    format_type(e.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END),
                    CASE WHEN t.typtype = 'd' THEN format_type(t.oid, NULL) END,
                    a.attnotnull,
                    CASE WHEN e.typcategory = 'A' AND e.typelem <> 0
                         THEN format_type(e.typelem, NULL) END,
                    (SELECT array_agg(l.enumlabel::text ORDER BY l.enumsortorder)
                     FROM pg_enum l
                     WHERE l.enumtypid = CASE WHEN e.typtype = 'e' THEN e.oid ELSE e.typelem END)
             FROM pg_attribute a
             JOIN pg_type t ON t.oid = a.atttypid
             JOIN pg_type e ON e.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&oid],
        )?
        .iter()
        .map(|row| ColumnSchema {
            name: row.get(0),
            pg_type: row.get(1),
            domain: row.get(2),
            not_null: row.get(3),
            element_type: row.get(4),
            enum_labels: row.get(5),
        })
        .collect();
    let mut primary_key = Vec::new();
    let mut unique = Vec::new();
    for row in client.query(
        "SELECT i.indisprimary,
                array_agg(a.attname::text ORDER BY k.position)
         FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL
           AND i.indexprs IS NULL AND k.position <= i.indnkeyatts
         GROUP BY i.indexrelid, i.indisprimary",
        &[&oid],
    )? {
        let columns: Vec<String> = row.get(1);
        if row.get::<_, bool>(0) {
            primary_key = columns;
        } else {
            unique.push(columns);
        }
    }
    unique.sort();
    unique.dedup();
    Ok(Some(TableSchema {
        schema: row.get(1),
        table: table.to_owned(),
        kind: row.get(2),
        columns,
        primary_key,
        unique,
    }))
}

/// How one mapping differs from the live source and target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The mapping name.
    pub mapping: String,
    /// Every difference; empty when the mapping matches both sides.
    pub differences: Vec<Difference>,
    /// The target tables that do not exist yet, parents first: not a difference,
    /// the next sync creates them (before the first sync, all of them). Over a
    /// template: those missing from some file, or all of them when there is none.
    pub to_create: Vec<String>,
    /// The template, when the target is one (a mapping with `partition_by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// How many existing files of the template were checked; `None` for one file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// One difference between a mapping and a live table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `source` (PostgreSQL) or `target` (SQLite).
    pub side: &'static str,
    /// The table: `public.users`, or a target table.
    pub table: String,
    /// What differs, lowercase, names in backticks.
    pub message: String,
    /// The file of a template the target difference is in; `None` for the source
    /// and for one target file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// Compares `mapping` with the source behind `client` and the SQLite file `target`
/// (which is not created when missing; a target table that does not exist is no
/// difference but listed in [`CheckReport::to_create`]). The source side is asked as a run asks:
/// with row-level security off, so a role a policy would filter is reported; and a
/// key without a unique index or constraint is reported unless `assume_unique_key`
/// (as `sync --assume-unique-key` does not refuse it).
///
/// For a mapping with `partition_by`, `target` is a template
/// (`out/{tenant_id}.sqlite`): the source is checked once, and every existing file
/// of the template as one target file is.
///
/// # Errors
///
/// A failed query on either side; differences are not errors. For a mapping with
/// `partition_by`, [`Error::Partition`] naming a template without the partition
/// column's placeholder (or with another column's).
pub fn check_mapping(
    mapping: &Registered,
    client: &mut Client,
    target: &Path,
    assume_unique_key: bool,
) -> Result<CheckReport> {
    let spec = mapping.spec;
    let template = match spec.source.partition_by {
        Some(_) => Some(crate::partition::Template::parse(spec, target)?),
        None => None,
    };
    // A cancelled statement or a silent server is a timeout, as in a run.
    let read_timeout = client.read_timeout();
    let mut differences = check_source(mapping, client, assume_unique_key)
        .map_err(|error| error.with_timeouts(read_timeout))?;
    // What change capture needs of the source, and the target's slot.
    if spec.source.capture.is_some() {
        // A template's slot is kept in its state file, beside the files.
        let slot_file = crate::sync::capture::fanout::slot_file(spec, target)
            .unwrap_or_else(|| target.to_owned());
        let problems = crate::sync::capture::prerequisites::problems(spec, client, &slot_file)
            .map_err(|error| error.with_timeouts(read_timeout))?;
        differences.extend(problems.into_iter().map(|message| Difference {
            side: "source",
            table: spec.source.display_name(),
            message,
            file: None,
        }));
    }
    if let Some(template) = &template {
        let (target_differences, to_create, files) = check_files(spec, template, target)?;
        differences.extend(target_differences);
        return Ok(CheckReport {
            mapping: spec.name.to_owned(),
            differences,
            to_create,
            template: Some(target.display().to_string()),
            files: Some(files),
        });
    }
    let (target_differences, to_create) = check_target(spec, target)?;
    differences.extend(target_differences);
    Ok(CheckReport {
        mapping: spec.name.to_owned(),
        differences,
        to_create,
        template: None,
        files: None,
    })
}

/// [`check_target`] for every existing file of `template` (given as `text`), each
/// difference naming its file; a file that cannot be read is a difference of its
/// own. Returns the differences, the tables missing from some file (all of them
/// when there is no file yet) and the number of files.
fn check_files(
    spec: &MappingSpec,
    template: &crate::partition::Template,
    text: &Path,
) -> Result<(Vec<Difference>, Vec<String>, u64)> {
    let existing = template.existing().map_err(|source| Error::Io {
        path: text.to_owned(),
        source,
    })?;
    if existing.is_empty() {
        let missing = spec.targets.iter().map(|target| target.name.to_owned());
        return Ok((Vec::new(), missing.collect(), 0));
    }
    let mut differences = Vec::new();
    let mut to_create: Vec<String> = Vec::new();
    for (_, path) in &existing {
        crate::sync::signal::check(spec)?;
        match check_target(spec, path) {
            Ok((file_differences, missing)) => {
                differences.extend(file_differences.into_iter().map(|difference| Difference {
                    file: Some(path.clone()),
                    ..difference
                }));
                for table in missing {
                    if !to_create.contains(&table) {
                        to_create.push(table);
                    }
                }
            }
            Err(error) if error.kind() == "interrupted" => return Err(error),
            Err(error) => differences.push(Difference {
                side: "target",
                table: String::new(),
                message: format!("the file cannot be read: {error}"),
                file: Some(path.clone()),
            }),
        }
    }
    Ok((differences, to_create, existing.len() as u64))
}

fn check_source(
    mapping: &Registered,
    client: &mut Client,
    assume_unique_key: bool,
) -> Result<Vec<Difference>> {
    let spec = mapping.spec;
    let table = spec.source.display_name();
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: table.clone(),
        source,
    };
    let difference = |message: String| Difference {
        side: "source",
        table: table.clone(),
        message,
        file: None,
    };
    let Some(live) =
        describe_table(client, spec.source.schema, spec.source.table).map_err(source_error)?
    else {
        return Ok(vec![difference(format!("table `{table}` does not exist"))]);
    };
    let mut differences = Vec::new();
    let mut missing_column = false;
    for column in spec.source.columns {
        let Some(live_column) = live.columns.iter().find(|live| live.name == column.name) else {
            missing_column = true;
            differences.push(difference(format!(
                "column `{}` is missing (field `{}` reads it)",
                column.name, column.field
            )));
            continue;
        };
        if !live_column.not_null && !column.nullable {
            differences.push(difference(format!(
                "column `{}` is nullable, but field `{}` (`{}`) is not an `Option`",
                column.name,
                column.field,
                compact(column.rust_type)
            )));
        }
    }
    if missing_column {
        // The SELECT names a missing column: PostgreSQL would only repeat it.
        return Ok(differences);
    }
    // A key no unique index backs lets two rows collapse into one target row.
    let unique: bool = client
        .query_one(
            guard::KEY_IS_UNIQUE,
            &[
                &spec.source.schema,
                &spec.source.table,
                &guard::key_columns(spec),
            ],
        )
        .map_err(source_error)?
        .get(0);
    if !unique && !assume_unique_key {
        let error = guard::key_not_unique(spec).to_string();
        let message = error
            .split_once(": ")
            .map_or(error.as_str(), |(_, rest)| rest);
        differences.push(difference(message.to_owned()));
    }
    // A run reads every mapped column; PostgreSQL checks the rights only when a
    // statement runs, so preparing the SELECT below would not notice.
    let names: Vec<&str> = spec
        .source
        .columns
        .iter()
        .map(|column| column.name)
        .collect();
    let rights = client
        .query_one(
            "SELECT current_user::text, has_schema_privilege(n.oid, 'USAGE'),
                    array(SELECT a.attname::text FROM pg_attribute a
                          WHERE a.attrelid = c.oid AND a.attname::text = ANY($3)
                            AND NOT has_column_privilege(c.oid, a.attnum, 'SELECT')
                          ORDER BY a.attnum)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname::text = $1 AND c.relname::text = $2",
            &[&live.schema, &spec.source.table, &names],
        )
        .map_err(source_error)?;
    let role: String = rights.get(0);
    if !rights.get::<_, bool>(1) {
        differences.push(difference(format!(
            "role `{role}` has no USAGE privilege on schema `{}`",
            live.schema
        )));
    }
    for column in rights.get::<_, Vec<String>>(2) {
        differences.push(difference(format!(
            "role `{role}` has no SELECT privilege on column `{column}`"
        )));
    }
    // The types PostgreSQL reports for the mapping's own SELECT are exactly those a
    // run decodes (casts included). They are asked as a run asks, in a snapshot with
    // row-level security off: a role a policy would filter gets the run's error.
    let mut transaction = client.snapshot(&[]).map_err(source_error)?;
    let statement = match transaction.prepare(spec.source.select) {
        Ok(statement) => statement,
        Err(error) if guard::is_row_security(&error) => {
            let error = guard::classify(spec, source_error(error)).to_string();
            let message = error
                .split_once(": ")
                .map_or(error.as_str(), |(_, rest)| rest);
            differences.push(difference(message.to_owned()));
            return Ok(differences);
        }
        Err(error) => return Err(source_error(error)),
    };
    drop(transaction);
    for (index, (column, live_column)) in statement
        .columns()
        .iter()
        .zip(spec.source.columns)
        .enumerate()
    {
        let ty = column.type_();
        let described = live
            .columns
            .iter()
            .find(|live| live.name == live_column.name)
            .map_or_else(|| ty.name().to_owned(), |live| live.pg_type.clone());
        if !mapping.accepts(index, ty) {
            differences.push(difference(format!(
                "column `{}` is `{described}`, but field `{}` (`{}`) reads `{}`",
                live_column.name,
                live_column.field,
                compact(live_column.rust_type),
                live_column.pg_type
            )));
        } else if let Some(width) = narrower(live_column, ty) {
            differences.push(difference(format!(
                "column `{}` is `{described}`, wider than field `{}` (`{}`), declared `{}`: values beyond {width} bits stop a run",
                live_column.name,
                live_column.field,
                compact(live_column.rust_type),
                live_column.pg_type
            )));
        }
    }
    Ok(differences)
}

/// The differences of the target tables that exist, and the names of those that do
/// not.
fn check_target(spec: &MappingSpec, path: &Path) -> Result<(Vec<Difference>, Vec<String>)> {
    if !path.exists() {
        let missing = spec.targets.iter().map(|target| target.name.to_owned());
        return Ok((Vec::new(), missing.collect()));
    }
    let target_error = target_error(path);
    let connection = crate::target::open_for_reading(path)?;
    let mut differences = Vec::new();
    let mut missing = Vec::new();
    for target in spec.targets {
        let exists = crate::target::table_exists(&connection, target.name).map_err(target_error)?;
        if !exists {
            missing.push(target.name.to_owned());
            continue;
        }
        for message in target::differences(&connection, target).map_err(target_error)? {
            differences.push(Difference {
                side: "target",
                table: target.name.to_owned(),
                message,
                file: None,
            });
        }
        // A run reads and writes only the pages it needs, so a damaged page
        // elsewhere in a table goes unnoticed until something reads it: here the
        // whole table and its indexes are read.
        if let Some(problem) = integrity_problem(&connection, target.name).map_err(target_error)? {
            differences.push(Difference {
                side: "target",
                table: target.name.to_owned(),
                message: format!(
                    "the table fails SQLite's integrity check ({problem}): sync into a new file with `data-sync sync --full --target NEW.sqlite`"
                ),
                file: None,
            });
        }
    }
    Ok((differences, missing))
}

/// The first problem `PRAGMA quick_check` finds in table `table` and its indexes
/// (or the damage that stops it), or `None` when it finds none.
fn integrity_problem(
    connection: &rusqlite::Connection,
    table: &str,
) -> rusqlite::Result<Option<String>> {
    let mut problem = None;
    let checked = connection.pragma(None, "quick_check", table, |row| {
        let line: String = row.get(0)?;
        if line != "ok" && problem.is_none() {
            problem = Some(line);
        }
        Ok(())
    });
    match checked {
        Err(error) if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            Ok(Some(error.to_string()))
        }
        Err(error) => Err(error),
        Ok(()) => Ok(problem),
    }
}

/// The width of an integer field narrower than its live column when the mapping
/// did not declare the column's type (a declared wider type is a deliberate choice
/// to check each value at run time): `sync_sql::integer`, the derive's rule too.
fn narrower(column: &SourceColumn, live: &Type) -> Option<u32> {
    let narrower = sync_sql::integer::narrower(column.rust_type, live.name())?;
    let declared_bits = sync_sql::integer::column_bits(column.pg_type)?;
    (declared_bits < narrower.column_bits).then_some(narrower.field_bits)
}

/// `Option < String >` as a person writes it.
fn compact(rust_type: &str) -> String {
    rust_type.replace(' ', "")
}

/// Compares each of `mappings` with the live source table and the SQLite file
/// `target` (which is not created when missing), over one source connection: the
/// engine of `data-sync check`. `assume_unique_key` as in [`check_mapping`].
///
/// # Errors
///
/// [`Error::Connect`] and a failed query on either side; differences are not
/// errors, see [`CheckReport::differences`].
pub fn check(
    mappings: &[&Registered],
    source: &SourceConfig,
    target: &Path,
    assume_unique_key: bool,
) -> Result<Vec<CheckReport>> {
    let mut client = source.connect()?;
    mappings
        .iter()
        .map(|mapping| check_mapping(mapping, &mut client, target, assume_unique_key))
        .collect()
}
