//! Every semantic rule of a mapping, for both front-ends: the derive calls [`check`]
//! on the model of a struct, `cargo xtask gen` on the model of a YAML file, so one
//! rule is written once and reported at whatever the user wrote.
//!
//! Rules see only the model, never syn or YAML types. One `check_*` function per
//! rule, each under a comment saying why it exists. A mapping that passes them all
//! comes back as a [`Checked`], the only form `expand`, `emit` and `sql` take.

use std::collections::{BTreeMap, BTreeSet};

use crate::checked::Checked;
use crate::ctxt::Ctxt;
use crate::filter;
use crate::ident::{identifier_problem, target_table_problem};
use crate::model::{Field, Mapping, Name, Origin, Target};
use crate::snapshot::{Column as SnapshotColumn, Snapshot};
use crate::types::{self, PgType, Resolved};

/// Runs every rule on `mapping`, recording each violation in `cx`; the checked
/// mapping when it passed them all.
pub fn check(cx: &Ctxt, mapping: Mapping) -> Option<Checked> {
    let errors_before = cx.error_count();
    check_rules(cx, &mapping);
    let filter = check_filter(cx, &mapping);
    if cx.error_count() > errors_before {
        return None;
    }
    match Checked::resolve(mapping, filter) {
        Ok(checked) => Some(checked),
        Err((origin, message)) => {
            cx.error(&origin, message);
            None
        }
    }
}

fn check_rules(cx: &Ctxt, mapping: &Mapping) {
    check_transforms(cx, mapping);
    check_computed(cx, mapping);
    check_mapping_name(cx, mapping);
    check_identifiers(cx, mapping);
    check_field_types(cx, mapping);
    check_duplicate_source_columns(cx, mapping);
    check_key(cx, mapping);
    check_cursor(cx, mapping);
    check_capture(cx, mapping);
    check_partition_by(cx, mapping);
    check_soft_delete(cx, mapping);
    check_unused_fields(cx, mapping);
    check_has_targets(cx, mapping);
    check_duplicate_target_columns(cx, mapping);
    check_target_primary_key(cx, mapping);
    check_references(cx, mapping);
    check_reference_cycles(cx, mapping);
    if let Some(snapshot) = &mapping.snapshot {
        check_snapshot_columns(cx, mapping, snapshot);
        check_snapshot_types(cx, mapping, snapshot);
        check_snapshot_nullability(cx, mapping, snapshot);
        check_snapshot_key(cx, mapping, snapshot);
    }
}

// A filter decides which rows the targets hold; a mistake in it would only show when
// PostgreSQL runs it, or worse, select other rows than meant. Its columns must be
// read by fields (so that every mode can evaluate it), of types it can compare.
fn check_filter(cx: &Ctxt, mapping: &Mapping) -> Option<filter::CheckedFilter> {
    let written = mapping.source.filter.as_ref()?;
    let types: Vec<Option<PgType>> = mapping
        .fields
        .iter()
        .map(|field| match field_type(mapping, field) {
            Resolved::Type(ty) => Some(ty),
            _ => None,
        })
        .collect();
    filter::check_filter(cx, mapping, written, &filter::FieldTypes { types: &types })
}

// A transform is a Rust function rustc checks against the field and the column;
// here only its path is read. Upserts, deletes and `--prune` find a target row by
// the source key, so key columns are written as read.
fn check_transforms(cx: &Ctxt, mapping: &Mapping) {
    for target in &mapping.targets {
        for column in &target.columns {
            let Some(with) = &column.with else {
                continue;
            };
            if syn::parse_str::<syn::Path>(&with.value).is_err() {
                cx.error(
                    &with.origin,
                    format!(
                        "`with` takes the path of a function, such as `crate::mask::email`, not `{}`",
                        with.value
                    ),
                );
            }
            if column.primary_key || column.references.is_some() {
                cx.error(
                    &with.origin,
                    format!(
                        "column `{}` of target `{}` is a key column: it cannot go through a transform, since upserts, deletes and `--prune` find target rows by the source key",
                        column.name.value, target.name.value
                    ),
                );
            }
        }
    }
}

// A computed column has no source column to take its type from, so its `type` is
// what gives the function its return type and the table its column type; the
// function itself is checked by rustc against that type.
fn check_computed(cx: &Ctxt, mapping: &Mapping) {
    for target in &mapping.targets {
        for computed in &target.computed {
            let context = format!(
                "computed column `{}` of target `{}`",
                computed.name.value, target.name.value
            );
            if syn::parse_str::<syn::Path>(&computed.with.value).is_err() {
                cx.error(
                    &computed.with.origin,
                    format!(
                        "a computed column takes the path of a function, such as `crate::custom::email::domain`, not `{}`",
                        computed.with.value
                    ),
                );
            }
            match &computed.pg_type {
                None => cx.error(
                    &computed.origin,
                    fix(
                        &computed.origin,
                        format!(
                            "{context} needs a `type`: the PostgreSQL type its value is written as, e.g. `type = \"text\"`"
                        ),
                        &format!(
                            "{context} needs a `type`: the PostgreSQL type its value is written as, e.g. `{{ computed: {}, type: text }}`",
                            computed.with.value.trim_start_matches("crate::")
                        ),
                    ),
                ),
                Some(pg_type) if types::parse_pg_type(&pg_type.value).is_none() => cx.error(
                    &pg_type.origin,
                    format!("unknown PostgreSQL type `{}` for {context}", pg_type.value),
                ),
                Some(_) => {}
            }
        }
    }
}

// The mapping name is how the command line (`--mapping NAME`) and the state table
// find a mapping, so it must be something a shell and a log line carry unchanged.
fn check_mapping_name(cx: &Ctxt, mapping: &Mapping) {
    let name = &mapping.name.value;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        cx.error(
            &mapping.name.origin,
            format!("mapping name `{name}` must be ASCII letters, digits, `_` or `-`"),
        );
    }
}

// Generated SQL quotes every identifier, so any name works except those PostgreSQL or
// SQLite cannot hold even quoted: an empty name, a NUL, a name PostgreSQL truncates,
// and target tables SQLite or data-sync reserve.
fn check_identifiers(cx: &Ctxt, mapping: &Mapping) {
    let source = &mapping.source;
    let mut names: Vec<&Name> = source.schema.iter().chain([&source.table]).collect();
    names.extend(mapping.fields.iter().map(|field| &field.column));
    for name in names {
        if let Some(problem) = identifier_problem(&name.value) {
            cx.error(&name.origin, format!("invalid identifier: {problem}"));
        }
    }
    for target in &mapping.targets {
        if let Some(problem) = target_table_problem(&target.name.value) {
            cx.error(
                &target.name.origin,
                format!("invalid target table name: {problem}"),
            );
        }
        let names = target
            .columns
            .iter()
            .map(|column| &column.name)
            .chain(target.computed.iter().map(|computed| &computed.name));
        for name in names {
            if let Some(problem) = identifier_problem(&name.value) {
                cx.error(&name.origin, format!("invalid column name: {problem}"));
            }
        }
    }
}

// Every field must read a PostgreSQL type data-sync can carry, into a Rust type that
// can decode it; the SQLite column type follows from the PostgreSQL type.
fn check_field_types(cx: &Ctxt, mapping: &Mapping) {
    for field in &mapping.fields {
        let declared = field.pg_type.as_ref();
        // A field with no `type` whose column the snapshot has reads the snapshot's
        // type: `check_snapshot_types` judges it.
        if declared.is_none() && snapshot_column(mapping, field).is_some() {
            continue;
        }
        let origin = declared.map_or(&field.rust_type.origin, |declared| &declared.origin);
        match types::resolve(declared.map(|name| name.value.as_str()), &field.rust_type.value) {
            Resolved::Type(_) => {}
            Resolved::UnknownPgType => cx.error(
                origin,
                format!(
                    "unknown PostgreSQL type `{}` for column `{}`; use a type as `format_type` prints it, such as `bigint`, `text` or `timestamp with time zone`; {}",
                    declared.map_or("", |name| name.value.as_str()),
                    field.column.value,
                    types::OUTSIDE_THE_TABLE,
                ),
            ),
            Resolved::CannotInfer => cx.error(
                &field.rust_type.origin,
                format!(
                    "cannot tell the PostgreSQL type of column `{}` from Rust type `{}`; add `#[sync(type = \"...\")]`",
                    field.column.value,
                    compact(&field.rust_type.value),
                ),
            ),
            Resolved::ArrayNeedsType => cx.error(
                &field.rust_type.origin,
                format!(
                    "array column `{}` needs its element type: add `#[sync(type = \"integer[]\")]` or the like",
                    field.column.value
                ),
            ),
            Resolved::Mismatch(accepted) => cx.error(
                origin,
                format!(
                    "column `{}` is `{}` but {}",
                    field.column.value,
                    declared.map_or("", |name| name.value.as_str()),
                    reads(field, accepted),
                ),
            ),
        }
    }
}

// One source column read into two fields would be written twice with no rule for
// which one wins.
fn check_duplicate_source_columns(cx: &Ctxt, mapping: &Mapping) {
    let mut seen: BTreeMap<&str, &Field> = BTreeMap::new();
    for field in &mapping.fields {
        if let Some(first) = seen.insert(&field.column.value, field) {
            cx.error(
                &field.column.origin,
                format!(
                    "source column `{}` is read by both `{}` and `{}`",
                    field.column.value, first.ident.value, field.ident.value
                ),
            );
        }
    }
}

// The key identifies a source row in every target; it must be read, non-NULL and
// listed once.
fn check_key(cx: &Ctxt, mapping: &Mapping) {
    let mut seen = BTreeSet::new();
    for key in &mapping.source.key {
        if !seen.insert(key.value.as_str()) {
            cx.error(
                &key.origin,
                format!("`key` lists column `{}` twice", key.value),
            );
        }
        match field_of(mapping, key) {
            None => cx.error(
                &key.origin,
                format!(
                    "`key` names `{}`, which no field reads{}",
                    key.value,
                    key_hint(mapping, key)
                ),
            ),
            Some(field) if field.is_nullable() => cx.error(
                &field.rust_type.origin,
                format!(
                    "key column `{}` cannot be NULL: {}",
                    key.value,
                    fix(
                        &field.origin,
                        format!("make field `{}` non-`Option`", field.ident.value),
                        "remove `nullable: true`",
                    )
                ),
            ),
            Some(_) => {}
        }
    }
}

// Incremental sync orders by the cursor and stores its last value: it must be read,
// sortable, and never NULL (a NULL cursor row would never be picked up). Where a
// schema snapshot has the column, its type decides whether it is sortable.
fn check_cursor(cx: &Ctxt, mapping: &Mapping) {
    let Some(cursor) = &mapping.source.cursor else {
        return;
    };
    match field_of(mapping, cursor) {
        None => cx.error(
            &cursor.origin,
            format!(
                "`cursor` names `{}`, which no field reads{}",
                cursor.value,
                not_read_hint(mapping, cursor)
            ),
        ),
        Some(field) => {
            if field.is_nullable() {
                cx.error(
                    &field.rust_type.origin,
                    format!(
                        "cursor column `{}` cannot be NULL: rows with a NULL cursor would never sync; {}",
                        cursor.value,
                        fix(
                            &field.origin,
                            format!("make field `{}` non-`Option`", field.ident.value),
                            "remove `nullable: true`",
                        )
                    ),
                );
            }
            if let Resolved::Type(ty) = field_type(mapping, field)
                && !ty.is_sortable()
            {
                cx.error(
                    &cursor.origin,
                    format!(
                        "cursor column `{}` is `{ty}`, which has no useful order",
                        cursor.value
                    ),
                );
            }
        }
    }
}

// Change capture sees every change in the log, so a cursor has nothing to add, and
// the two would disagree on what a run has applied.
fn check_capture(cx: &Ctxt, mapping: &Mapping) {
    let source = &mapping.source;
    if let (Some(capture), Some(_)) = (&source.capture, &source.cursor) {
        cx.error(
            &capture.origin,
            "a mapping has either a `cursor` or `capture`, not both: remove `cursor` \
             (the log sees every change) or `capture`",
        );
    }
    if let (Some(publication), None) = (&source.publication, &source.capture) {
        cx.error(
            &publication.origin,
            "`publication` is read by change capture only: add `capture` (its value is `log`) or remove it",
        );
    }
    // The log sends each value in its column's own binary form; a type that a run
    // reads through a cast to text (`interval`) cannot be read from it.
    if source.capture.is_some() {
        for field in &mapping.fields {
            if let Resolved::Type(ty) = field_type(mapping, field)
                && ty.select_cast().is_some()
            {
                cx.error(
                    &field.rust_type.origin,
                    format!(
                        "column `{}` is `{ty}`, which change capture cannot read from the log \
                         (a run reads it as text through a cast); leave it out of this mapping",
                        field.column.value
                    ),
                );
            }
        }
    }
}

// The partition column's value names a target file and picks a shard, both from its
// text form, so it must be read by a field, of a type whose binary value spells the
// same text PostgreSQL prints.
fn check_partition_by(cx: &Ctxt, mapping: &Mapping) {
    let Some(partition_by) = &mapping.source.partition_by else {
        return;
    };
    let Some(field) = field_of(mapping, partition_by) else {
        cx.error(
            &partition_by.origin,
            format!(
                "`partition_by` names `{}`, which no field reads{}",
                partition_by.value,
                not_read_hint(mapping, partition_by)
            ),
        );
        return;
    };
    if let Resolved::Type(ty) = field_type(mapping, field)
        && !matches!(
            ty,
            PgType::SmallInt
                | PgType::Integer
                | PgType::BigInt
                | PgType::Text
                | PgType::Enum
                | PgType::Uuid
        )
    {
        cx.error(
            &partition_by.origin,
            format!(
                "partition column `{}` is `{ty}`: a partition column is an integer, \
                 text, enum or uuid column, whose text form names a file",
                partition_by.value
            ),
        );
    }
}

// A soft-delete column is NULL for live rows, so its field must be an `Option`.
fn check_soft_delete(cx: &Ctxt, mapping: &Mapping) {
    let Some(soft_delete) = &mapping.source.soft_delete else {
        return;
    };
    match field_of(mapping, soft_delete) {
        None => cx.error(
            &soft_delete.origin,
            format!(
                "`soft_delete` names `{}`, which no field reads{}",
                soft_delete.value,
                not_read_hint(mapping, soft_delete)
            ),
        ),
        Some(field) if !field.is_nullable() => cx.error(
            &field.rust_type.origin,
            format!(
                "soft-delete column `{}` is NULL for live rows: {}",
                soft_delete.value,
                fix(
                    &field.origin,
                    format!("make field `{}` an `Option`", field.ident.value),
                    "add `nullable: true`",
                )
            ),
        ),
        Some(_) => {}
    }
}

// A field that goes to no target and is neither key, cursor nor soft-delete column is
// read for nothing: most likely a forgotten `to`. A computed column's function reads
// the whole row, so in a mapping with one any field may be read for it.
fn check_unused_fields(cx: &Ctxt, mapping: &Mapping) {
    if mapping
        .targets
        .iter()
        .any(|target| !target.computed.is_empty())
    {
        return;
    }
    let source = &mapping.source;
    let filtered = match &source.filter {
        Some(written) => match filter::columns(written) {
            Some(columns) => columns,
            // The filter's own error says what is wrong; its columns are unknown.
            None => return,
        },
        None => Vec::new(),
    };
    let special: BTreeSet<&str> = source
        .key
        .iter()
        .chain(&source.cursor)
        .chain(&source.soft_delete)
        .map(|name| name.value.as_str())
        .chain(filtered.iter().map(String::as_str))
        .collect();
    for field in &mapping.fields {
        let placed = mapping.targets.iter().any(|target| {
            target
                .columns
                .iter()
                .any(|column| column.field == field.ident.value)
        });
        if !placed && !special.contains(field.column.value.as_str()) {
            cx.error(
                &field.ident.origin,
                fix(
                    &field.origin,
                    format!(
                        "field `{}` goes to no target: add `#[sync(to = \"table\")]` or remove it",
                        field.ident.value
                    ),
                    &format!(
                        "source column `{}` goes to no target: add it to a target's `columns` or remove it",
                        field.column.value
                    ),
                ),
            );
        }
    }
}

// A mapping that writes nothing is a mistake.
fn check_has_targets(cx: &Ctxt, mapping: &Mapping) {
    if mapping.targets.is_empty() {
        cx.error(
            &mapping.origin,
            fix(
                &mapping.origin,
                "the mapping has no target: place fields with `#[sync(to = \"table\")]`",
                "the mapping has no target: declare one under `targets`",
            ),
        );
    }
}

// Two values for one target column: the second would be silently lost.
fn check_duplicate_target_columns(cx: &Ctxt, mapping: &Mapping) {
    for target in &mapping.targets {
        let mut seen = BTreeSet::new();
        let columns = target
            .columns
            .iter()
            .map(|column| (&column.name, &column.origin))
            .chain(
                target
                    .computed
                    .iter()
                    .map(|computed| (&computed.name, &computed.origin)),
            );
        for (name, origin) in columns {
            if !seen.insert(name.value.as_str()) {
                cx.error(
                    origin,
                    format!(
                        "duplicate column `{}` in target `{}`",
                        name.value, target.name.value
                    ),
                );
            }
        }
    }
}

// Each target row stands for exactly one source row: upserts, deletes and `--prune`
// find it by the source key, so a target's primary key is the source key.
fn check_target_primary_key(cx: &Ctxt, mapping: &Mapping) {
    let key: BTreeSet<&str> = mapping
        .source
        .key
        .iter()
        .filter_map(|key| field_of(mapping, key))
        .map(|field| field.ident.value.as_str())
        .collect();
    for target in &mapping.targets {
        let primary_key: BTreeSet<&str> = target
            .columns
            .iter()
            .filter(|column| column.primary_key)
            .map(|column| column.field.as_str())
            .collect();
        if primary_key.is_empty() {
            let hint = similar_target(mapping, target)
                .map(|similar| format!("; did you mean `{similar}`?"))
                .unwrap_or_else(|| "; mark its key column `primary_key`".to_owned());
            cx.error(
                &target.origin,
                format!("target `{}` has no primary key{hint}", target.name.value),
            );
        } else if !key.is_empty() && key.len() == mapping.source.key.len() && primary_key != key {
            cx.error(
                &target.origin,
                format!(
                    "the primary key of target `{}` must be the source key ({}): each target row stands for one source row",
                    target.name.value,
                    mapping
                        .source
                        .key
                        .iter()
                        .map(|key| format!("`{}`", key.value))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
}

// Foreign keys within a mapping hold during a sync only when the parent row is
// written from the same source row first: a reference must name another target's
// primary key column fed by the same field. A reference to another mapping's target
// is checked by `check_catalogue`.
fn check_references(cx: &Ctxt, mapping: &Mapping) {
    for target in &mapping.targets {
        for column in &target.columns {
            let Some(reference) = &column.references else {
                continue;
            };
            if reference.table.value == target.name.value {
                cx.error(
                    &reference.origin,
                    format!("`references` names its own table `{}`", target.name.value),
                );
                continue;
            }
            // A table no target of this mapping names belongs to another mapping:
            // `check_catalogue` checks it once the whole catalogue is known.
            let Some(parent) = mapping.target(&reference.table.value) else {
                continue;
            };
            let Some(parent_column) = parent
                .columns
                .iter()
                .find(|candidate| candidate.name.value == reference.column.value)
            else {
                cx.error(
                    &reference.column.origin,
                    format!(
                        "`references` names no column `{}` in target `{}`",
                        reference.column.value, parent.name.value
                    ),
                );
                continue;
            };
            if !parent_column.primary_key
                || parent.columns.iter().filter(|c| c.primary_key).count() != 1
            {
                cx.error(
                    &reference.origin,
                    format!(
                        "`references` must name the whole primary key of `{}`, not `{}`",
                        parent.name.value, reference.column.value
                    ),
                );
            } else if parent_column.field != column.field {
                cx.error(
                    &reference.origin,
                    format!(
                        "`{}.{}` reads `{}` but `{}.{}` reads `{}`: a reference must link columns fed by the same field",
                        target.name.value,
                        column.name.value,
                        column.field,
                        parent.name.value,
                        parent_column.name.value,
                        parent_column.field
                    ),
                );
            }
        }
    }
}

// Parents are written before children; a cycle has no such order.
fn check_reference_cycles(cx: &Ctxt, mapping: &Mapping) {
    for (start_index, start) in mapping.targets.iter().enumerate() {
        let mut path = vec![start.name.value.as_str()];
        let mut current = start;
        while let Some(parent) = parent_of(mapping, current) {
            if parent.name.value == start.name.value {
                // Each cycle is reported once, at its first declared member.
                let first = path
                    .iter()
                    .filter_map(|name| mapping.targets.iter().position(|t| t.name.value == *name))
                    .min();
                if first != Some(start_index) {
                    break;
                }
                path.push(&parent.name.value);
                let origin = start
                    .columns
                    .iter()
                    .find_map(|column| column.references.as_ref())
                    .map_or(&start.origin, |reference| &reference.origin);
                cx.error(
                    origin,
                    format!("`references` form a cycle: {}", path.join(" -> ")),
                );
                break;
            }
            if path.contains(&parent.name.value.as_str()) {
                break;
            }
            path.push(&parent.name.value);
            current = parent;
        }
    }
}

// A column the table does not have fails the first run's SELECT; the snapshot knows
// at compile time.
fn check_snapshot_columns(cx: &Ctxt, mapping: &Mapping, snapshot: &Snapshot) {
    for field in &mapping.fields {
        if snapshot.table.column(&field.column.value).is_some() {
            continue;
        }
        let suggestion = snapshot
            .table
            .columns
            .iter()
            .map(|column| column.name.as_str())
            .find(|candidate| edit_distance(candidate, &field.column.value) <= 2)
            .map(|candidate| format!("; did you mean `{candidate}`?"))
            .unwrap_or_default();
        cx.error(
            &field.column.origin,
            format!(
                "column `{}` is not in `{}` (schema snapshot `{}`){suggestion}",
                field.column.value,
                snapshot.table.display_name(),
                snapshot.file,
            ),
        );
    }
}

// The snapshot knows each column's real type: a declared `type` that says otherwise,
// a Rust type that cannot decode it, or an integer field narrower than the column
// would fail (or fail on some rows) at run time. A narrower field stays possible as
// an explicit choice: spelling `type` opts into the run-time range check.
fn check_snapshot_types(cx: &Ctxt, mapping: &Mapping, snapshot: &Snapshot) {
    let table = snapshot.table.display_name();
    for field in &mapping.fields {
        let Some(column) = snapshot.table.column(&field.column.value) else {
            continue;
        };
        let actual = column.parsed_type();
        let rust_type = compact(&field.rust_type.value);
        match (&field.pg_type, &actual) {
            (Some(declared), Some(actual)) => {
                if let Some(parsed) = types::parse_pg_type(&declared.value)
                    && parsed != *actual
                {
                    cx.error(
                        &declared.origin,
                        format!(
                            "column `{}` of `{table}` is `{}`, not `{}` as declared here",
                            column.name, column.pg_type, declared.value
                        ),
                    );
                }
            }
            (Some(declared), None) => cx.error(
                &declared.origin,
                format!(
                    "column `{}` of `{table}` is `{}`, not `{}` as declared here; {}",
                    column.name,
                    column.pg_type,
                    declared.value,
                    types::OUTSIDE_THE_TABLE
                ),
            ),
            (None, None) => cx.error(
                &field.rust_type.origin,
                format!(
                    "column `{}` of `{table}` is `{}`, a type data-sync cannot read into `{rust_type}`; {}",
                    column.name,
                    column.pg_type,
                    types::OUTSIDE_THE_TABLE
                ),
            ),
            (None, Some(actual)) => {
                let spelling = actual.to_string();
                match types::resolve(Some(&spelling), &field.rust_type.value) {
                    Resolved::Mismatch(accepted) => cx.error(
                        &field.rust_type.origin,
                        format!(
                            "column `{}` of `{table}` is `{}` but {}",
                            column.name,
                            column.pg_type,
                            reads(field, accepted),
                        ),
                    ),
                    Resolved::Type(_) => {
                        if let Some(wider) = narrower_integer(actual, &field.rust_type.value) {
                            cx.error(
                                &field.rust_type.origin,
                                format!(
                                    "column `{}` of `{table}` is `{}` but Rust type `{rust_type}` is narrower: use `{wider}`, or write `#[sync(type = \"{}\")]` to check each value at run time",
                                    column.name, column.pg_type, column.pg_type
                                ),
                            );
                        }
                    }
                    Resolved::UnknownPgType | Resolved::CannotInfer | Resolved::ArrayNeedsType => {}
                }
            }
        }
    }
}

// A NULL read into a non-`Option` field stops the run at the first such row, which
// may come months later; the snapshot's NOT NULL tells now. Key and cursor columns
// cannot be `Option`s, so for them the fix is in the table.
fn check_snapshot_nullability(cx: &Ctxt, mapping: &Mapping, snapshot: &Snapshot) {
    let table = snapshot.table.display_name();
    for field in &mapping.fields {
        let Some(column) = snapshot.table.column(&field.column.value) else {
            continue;
        };
        if !column.is_nullable() || field.is_nullable() {
            continue;
        }
        let source = &mapping.source;
        let role = if source.key.iter().any(|key| key.value == column.name) {
            Some("key")
        } else if source
            .cursor
            .as_ref()
            .is_some_and(|cursor| cursor.value == column.name)
        {
            Some("cursor")
        } else {
            None
        };
        let message = match role {
            Some(role) => format!(
                "{role} column `{}` of `{table}` is nullable: a {role} cannot be NULL; make the column NOT NULL, then run `cargo xtask schema`",
                column.name
            ),
            None => format!(
                "column `{}` of `{table}` is nullable but field `{}` is `{}`: {}",
                column.name,
                field.ident.value,
                compact(&field.rust_type.value),
                fix(
                    &field.origin,
                    format!("make it `Option<{}>`", compact(&field.rust_type.value)),
                    "write `nullable: true`",
                )
            ),
        };
        cx.error(&field.rust_type.origin, message);
    }
}

// Every target's primary key is the source key, so two source rows sharing a key
// value would overwrite each other in every target: the key must be unique in the
// source, i.e. contain the primary key or a unique constraint of NOT NULL columns.
// A view has no constraints to tell, so it is not checked.
fn check_snapshot_key(cx: &Ctxt, mapping: &Mapping, snapshot: &Snapshot) {
    let table = &snapshot.table;
    let key = &mapping.source.key;
    let Some(first) = key.first() else {
        return;
    };
    if !table.has_constraints() || key.iter().any(|key| table.column(&key.value).is_none()) {
        return;
    }
    let key_columns: BTreeSet<&str> = key.iter().map(|key| key.value.as_str()).collect();
    let not_null = |set: &[String]| {
        set.iter()
            .all(|name| table.column(name).is_some_and(|column| column.not_null))
    };
    let unique = std::iter::once(&table.primary_key)
        .filter(|primary_key| !primary_key.is_empty())
        .chain(table.unique.iter().filter(|set| not_null(set)))
        .any(|set| set.iter().all(|name| key_columns.contains(name.as_str())));
    if unique {
        return;
    }
    let primary_key = if table.primary_key.is_empty() {
        "it has no primary key".to_owned()
    } else {
        format!(
            "its primary key is ({})",
            table
                .primary_key
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    cx.error(
        &first.origin,
        format!(
            "key ({}) is not unique in `{}`: {primary_key} and no unique constraint of NOT NULL columns is within the key; rows sharing a key would overwrite each other in every target",
            key.iter()
                .map(|key| format!("`{}`", key.value))
                .collect::<Vec<_>>()
                .join(", "),
            table.display_name()
        ),
    );
}

/// The integer type that holds every value of `actual`, when `rust_type` is a
/// narrower integer (`sync_sql::integer`, the rule `data-sync check` applies too).
fn narrower_integer(actual: &PgType, rust_type: &str) -> Option<&'static str> {
    sync_sql::integer::narrower(rust_type, &actual.to_string())
        .map(|narrower| narrower.wider_type())
}

/// The first target `target` references, if any.
fn parent_of<'a>(mapping: &'a Mapping, target: &Target) -> Option<&'a Target> {
    target
        .columns
        .iter()
        .filter_map(|column| column.references.as_ref())
        .find_map(|reference| mapping.target(&reference.table.value))
}

/// The field that reads source column `name`.
fn field_of<'a>(mapping: &'a Mapping, name: &Name) -> Option<&'a Field> {
    mapping
        .fields
        .iter()
        .find(|field| field.column.value == name.value)
}

/// The field's type: its `type`, else the snapshot's, else the Rust type's.
fn field_type(mapping: &Mapping, field: &Field) -> Resolved {
    let snapshot_type = snapshot_column(mapping, field).and_then(SnapshotColumn::declared_type);
    let declared = field
        .pg_type
        .as_ref()
        .map(|name| name.value.clone())
        .or(snapshot_type);
    types::resolve(declared.as_deref(), &field.rust_type.value)
}

/// The snapshot's column of the field, when there is a snapshot that has it.
fn snapshot_column<'a>(mapping: &'a Mapping, field: &Field) -> Option<&'a SnapshotColumn> {
    mapping
        .snapshot
        .as_ref()
        .and_then(|snapshot| snapshot.table.column(&field.column.value))
}

/// The fix of a message in the words of the front-end that wrote `origin`: Rust
/// attributes for a struct, YAML keys for a YAML file.
fn fix(origin: &Origin, rust: impl Into<String>, yaml: &str) -> String {
    match origin {
        Origin::Yaml(_) => yaml.to_owned(),
        Origin::Span(_) | Origin::Unknown => rust.into(),
    }
}

/// What to do about a column `name` that no field reads: a near miss, or for YAML
/// where to declare it.
fn not_read_hint(mapping: &Mapping, name: &Name) -> String {
    let suggestion = suggest_column(mapping, &name.value);
    if suggestion.is_empty() {
        fix(
            &name.origin,
            "",
            "; declare it under `source.columns` with its `type`",
        )
    } else {
        suggestion
    }
}

/// What to do about a `key` column that no field reads: a near miss, else the
/// targets' primary key column; a key is written as the targets' primary key, so
/// declaring it under `source.columns` would not do.
fn key_hint(mapping: &Mapping, key: &Name) -> String {
    let suggestion = suggest_column(mapping, &key.value);
    if !suggestion.is_empty() {
        return suggestion;
    }
    let primary: BTreeSet<&str> = mapping
        .targets
        .iter()
        .flat_map(|target| &target.columns)
        .filter(|column| column.primary_key)
        .map(|column| column.field.as_str())
        .collect();
    let columns: Vec<&str> = mapping
        .fields
        .iter()
        .filter(|field| primary.contains(field.ident.value.as_str()))
        .map(|field| field.column.value.as_str())
        .collect();
    match columns.as_slice() {
        [] => "; a target must write it as its primary key".to_owned(),
        [column] => format!("; did you mean `{column}`, the targets' primary key?"),
        columns => format!(
            "; the targets' primary key columns are {}",
            columns
                .iter()
                .map(|column| format!("`{column}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `; did you mean `x`?` for a source column that is almost `name`.
fn suggest_column(mapping: &Mapping, name: &str) -> String {
    mapping
        .fields
        .iter()
        .map(|field| field.column.value.as_str())
        .find(|candidate| edit_distance(candidate, name) <= 2)
        .map(|candidate| format!("; did you mean `{candidate}`?"))
        .unwrap_or_default()
}

/// Another target whose name is almost that of `target`: a misspelt `to`.
fn similar_target<'a>(mapping: &'a Mapping, target: &Target) -> Option<&'a str> {
    mapping
        .targets
        .iter()
        .filter(|other| other.name.value != target.name.value)
        .map(|other| other.name.value.as_str())
        .find(|other| edit_distance(other, &target.name.value) <= 2)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// What the field's Rust type reads, after "column `c` is `t` but": in a YAML
/// mapping the type is an opt-in its `as` chose (any other YAML type reads its
/// column), so the message names the `as` values.
fn reads(field: &Field, accepted: &[PgType]) -> String {
    let accepted = accepted
        .iter()
        .map(|ty| format!("`{ty}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    match (
        &field.rust_type.origin,
        types::OptIn::of_rust_type(&field.rust_type.value),
    ) {
        (Origin::Yaml(_), Some(opt_in)) => format!(
            "`as: {}` reads {accepted}; `as` takes {}",
            opt_in.yaml_name(),
            types::OPT_IN_VALUES
        ),
        _ => format!(
            "Rust type `{}` reads {accepted}",
            compact(&field.rust_type.value)
        ),
    }
}

/// `Option < String >` as a person writes it: `Option<String>`.
fn compact(rust_type: &str) -> String {
    rust_type
        .replace(" < ", "<")
        .replace(" >", ">")
        .replace(" :: ", "::")
        .replace(":: ", "::")
}

/// Runs the rules that span mappings on a whole catalogue (`cargo xtask gen` calls
/// it on every YAML mapping): each reference to a table no target of its own mapping
/// names must name another mapping's target and its whole primary key, of the same
/// SQLite type, and the references between mappings form no cycle.
pub fn check_catalogue(cx: &Ctxt, catalogue: &[&Checked]) {
    for mapping in catalogue {
        check_foreign_references(cx, mapping, catalogue);
    }
    check_mapping_cycles(cx, catalogue);
}

// Two mappings are synced together when one references the other (one snapshot, one
// SQLite transaction); the child's foreign key must then point at a row the parent
// mapping writes: its whole primary key, stored with the same type.
fn check_foreign_references(cx: &Ctxt, mapping: &Checked, catalogue: &[&Checked]) {
    for (target_index, target) in mapping.targets.iter().enumerate() {
        for (column, field) in mapping.columns(target_index) {
            let Some(reference) = &column.references else {
                continue;
            };
            if mapping.target(&reference.table.value).is_some() {
                continue;
            }
            let Some((parent_mapping, parent_index)) = owner_of(catalogue, &reference.table.value)
            else {
                // A near miss among every target of the catalogue (this mapping's too).
                let suggestion = catalogue
                    .iter()
                    .flat_map(|mapping| &mapping.targets)
                    .map(|target| target.name.value.as_str())
                    .filter(|name| *name != target.name.value)
                    .find(|name| edit_distance(name, &reference.table.value) <= 2)
                    .map(|name| format!("; did you mean `{name}`?"))
                    .unwrap_or_default();
                cx.error(
                    &reference.table.origin,
                    format!(
                        "`references` names no target `{}` of this mapping or of another mapping of the catalogue{suggestion}",
                        reference.table.value
                    ),
                );
                continue;
            };
            let parent = parent_mapping.target_at(parent_index);
            let Some((parent_column, parent_field)) = parent_mapping
                .columns(parent_index)
                .find(|(candidate, _)| candidate.name.value == reference.column.value)
            else {
                cx.error(
                    &reference.column.origin,
                    format!(
                        "`references` names no column `{}` in target `{}` of mapping `{}`",
                        reference.column.value, parent.name.value, parent_mapping.name.value
                    ),
                );
                continue;
            };
            if !parent_column.primary_key
                || parent.columns.iter().filter(|c| c.primary_key).count() != 1
            {
                cx.error(
                    &reference.origin,
                    format!(
                        "`references` must name the whole primary key of `{}` (mapping `{}`), not `{}`",
                        parent.name.value, parent_mapping.name.value, reference.column.value
                    ),
                );
                continue;
            }
            let child_type = mapping.field_type(field).sqlite_type;
            let parent_type = parent_mapping.field_type(parent_field).sqlite_type;
            if child_type != parent_type {
                cx.error(
                    &reference.origin,
                    format!(
                        "`{}.{}` is {child_type} but `{}.{}` (mapping `{}`) is {parent_type}: a reference must link columns of one type",
                        target.name.value,
                        column.name.value,
                        parent.name.value,
                        parent_column.name.value,
                        parent_mapping.name.value
                    ),
                );
            }
        }
    }
}

// Linked mappings are synced parents first; a cycle between mappings has no such
// order.
fn check_mapping_cycles(cx: &Ctxt, catalogue: &[&Checked]) {
    let parents = |mapping: &Checked| -> Vec<usize> {
        let mut parents = Vec::new();
        for target in &mapping.targets {
            for reference in target.columns.iter().filter_map(|c| c.references.as_ref()) {
                if mapping.target(&reference.table.value).is_some() {
                    continue;
                }
                if let Some(index) = catalogue.iter().position(|other| {
                    other.name.value != mapping.name.value
                        && other.target(&reference.table.value).is_some()
                }) && !parents.contains(&index)
                {
                    parents.push(index);
                }
            }
        }
        parents
    };
    for (start, mapping) in catalogue.iter().enumerate() {
        // A path from `start` back to itself through parents, depth first.
        let mut stack = vec![(start, vec![start])];
        let mut seen = BTreeSet::new();
        'search: while let Some((node, path)) = stack.pop() {
            for parent in parents(catalogue[node]) {
                if parent == start {
                    // Each cycle is reported once, at its first member in the catalogue.
                    if path.iter().all(|&member| member >= start) {
                        let names: Vec<&str> = path
                            .iter()
                            .chain(std::iter::once(&start))
                            .map(|&member| catalogue[member].name.value.as_str())
                            .collect();
                        let origin = mapping
                            .targets
                            .iter()
                            .flat_map(|target| &target.columns)
                            .find_map(|column| column.references.as_ref())
                            .map_or(&mapping.origin, |reference| &reference.origin);
                        cx.error(
                            origin,
                            format!(
                                "`references` form a cycle between mappings: {}",
                                names.join(" -> ")
                            ),
                        );
                    }
                    break 'search;
                }
                if seen.insert(parent) {
                    let mut longer = path.clone();
                    longer.push(parent);
                    stack.push((parent, longer));
                }
            }
        }
    }
}

/// The mapping of `catalogue` that has target `table`, and the target's index.
fn owner_of<'a>(catalogue: &[&'a Checked], table: &str) -> Option<(&'a Checked, usize)> {
    catalogue.iter().find_map(|mapping| {
        mapping
            .targets
            .iter()
            .position(|target| target.name.value == table)
            .map(|index| (*mapping, index))
    })
}
