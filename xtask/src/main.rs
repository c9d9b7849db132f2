//! Project tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! - `demo`: the main job end to end on a throwaway PostgreSQL, into `demo.sqlite`.
//! - `new NAME --table TABLE`: a mapping written from a live table.
//! - `gen [--check]`: compile `mappings/*.yaml` into `mappings/src/generated/`.
//! - `schema [--check]`: snapshot the mappings' source tables into `mappings/schema/`.
//! - `bench`: measure full and incremental sync against the ceilings and peers.

mod bench;
mod demo;
mod r#gen;
mod new;
mod schema;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let args: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("bench") => bench::main(&args),
        Some("demo") => demo::run(),
        Some("gen") => r#gen::main(&args),
        Some("schema") => schema::main(&args),
        Some("new") => new::main(&args),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\ntasks:\n  demo            sync a throwaway PostgreSQL users table into demo.sqlite\n  new NAME --table TABLE  write mappings/NAME.yaml from a live table, then gen\n  gen [--check]   compile mappings/*.yaml into mappings/src/generated/\n  schema [--check] snapshot the source tables of the mappings into mappings/schema/ (DATA_SYNC_SOURCE)\n  bench           measure sync speed and memory (see BENCHMARKS.md)"
            );
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
