//! `data-sync status`: per mapping, the last run recorded in the target file.

use std::path::Path;

use sync_runtime::{MappingState, Registered};

use crate::args::JsonArgs;
use crate::error::Result;
use crate::output::{outln, print_json};

/// The options of `data-sync status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    output: JsonArgs,
}

/// Prints the state of every mapping of `catalogue` and every mapping the file knows,
/// by name.
pub(crate) fn run(catalogue: &[Registered], target: &Path, args: &StatusArgs) -> Result<()> {
    let states = sync_runtime::load_states(target)?;
    let mut names: Vec<&str> = catalogue.iter().map(|mapping| mapping.spec.name).collect();
    for state in &states {
        if !names.contains(&state.mapping.as_str()) {
            names.push(&state.mapping);
        }
    }
    names.sort_unstable();
    let rows: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            let state = states.iter().find(|state| state.mapping == *name);
            let spec = catalogue
                .iter()
                .find(|mapping| mapping.spec.name == *name)
                .map(|mapping| mapping.spec);
            status_json(name, spec.map(|spec| spec.fingerprint), state)
        })
        .collect();
    if args.output.json {
        print_json(&rows, None)?;
    } else {
        for row in &rows {
            print_status(row)?;
        }
    }
    Ok(())
}

/// One mapping's status as JSON; `fingerprint` is the compiled-in mapping's, `None`
/// for a mapping the file knows but the catalogue does not.
fn status_json(
    name: &str,
    fingerprint: Option<&str>,
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
    serde_json::json!({
        "mapping": name,
        "synced": true,
        "compiled_in": fingerprint.is_some(),
        "needs_full": fingerprint.is_some_and(|fingerprint| fingerprint != state.fingerprint),
        "mode": state.mode,
        "rows": state.rows,
        "watermark": watermark,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "last_attempt_at": state.last_attempt_at,
        "last_outcome": state.last_outcome,
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
    )
}

/// A run's outcome as `status` prints it.
fn describe_outcome(outcome: &str) -> &str {
    if outcome == sync_runtime::RUNNING {
        "running, or killed (the next run starts from the last committed state)"
    } else {
        outcome
    }
}
