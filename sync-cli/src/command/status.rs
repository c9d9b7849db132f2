//! `data-sync status`: per mapping, the last run recorded in the target file; for a
//! capture mapping, when the source is given, its replication slot as the source
//! reports it: the confirmed position and the WAL it holds back.

use std::path::Path;

use sync_runtime::{MappingSpec, MappingState, Registered, SlotStatus, SourceConfig};

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
        let mut row = status_json(name, mapping.map(|mapping| mapping.spec), state);
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

/// One mapping's status as JSON; `spec` is the compiled-in mapping, `None` for a
/// mapping the file knows but the catalogue does not.
fn status_json(
    name: &str,
    spec: Option<&MappingSpec>,
    state: Option<&MappingState>,
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
    serde_json::json!({
        "mapping": name,
        "synced": true,
        "compiled_in": spec.is_some(),
        "needs_full": changed.is_some(),
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
            "; the mapping changed since: the next sync needs --full"
        } else {
            ""
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
    let capture = &row["capture"];
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
