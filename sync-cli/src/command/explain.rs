//! `data-sync explain`: the SQL a mapping runs, as an SQL script or JSON; for a
//! mapping with `partition_by`, also how its fan-out names, orders and selects the
//! files (with `--target`, the template's).

use std::path::Path;

use sync_runtime::{MappingSpec, Registered, TargetSpec, Template};

use crate::args::{JsonArgs, MappingArgs};
use crate::error::Result;
use crate::output::{early_error, print_json, write_stdout};

/// The options of `data-sync explain`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    pub(crate) selection: MappingArgs,

    #[command(flatten)]
    pub(crate) output: JsonArgs,
}

/// Prints the SQL of each of `mappings`; `target`, when it is a template
/// (`out/{tenant_id}.sqlite`), is checked against and shown with each partitioned
/// mapping.
pub(crate) fn run(
    mappings: &[&Registered],
    target: Option<&Path>,
    args: &ExplainArgs,
) -> Result<()> {
    let template = target.filter(|target| crate::lock::is_template(target));
    let mut templates = Vec::new();
    for mapping in mappings {
        let parsed = match (template, mapping.spec.source.partition_by) {
            (Some(template), Some(_)) => Some(
                Template::parse(mapping.spec, template)
                    .map_err(|error| early_error(args.output.json, error.into()))?,
            ),
            _ => None,
        };
        templates.push(parsed.map(|_| template.expect("a template").display().to_string()));
    }
    if args.output.json {
        let mappings: Vec<_> = mappings
            .iter()
            .zip(&templates)
            .map(|(mapping, template)| explain_json(mapping.spec, template.as_deref()))
            .collect();
        print_json(&mappings, None)
    } else {
        let texts: Vec<String> = mappings
            .iter()
            .zip(&templates)
            .map(|(mapping, template)| explain_text(mapping.spec, template.as_deref()))
            .collect();
        write_stdout(format_args!("{}", texts.join("\n")))
    }
}

/// How a partition value names its file (docs/fanout.md, "File names").
const FILE_NAME_RULE: &str = "the value's text form (`column::text`), every byte outside \
    [A-Za-z0-9_-] (and a leading `.`) written %XX; the empty value is `%empty`; a name \
    over 200 bytes keeps its first 180, then `~` and the 16 hex digits of the FNV-1a \
    64-bit hash of the value";

/// How `--shard I/N` assigns a partition to a shard.
const SHARD_RULE: &str = "shard(value) = the first 15 hex digits of md5(value::text), \
    read as a number, mod N";

/// The fan-out part of `explain --json`: `null` for a mapping without
/// `partition_by`.
fn partition_json(spec: &MappingSpec, template: Option<&str>) -> serde_json::Value {
    let Some(plan) = sync_runtime::fanout_plan(spec) else {
        return serde_json::Value::Null;
    };
    let capture = spec.source.capture.is_some();
    serde_json::json!({
        "column": plan.column,
        "template": template,
        "file_name": FILE_NAME_RULE,
        "copy": plan.copy,
        "partition": if capture { None } else { Some(plan.partition_condition) },
        "shard": if capture { None } else { Some(plan.shard_condition) },
        "shard_hash": SHARD_RULE,
    })
}

/// The fan-out part of `explain`: `(comment, statement)` pairs, none for a mapping
/// without `partition_by`.
fn partition_statements(spec: &MappingSpec, template: Option<&str>) -> Vec<(String, String)> {
    let Some(plan) = sync_runtime::fanout_plan(spec) else {
        return Vec::new();
    };
    let column = plan.column;
    let template = match template {
        Some(template) => format!("template: {template}"),
        None => {
            format!("template: the target names the files, e.g. --target 'out/{{{column}}}.sqlite'")
        }
    };
    let mut statements = vec![
        (
            format!(
                "fan-out: one SQLite file per value of `{column}` (partition_by), each written \
                 in its own SQLite transaction\n-- {template}\n-- file name: {FILE_NAME_RULE}"
            ),
            String::new(),
        ),
        (
            format!(
                "PostgreSQL, fan-out of every partition (and `verify` over a template): one \
                 pass, the rows ordered by `{column}`, then the key"
            ),
            plan.copy,
        ),
    ];
    if spec.source.capture.is_some() {
        statements.push((
            "--partition and --shard: refused for a mapping with `capture: log` (one \
             replication slot feeds every file)"
                .to_owned(),
            String::new(),
        ));
    } else {
        statements.push((
            "--partition VALUE: one file; this condition is added, VALUE bound as a setting"
                .to_owned(),
            plan.partition_condition,
        ));
        statements.push((
            format!(
                "--shard I/N: the files of shard I, {SHARD_RULE}; this condition is added, I \
                 and N bound as settings"
            ),
            plan.shard_condition,
        ));
    }
    statements
}

/// The statement a full sync streams the source with.
fn copy_statement(spec: &MappingSpec) -> String {
    sync_runtime::copy_out_sql(spec.source.select)
}

/// One mapping of `explain --json`.
fn explain_json(spec: &MappingSpec, template: Option<&str>) -> serde_json::Value {
    let incremental = spec.source.incremental.as_ref().map(|incremental| {
        serde_json::json!({
            "select_all": incremental.select_all,
            "select_after": incremental.select_after,
            "select_from": incremental.select_from,
            "watermark": incremental.watermark,
            "null_cursor": incremental.null_cursor,
            "select_keys": incremental.select_keys,
            "prune": spec.targets.iter().zip(incremental.prune).map(|(target, prune)| {
                serde_json::json!({ "table": target.name, "delete": prune })
            }).collect::<Vec<_>>(),
        })
    });
    let filter = spec.source.filter.as_ref().map(|filter| {
        serde_json::json!({
            "text": filter.text,
            "condition": filter.condition,
            "values": filter.slots.iter().map(|slot| match slot.value {
                sync_runtime::SlotValue::Literal(text) => serde_json::json!({
                    "setting": slot.setting, "type": slot.ty.to_string(), "literal": text,
                }),
                sync_runtime::SlotValue::Parameter(name) => serde_json::json!({
                    "setting": slot.setting, "type": slot.ty.to_string(), "parameter": name,
                }),
            }).collect::<Vec<_>>(),
        })
    });
    serde_json::json!({
        "mapping": spec.name,
        "source": spec.source.display_name(),
        "filter": filter,
        "select": spec.source.select,
        "copy": copy_statement(spec),
        "incremental": incremental,
        "partition": partition_json(spec, template),
        "targets": spec.targets.iter().map(|target| serde_json::json!({
            "table": target.name,
            "create": target.create,
            "insert": target.insert,
            "upsert": target.upsert,
            "delete_all": target.delete_all,
            "delete_by_key": target.delete_by_key,
            "computed": computed_columns(target).map(|(column, function)| serde_json::json!({
                "column": column, "function": function,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "fingerprint": spec.fingerprint,
    })
}

/// Each computed column of `target` with its function.
fn computed_columns(target: &TargetSpec) -> impl Iterator<Item = (&'static str, &'static str)> {
    target
        .columns
        .iter()
        .filter_map(|column| column.computed.map(|function| (column.name, function)))
}

/// One mapping of `explain`, as an SQL script with comments.
fn explain_text(spec: &MappingSpec, template: Option<&str>) -> String {
    let targets: Vec<&str> = spec.targets.iter().map(|target| target.name).collect();
    let mut text = format!(
        "-- mapping `{}` (struct {}): {} -> {}\n\n",
        spec.name,
        spec.struct_name,
        spec.source.display_name(),
        targets.join(", ")
    );
    let mut statement = |comment: &str, sql: &str| {
        if sql.is_empty() {
            text.push_str(&format!("-- {comment}\n\n"));
        } else {
            text.push_str(&format!("-- {comment}\n{sql};\n\n"));
        }
    };
    if let Some(filter) = &spec.source.filter {
        let mut comment = format!(
            "filter `{}`: every value is bound, read back with current_setting",
            filter.text
        );
        for slot in filter.slots {
            match slot.value {
                sync_runtime::SlotValue::Literal(text) => comment.push_str(&format!(
                    "\n--   {} ({}) = literal '{}'",
                    slot.setting,
                    slot.ty,
                    text.replace('\'', "''")
                )),
                sync_runtime::SlotValue::Parameter(name) => comment.push_str(&format!(
                    "\n--   {} ({}) = parameter ${name} (--param {name}=VALUE)",
                    slot.setting, slot.ty
                )),
            }
        }
        statement(
            &format!(
                "{comment}\n-- PostgreSQL, first in the snapshot: $1 the settings, $2 their values"
            ),
            sync_runtime::FilterSpec::BIND,
        );
    }
    statement(
        "PostgreSQL, full sync: in one REPEATABLE READ READ ONLY snapshot",
        &copy_statement(spec),
    );
    for (comment, sql) in partition_statements(spec, template) {
        statement(&comment, &sql);
    }
    match &spec.source.incremental {
        Some(incremental) => {
            statement(
                "PostgreSQL, incremental sync, first run: every row in watermark order",
                incremental.select_all,
            );
            statement(
                "PostgreSQL, incremental sync: the rows after the watermark ($1 cursor, $2.. key)",
                incremental.select_after,
            );
            statement(
                "PostgreSQL, incremental sync with an overlap: the rows from cursor $1, and whether each lies after the watermark",
                incremental.select_from,
            );
            statement(
                "PostgreSQL: the greatest watermark of the snapshot",
                incremental.watermark,
            );
            statement(
                "PostgreSQL: a row whose cursor is NULL (an error)",
                incremental.null_cursor,
            );
            statement(
                "PostgreSQL, --prune: every source key",
                incremental.select_keys,
            );
        }
        None => statement(
            "PostgreSQL, incremental sync: none, the mapping has no cursor (every run is full)",
            "",
        ),
    }
    for (index, target) in spec.targets.iter().enumerate() {
        let mut comment = format!("SQLite `{}`: the table", target.name);
        for (column, function) in computed_columns(target) {
            comment.push_str(&format!(
                "\n--   `{column}` is computed by `{function}` from the whole source row"
            ));
        }
        statement(&comment, target.create);
        statement("full sync: one row", target.insert);
        statement("incremental sync: one row", target.upsert);
        statement("every row", target.delete_all);
        statement(
            "incremental sync: a soft-deleted row, by key",
            target.delete_by_key,
        );
        if let Some(prune) = spec
            .source
            .incremental
            .as_ref()
            .and_then(|incremental| incremental.prune.get(index))
        {
            statement("--prune: the rows whose key left the source", prune);
        }
    }
    text
}
