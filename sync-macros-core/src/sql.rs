//! The model to SQL text, pure: the SELECT over the source, and per target the DDL,
//! INSERT, UPSERT and DELETE statements. Every identifier is quoted; no value ever
//! appears in the text (statements take `$n` / `?n` parameters).
//!
//! Callers pass a mapping that passed `check`.

use crate::ident::{quote, quote_qualified};
use crate::model::{Column, Field, Mapping, Target};
use crate::types::{self, PgType, Resolved};

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
            if pg_type(field).select_as_text() {
                format!("{column}::text")
            } else {
                column
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
                pg_type(field).sqlite_type()
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
    let action = if updates.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
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
