//! `data-sync status`: per mapping, the last run recorded in the target file (or
//! in each file of a template); for a capture mapping, when the source is given,
//! its replication slot as the source reports it: the confirmed position and the
//! WAL it holds back.

use std::path::Path;

use sync_runtime::{MappingSpec, MappingState, Registered, SlotStatus, SourceConfig, Template};

use crate::args::JsonArgs;
use crate::error::Result;
use crate::output::{outln, print_json};

/// The options of `data-sync status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Warn when a replication slot holds back more WAL than this many bytes (a
    /// stopped `follow` or an abandoned target). Example: --wal-warning 10000000000
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES")]
    wal_warning: i64,

    #[command(flatten)]
    pub(crate) output: JsonArgs,
}

/// Prints the state of every mapping of `catalogue` and every mapping the file knows,
/// by name.
pub(crate) fn run(
    catalogue: &[Registered],
    target: &Path,
    source: Option<&SourceConfig>,
    args: &StatusArgs,
) -> Result<()> {
    if crate::lock::is_template(target) {
        return run_fanout(catalogue, target, source, args);
    }
    let states = sync_runtime::load_states(target)?;
    let mut names: Vec<&str> = catalogue.iter().map(|mapping| mapping.spec.name).collect();
    for state in &states {
        if !names.contains(&state.mapping.as_str()) {
            names.push(&state.mapping);
        }
    }
    names.sort_unstable();
    let mut rows = Vec::new();
    for name in &names {
        let state = states.iter().find(|state| state.mapping == *name);
        let mapping = catalogue.iter().find(|mapping| mapping.spec.name == *name);
        let mut row = status_json(name, mapping.map(|mapping| mapping.spec), state, target);
        if let (Some(mapping), Some(source), Some(_)) = (mapping, source, state)
            && mapping.spec.source.capture.is_some()
            && let Some(slot) = mapping.slot_status(source, target)?
        {
            row["capture"] = capture_json(&slot, args.wal_warning);
        }
        rows.push(row);
    }
    if args.output.json {
        print_json(&rows, None)?;
    } else {
        for row in &rows {
            print_status(row)?;
        }
    }
    Ok(())
}

/// `status --target 'out/{tenant_id}.sqlite'`: for every partitioned mapping of
/// `catalogue`, the files of the template, each with its status, summarized: the
/// count per last outcome, the oldest successful run, the files whose last run
/// failed; for a capture mapping, when the source is given, the one slot of the
/// template's state file, as for a single file.
fn run_fanout(
    catalogue: &[Registered],
    target: &Path,
    source: Option<&SourceConfig>,
    args: &StatusArgs,
) -> Result<()> {
    let mut rows = Vec::new();
    for mapping in catalogue {
        if mapping.spec.source.partition_by.is_none() {
            continue;
        }
        let template = Template::parse(mapping.spec, target)?;
        let existing = template
            .existing()
            .map_err(|source| sync_runtime::Error::Io {
                path: target.to_owned(),
                source,
            })?;
        let mut files = Vec::new();
        let mut outcomes = serde_json::Map::new();
        let mut failed = Vec::new();
        let mut oldest_success: Option<String> = None;
        for (name, path) in existing {
            let states = sync_runtime::load_states(&path);
            let mut row = match &states {
                Ok(states) => {
                    let state = states
                        .iter()
                        .find(|state| state.mapping == mapping.spec.name);
                    status_json(mapping.spec.name, Some(mapping.spec), state, &path)
                }
                Err(error) => serde_json::json!({
                    "mapping": mapping.spec.name,
                    "synced": false,
                    "last_outcome": error.to_string(),
                }),
            };
            row["partition"] = name.clone().into();
            row["file"] = path.display().to_string().into();
            let outcome = match row["last_outcome"].as_str() {
                Some("ok") => "ok",
                Some(sync_runtime::RUNNING) => sync_runtime::RUNNING,
                Some(_) => "error",
                None => "never_synced",
            };
            let count = outcomes.entry(outcome).or_insert(0.into());
            *count = (count.as_u64().unwrap_or(0) + 1).into();
            if outcome == "error" {
                failed.push(serde_json::json!({
                    "partition": name,
                    "file": row["file"],
                    "last_attempt_at": row["last_attempt_at"],
                    "last_outcome": row["last_outcome"],
                }));
            }
            if row["synced"] == true
                && let Some(finished) = row["finished_at"].as_str()
                && oldest_success
                    .as_deref()
                    .is_none_or(|oldest| finished < oldest)
            {
                oldest_success = Some(finished.to_owned());
            }
            files.push(row);
        }
        let mut row = serde_json::json!({
            "mapping": mapping.spec.name,
            "template": target.display().to_string(),
            "files": files,
            "outcomes": outcomes,
            "oldest_success": oldest_success,
            "failed": failed,
        });
        if let Some(source) = source
            && mapping.spec.source.capture.is_some()
            && let Some(slot) = mapping.slot_status(source, target)?
        {
            row["capture"] = capture_json(&slot, args.wal_warning);
        }
        rows.push(row);
    }
    if args.output.json {
        return print_json(&rows, None);
    }
    for row in &rows {
        let name = row["mapping"].as_str().unwrap_or_default();
        let outcomes: Vec<String> = row["outcomes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(outcome, count)| format!("{count} {outcome}"))
            .collect();
        outln!(
            "{name}: {} files of {} ({}), oldest successful run finished {}",
            row["files"].as_array().map_or(0, Vec::len),
            row["template"].as_str().unwrap_or_default(),
            if outcomes.is_empty() {
                "none".to_owned()
            } else {
                outcomes.join(", ")
            },
            row["oldest_success"].as_str().unwrap_or("never"),
        )?;
        for failed in row["failed"].as_array().into_iter().flatten() {
            outln!(
                "{name}: failed: {} ({}), last attempt {}: {}",
                failed["partition"].as_str().unwrap_or_default(),
                failed["file"].as_str().unwrap_or_default(),
                failed["last_attempt_at"].as_str().unwrap_or_default(),
                failed["last_outcome"].as_str().unwrap_or_default(),
            )?;
        }
        print_capture(name, &row["capture"])?;
    }
    Ok(())
}

/// One mapping's status as JSON, in the file at `path`; `spec` is the compiled-in
/// mapping, `None` for a mapping the file knows but the catalogue does not.
fn status_json(
    name: &str,
    spec: Option<&MappingSpec>,
    state: Option<&MappingState>,
    path: &Path,
) -> serde_json::Value {
    let Some(state) = state else {
        return serde_json::json!({ "mapping": name, "synced": false });
    };
    if state.mode == sync_runtime::NEVER_SYNCED {
        // Runs were attempted, but none committed.
        return serde_json::json!({
            "mapping": name,
            "synced": false,
            "last_attempt_at": state.last_attempt_at,
            "last_outcome": state.last_outcome,
        });
    }
    let watermark = state.watermark_cursor.as_ref().map(|cursor| {
        let key = state
            .watermark_key
            .as_deref()
            .and_then(|key| serde_json::from_str::<serde_json::Value>(key).ok())
            .unwrap_or(serde_json::Value::Null);
        serde_json::json!({ "cursor": cursor, "key": key })
    });
    // What the next run does about a changed mapping: migrate, or need `--full`.
    let next = spec.map(|spec| state.migration_for(spec));
    let (migrates, changed) = match &next {
        Some(Ok(columns)) => (columns.clone(), None),
        Some(Err(sync_runtime::Error::MappingChanged { changes, .. })) => {
            (Vec::new(), Some(changes.clone()))
        }
        Some(Err(error)) => (Vec::new(), Some(error.to_string())),
        None => (Vec::new(), None),
    };
    // A changed mapping whose next run is a full one anyway, as `sync` decides: no
    // cursor, or a target table missing from the file (a new table of a split).
    let rebuilds = match (spec, &changed) {
        (Some(spec), Some(_)) if spec.source.capture.is_none() => {
            if spec.source.incremental.is_none() {
                Some("the mapping has no cursor".to_owned())
            } else {
                sync_runtime::missing_targets(path, spec)
                    .ok()
                    .and_then(|missing| {
                        let names: Vec<String> =
                            missing.iter().map(|name| format!("`{name}`")).collect();
                        match names.len() {
                            0 => None,
                            1 => Some(format!("table {} is missing", names[0])),
                            _ => Some(format!("tables {} are missing", names.join(", "))),
                        }
                    })
            }
        }
        _ => None,
    };
    serde_json::json!({
        "mapping": name,
        "synced": true,
        "compiled_in": spec.is_some(),
        "needs_full": changed.is_some() && rebuilds.is_none(),
        "rebuilds": rebuilds,
        "changed": changed,
        "migrates": migrates,
        "migrated": state.migrated,
        "mode": state.mode,
        "rows": state.rows,
        "watermark": watermark,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "last_attempt_at": state.last_attempt_at,
        "last_outcome": state.last_outcome,
    })
}

/// A capture mapping's slot as JSON, with a warning when it holds back more than
/// `threshold` bytes of WAL or is gone.
fn capture_json(slot: &SlotStatus, threshold: i64) -> serde_json::Value {
    let warning = match (slot.wal_status.as_str(), slot.retained_bytes) {
        ("missing", _) => Some(format!(
            "replication slot `{}` no longer exists on the source; run `data-sync sync --full`",
            slot.slot
        )),
        ("lost", _) => Some(format!(
            "replication slot `{}` was invalidated; run `data-sync sync --full`",
            slot.slot
        )),
        (_, Some(bytes)) if bytes > threshold => Some(format!(
            "replication slot `{}` holds back {bytes} bytes of WAL on the source; run \
             `data-sync sync` (or keep `data-sync follow` running), or release it with \
             `data-sync drop-slot --mapping {}`",
            slot.slot, slot.mapping
        )),
        _ => None,
    };
    serde_json::json!({
        "slot": slot.slot,
        "position": slot.position,
        "confirmed": slot.confirmed,
        "retained_bytes": slot.retained_bytes,
        "wal_status": slot.wal_status,
        "warning": warning,
    })
}

fn print_status(row: &serde_json::Value) -> Result<()> {
    let name = row["mapping"].as_str().unwrap_or_default();
    if row["synced"] != true {
        return match row["last_outcome"].as_str() {
            Some(outcome) => outln!(
                "{name}: never synced; last attempt {}: {}",
                row["last_attempt_at"].as_str().unwrap_or_default(),
                describe_outcome(outcome)
            ),
            None => outln!("{name}: never synced"),
        };
    }
    let watermark = match &row["watermark"] {
        serde_json::Value::Null => "none".to_owned(),
        watermark => format!(
            "{} key {}",
            watermark["cursor"].as_str().unwrap_or_default(),
            watermark["key"]
        ),
    };
    let outcome = describe_outcome(row["last_outcome"].as_str().unwrap_or_default());
    outln!(
        "{name}: last {} sync started {}, finished {}, {} rows, watermark {watermark}, last attempt {}: {outcome}{}",
        row["mode"].as_str().unwrap_or_default(),
        row["started_at"].as_str().unwrap_or_default(),
        row["finished_at"].as_str().unwrap_or("never"),
        row["rows"],
        row["last_attempt_at"].as_str().unwrap_or_default(),
        if row["needs_full"] == true {
            "; the mapping changed since: the next sync needs --full".to_owned()
        } else if let Some(why) = row["rebuilds"].as_str() {
            format!(
                "; the mapping changed since: the next sync rebuilds its targets in full ({why})"
            )
        } else {
            String::new()
        },
    )?;
    for column in row["migrates"].as_array().into_iter().flatten() {
        outln!(
            "{name}: the mapping changed since: the next sync {} column `{}`.`{}` in place",
            if column["change"] == "added" {
                "adds and backfills"
            } else {
                "drops"
            },
            column["table"].as_str().unwrap_or_default(),
            column["column"].as_str().unwrap_or_default(),
        )?;
    }
    if let Some(changed) = row["changed"].as_str() {
        outln!("{name}: changed: {changed}")?;
    }
    let migrated = &row["migrated"];
    for column in migrated["columns"].as_array().into_iter().flatten() {
        outln!(
            "{name}: migrated by the run started {}: column `{}`.`{}` {}{}",
            migrated["at"].as_str().unwrap_or_default(),
            column["table"].as_str().unwrap_or_default(),
            column["column"].as_str().unwrap_or_default(),
            column["change"].as_str().unwrap_or_default(),
            if column["change"] == "added" {
                format!(", {} rows backfilled", column["backfilled"])
            } else {
                String::new()
            },
        )?;
    }
    print_capture(name, &row["capture"])
}

/// The line of a capture mapping's slot ([`capture_json`]), if it has one, and its
/// warning.
fn print_capture(name: &str, capture: &serde_json::Value) -> Result<()> {
    if capture.is_object() {
        outln!(
            "{name}: slot {}, position {}, confirmed {}, {} bytes of WAL retained ({})",
            capture["slot"].as_str().unwrap_or_default(),
            capture["position"].as_str().unwrap_or("none"),
            capture["confirmed"].as_str().unwrap_or("none"),
            capture["retained_bytes"],
            capture["wal_status"].as_str().unwrap_or_default(),
        )?;
        if let Some(warning) = capture["warning"].as_str() {
            eprintln!("warning: {name}: {warning}");
        }
    }
    Ok(())
}

/// A run's outcome as `status` prints it.
fn describe_outcome(outcome: &str) -> &str {
    if outcome == sync_runtime::RUNNING {
        "running, or killed (the next run starts from the last committed state)"
    } else {
        outcome
    }
}
