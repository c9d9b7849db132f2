//! The YAML front-end: a `mappings/<name>.yaml` file to the model.
//!
//! Entry point: [`Mapping::from_yaml`]. Like `attr`, it checks only its own syntax
//! (YAML syntax, unknown and duplicate keys, values of the wrong kind) and leaves every
//! semantic rule to `check`. Every element of the model gets an `Origin::Yaml` at the
//! node the user wrote, so that `check` reports `file:line:column`.
//!
//! The file is first read into a positioned tree ([`tree`]), which keeps every key
//! (duplicates included) with its position; this module reads the tree into the
//! model.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use quote::ToTokens;

use crate::ctxt::Ctxt;
use crate::ident::{field_ident_for, split_qualified};
use crate::model::{
    Column, Computed, Field, Filter, Mapping, Name, Origin, Reference, Source, Target, YamlPosition,
};
use crate::snapshot::Snapshot;
use crate::symbol::*;
use crate::types;

mod tree;

use self::tree::{Node, Value, is_null, parse};

/// `source:` and `targets:`, the two top-level keys.
const SOURCE: &str = "source";
const TARGETS: &str = "targets";
/// `source: { table: public.users }`.
const TABLE: &str = "table";
/// `source: { columns: .. }` and `targets: { t: { columns: .. } }`.
const COLUMNS: &str = "columns";
/// `{ type: numeric, as: real }`: a per-column opt-in (docs/types.md).
const AS: &str = "as";

impl Mapping {
    /// Reads the mapping of YAML file `file` (as the user names it, e.g.
    /// `mappings/users.yaml`; its stem is the mapping name) with contents `text`.
    /// `None` when the file is unusable (errors are in `cx`).
    ///
    /// With no schema snapshot every column needs its `type`; see
    /// [`Mapping::from_yaml_with`].
    pub fn from_yaml(cx: &Ctxt, file: &str, text: &str) -> Option<Mapping> {
        Mapping::from_yaml_with(cx, file, text, &mut |_| None)
    }

    /// [`Mapping::from_yaml`] with the schema snapshot that `snapshot` finds for the
    /// source table: a column may then omit `type` (and `nullable`), which come from
    /// the snapshot. `snapshot` is called once, with the source as written, as soon as
    /// `source` is read (even if later parts of the file have errors).
    pub fn from_yaml_with(
        cx: &Ctxt,
        file: &str,
        text: &str,
        snapshot: &mut dyn FnMut(&Source) -> Option<Snapshot>,
    ) -> Option<Mapping> {
        let file: Arc<str> = Arc::from(file);
        let document = Origin::Yaml(YamlPosition {
            file: file.clone(),
            line: 1,
            column: 1,
        });
        let root = match parse(&file, text) {
            Ok(Some(root)) => root,
            Ok(None) => {
                cx.error(
                    &document,
                    "the file is empty: a mapping needs `source` and `targets`",
                );
                return None;
            }
            Err(error) => {
                cx.error(&error.origin, error.message);
                return None;
            }
        };
        let stem = Path::new(&*file)
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let top = keys(cx, &root, "the mapping file", &[SOURCE, TARGETS, STRICT])?;
        // strict: false
        let strict = top
            .get(STRICT)
            .and_then(|(_, value)| boolean(cx, value, STRICT))
            .unwrap_or(true);
        let (source_key, source_node) = required(cx, &top, &root, SOURCE, "the mapping file")?;
        let (targets_key, targets_node) = required(cx, &top, &root, TARGETS, "the mapping file")?;

        let errors_before = cx.has_errors();
        let mut reader = Reader {
            cx,
            declared: Vec::new(),
            targets: Vec::new(),
            snapshot: None,
        };
        let source = reader.source(source_key, source_node);
        reader.snapshot = source.as_ref().and_then(&mut *snapshot);
        reader.targets(targets_node);
        let snapshot = reader.snapshot.clone();
        let (fields, targets) = reader.finish();
        let source = source?;
        // A mistake in the file's own syntax leaves the model incomplete: `check` would
        // only add errors that follow from it.
        if cx.has_errors() && !errors_before {
            return None;
        }
        Some(Mapping {
            ident: Name::new(struct_ident_for(&stem), document.clone()),
            name: Name::new(stem, document),
            source,
            snapshot,
            fields,
            targets,
            strict,
            origin: targets_key.origin(),
        })
    }
}

/// The Rust struct a YAML mapping becomes: `odd_names` is `OddNames`.
pub fn struct_ident_for(stem: &str) -> String {
    let mut ident = String::with_capacity(stem.len());
    for part in stem.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut characters = part.chars();
        if let Some(first) = characters.next() {
            ident.push(first.to_ascii_uppercase());
            ident.extend(characters);
        }
    }
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert_str(0, "Mapping");
    }
    if ident == "Self" {
        ident.push('_');
    }
    ident
}

/// One appearance of a source column: a target column, or an entry of
/// `source.columns`.
struct Declared<'n> {
    /// The source column, at `from` or at the key.
    column: Name,
    /// The entry's key (the target column name).
    key: &'n Node,
    pg_type: Option<Name>,
    /// Where `type` is missing, the entry as messages name it.
    type_missing: Option<String>,
    nullable: bool,
    /// The `nullable` value, when written.
    nullable_node: Option<&'n Node>,
    /// The opt-in `as` names, when written and valid.
    opt_in: Option<types::OptIn>,
    /// The `as` value, when written.
    opt_in_node: Option<&'n Node>,
    /// The target column, unless the entry is under `source.columns`.
    placement: Option<(usize, Column)>,
}

struct Reader<'a, 'n> {
    cx: &'a Ctxt,
    declared: Vec<Declared<'n>>,
    /// Every target as declared, possibly without columns yet.
    targets: Vec<Target>,
    /// The source table's schema snapshot, which supplies omitted types.
    snapshot: Option<Snapshot>,
}

impl<'n> Reader<'_, 'n> {
    // source: { table: public.users, key: id, cursor: .., soft_delete: .., columns: .. }
    fn source(&mut self, source_key: &Node, node: &'n Node) -> Option<Source> {
        let cx = self.cx;
        let entries = keys(
            cx,
            node,
            "`source`",
            &[
                TABLE,
                KEY,
                CURSOR,
                SOFT_DELETE,
                FILTER,
                CAPTURE,
                PUBLICATION,
                PARTITION_BY,
                COLUMNS,
            ],
        )?;
        let table_node = required(cx, &entries, node, TABLE, "`source`").map(|(_, value)| value);
        let table = table_node
            .and_then(|value| name(cx, value, TABLE, "a table name such as `public.users`"));
        let key =
            required(cx, &entries, node, KEY, "`source`").and_then(|(_, value)| self.key(value));
        let cursor = entries
            .get(CURSOR)
            .and_then(|(_, value)| name(cx, value, CURSOR, "a column name"));
        let soft_delete = entries
            .get(SOFT_DELETE)
            .and_then(|(_, value)| name(cx, value, SOFT_DELETE, "a column name"));
        // capture: log
        let capture = entries
            .get(CAPTURE)
            .and_then(|(_, value)| name(cx, value, CAPTURE, "`log`"));
        if let Some(capture) = &capture
            && capture.value != CAPTURE_LOG
        {
            cx.error(
                &capture.origin,
                format!(
                    "unknown `capture` value `{}`: the one value is `log`",
                    capture.value
                ),
            );
        }
        let publication = entries
            .get(PUBLICATION)
            .and_then(|(_, value)| name(cx, value, PUBLICATION, "a publication name"));
        // partition_by: tenant_id
        let partition_by = entries
            .get(PARTITION_BY)
            .and_then(|(_, value)| name(cx, value, PARTITION_BY, "a column name"));
        // filter: "tenant_id = $tenant AND status <> 'void'"
        let filter = entries.get(FILTER).and_then(|(_, value)| {
            let text = name(
                cx,
                value,
                FILTER,
                "a SQL condition such as `status <> 'void'`",
            )?;
            Some(Filter {
                text,
                start: value.text_start(),
            })
        });
        if let Some((_, columns)) = entries.get(COLUMNS) {
            self.source_columns(columns);
        }
        let (table, table_node) = (table?, table_node?);
        let (schema, table_name) = split_qualified(&table.value);
        let schema = schema.map(|schema| Name::new(schema, table.origin.clone()));
        // `public.Odd Source`: point at `Odd Source`.
        let table_origin = match &schema {
            Some(schema) => table_node.origin_at(schema.value.len() + 1),
            None => table.origin.clone(),
        };
        Some(Source {
            schema,
            table: Name::new(table_name, table_origin),
            key: key?,
            cursor,
            soft_delete,
            capture,
            publication,
            partition_by,
            snapshot: None,
            filter,
            origin: source_key.origin(),
        })
    }

    // key: id
    // key: [tenant, id]
    fn key(&self, node: &Node) -> Option<Vec<Name>> {
        match &node.value {
            Value::Sequence(items) if items.is_empty() => {
                self.cx
                    .error(&node.origin(), "`key` needs at least one column");
                None
            }
            Value::Sequence(items) => items
                .iter()
                .map(|item| {
                    name(
                        self.cx,
                        item,
                        KEY,
                        "a column name or a list of column names",
                    )
                })
                .collect::<Vec<_>>()
                .into_iter()
                .collect(),
            _ => name(
                self.cx,
                node,
                KEY,
                "a column name or a list of column names",
            )
            .map(|key| vec![key]),
        }
    }

    // columns: { updated_at: { type: timestamptz } }
    fn source_columns(&mut self, node: &'n Node) {
        let Some(pairs) = mapping(self.cx, node, "`source.columns`", "source columns") else {
            return;
        };
        let mut seen: BTreeMap<&str, &Node> = BTreeMap::new();
        for (key, value) in pairs {
            let Some(column) = key_text(self.cx, key) else {
                continue;
            };
            if let Some(first) = seen.insert(column, key) {
                self.cx.error(
                    &key.origin(),
                    format!(
                        "duplicate column `{column}` in `source.columns` (first at {})",
                        first.line_column()
                    ),
                );
                continue;
            }
            let context = format!("source column `{column}`");
            let Some(entries) = keys(self.cx, value, &context, &[TYPE, NULLABLE, AS]) else {
                continue;
            };
            let pg_type = self.pg_type(&entries);
            let (nullable, nullable_node) = self.nullable(&entries);
            let (opt_in, opt_in_node) = self.opt_in(&entries);
            self.declared.push(Declared {
                column: Name::new(column, key.origin()),
                key,
                pg_type,
                type_missing: (!entries.contains_key(TYPE)).then_some(context),
                nullable,
                nullable_node,
                opt_in,
                opt_in_node,
                placement: None,
            });
        }
    }

    // targets: { user_main: { columns: { .. } } }
    fn targets(&mut self, node: &'n Node) {
        let cx = self.cx;
        let Some(pairs) = mapping(cx, node, "`targets`", "target tables") else {
            return;
        };
        for (key, value) in pairs {
            let Some(target_name) = key_text(cx, key) else {
                continue;
            };
            if let Some(first) = self
                .targets
                .iter()
                .find(|target| target.name.value == target_name)
            {
                cx.error(
                    &key.origin(),
                    format!(
                        "duplicate target `{target_name}` (first at {})",
                        first.name.origin.line_column()
                    ),
                );
                continue;
            }
            let target_index = self.targets.len();
            self.targets.push(Target {
                name: Name::new(target_name, key.origin()),
                columns: Vec::new(),
                computed: Vec::new(),
                origin: key.origin(),
            });
            let context = format!("target `{target_name}`");
            let Some(entries) = keys(cx, value, &context, &[COLUMNS]) else {
                continue;
            };
            let Some((_, columns)) = required(cx, &entries, value, COLUMNS, &context) else {
                continue;
            };
            let Some(columns) = mapping(cx, columns, "`columns`", "target columns") else {
                continue;
            };
            // Duplicate column names go to the model as written: `check` reports them.
            for (key, value) in columns {
                self.target_column(target_index, target_name, key, value);
            }
        }
    }

    // id: { type: bigint, primary_key: true, references: user_main.id, nullable: false, as: .., from: Id }
    fn target_column(
        &mut self,
        target_index: usize,
        target_name: &str,
        key: &'n Node,
        value: &'n Node,
    ) {
        let cx = self.cx;
        let Some(column_name) = key_text(cx, key) else {
            return;
        };
        let context = format!("column `{column_name}` of target `{target_name}`");
        let computed = match &value.value {
            Value::Mapping(pairs) => pairs.iter().any(
                |(key, _)| matches!(&key.value, Value::Scalar { text, .. } if text == COMPUTED),
            ),
            _ => false,
        };
        if computed {
            self.computed_column(target_index, column_name, key, value, &context);
            return;
        }
        let Some(entries) = keys(
            cx,
            value,
            &context,
            &[TYPE, PRIMARY_KEY, REFERENCES, NULLABLE, AS, FROM, WITH],
        ) else {
            return;
        };
        let pg_type = self.pg_type(&entries);
        let type_missing = (!entries.contains_key(TYPE)).then_some(context);
        let (nullable, nullable_node) = self.nullable(&entries);
        let (opt_in, opt_in_node) = self.opt_in(&entries);
        let primary_key = entries
            .get(PRIMARY_KEY)
            .and_then(|(_, value)| boolean(cx, value, PRIMARY_KEY))
            .unwrap_or(false);
        let references = entries
            .get(REFERENCES)
            .and_then(|(_, value)| reference(cx, value));
        // with: custom::mask::email
        // A YAML path starts at the mappings crate root, as the generated Rust
        // spells it: `crate::custom::mask::email`.
        let with = entries
            .get(WITH)
            .and_then(|(_, value)| name(cx, value, WITH, "a path to a function"))
            .map(rooted);
        let column = match entries.get(FROM) {
            Some((_, value)) => match name(cx, value, FROM, "a source column name") {
                Some(column) => column,
                None => return,
            },
            None => Name::new(column_name, key.origin()),
        };
        self.declared.push(Declared {
            column,
            key,
            pg_type,
            type_missing,
            nullable,
            nullable_node,
            opt_in,
            opt_in_node,
            placement: Some((
                target_index,
                Column {
                    name: Name::new(column_name, key.origin()),
                    field: String::new(),
                    primary_key,
                    references,
                    with,
                    origin: key.origin(),
                },
            )),
        });
    }

    // domain: { computed: custom::email::domain, type: text, nullable: true }
    fn computed_column(
        &mut self,
        target_index: usize,
        column_name: &str,
        key: &'n Node,
        value: &'n Node,
        context: &str,
    ) {
        let cx = self.cx;
        let Some(entries) = keys(cx, value, context, &[COMPUTED, TYPE, NULLABLE]) else {
            return;
        };
        let Some(with) = entries
            .get(COMPUTED)
            .and_then(|(_, value)| name(cx, value, COMPUTED, "a path to a function"))
            .map(rooted)
        else {
            return;
        };
        let (nullable, _) = self.nullable(&entries);
        let pg_type = self.pg_type(&entries);
        self.targets[target_index].computed.push(Computed {
            name: Name::new(column_name, key.origin()),
            with,
            pg_type,
            nullable,
            origin: key.origin(),
        });
    }

    /// The written `type`; a missing one is reported by `finish`, which knows
    /// whether the snapshot supplies it.
    fn pg_type(&self, entries: &Entries<'n>) -> Option<Name> {
        entries
            .get(TYPE)
            .and_then(|(_, value)| name(self.cx, value, TYPE, "a PostgreSQL type such as `bigint`"))
    }

    fn nullable(&self, entries: &Entries<'n>) -> (bool, Option<&'n Node>) {
        match entries.get(NULLABLE) {
            Some((_, value)) => (
                boolean(self.cx, value, NULLABLE).unwrap_or(false),
                Some(*value),
            ),
            None => (false, None),
        }
    }

    /// The opt-in `as` names, and its value node when written. An unknown value is an
    /// error here; whether the opt-in reads the column's type is for `check`.
    fn opt_in(&self, entries: &Entries<'n>) -> (Option<types::OptIn>, Option<&'n Node>) {
        let Some((_, value)) = entries.get(AS) else {
            return (None, None);
        };
        let found = match &value.value {
            Value::Scalar { text, plain } if !(*plain && is_null(text)) => {
                if let Some(opt_in) = types::OptIn::parse(text) {
                    return (Some(opt_in), Some(*value));
                }
                format!("`{text}`")
            }
            other => other.kind().to_owned(),
        };
        self.cx.error(
            &value.origin(),
            format!("`{AS}` takes {}, not {found}", types::OPT_IN_VALUES),
        );
        (None, Some(*value))
    }

    /// One field per source column, in order of first appearance (`source.columns`
    /// first, then the targets in order), and the targets with their columns in field
    /// order, as the Rust front-end builds them.
    fn finish(self) -> (Vec<Field>, Vec<Target>) {
        let cx = self.cx;
        let mut groups: Vec<(String, Vec<Declared<'n>>)> = Vec::new();
        for declared in self.declared {
            match groups
                .iter_mut()
                .find(|(column, _)| *column == declared.column.value)
            {
                Some((_, group)) => group.push(declared),
                None => groups.push((declared.column.value.clone(), vec![declared])),
            }
        }

        let mut fields = Vec::new();
        let mut placements: Vec<(usize, Column)> = Vec::new();
        for (column, group) in groups {
            let first = &group[0];
            for other in &group[1..] {
                agree(cx, &column, first, other);
            }
            // With a snapshot, an omitted `type` or `nullable` is the column's; a
            // column the snapshot lacks is reported by `check`.
            let snapshot_column = self
                .snapshot
                .as_ref()
                .and_then(|snapshot| snapshot.table.column(&column));
            if self.snapshot.is_none() {
                for declared in &group {
                    if let Some(context) = &declared.type_missing {
                        cx.error(
                            &declared.key.origin(),
                            format!(
                                "{context} needs a `type`: the PostgreSQL type of its source column, e.g. `{{ type: bigint }}`, or a schema snapshot of the source table (`cargo xtask schema`)"
                            ),
                        );
                    }
                }
            }
            let pg_type = group
                .iter()
                .find_map(|declared| declared.pg_type.clone())
                .or_else(|| {
                    snapshot_column.map(|snapshot_column| {
                        let spelling = snapshot_column
                            .declared_type()
                            .unwrap_or_else(|| snapshot_column.pg_type.clone());
                        Name::new(spelling, first.key.origin())
                    })
                });
            let nullable = match snapshot_column {
                Some(snapshot_column)
                    if group
                        .iter()
                        .all(|declared| declared.nullable_node.is_none()) =>
                {
                    snapshot_column.is_nullable()
                }
                _ => first.nullable,
            };
            let parsed = pg_type
                .as_ref()
                .and_then(|pg_type| types::parse_pg_type(&pg_type.value));
            // An unknown type keeps its spelling in `pg_type`, which `check` reports;
            // the Rust type is then a stand-in.
            let opt_in = first.opt_in;
            let rust_type = match &parsed {
                Some(parsed) => types::rust_type_for(parsed, opt_in, nullable),
                None if nullable => "Option<String>".to_owned(),
                None => "String".to_owned(),
            };
            let rust_type = syn::parse_str::<syn::Type>(&rust_type)
                .expect("rust_type_for returns a Rust type")
                .to_token_stream()
                .to_string();
            let mut ident = field_ident_for(&column);
            let base = ident.clone();
            let mut suffix = 2;
            while fields
                .iter()
                .any(|field: &Field| field.ident.value == ident)
            {
                ident = format!("{base}_{suffix}");
                suffix += 1;
            }
            let type_origin = first
                .nullable_node
                .map_or_else(|| first.key.origin(), Node::origin);
            fields.push(Field {
                ident: Name::new(ident.clone(), first.key.origin()),
                column: first.column.clone(),
                rust_type: Name::new(rust_type, type_origin),
                pg_type,
                origin: first.key.origin(),
            });
            for declared in group {
                if let Some((target_index, mut target_column)) = declared.placement {
                    target_column.field = ident.clone();
                    placements.push((target_index, target_column));
                }
            }
        }

        let mut declared_targets: Vec<Option<Target>> =
            self.targets.into_iter().map(Some).collect();
        let mut targets: Vec<Target> = Vec::new();
        let mut order: Vec<usize> = Vec::new();
        for (target_index, column) in placements {
            match order.iter().position(|index| *index == target_index) {
                Some(position) => targets[position].columns.push(column),
                None => {
                    let mut target = declared_targets[target_index]
                        .take()
                        .expect("each target is taken once");
                    target.columns.push(column);
                    targets.push(target);
                    order.push(target_index);
                }
            }
        }
        // Targets without columns keep their place at the end, for `check` to report.
        targets.extend(declared_targets.into_iter().flatten());
        (fields, targets)
    }
}

/// A function path of YAML as the generated Rust spells it: rooted at the mappings
/// crate (`custom::mask::email` is `crate::custom::mask::email`).
fn rooted(mut path: Name) -> Name {
    let rooted = ["crate::", "::", "self::", "super::"]
        .iter()
        .any(|root| path.value.starts_with(root));
    if !rooted {
        path.value = format!("crate::{}", path.value);
    }
    path
}

/// A source column read by several entries has one type and one nullability.
fn agree(cx: &Ctxt, column: &str, first: &Declared<'_>, other: &Declared<'_>) {
    if let (Some(first_type), Some(other_type)) = (&first.pg_type, &other.pg_type) {
        let same = match (
            types::parse_pg_type(&first_type.value),
            types::parse_pg_type(&other_type.value),
        ) {
            (Some(a), Some(b)) => a == b,
            _ => first_type.value.trim() == other_type.value.trim(),
        };
        if !same {
            cx.error(
                &other_type.origin,
                format!(
                    "source column `{column}` is `{}` here but `{}` at {}: a source column has one type",
                    other_type.value,
                    first_type.value,
                    first_type.origin.line_column()
                ),
            );
        }
    }
    if first.opt_in != other.opt_in {
        let origin = other
            .opt_in_node
            .map_or_else(|| other.key.origin(), Node::origin);
        let written = |declared: &Declared<'_>| {
            declared.opt_in.map_or_else(
                || "no `as`".to_owned(),
                |opt_in| format!("`as: {}`", opt_in.yaml_name()),
            )
        };
        cx.error(
            &origin,
            format!(
                "source column `{column}` has {} here but {} at {}: write the same `as` everywhere it is read",
                written(other),
                written(first),
                first.key.origin().line_column()
            ),
        );
    }
    if first.nullable != other.nullable {
        let origin = other
            .nullable_node
            .map_or_else(|| other.key.origin(), Node::origin);
        let (here, there) = if other.nullable {
            ("nullable", "not nullable")
        } else {
            ("not nullable", "nullable")
        };
        cx.error(
            &origin,
            format!(
                "source column `{column}` is {here} here but {there} at {}: write the same `nullable` everywhere it is read",
                first.key.origin().line_column()
            ),
        );
    }
}

type Entries<'n> = BTreeMap<&'n str, (&'n Node, &'n Node)>;

/// The entries of a mapping node with a fixed set of keys: unknown and duplicate
/// keys are errors at the key.
fn keys<'n>(cx: &Ctxt, node: &'n Node, context: &str, allowed: &[&str]) -> Option<Entries<'n>> {
    let pairs = mapping(cx, node, context, "a mapping")?;
    let mut entries = Entries::new();
    for (index, (key, value)) in pairs.iter().enumerate() {
        let Some(text) = key_text(cx, key) else {
            continue;
        };
        if !allowed.contains(&text) {
            let previous = index.checked_sub(1).map(|index| &pairs[index]);
            if let Some(split) = split_value(previous, text) {
                cx.error(&key.origin(), split);
                continue;
            }
            let expected = allowed
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ");
            cx.error(
                &key.origin(),
                format!("unknown key `{text}` in {context}; expected {expected}"),
            );
            continue;
        }
        if let Some((first, _)) = entries.insert(text, (key, value)) {
            cx.error(
                &key.origin(),
                format!(
                    "duplicate key `{text}` in {context} (first at {})",
                    first.line_column()
                ),
            );
        }
    }
    Some(entries)
}

/// The message for a key `text` that is the rest of the value before it, cut at a
/// comma: in `{ type: numeric(12,2) }` the comma ends the value `numeric(12` and
/// `2)` reads as a key. `None` when `text` does not look like such a rest.
fn split_value(previous: Option<&(Node, Node)>, text: &str) -> Option<String> {
    let (key, value) = previous?;
    let (
        Value::Scalar { text: key, .. },
        Value::Scalar {
            text: value,
            plain: true,
        },
    ) = (&key.value, &value.value)
    else {
        return None;
    };
    let opened = value.matches('(').count() > value.matches(')').count();
    if !opened || !text.contains(')') {
        return None;
    }
    Some(format!(
        "`{value},{text}` is cut at its comma, which ends a value inside `{{ }}`: quote it, `{key}: \"{value},{text}\"`"
    ))
}

fn required<'n>(
    cx: &Ctxt,
    entries: &Entries<'n>,
    parent: &Node,
    key: &str,
    context: &str,
) -> Option<(&'n Node, &'n Node)> {
    let found = entries.get(key).copied();
    if found.is_none() {
        cx.error(
            &parent.origin(),
            format!("missing key `{key}` in {context}"),
        );
    }
    found
}

/// The key/value pairs of a mapping node, or an error saying what was expected.
fn mapping<'n>(cx: &Ctxt, node: &'n Node, context: &str, what: &str) -> Option<&'n [(Node, Node)]> {
    match &node.value {
        Value::Mapping(pairs) => Some(pairs),
        other => {
            cx.error(
                &node.origin(),
                format!("{context} takes {what}, not {}", other.kind()),
            );
            None
        }
    }
}

/// A key as written: keys are names, whatever they look like (`1`, `null`, `type`).
fn key_text<'n>(cx: &Ctxt, key: &'n Node) -> Option<&'n str> {
    match &key.value {
        Value::Scalar { text, .. } => Some(text),
        other => {
            cx.error(
                &key.origin(),
                format!("a key must be a name, not {}", other.kind()),
            );
            None
        }
    }
}

/// A name value: any scalar but null.
fn name(cx: &Ctxt, node: &Node, key: &str, expected: &str) -> Option<Name> {
    match &node.value {
        Value::Scalar { text, plain } if !(*plain && is_null(text)) => {
            Some(Name::new(text.clone(), node.origin()))
        }
        other => {
            cx.error(
                &node.origin(),
                format!("`{key}` takes {expected}, not {}", other.kind()),
            );
            None
        }
    }
}

/// `true` or `false`, unquoted.
fn boolean(cx: &Ctxt, node: &Node, key: &str) -> Option<bool> {
    if let Value::Scalar { text, plain: true } = &node.value {
        match text.as_str() {
            "true" | "True" | "TRUE" => return Some(true),
            "false" | "False" | "FALSE" => return Some(false),
            _ => {}
        }
    }
    let found = match &node.value {
        Value::Scalar { text, plain: true } if !is_null(text) => format!("`{text}`"),
        Value::Scalar { text, plain: false } => format!("the string `{text}`"),
        other => other.kind().to_owned(),
    };
    cx.error(
        &node.origin(),
        format!("`{key}` takes `true` or `false`, not {found}"),
    );
    None
}

// references: user_main.id
fn reference(cx: &Ctxt, node: &Node) -> Option<Reference> {
    let written = name(cx, node, REFERENCES, "`table.column`")?;
    let Some((table, column)) = written.value.split_once('.') else {
        cx.error(
            &written.origin,
            format!("`references` takes `table.column`, not `{}`", written.value),
        );
        return None;
    };
    Some(Reference {
        table: Name::new(table, written.origin.clone()),
        column: Name::new(column, node.origin_at(table.len() + 1)),
        origin: written.origin,
    })
}

impl Origin {
    /// `line:column` of a YAML origin, for messages that name a second place.
    fn line_column(&self) -> String {
        match self {
            Origin::Yaml(position) => format!("{}:{}", position.line, position.column),
            Origin::Span(_) | Origin::Unknown => "another place".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
