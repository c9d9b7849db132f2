//! The `data-sync` command line over a catalogue of compiled-in mappings.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::run::{Registered, Summary, SyncOptions};
use crate::source::SourceConfig;

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
    /// List the compiled-in mappings, their sources and targets.
    ///
    /// Example: data-sync list
    List(ListArgs),
}

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

    /// Print a JSON summary on stdout.
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
    let cli = Cli::parse();
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
        Command::Sync(args) => {
            let selected = select(catalogue, &args.mappings)?;
            let source = SourceConfig::parse(cli.source.as_deref().unwrap_or(""))?;
            let target = cli.target.ok_or_else(|| Error::Config {
                message: "no target: pass --target PATH or set DATA_SYNC_TARGET".to_owned(),
            })?;
            let options = SyncOptions {
                full: args.full,
                batch_size: args.batch_size as usize,
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

fn print_json(value: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut stdout, value);
    let _ = writeln!(stdout);
}
