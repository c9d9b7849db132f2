//! The `data-sync` command line over a catalogue of compiled-in mappings.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::SourceConfig;
use crate::error::{Error, Result};
use crate::run::{Registered, Summary, SyncOptions};
use crate::state::{self, MappingState};
use crate::watermark::Overlap;

/// Sync PostgreSQL tables into SQLite tables, as the compiled-in mappings declare.
#[derive(Debug, Parser)]
#[command(name = "data-sync", version, about, long_about = None)]
struct Cli {
    /// The source: a libpq URL or key=value string; PG* variables and .pgpass fill in
    /// what it leaves out.
    #[arg(
        long,
        env = "DATA_SYNC_SOURCE",
        hide_env_values = true,
        global = true,
        value_name = "URL"
    )]
    source: Option<String>,

    /// The target SQLite file, created if missing.
    #[arg(long, env = "DATA_SYNC_TARGET", global = true, value_name = "PATH")]
    target: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sync mappings into the target file.
    ///
    /// Example: data-sync sync --mapping users --target app.sqlite
    Sync(SyncArgs),
    /// Show, per mapping, the last run recorded in the target file: mode, rows,
    /// watermark and outcome.
    ///
    /// Example: data-sync status --target app.sqlite --json
    Status(StatusArgs),
    /// List the compiled-in mappings, their sources and targets.
    ///
    /// Example: data-sync list
    List(ListArgs),
    // `data-sync check` (issue 4): begin.
    /// Compare mappings with the live source table and target file; exit non-zero
    /// listing every difference.
    ///
    /// Example: data-sync check --mapping users --target app.sqlite
    Check(CheckArgs),
    // `data-sync check`: end.
}

// `data-sync check` (issue 4): begin.
#[derive(Debug, Args)]
struct CheckArgs {
    /// A mapping to check; repeat for several. Default: every mapping.
    #[arg(long = "mapping", value_name = "NAME")]
    mappings: Vec<String>,

    /// Print the differences as JSON on stdout.
    #[arg(long)]
    json: bool,
}
// `data-sync check`: end.

#[derive(Debug, Args)]
struct SyncArgs {
    /// A mapping to sync; repeat for several. Default: every mapping.
    #[arg(long = "mapping", value_name = "NAME")]
    mappings: Vec<String>,

    /// Rebuild the targets from the whole source.
    #[arg(long)]
    full: bool,

    /// Rows per batch between the reader and the writer.
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,

    /// After an incremental run, delete the target rows whose key has left the
    /// source (streams every source key; no full reload).
    #[arg(long)]
    prune: bool,

    /// How far below the watermark incremental runs read again, for transactions
    /// that commit late: a duration (`90s`, `5m`, `1h`) for time cursors, a number
    /// of values for integer cursors, `0` for none. Default: 5m for time cursors, 0
    /// otherwise.
    #[arg(long, value_name = "WINDOW")]
    overlap: Option<Overlap>,

    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the command line over `catalogue` and returns the process exit code: 0 on
/// success, 1 with one message on stderr on failure, 2 for a usage error.
pub fn main(catalogue: &[Registered]) -> ExitCode {
    main_from(catalogue, std::env::args_os())
}

/// [`main`] with the arguments given (the first is the program name), for programs
/// and tests that run the command line in-process.
pub fn main_from<I, T>(catalogue: &[Registered], args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    init_logging();
    match run(cli, catalogue) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli, catalogue: &[Registered]) -> Result<()> {
    match cli.command {
        // `data-sync check` (issue 4): begin.
        Command::Check(args) => {
            let selected = select(catalogue, &args.mappings)?;
            let source = SourceConfig::parse(cli.source.as_deref().unwrap_or(""))?;
            let target = cli.target.ok_or_else(|| Error::Config {
                message: "no target: pass --target PATH or set DATA_SYNC_TARGET".to_owned(),
            })?;
            crate::check::run(&selected, &source, &target, args.json)
        }
        // `data-sync check`: end.
        Command::Sync(args) => {
            let selected = select(catalogue, &args.mappings)?;
            let source = SourceConfig::parse(cli.source.as_deref().unwrap_or(""))?;
            let target = cli.target.ok_or_else(|| Error::Config {
                message: "no target: pass --target PATH or set DATA_SYNC_TARGET".to_owned(),
            })?;
            let options = SyncOptions {
                full: args.full,
                batch_size: args.batch_size as usize,
                prune: args.prune,
                overlap: args.overlap,
            };
            let mut summaries = Vec::new();
            for mapping in selected {
                let summary = mapping.sync(&source, &target, &options)?;
                if !args.json {
                    print_summary(&summary);
                }
                summaries.push(summary);
            }
            if args.json {
                print_json(&serde_json::json!({ "mappings": summaries }));
            }
            Ok(())
        }
        Command::Status(args) => {
            let target = cli.target.ok_or_else(|| Error::Config {
                message: "no target: pass --target PATH or set DATA_SYNC_TARGET".to_owned(),
            })?;
            let states = state::load_file(&target)?;
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
            if args.json {
                print_json(&serde_json::json!({ "mappings": rows }));
            } else {
                for row in &rows {
                    print_status(row);
                }
            }
            Ok(())
        }
        Command::List(args) => {
            if args.json {
                let mappings: Vec<_> = catalogue
                    .iter()
                    .map(|mapping| {
                        serde_json::json!({
                            "name": mapping.spec.name,
                            "source": mapping.spec.source.display_name(),
                            "targets": mapping.spec.targets.iter().map(|target| target.name).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                print_json(&serde_json::json!({ "mappings": mappings }));
            } else {
                for mapping in catalogue {
                    let targets: Vec<&str> = mapping
                        .spec
                        .targets
                        .iter()
                        .map(|target| target.name)
                        .collect();
                    println!(
                        "{}: {} -> {}",
                        mapping.spec.name,
                        mapping.spec.source.display_name(),
                        targets.join(", ")
                    );
                }
            }
            Ok(())
        }
    }
}

/// The mappings `names` asks for, in catalogue order; all of them for none.
fn select<'a>(catalogue: &'a [Registered], names: &[String]) -> Result<Vec<&'a Registered>> {
    if names.is_empty() {
        return Ok(catalogue.iter().collect());
    }
    for name in names {
        if !catalogue.iter().any(|mapping| mapping.spec.name == name) {
            return Err(Error::UnknownMapping {
                name: name.clone(),
                known: catalogue
                    .iter()
                    .map(|mapping| mapping.spec.name.to_owned())
                    .collect(),
            });
        }
    }
    Ok(catalogue
        .iter()
        .filter(|mapping| names.iter().any(|name| name == mapping.spec.name))
        .collect())
}

fn print_summary(summary: &Summary) {
    let targets: Vec<String> = summary
        .targets
        .iter()
        .map(|target| format!("{} {}", target.table, target.rows))
        .collect();
    println!(
        "{}: {} sync, {} rows read ({}) in {:.2} s",
        summary.mapping,
        summary.mode,
        summary.rows_read,
        targets.join(", "),
        summary.seconds
    );
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

fn print_status(row: &serde_json::Value) {
    let name = row["mapping"].as_str().unwrap_or_default();
    if row["synced"] != true {
        println!("{name}: never synced");
        return;
    }
    let watermark = match &row["watermark"] {
        serde_json::Value::Null => "none".to_owned(),
        watermark => format!(
            "{} key {}",
            watermark["cursor"].as_str().unwrap_or_default(),
            watermark["key"]
        ),
    };
    let outcome = row["last_outcome"].as_str().unwrap_or_default();
    let outcome = if outcome == state::RUNNING {
        "running, or interrupted (the next run resumes)"
    } else {
        outcome
    };
    println!(
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
    );
}

fn print_json(value: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut stdout, value);
    let _ = writeln!(stdout);
}
