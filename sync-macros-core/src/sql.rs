//! The model to SQL text, pure: the SELECT over the source, and per target the DDL,
//! INSERT, UPSERT and DELETE statements. Every identifier is quoted; no value ever
//! appears in the text (statements take `$n` / `?n` parameters).
//!
//! Callers pass a mapping that passed `check`; targets are named by their index.

use crate::checked::Checked;
use crate::filter::{CheckedFilter, Operand, Predicate};
use crate::ident::{quote, quote_qualified};
use crate::model::{Column, Target};
use crate::types::PgType;

/// `SELECT "id", "User Name", ... FROM "public"."users"`, one expression per field, in
/// field order. Types whose text form is the value written are cast to text here.
///
/// With a filter: `.. FROM "t" WHERE <filter>`, the rows the targets hold.
pub fn select(mapping: &Checked) -> String {
    format!(
        "SELECT {} FROM {}{}",
        select_list(mapping).join(", "),
        source_table(mapping),
        where_filter(mapping)
    )
}

/// The setting that carries bound value `slot` of a filter: `data_sync.f1`, ...
pub fn filter_setting(slot: usize) -> String {
    format!("data_sync.f{}", slot + 1)
}

/// The filter as a SQL condition, fully parenthesized, every identifier quoted, and
/// every literal and parameter a bound value read back as
/// `current_setting('data_sync.fN')::type` (a run sets them with `set_config`,
/// binding the values), so that one constant text serves `COPY`, which takes no
/// parameters, and every value stays out of it.
pub fn filter_condition(mapping: &Checked) -> Option<String> {
    let filter = mapping.filter()?;
    Some(render_predicate(mapping, filter, &filter.predicate))
}

/// ` WHERE <filter>`, or nothing.
fn where_filter(mapping: &Checked) -> String {
    filter_condition(mapping)
        .map(|condition| format!(" WHERE {condition}"))
        .unwrap_or_default()
}

fn render_predicate(mapping: &Checked, filter: &CheckedFilter, predicate: &Predicate) -> String {
    let operand = |operand: &Operand| render_operand(mapping, filter, *operand);
    let not = |negated: bool| if negated { "NOT " } else { "" };
    match predicate {
        Predicate::And(left, right) => format!(
            "({} AND {})",
            render_predicate(mapping, filter, left),
            render_predicate(mapping, filter, right)
        ),
        Predicate::Or(left, right) => format!(
            "({} OR {})",
            render_predicate(mapping, filter, left),
            render_predicate(mapping, filter, right)
        ),
        Predicate::Not(inner) => format!("(NOT {})", render_predicate(mapping, filter, inner)),
        Predicate::Compare { left, op, right } => {
            format!("({} {} {})", operand(left), op.as_sql(), operand(right))
        }
        Predicate::In {
            operand: value,
            list,
            negated,
        } => format!(
            "({} {}IN ({}))",
            operand(value),
            not(*negated),
            list.iter().map(operand).collect::<Vec<_>>().join(", ")
        ),
        Predicate::Between {
            operand: value,
            low,
            high,
            negated,
        } => format!(
            "({} {}BETWEEN {} AND {})",
            operand(value),
            not(*negated),
            operand(low),
            operand(high)
        ),
        Predicate::Like {
            operand: value,
            pattern,
            negated,
        } => format!(
            "({} {}LIKE {})",
            operand(value),
            not(*negated),
            operand(pattern)
        ),
        Predicate::IsNull {
            operand: value,
            negated,
        } => format!("({} IS {}NULL)", operand(value), not(*negated)),
    }
}

fn render_operand(mapping: &Checked, filter: &CheckedFilter, operand: Operand) -> String {
    match operand {
        // An enum compares as its label, as its bound value does.
        Operand::Field(field) => {
            let column = quote(&mapping.fields[field].column.value);
            match mapping.field_type(field).pg_type {
                PgType::Enum => format!("{column}::text"),
                _ => column,
            }
        }
        Operand::Slot(slot) => format!(
            "current_setting('{}')::{}",
            filter_setting(slot),
            filter.slots[slot].ty.cast()
        ),
    }
}

/// The quoted, possibly schema-qualified source table.
pub fn source_table(mapping: &Checked) -> String {
    let source = &mapping.source;
    quote_qualified(
        source.schema.as_ref().map(|name| name.value.as_str()),
        &source.table.value,
    )
}

/// `CREATE TABLE "user_main" (...) STRICT`, with NOT NULL for non-`Option` fields, the
/// primary key and foreign keys from `references`; without `STRICT` for a mapping
/// with `strict = false`.
pub fn create_table(mapping: &Checked, target: usize) -> String {
    let mut parts: Vec<String> = mapping
        .columns(target)
        .map(|(column, field)| {
            let not_null = if mapping.fields[field].is_nullable() {
                ""
            } else {
                " NOT NULL"
            };
            format!(
                "{} {}{not_null}",
                quote(&column.name.value),
                mapping.field_type(field).sqlite_type
            )
        })
        .collect();
    parts.extend(mapping.computed(target).map(|(computed, types)| {
        let not_null = if computed.nullable { "" } else { " NOT NULL" };
        format!(
            "{} {}{not_null}",
            quote(&computed.name.value),
            types.sqlite_type
        )
    }));
    parts.push(format!(
        "PRIMARY KEY ({})",
        quoted_list(primary_key(mapping, target))
    ));
    let target = mapping.target_at(target);
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
    let strict = if mapping.strict { " STRICT" } else { "" };
    format!(
        "CREATE TABLE {} ({}){strict}",
        quote(&target.name.value),
        parts.join(", ")
    )
}

/// `INSERT INTO "t" ("a", "b") VALUES (?1, ?2)`, parameters in column order.
pub fn insert(target: &Target) -> String {
    let names: Vec<&str> = target.column_names().collect();
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
pub fn upsert(mapping: &Checked, target_index: usize) -> String {
    let target = mapping.target_at(target_index);
    let updates: Vec<String> = target
        .non_key_column_names()
        .map(|name| format!("{0} = excluded.{0}", quote(name)))
        .collect();
    // The `WHERE` leaves an unchanged row alone, so that re-reading a row (the
    // overlap window of incremental sync) writes nothing and counts as no change.
    let changed: Vec<String> = target
        .non_key_column_names()
        .map(|name| format!("{0} IS NOT excluded.{0}", quote(name)))
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
        quoted_list(primary_key(mapping, target_index))
    )
}

/// `DELETE FROM "t"`.
pub fn delete_all(target: &Target) -> String {
    format!("DELETE FROM {}", quote(&target.name.value))
}

/// `DELETE FROM "t" WHERE "id" = ?1 AND ...`, parameters in source key order.
pub fn delete_by_key(mapping: &Checked, target: usize) -> String {
    let conditions: Vec<String> = primary_key(mapping, target)
        .into_iter()
        .enumerate()
        .map(|(index, name)| format!("{} = ?{}", quote(name), index + 1))
        .collect();
    format!(
        "DELETE FROM {} WHERE {}",
        quote(&mapping.target_at(target).name.value),
        conditions.join(" AND ")
    )
}

/// The target's primary key column names, in source key order.
pub fn primary_key(mapping: &Checked, target: usize) -> Vec<&str> {
    key_columns(mapping, target)
        .map(|column| column.name.value.as_str())
        .collect()
}

/// The target's primary key columns, in source key order.
pub fn key_columns(mapping: &Checked, target: usize) -> impl Iterator<Item = &Column> {
    mapping.key_columns(target)
}

/// A stable fingerprint of everything that decides what a run writes: the SELECT, the
/// DDL, the key, cursor and soft-delete columns, and the functions of transforms
/// and computed columns. A changed fingerprint means the
/// targets were built by a different definition.
pub fn fingerprint(mapping: &Checked) -> String {
    let mut text = select(mapping);
    for target in 0..mapping.targets.len() {
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
    // A computed column's function decides what it holds; only mappings with one
    // have these lines, so other fingerprints stay as they were.
    for target in &mapping.targets {
        for computed in &target.computed {
            text.push_str("\ncomputed ");
            text.push_str(&quote(&target.name.value));
            text.push('.');
            text.push_str(&quote(&computed.name.value));
            text.push(' ');
            text.push_str(&computed.with.value);
        }
    }
    // A transform decides what its column holds, as a computed column's function
    // does: a changed `with` is another mapping. Only mappings with one have these
    // lines, so other fingerprints stay as they were.
    for target in &mapping.targets {
        for column in &target.columns {
            if let Some(with) = &column.with {
                text.push_str("\nwith ");
                text.push_str(&quote(&target.name.value));
                text.push('.');
                text.push_str(&quote(&column.name.value));
                text.push(' ');
                text.push_str(&with.value);
            }
        }
    }
    // Only a capture mapping has these lines, so other fingerprints stay as they were.
    if source.capture.is_some() {
        text.push_str("\ncapture log");
        if let Some(publication) = &source.publication {
            text.push_str("\npublication ");
            text.push_str(&quote(&publication.value));
        }
    }
    // Only a partitioned mapping has this line: its files hold one value's rows each.
    if let Some(partition_by) = &source.partition_by {
        text.push_str("\npartition_by ");
        text.push_str(&quote(&partition_by.value));
    }
    format!("{:016x}", sync_sql::fnv1a_64(text.as_bytes()))
}

fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(quote).collect::<Vec<_>>().join(", ")
}

/// The name of the temporary table `--prune` streams the source keys into.
const PRUNE_KEYS: &str = "_data_sync_keys";

/// The select list of [`select`]: one expression per field, in field order.
fn select_list(mapping: &Checked) -> Vec<String> {
    (0..mapping.fields.len())
        .map(|field| field_expression(mapping, field))
        .collect()
}

/// Field `field` as the SELECT reads it: the quoted column, cast where its text form
/// is the value written.
fn field_expression(mapping: &Checked, field: usize) -> String {
    let column = quote(&mapping.fields[field].column.value);
    match mapping.field_type(field).pg_type.select_cast() {
        Some(cast) => format!("{column}::{cast}"),
        None => column,
    }
}

/// The watermark columns, raw (uncast): the cursor, then the key columns. Without
/// a cursor (no incremental SQL is made then) just the key columns.
fn watermark_columns(mapping: &Checked) -> Vec<String> {
    mapping
        .cursor_field()
        .into_iter()
        .chain(mapping.key_fields().iter().copied())
        .map(|field| quote(&mapping.fields[field].column.value))
        .collect()
}

/// The SELECT of incremental sync, without condition:
/// `SELECT <fields>, "cursor", "key" FROM "t" {condition} ORDER BY "cursor", "key"`.
/// The trailing columns (cursor and key, uncast) are the watermark a row reaches;
/// with a filter, one more boolean column follows: whether the row matches it.
fn incremental_select(mapping: &Checked, extra: Option<String>, condition: &str) -> String {
    let watermark = watermark_columns(mapping).join(", ");
    let mut list = select_list(mapping);
    list.push(watermark.clone());
    // Rows that left the filter are read too, so that their targets' rows go.
    list.extend(filter_condition(mapping).map(|condition| format!("{condition} IS TRUE")));
    list.extend(extra);
    format!(
        "SELECT {} FROM {}{condition} ORDER BY {watermark}",
        list.join(", "),
        source_table(mapping)
    )
}

/// Every row, in watermark order (no watermark stored yet).
pub fn incremental_select_all(mapping: &Checked) -> String {
    incremental_select(mapping, None, "")
}

/// The rows after watermark `$1` (cursor), `$2..` (key):
/// `.. WHERE ("cursor", "key") > ($1, $2) ORDER BY "cursor", "key"`.
pub fn incremental_select_after(mapping: &Checked) -> String {
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
pub fn incremental_select_from(mapping: &Checked) -> String {
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
pub fn watermark(mapping: &Checked) -> String {
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
pub fn null_cursor(mapping: &Checked) -> String {
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

/// Every key of the source (with a filter, of the rows it keeps), read as the key
/// fields read it: `SELECT "id" FROM ..`.
pub fn select_keys(mapping: &Checked) -> String {
    let keys: Vec<String> = mapping
        .key_fields()
        .iter()
        .map(|&field| field_expression(mapping, field))
        .collect();
    format!(
        "SELECT {} FROM {}{}",
        keys.join(", "),
        source_table(mapping),
        where_filter(mapping)
    )
}

/// The temporary table of source keys for `--prune`:
/// `CREATE TEMP TABLE "_data_sync_keys" ("k1" INTEGER NOT NULL, PRIMARY KEY ("k1")) WITHOUT ROWID`.
pub fn prune_keys_create(mapping: &Checked) -> String {
    let fields = mapping.key_fields();
    let mut parts: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(index, &field)| {
            format!(
                "{} {} NOT NULL",
                quote(&format!("k{}", index + 1)),
                mapping.field_type(field).sqlite_type
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
pub fn prune_keys_insert(mapping: &Checked) -> String {
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
pub fn prune(mapping: &Checked, target: usize) -> String {
    let table = quote(&mapping.target_at(target).name.value);
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
