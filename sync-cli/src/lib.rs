//! The `data-sync` command line over a catalogue of compiled-in mappings: argument
//! parsing, one module per command, the output (text, or one JSON envelope with
//! `--json`), terminal progress, logging and signal handling. The engine is
//! `sync-runtime`; this crate only calls it and renders what it returns.
//!
//! Every command that prints results takes `--json`; the schemas are documented in
//! `docs/cli.md` and carry `"version": 1`.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod args;
mod command;
mod error;
mod lock;
mod log;
mod metrics;
mod output;
mod progress;
mod signal;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{MultiProgress, ProgressDrawTarget};
use sync_runtime::{Registered, Selection};

use crate::args::SourceArgs;
pub use crate::error::{Error, Result};
use crate::log::LogFormat;

/// The first line of `data-sync --help`: what the product is.
const ABOUT: &str = "data-sync: sync PostgreSQL tables into SQLite tables, declared once and checked by the compiler";

/// The heading of the options every command takes, apart from each command's own.
pub(crate) const GLOBAL: &str = "Global options";

/// Sync PostgreSQL tables into SQLite tables, as the compiled-in mappings declare.
#[derive(Debug, Parser)]
#[command(
    name = "data-sync",
    version,
    about = ABOUT,
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
        value_name = "URL",
        help_heading = GLOBAL
    )]
    source: Option<String>,

    /// The target SQLite file, created if missing. Example: --target app.sqlite
    #[arg(
        long,
        env = "DATA_SYNC_TARGET",
        hide_env_values = true,
        global = true,
        value_name = "PATH",
        help_heading = GLOBAL
    )]
    target: Option<PathBuf>,

    /// Log more: -v logs each run (info), -vv debug, -vvv trace. Wins over RUST_LOG.
    /// Example: -v
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet", help_heading = GLOBAL)]
    verbose: u8,

    /// No progress bar and only errors in the log; results still go to stdout.
    /// Example: -q
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    quiet: bool,

    /// How log lines on stderr are written: text, or one JSON object per line for
    /// schedulers and log collectors. Example: --log-format json -v
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, value_name = "FORMAT", help_heading = GLOBAL)]
    log_format: LogFormat,

    #[command(flatten)]
    source_args: SourceArgs,

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
    Sync(command::sync::SyncArgs),
    /// Apply the changes of mappings with `capture: log` as they commit (a first copy
    /// if the target has none), until SIGINT or SIGTERM; then exit 0 with the
    /// position of the last applied transaction recorded.
    #[command(after_help = "Examples:
  data-sync follow --target app.sqlite                    # every capture mapping
  data-sync follow --mapping orders_log --target app.sqlite")]
    Follow(command::follow::FollowArgs),
    /// Drop the replication slot of capture mappings for the target file (and the
    /// publication data-sync created), so an abandoned target holds no WAL on the
    /// source; the next sync copies the table again.
    #[command(after_help = "Examples:
  data-sync drop-slot --mapping orders_log --target app.sqlite")]
    DropSlot(command::drop_slot::DropSlotArgs),
    /// Show, per mapping, the last run recorded in the target file: mode, rows,
    /// watermark and outcome.
    #[command(after_help = "Examples:
  data-sync status --target app.sqlite
  data-sync status --target app.sqlite --json")]
    Status(command::status::StatusArgs),
    /// List the compiled-in mappings, their sources and targets.
    #[command(after_help = "Examples:
  data-sync list
  data-sync list --json")]
    List(command::list::ListArgs),
    /// Compare mappings with the live source table and target file; exit non-zero
    /// listing every difference.
    #[command(after_help = "Examples:
  data-sync check --target app.sqlite
  data-sync check --mapping users --target app.sqlite --json")]
    Check(command::check::CheckArgs),
    /// Print the SQL a mapping runs: the source SELECT (full and incremental), and
    /// per target the DDL and the INSERT, UPSERT and DELETE statements. Needs no
    /// database.
    #[command(after_help = "Examples:
  data-sync explain --mapping users
  data-sync explain --mapping users --json")]
    Explain(command::explain::ExplainArgs),
    /// Compare the targets with the source: row counts and a checksum per target
    /// table, and the keys that differ; exit non-zero on any difference, or with
    /// --repair copy just the differing rows from the source.
    #[command(after_help = "Examples:
  data-sync verify --target app.sqlite
  data-sync verify --mapping users --target app.sqlite --json
  data-sync verify --mapping users --target app.sqlite --repair   # copy just the differing rows")]
    Verify(command::verify::VerifyArgs),
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
///     sync_cli::main(mappings::CATALOGUE)
/// }
/// ```
pub fn main(catalogue: &[Registered]) -> ExitCode {
    main_with_signals(catalogue, std::env::args_os())
}

/// [`main`] with the arguments given (the first is the program name): the process's
/// command line over another catalogue, such as the test mappings the integration
/// tests and `cargo xtask bench` run. Handles SIGINT and SIGTERM as `main` does.
pub fn main_with_signals<I, T>(catalogue: &[Registered], args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // SIGINT and SIGTERM stop a run cleanly (see `signal`); without the handlers
    // they would kill it, which is also safe, only less tidy.
    if let Err(error) = signal::install() {
        eprintln!("warning: cannot handle SIGINT and SIGTERM: {error}");
    }
    main_from(catalogue, args)
}

/// [`main`] with the arguments given (the first is the program name), for programs
/// and tests that run the command line in-process.
///
/// # Examples
///
/// ```
/// let code = sync_cli::main_from(&[], ["data-sync", "list"]);
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
    // `--metrics` is for the runs that go on: `sync --every`, and `follow`.
    let matches = Cli::command()
        .version(version)
        .mut_subcommand("sync", |sync| {
            sync.mut_arg("metrics", |metrics| metrics.requires("every"))
        })
        .get_matches_from(args);
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
    log::init(cli.verbose, cli.quiet, cli.log_format, bars.clone());
    match run(cli, catalogue, show_progress.then_some(bars)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of the output went away (`data-sync explain | head`): nothing
        // more to say, as Unix tools end.
        Err(Error::Stdout(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            signal::exit_code(&error)
        }
    }
}

fn run(cli: Cli, catalogue: &[Registered], bars: Option<MultiProgress>) -> Result<()> {
    // An error before a command starts its work still gets the `--json` document.
    let json = cli.command.json();
    let early = |error: Error| output::early_error(json, error);
    let source = || {
        cli.source_args
            .source_config(cli.source.as_deref())
            .map_err(|error| early(error.into()))
    };
    let target = || cli.target.as_deref().ok_or_else(|| early(Error::NoTarget));
    let select = |names: &[String]| select(catalogue, names).map_err(early);
    // References between mappings are checked when the catalogue is registered:
    // YAML mappings by `cargo xtask gen` already, derives only here.
    sync_runtime::check_catalogue(catalogue).map_err(|error| early(error.into()))?;
    match &cli.command {
        Command::Sync(args) => {
            let selected = select(&args.selection.mappings)?;
            let (source, target) = (source()?, target()?);
            // A template (`out/{tenant_id}.sqlite`) names many files: one lock per
            // partitioned mapping and selection stands for them, in its directory.
            let _lock = if lock::is_template(target) {
                let partitioned: Vec<&str> = selected
                    .iter()
                    .filter(|mapping| mapping.spec.source.partition_by.is_some())
                    .map(|mapping| mapping.spec.name)
                    .collect();
                lock::acquire_template(target, &partitioned, &args.partitions.lock_suffix(), "sync")
                    .map_err(early)?
            } else {
                vec![lock::acquire(target, "sync").map_err(early)?]
            };
            let metrics = args.metrics.serve().map_err(early)?;
            command::sync::run(catalogue, &selected, &source, target, args, bars, metrics)
        }
        Command::Follow(args) => {
            let selected = select(&args.selection.mappings)?;
            let (source, target) = (source()?, target()?);
            let _lock = lock::acquire(target, "follow").map_err(early)?;
            let metrics = args.metrics.serve().map_err(early)?;
            command::follow::run(catalogue, &selected, &source, target, args, bars, metrics)
        }
        Command::DropSlot(args) => {
            let selected = select(&args.selection.mappings)?;
            command::drop_slot::run(&selected, &source()?, target()?, args)
        }
        Command::Status(args) => {
            // The source is asked only about replication slots, and only when given.
            let source = if cli.source.is_some() {
                Some(source()?)
            } else {
                None
            };
            command::status::run(catalogue, target()?, source.as_ref(), args).map_err(early)
        }
        Command::List(args) => command::list::run(catalogue, args),
        Command::Check(args) => {
            let selected = select(&args.selection.mappings)?;
            let (source, target) = (source()?, target()?);
            command::check::run(&selected, &source, target, args)
        }
        Command::Explain(args) => {
            let selected = select(&args.selection.mappings)?;
            command::explain::run(&selected, cli.target.as_deref(), args)
        }
        Command::Verify(args) => {
            let selected = select(&args.selection.mappings)?;
            let (source, target) = (source()?, target()?);
            let _lock = if args.repair {
                if lock::is_template(target) || args.partitions.selection() != Selection::All {
                    return Err(early(Error::RepairTemplate {
                        template: target.display().to_string(),
                    }));
                }
                Some(lock::acquire(target, "verify --repair").map_err(early)?)
            } else {
                None
            };
            command::verify::run(&selected, &source, target, args)
        }
    }
}

impl Command {
    /// Whether the command was asked for `--json`.
    fn json(&self) -> bool {
        match self {
            Command::Sync(args) => args.output.json,
            Command::Follow(_) | Command::DropSlot(_) => false,
            Command::Status(args) => args.output.json,
            Command::List(args) => args.output.json,
            Command::Check(args) => args.output.json,
            Command::Explain(args) => args.output.json,
            Command::Verify(args) => args.output.json,
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
