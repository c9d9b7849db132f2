//! Running a mapping from a program of your own, without the `data-sync` command line.
//!
//! The mapping is declared right here: the `id`, `username` and `email` columns of
//! `public.users` go into one SQLite table, `contact`, with `username` renamed `name`.
//!
//! ```sh
//! DATA_SYNC_SOURCE=postgresql://app@localhost/app cargo run --example library -- contacts.sqlite
//! ```
//!
//! The source comes from `DATA_SYNC_SOURCE` (a libpq URL or key=value string; unset,
//! the `PG*` variables alone), the target file from the first argument (default
//! `contacts.sqlite`). `cargo test --workspace` runs this program against the tests'
//! throwaway PostgreSQL (`tests/it/ux.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use sync_runtime::{Mapping, MappingSpec, SourceConfig, SyncJob};

/// A row of `public.users`, as the `contact` table keeps it.
#[derive(Debug, Mapping)]
#[sync(from = "public.users", key = "id")]
pub struct Contacts {
    /// The key, and the table's primary key.
    #[sync(to = "contact", primary_key)]
    pub id: i64,
    /// Written to the `name` column.
    #[sync(to = "contact", column = "name")]
    pub username: String,
    /// Written as is.
    #[sync(to = "contact")]
    pub email: String,
}

fn main() -> ExitCode {
    let source = std::env::var("DATA_SYNC_SOURCE").unwrap_or_default();
    let target = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("contacts.sqlite"), PathBuf::from);
    match run(&source, target) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(source: &str, target: PathBuf) -> sync_runtime::Result<()> {
    let source = SourceConfig::parse(source)?;
    let job = SyncJob::new(source, target).batch_size(1_000).progress(
        |mapping: &'static MappingSpec, rows: u64| {
            eprintln!("{}: {rows} rows so far", mapping.name);
        },
    );
    let summary = job.run::<Contacts>()?;
    for target in &summary.targets {
        println!(
            "{}: {} rows read, {} written to `{}` in {:.2} s",
            summary.mapping, summary.rows_read, target.rows, target.table, summary.seconds
        );
    }
    Ok(())
}
