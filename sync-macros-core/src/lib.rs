//! The mapping model behind data-sync's two front-ends.
//!
//! Entry points: [`derive_mapping`] (the body of `#[derive(Mapping)]`),
//! [`Mapping::from_attrs`] and `yaml::from_yaml` (the front-ends), [`check::check`]
//! (every semantic rule), [`expand::expand`] (tokens) and `emit` (annotated Rust for
//! `cargo xtask gen`). The pipeline is parse -> check -> expand over one [`Mapping`].
//!
//! The derive reads the source table's schema snapshot ([`snapshot`]) when there is
//! one: `$CARGO_MANIFEST_DIR/schema/<schema>.<table>.json`, or the directory that
//! `#[sync(snapshot = "dir")]` names relative to the struct's file.

extern crate proc_macro;

pub mod attr;
pub mod check;
pub mod ctxt;
pub mod emit;
pub mod expand;
pub mod fallback;
pub mod ident;
pub mod model;
pub mod snapshot;
pub mod sql;
pub mod symbol;
pub mod types;
pub mod yaml;

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::model::{Origin, Source};
use crate::snapshot::Snapshot;

pub use crate::ctxt::{Ctxt, Diagnostic};
pub use crate::model::Mapping;

/// `#[derive(Mapping)]`: parse, check, then expand, or the errors and a stub.
pub fn derive_mapping(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let mut mapping = Mapping::from_attrs(&cx, input);
    // Semantic rules run only on a mapping whose attributes parsed: a misspelt key
    // would otherwise come back as a cascade of follow-on errors.
    if let Some(mapping) = mapping.as_mut().filter(|_| !cx.has_errors()) {
        mapping.snapshot = find_snapshot(&cx, &mapping.source);
        if !cx.has_errors() {
            check::check(&cx, mapping);
        }
    }
    match (cx.check(), mapping) {
        (Ok(()), Some(mut mapping)) => {
            declare_snapshot_types(&mut mapping);
            expand::expand(&mapping)
        }
        (Err(diagnostics), _) => fallback::expand(input, diagnostics),
        (Ok(()), None) => unreachable!("a front-end that returns no mapping records an error"),
    }
}

/// The schema snapshot of `source`: in the directory `#[sync(snapshot = "dir")]`
/// names (relative to the file holding the struct, as `include_str!` paths are), or
/// else in `$CARGO_MANIFEST_DIR/schema/`. A missing file is an error only where the
/// attribute asked for it; a file that does not parse always is.
fn find_snapshot(cx: &Ctxt, source: &Source) -> Option<Snapshot> {
    let file_name = snapshot::file_name(
        source.schema.as_ref().map(|schema| schema.value.as_str()),
        &source.table.value,
    );
    let (directory, shown, origin) = match &source.snapshot {
        Some(written) => {
            let base = source_file_of(&written.origin)
                .and_then(|file| file.parent().map(Path::to_path_buf))
                .or_else(manifest_dir)?;
            (
                base.join(&written.value),
                format!("{}/{file_name}", written.value.trim_end_matches('/')),
                Some(&written.origin),
            )
        }
        None => (
            manifest_dir()?.join(snapshot::DIRECTORY),
            format!("{}/{file_name}", snapshot::DIRECTORY),
            None,
        ),
    };
    let path = directory.join(&file_name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            if let Some(origin) = origin {
                cx.error(
                    origin,
                    format!(
                        "cannot read schema snapshot `{shown}`: {error}; run `cargo xtask schema` or fix the path"
                    ),
                );
            }
            return None;
        }
    };
    match snapshot::from_json(&text) {
        Ok(table) => Some(Snapshot {
            file: shown,
            tracked_path: std::fs::canonicalize(&path)
                .ok()
                .and_then(|path| path.to_str().map(str::to_owned)),
            table,
        }),
        Err(error) => {
            cx.error(
                origin.unwrap_or(&source.origin),
                format!("schema snapshot `{shown}` is unreadable: {error}"),
            );
            None
        }
    }
}

/// The directory of the crate being compiled.
fn manifest_dir() -> Option<PathBuf> {
    std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from)
}

/// The file a span of the derive's input is in; `None` outside a procedural macro
/// (unit tests, `xtask`).
fn source_file_of(origin: &Origin) -> Option<PathBuf> {
    match origin {
        Origin::Span(span) if proc_macro::is_available() => span.unwrap().local_file(),
        _ => None,
    }
}

/// Gives every field without `type` whose column the snapshot has the snapshot's
/// type, so that the SQL and the run-time description use the column's real type.
/// Runs on a checked mapping: `check_snapshot_types` accepted these types.
fn declare_snapshot_types(mapping: &mut Mapping) {
    let Some(snapshot) = &mapping.snapshot else {
        return;
    };
    for field in &mut mapping.fields {
        if field.pg_type.is_some() {
            continue;
        }
        if let Some(declared) = snapshot
            .table
            .column(&field.column.value)
            .and_then(snapshot::Column::declared_type)
        {
            field.pg_type = Some(model::Name::new(declared, field.rust_type.origin.clone()));
        }
    }
}
