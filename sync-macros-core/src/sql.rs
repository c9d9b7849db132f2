//! The model to SQL text, pure: the SELECT over the source, and per target the DDL,
//! INSERT, UPSERT and DELETE statements. Every identifier is quoted; no value ever
//! appears in the text (statements take `$n` / `?n` parameters).
//!
//! Callers pass a mapping that passed `check`.

use crate::ident::{quote, quote_qualified};
use crate::model::{Column, Field, Mapping, Target};
use crate::types::{self, PgType, Resolved, SqliteType};

/// The PostgreSQL type of a checked field.
pub fn pg_type(field: &Field) -> PgType {
    match types::resolve(
        field.pg_type.as_ref().map(|name| name.value.as_str()),
        &field.rust_type.value,
    ) {
        Resolved::Type(ty) => ty,
        other => panic!(
            "field `{}` did not pass check: {other:?}",
            field.ident.value
        ),
    }
}

/// The SQLite column type a checked field writes (its PostgreSQL type's default, or a
/// Rust opt-in type's).
pub fn sqlite_type(field: &Field) -> SqliteType {
    types::sqlite_type(&pg_type(field), &field.rust_type.value)
}

/// The field that feeds `column`.
pub fn field_of<'a>(mapping: &'a Mapping, column: &Column) -> &'a Field {
    mapping
        .field(&column.field)
        .expect("checked: every column has a field")
}

/// `SELECT "id", "User Name", ... FROM "public"."users"`, one expression per field, in
/// field order. Types whose text form is the value written are cast to text here.
pub fn select(mapping: &Mapping) -> String {
    let columns: Vec<String> = mapping
        .fields
        .iter()
        .map(|field| {
            let column = quote(&field.column.value);
            match pg_type(field).select_cast() {
                Some(cast) => format!("{column}::{cast}"),
                None => column,
            }
        })
        .collect();
    format!(
        "SELECT {} FROM {}",
        columns.join(", "),
        source_table(mapping)
    )
}

/// The quoted, possibly schema-qualified source table.
pub fn source_table(mapping: &Mapping) -> String {
    let source = &mapping.source;
    quote_qualified(
        source.schema.as_ref().map(|name| name.value.as_str()),
        &source.table.value,
    )
}

/// `CREATE TABLE "user_main" (...) STRICT`, with NOT NULL for non-`Option` fields, the
/// primary key and foreign keys from `references`.
pub fn create_table(mapping: &Mapping, target: &Target) -> String {
    let mut parts: Vec<String> = target
        .columns
        .iter()
        .map(|column| {
            let field = field_of(mapping, column);
            let not_null = if field.is_nullable() { "" } else { " NOT NULL" };
            format!(
                "{} {}{not_null}",
                quote(&column.name.value),
                sqlite_type(field)
            )
        })
        .collect();
    parts.push(format!(
        "PRIMARY KEY ({})",
        quoted_list(primary_key(mapping, target))
    ));
    for column in &target.columns {
        if let Some(reference) = &column.references {
            parts.push(format!(
                "FOREIGN KEY ({}) REFERENCES {} ({})",
                quote(&column.name.value),
                quote(&reference.table.value),
                quote(&reference.column.value)
            ));
        }
    }
    format!(
        "CREATE TABLE {} ({}) STRICT",
        quote(&target.name.value),
        parts.join(", ")
    )
}

/// `INSERT INTO "t" ("a", "b") VALUES (?1, ?2)`, parameters in column order.
pub fn insert(target: &Target) -> String {
    let names: Vec<&str> = target
        .columns
        .iter()
        .map(|column| column.name.value.as_str())
        .collect();
    let parameters: Vec<String> = (1..=names.len()).map(|n| format!("?{n}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote(&target.name.value),
        quoted_list(names),
        parameters.join(", ")
    )
}

/// [`insert`] that updates the row when its primary key exists:
/// `... ON CONFLICT ("id") DO UPDATE SET "a" = excluded."a"`.
pub fn upsert(mapping: &Mapping, target: &Target) -> String {
    let updates: Vec<String> = target
        .columns
        .iter()
        .filter(|column| !column.primary_key)
        .map(|column| format!("{0} = excluded.{0}", quote(&column.name.value)))
        .collect();
    // The `WHERE` leaves an unchanged row alone, so that re-reading a row (the
    // overlap window of incremental sync) writes nothing and counts as no change.
    let changed: Vec<String> = target
        .columns
        .iter()
        .filter(|column| !column.primary_key)
        .map(|column| format!("{0} IS NOT excluded.{0}", quote(&column.name.value)))
        .collect();
    let action = if updates.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!(
            "DO UPDATE SET {} WHERE {}",
            updates.join(", "),
            changed.join(" OR ")
        )
    };
    format!(
        "{} ON CONFLICT ({}) {action}",
        insert(target),
        quoted_list(primary_key(mapping, target))
    )
}

/// `DELETE FROM "t"`.
pub fn delete_all(target: &Target) -> String {
    format!("DELETE FROM {}", quote(&target.name.value))
}

/// `DELETE FROM "t" WHERE "id" = ?1 AND ...`, parameters in source key order.
pub fn delete_by_key(mapping: &Mapping, target: &Target) -> String {
    let conditions: Vec<String> = primary_key(mapping, target)
        .into_iter()
        .enumerate()
        .map(|(index, name)| format!("{} = ?{}", quote(name), index + 1))
        .collect();
    format!(
        "DELETE FROM {} WHERE {}",
        quote(&target.name.value),
        conditions.join(" AND ")
    )
}

/// The target's primary key column names, in source key order.
pub fn primary_key<'a>(mapping: &Mapping, target: &'a Target) -> Vec<&'a str> {
    key_columns(mapping, target)
        .into_iter()
        .map(|column| column.name.value.as_str())
        .collect()
}

/// The target's primary key columns, in source key order.
pub fn key_columns<'a>(mapping: &Mapping, target: &'a Target) -> Vec<&'a Column> {
    mapping
        .source
        .key
        .iter()
        .filter_map(|key| {
            mapping
                .fields
                .iter()
                .find(|field| field.column.value == key.value)
        })
        .filter_map(|field| {
            target
                .columns
                .iter()
                .find(|column| column.primary_key && column.field == field.ident.value)
        })
        .collect()
}

/// Target indices with every parent before its children, otherwise in declaration
/// order.
pub fn write_order(mapping: &Mapping) -> Vec<usize> {
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
        assert!(order.len() > before, "checked: references form no cycle");
    }
    order
}

/// A stable fingerprint of everything that decides what a run writes: the SELECT, the
/// DDL, and the key, cursor and soft-delete columns. A changed fingerprint means the
/// targets were built by a different definition.
pub fn fingerprint(mapping: &Mapping) -> String {
    let mut text = select(mapping);
    for target in &mapping.targets {
        text.push('\n');
        text.push_str(&create_table(mapping, target));
    }
    let source = &mapping.source;
    for (label, names) in [
        ("key", source.key.iter().collect::<Vec<_>>()),
        ("cursor", source.cursor.iter().collect()),
        ("soft_delete", source.soft_delete.iter().collect()),
    ] {
        text.push('\n');
        text.push_str(label);
        for name in names {
            text.push(' ');
            text.push_str(&quote(&name.value));
        }
    }
    // FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(quote).collect::<Vec<_>>().join(", ")
}

/// The name of the temporary table `--prune` streams the source keys into.
const PRUNE_KEYS: &str = "_data_sync_keys";

/// The select list of [`select`]: one expression per field, in field order.
fn select_list(mapping: &Mapping) -> Vec<String> {
    mapping.fields.iter().map(field_expression).collect()
}

/// A field as the SELECT reads it: the quoted column, cast where its text form is
/// the value written.
fn field_expression(field: &Field) -> String {
    let column = quote(&field.column.value);
    match pg_type(field).select_cast() {
        Some(cast) => format!("{column}::{cast}"),
        None => column,
    }
}

/// The key fields, in source key order.
fn key_fields(mapping: &Mapping) -> Vec<&Field> {
    mapping
        .source
        .key
        .iter()
        .map(|key| {
            mapping
                .fields
                .iter()
                .find(|field| field.column.value == key.value)
                .expect("checked: key columns are read")
        })
        .collect()
}

/// The watermark columns, raw (uncast): the cursor, then the key columns.
fn watermark_columns(mapping: &Mapping) -> Vec<String> {
    let cursor = mapping
        .source
        .cursor
        .as_ref()
        .expect("incremental SQL is made for mappings with a cursor");
    std::iter::once(quote(&cursor.value))
        .chain(mapping.source.key.iter().map(|key| quote(&key.value)))
        .collect()
}

/// The SELECT of incremental sync, without condition:
/// `SELECT <fields>, "cursor", "key" FROM "t" {condition} ORDER BY "cursor", "key"`.
/// The trailing columns (cursor and key, uncast) are the watermark a row reaches.
fn incremental_select(mapping: &Mapping, extra: Option<String>, condition: &str) -> String {
    let watermark = watermark_columns(mapping).join(", ");
    let mut list = select_list(mapping);
    list.push(watermark.clone());
    list.extend(extra);
    format!(
        "SELECT {} FROM {}{condition} ORDER BY {watermark}",
        list.join(", "),
        source_table(mapping)
    )
}

/// Every row, in watermark order (no watermark stored yet).
pub fn incremental_select_all(mapping: &Mapping) -> String {
    incremental_select(mapping, None, "")
}

/// The rows after watermark `$1` (cursor), `$2..` (key):
/// `.. WHERE ("cursor", "key") > ($1, $2) ORDER BY "cursor", "key"`.
pub fn incremental_select_after(mapping: &Mapping) -> String {
    let columns = watermark_columns(mapping);
    let parameters: Vec<String> = (1..=columns.len()).map(|n| format!("${n}")).collect();
    incremental_select(
        mapping,
        None,
        &format!(
            " WHERE ({}) > ({})",
            columns.join(", "),
            parameters.join(", ")
        ),
    )
}

/// The rows whose cursor is at least `$1` (the watermark's cursor less the overlap),
/// with one more column telling whether the row lies after watermark `$2..`:
/// `SELECT .., ("cursor", "key") > ($2, $3) FROM .. WHERE "cursor" >= $1 ORDER BY ..`.
pub fn incremental_select_from(mapping: &Mapping) -> String {
    let columns = watermark_columns(mapping);
    let parameters: Vec<String> = (2..=columns.len() + 1).map(|n| format!("${n}")).collect();
    incremental_select(
        mapping,
        Some(format!(
            "({}) > ({})",
            columns.join(", "),
            parameters.join(", ")
        )),
        &format!(" WHERE {} >= $1", columns[0]),
    )
}

/// The greatest watermark of the table:
/// `SELECT "cursor", "key" FROM .. ORDER BY "cursor" DESC, "key" DESC LIMIT 1`.
pub fn watermark(mapping: &Mapping) -> String {
    let columns = watermark_columns(mapping);
    let descending: Vec<String> = columns
        .iter()
        .map(|column| format!("{column} DESC"))
        .collect();
    format!(
        "SELECT {} FROM {} ORDER BY {} LIMIT 1",
        columns.join(", "),
        source_table(mapping),
        descending.join(", ")
    )
}

/// The key of one row whose cursor is NULL, as text:
/// `SELECT "id"::text FROM .. WHERE "cursor" IS NULL LIMIT 1`.
pub fn null_cursor(mapping: &Mapping) -> String {
    let columns = watermark_columns(mapping);
    let keys: Vec<String> = mapping
        .source
        .key
        .iter()
        .map(|key| format!("{}::text", quote(&key.value)))
        .collect();
    format!(
        "SELECT {} FROM {} WHERE {} IS NULL LIMIT 1",
        keys.join(", "),
        source_table(mapping),
        columns[0]
    )
}

/// Every key of the source, read as the key fields read it: `SELECT "id" FROM ..`.
pub fn select_keys(mapping: &Mapping) -> String {
    let keys: Vec<String> = key_fields(mapping)
        .into_iter()
        .map(field_expression)
        .collect();
    format!("SELECT {} FROM {}", keys.join(", "), source_table(mapping))
}

/// The temporary table of source keys for `--prune`:
/// `CREATE TEMP TABLE "_data_sync_keys" ("k1" INTEGER NOT NULL, PRIMARY KEY ("k1")) WITHOUT ROWID`.
pub fn prune_keys_create(mapping: &Mapping) -> String {
    let fields = key_fields(mapping);
    let mut parts: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(index, field)| {
            format!(
                "{} {} NOT NULL",
                quote(&format!("k{}", index + 1)),
                sqlite_type(field)
            )
        })
        .collect();
    let names: Vec<String> = (1..=fields.len())
        .map(|n| quote(&format!("k{n}")))
        .collect();
    parts.push(format!("PRIMARY KEY ({})", names.join(", ")));
    format!(
        "CREATE TEMP TABLE {} ({}) WITHOUT ROWID",
        quote(PRUNE_KEYS),
        parts.join(", ")
    )
}

/// `INSERT OR IGNORE INTO temp."_data_sync_keys" VALUES (?1, ..)`, key order.
pub fn prune_keys_insert(mapping: &Mapping) -> String {
    let parameters: Vec<String> = (1..=mapping.source.key.len())
        .map(|n| format!("?{n}"))
        .collect();
    format!(
        "INSERT OR IGNORE INTO temp.{} VALUES ({})",
        quote(PRUNE_KEYS),
        parameters.join(", ")
    )
}

/// `DROP TABLE IF EXISTS temp."_data_sync_keys"`.
pub fn prune_keys_drop() -> String {
    format!("DROP TABLE IF EXISTS temp.{}", quote(PRUNE_KEYS))
}

/// Deletes the rows of `target` whose key is not among the streamed source keys:
/// `DELETE FROM "t" WHERE NOT EXISTS (SELECT 1 FROM temp."_data_sync_keys" AS "k"
/// WHERE "k"."k1" = "t"."id")`.
pub fn prune(mapping: &Mapping, target: &Target) -> String {
    let table = quote(&target.name.value);
    let conditions: Vec<String> = primary_key(mapping, target)
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            format!(
                "\"k\".{} = {table}.{}",
                quote(&format!("k{}", index + 1)),
                quote(name)
            )
        })
        .collect();
    format!(
        "DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM temp.{} AS \"k\" WHERE {})",
        quote(PRUNE_KEYS),
        conditions.join(" AND ")
    )
}
