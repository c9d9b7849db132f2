//! The `data-sync` command line over a catalogue of compiled-in mappings.
//!
//! Every command that prints results takes `--json`; the schemas are documented in
//! `docs/cli.md` and carry `"version": 1` ([`JSON_VERSION`]).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{MultiProgress, ProgressDrawTarget};

use crate::error::{Error, Result};
use crate::log::LogFormat;
use crate::progress::TerminalProgress;
use crate::run::{Registered, Summary, SyncOptions};
use crate::spec::MappingSpec;
use crate::state::{self, MappingState};
use crate::watermark::Overlap;

/// The `version` field of every `--json` output; it changes only when a field is
/// removed or changes meaning (fields may be added within a version).
pub(crate) const JSON_VERSION: u32 = 1;

/// Sync PostgreSQL tables into SQLite tables, as the compiled-in mappings declare.
#[derive(Debug, Parser)]
#[command(
    name = "data-sync",
    version,
    about,
    long_about = None,
    after_help = "Examples:
  data-sync list
  data-sync --source postgresql://app@db/app --target app.sqlite sync
  DATA_SYNC_SOURCE=postgresql://app@db/app data-sync --target app.sqlite sync --mapping users --json
  data-sync explain --mapping users

Run `data-sync <COMMAND> --help` for a command's options and examples."
)]
struct Cli {
    /// The source: a libpq URL or key=value string; PG* variables and .pgpass fill in
    /// what it leaves out. Example: --source postgresql://app@db.internal:5432/app
    #[arg(
        long,
        env = "DATA_SYNC_SOURCE",
        hide_env_values = true,
        global = true,
        value_name = "URL"
    )]
    source: Option<String>,

    /// The target SQLite file, created if missing. Example: --target app.sqlite
    #[arg(long, env = "DATA_SYNC_TARGET", global = true, value_name = "PATH")]
    target: Option<PathBuf>,

    /// Log more: -v logs each run (info), -vv debug, -vvv trace. Wins over RUST_LOG.
    /// Example: -v
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    verbose: u8,

    /// No progress bar and only errors in the log; results still go to stdout.
    /// Example: -q
    #[arg(short, long, global = true)]
    quiet: bool,

    /// How log lines on stderr are written: text, or one JSON object per line for
    /// schedulers and log collectors. Example: --log-format json -v
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, value_name = "FORMAT")]
    log_format: LogFormat,

    #[command(flatten)]
    source_args: crate::config::SourceArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sync mappings into the target file: incremental where the mapping has a cursor
    /// and the target was synced before, full otherwise.
    #[command(after_help = "Examples:
  data-sync sync --target app.sqlite                      # every mapping
  data-sync sync --mapping users --target app.sqlite      # one mapping
  data-sync sync --mapping users --full                   # rebuild from the whole source
  data-sync sync --mapping events --prune --overlap 10m   # incremental, then remove deleted keys
  data-sync -q sync --json > run.json                     # for scripts: no progress, JSON on stdout")]
    Sync(SyncArgs),
    /// Show, per mapping, the last run recorded in the target file: mode, rows,
    /// watermark and outcome.
    #[command(after_help = "Examples:
  data-sync status --target app.sqlite
  data-sync status --target app.sqlite --json")]
    Status(StatusArgs),
    /// List the compiled-in mappings, their sources and targets.
    #[command(after_help = "Examples:
  data-sync list
  data-sync list --json")]
    List(ListArgs),
    // `data-sync check` (issue 4): begin.
    /// Compare mappings with the live source table and target file; exit non-zero
    /// listing every difference.
    #[command(after_help = "Examples:
  data-sync check --target app.sqlite
  data-sync check --mapping users --target app.sqlite --json")]
    Check(CheckArgs),
    // `data-sync check`: end.
    /// Print the SQL a mapping runs: the source SELECT (full and incremental), and
    /// per target the DDL and the INSERT, UPSERT and DELETE statements. Needs no
    /// database.
    #[command(after_help = "Examples:
  data-sync explain --mapping users
  data-sync explain --mapping users --json")]
    Explain(ExplainArgs),
    /// Compare the targets with the source: row counts and a checksum per target
    /// table, and the keys that differ; exit non-zero on any difference.
    #[command(after_help = "Examples:
  data-sync verify --target app.sqlite
  data-sync verify --mapping users --target app.sqlite --json")]
    Verify(crate::verify::VerifyArgs),
}

// `data-sync check` (issue 4): begin.
#[derive(Debug, Args)]
struct CheckArgs {
    /// A mapping to check; repeat for several. Default: every mapping.
    /// Example: --mapping users
    #[arg(long = "mapping", value_name = "NAME")]
    mappings: Vec<String>,

    /// Print the differences as JSON on stdout (schema: docs/cli.md).
    #[arg(long)]
    json: bool,
}
// `data-sync check`: end.

#[derive(Debug, Args)]
struct SyncArgs {
    /// A mapping to sync; repeat for several. Default: every mapping.
    /// Example: --mapping users --mapping orders
    #[arg(long = "mapping", value_name = "NAME")]
    mappings: Vec<String>,

    /// Rebuild the targets from the whole source, even where an incremental run is
    /// possible. Example: --full
    #[arg(long)]
    full: bool,

    /// Rows per batch between the reader and the writer; for incremental runs also
    /// the rows per SQLite transaction. Example: --batch-size 50000
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,

    /// After an incremental run, delete the target rows whose key has left the
    /// source (streams every source key; no full reload). Example: --prune
    #[arg(long)]
    prune: bool,

    /// How far below the watermark incremental runs read again, for transactions
    /// that commit late: a duration (`90s`, `5m`, `1h`) for time cursors, a number
    /// of values for integer cursors, `0` for none. Default: 5m for time cursors, 0
    /// otherwise. Example: --overlap 10m
    #[arg(long, value_name = "WINDOW")]
    overlap: Option<Overlap>,

    #[command(flatten)]
    retry: crate::retry::RetryArgs,

    /// Print a JSON summary on stdout (schema: docs/cli.md). Example: --json
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print JSON on stdout (schema: docs/cli.md). Example: --json
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Print JSON on stdout (schema: docs/cli.md). Example: --json
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// A mapping to explain; repeat for several. Default: every mapping.
    /// Example: --mapping users
    #[arg(long = "mapping", value_name = "NAME")]
    mappings: Vec<String>,

    /// Print JSON on stdout (schema: docs/cli.md). Example: --json
    #[arg(long)]
    json: bool,
}

/// Runs the command line over `catalogue` and returns the process exit code: 0 on
/// success, 1 with one message on stderr on failure, 2 for a usage error.
///
/// # Examples
///
/// A binary's whole `main`, as `data-sync`'s own is:
///
/// ```no_run
/// # mod mappings { pub static CATALOGUE: &[sync_runtime::Registered] = &[]; }
/// fn main() -> std::process::ExitCode {
///     sync_runtime::main(mappings::CATALOGUE)
/// }
/// ```
pub fn main(catalogue: &[Registered]) -> ExitCode {
    // SIGINT and SIGTERM stop a run cleanly (see `signal`); without the handlers
    // they would kill it, which is also safe, only less tidy.
    if let Err(error) = crate::signal::install() {
        eprintln!("warning: cannot handle SIGINT and SIGTERM: {error}");
    }
    main_from(catalogue, std::env::args_os())
}

/// [`main`] with the arguments given (the first is the program name), for programs
/// and tests that run the command line in-process.
///
/// # Examples
///
/// ```
/// let code = sync_runtime::main_from(&[], ["data-sync", "list"]);
/// assert_eq!(code, std::process::ExitCode::SUCCESS);
/// ```
pub fn main_from<I, T>(catalogue: &[Registered], args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let count = catalogue.len();
    let version: &'static str = Box::leak(
        format!(
            "{} ({count} mapping{})",
            env!("CARGO_PKG_VERSION"),
            if count == 1 { "" } else { "s" }
        )
        .into_boxed_str(),
    );
    let matches = Cli::command().version(version).get_matches_from(args);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let show_progress = !cli.quiet && std::io::stderr().is_terminal();
    let bars = MultiProgress::with_draw_target(if show_progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    crate::log::init(cli.verbose, cli.quiet, cli.log_format, bars.clone());
    match run(cli, catalogue, show_progress.then_some(bars)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            crate::signal::exit_code(&error)
        }
    }
}

fn run(cli: Cli, catalogue: &[Registered], bars: Option<MultiProgress>) -> Result<()> {
    match cli.command {
        // `data-sync check` (issue 4): begin.
        Command::Check(args) => {
            let selected = select(catalogue, &args.mappings)?;
            let source = cli.source_args.source_config(cli.source.as_deref())?;
            let target = cli.target.ok_or_else(no_target)?;
            crate::check::run(&selected, &source, &target, args.json)
        }
        Command::Verify(args) => {
            let selected = select(catalogue, &args.mappings)?;
            let source = cli.source_args.source_config(cli.source.as_deref())?;
            let target = cli.target.ok_or_else(no_target)?;
            crate::verify::run(&selected, &source, &target, &args)
        }
        // `data-sync check`: end.
        Command::Sync(args) => {
            let selected = select(catalogue, &args.mappings)?;
            let source = cli.source_args.source_config(cli.source.as_deref())?;
            let target = cli.target.ok_or_else(no_target)?;
            // On a terminal the progress ends in a summary of its own.
            let summary_on_stdout = bars.is_none() || !std::io::stdout().is_terminal();
            let options = SyncOptions {
                full: args.full,
                batch_size: args.batch_size as usize,
                prune: args.prune,
                overlap: args.overlap,
                progress: bars.map(|bars| {
                    Arc::new(TerminalProgress::new(bars)) as Arc<dyn crate::progress::Progress>
                }),
                retry: args.retry.policy(),
            };
            let mut summaries = Vec::new();
            for mapping in selected {
                match mapping.sync(&source, &target, &options) {
                    Ok(summary) => {
                        if !args.json && summary_on_stdout {
                            print_summary(&summary);
                        }
                        summaries.push(summary);
                    }
                    Err(error) => {
                        if args.json {
                            print_json(&serde_json::json!({
                                "version": JSON_VERSION,
                                "ok": false,
                                "mappings": summaries,
                                "error": {
                                    "mapping": mapping.spec.name,
                                    "kind": error_kind(&error),
                                    "message": error.to_string(),
                                },
                            }));
                        }
                        return Err(error);
                    }
                }
            }
            if args.json {
                print_json(&serde_json::json!({
                    "version": JSON_VERSION,
                    "ok": true,
                    "mappings": summaries,
                    "error": null,
                }));
            }
            Ok(())
        }
        Command::Status(args) => {
            let target = cli.target.ok_or_else(no_target)?;
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
                print_json(&serde_json::json!({ "version": JSON_VERSION, "mappings": rows }));
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
                    .map(|mapping| list_json(mapping.spec))
                    .collect();
                print_json(&serde_json::json!({ "version": JSON_VERSION, "mappings": mappings }));
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
        Command::Explain(args) => {
            let selected = select(catalogue, &args.mappings)?;
            if args.json {
                let mappings: Vec<_> = selected
                    .iter()
                    .map(|mapping| explain_json(mapping.spec))
                    .collect();
                print_json(&serde_json::json!({ "version": JSON_VERSION, "mappings": mappings }));
            } else {
                let texts: Vec<String> = selected
                    .iter()
                    .map(|mapping| explain_text(mapping.spec))
                    .collect();
                print!("{}", texts.join("\n"));
            }
            Ok(())
        }
    }
}

fn no_target() -> Error {
    Error::Config {
        message: "no target: pass --target PATH or set DATA_SYNC_TARGET".to_owned(),
    }
}

/// A stable, lowercase name for each kind of error, for the `error.kind` of
/// `sync --json` (documented in `docs/cli.md`).
fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::Config { .. } => "config",
        Error::Connect { .. } => "connect",
        Error::Source { .. } => "source",
        Error::SourceStream { .. } => "source_stream",
        Error::ColumnType { .. } => "column_type",
        Error::Decode { .. } => "decode",
        Error::Encode { .. } => "encode",
        Error::Target { .. } => "target",
        Error::Write { .. } => "write",
        Error::SchemaMismatch { .. } => "schema_mismatch",
        Error::Drift { .. } => "drift",
        Error::UnknownMapping { .. } => "unknown_mapping",
        Error::Io { .. } => "io",
        Error::MappingChanged { .. } => "mapping_changed",
        Error::NullCursor { .. } => "null_cursor",
        Error::Incremental { .. } => "incremental",
        Error::ConcurrentRun { .. } => "concurrent_run",
        Error::ReaderPanicked { .. } => "reader_panicked",
        Error::Interrupted { .. } => "interrupted",
        Error::Differs { .. } => "differs",
    }
}

/// One mapping of `list --json`.
fn list_json(spec: &MappingSpec) -> serde_json::Value {
    let source = &spec.source;
    let column = |index: usize| source.columns[index].name;
    serde_json::json!({
        "name": spec.name,
        "struct": spec.struct_name,
        "source": source.display_name(),
        "key": source.key.iter().map(|&index| column(index)).collect::<Vec<_>>(),
        "cursor": source.cursor.map(column),
        "soft_delete": source.soft_delete.map(column),
        "targets": spec.targets.iter().map(|target| target.name).collect::<Vec<_>>(),
    })
}

/// The statement a full sync streams the source with.
fn copy_statement(spec: &MappingSpec) -> String {
    crate::source::copy_out_sql(spec.source.select)
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
    serde_json::json!({
        "mapping": spec.name,
        "source": spec.source.display_name(),
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
        })).collect::<Vec<_>>(),
        "fingerprint": spec.fingerprint,
    })
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
        statement(
            &format!("SQLite `{}`: the table", target.name),
            target.create,
        );
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
