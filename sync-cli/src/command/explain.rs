//! `data-sync explain`: the SQL a mapping runs, as an SQL script or JSON.

use sync_runtime::{MappingSpec, Registered, TargetSpec};

use crate::args::{JsonArgs, MappingArgs};
use crate::error::Result;
use crate::output::{print_json, write_stdout};

/// The options of `data-sync explain`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    pub(crate) selection: MappingArgs,

    #[command(flatten)]
    pub(crate) output: JsonArgs,
}

/// Prints the SQL of each of `mappings`.
pub(crate) fn run(mappings: &[&Registered], args: &ExplainArgs) -> Result<()> {
    if args.output.json {
        let mappings: Vec<_> = mappings
            .iter()
            .map(|mapping| explain_json(mapping.spec))
            .collect();
        print_json(&mappings, None)
    } else {
        let texts: Vec<String> = mappings
            .iter()
            .map(|mapping| explain_text(mapping.spec))
            .collect();
        write_stdout(format_args!("{}", texts.join("\n")))
    }
}

/// The statement a full sync streams the source with.
fn copy_statement(spec: &MappingSpec) -> String {
    sync_runtime::copy_out_sql(spec.source.select)
}

/// One mapping of `explain --json`.
fn explain_json(spec: &MappingSpec) -> serde_json::Value {
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
fn explain_text(spec: &MappingSpec) -> String {
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
