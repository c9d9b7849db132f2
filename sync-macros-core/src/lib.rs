//! The mapping model behind data-sync's two front-ends.
//!
//! Entry points: [`derive_mapping`] (the body of `#[derive(Mapping)]`),
//! [`Mapping::from_attrs`] and `yaml::from_yaml` (the front-ends), [`check::check`]
//! (every semantic rule; it returns a [`checked::Checked`] mapping), [`expand::expand`]
//! (tokens) and `emit` (annotated Rust for `cargo xtask gen`), both of which take only
//! a `Checked`. The pipeline is parse -> load the snapshot -> check -> expand over one
//! [`Mapping`].
//!
//! The derive reads the source table's schema snapshot with [`snapshot::load`] (as
//! `cargo xtask gen` does) when there is one:
//! `$CARGO_MANIFEST_DIR/schema/<schema>.<table>.json`, or the directory that
//! `#[sync(snapshot = "dir")]` names relative to the struct's file.
#![forbid(unsafe_code)]

extern crate proc_macro;

pub mod attr;
pub mod check;
pub mod checked;
pub mod ctxt;
#[cfg(feature = "emit")]
pub mod emit;
pub mod expand;
pub mod fallback;
pub mod filter;
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
    let mut checked = None;
    // Semantic rules run only on a mapping whose attributes parsed: a misspelt key
    // would otherwise come back as a cascade of follow-on errors. The schema
    // snapshot is loaded before them, as `cargo xtask gen` does. An attribute that
    // is no attribute (`nullable`), skipped, leaves the rest as written: the rules
    // still run after it.
    if let Some(mut mapping) =
        Mapping::from_attrs(&cx, input).filter(|_| !cx.has_unrecoverable_errors())
    {
        mapping.snapshot = find_snapshot(&cx, &mapping.source);
        if !cx.has_unrecoverable_errors() {
            checked = check::check(&cx, mapping);
        }
    }
    match (cx.check(), checked) {
        (Ok(()), Some(checked)) => expand::expand(&checked),
        (Err(diagnostics), _) => fallback::expand(input, diagnostics),
        (Ok(()), None) => unreachable!("a front-end that returns no mapping records an error"),
    }
}

/// The schema snapshot of `source`: in the directory `#[sync(snapshot = "dir")]`
/// names (relative to the file holding the struct, as `include_str!` paths are), or
/// else in `$CARGO_MANIFEST_DIR/schema/`. A missing file is an error only where the
/// attribute asked for it; a file that does not parse always is.
fn find_snapshot(cx: &Ctxt, source: &Source) -> Option<Snapshot> {
    let directory = match &source.snapshot {
        Some(written) => {
            let base = source_file_of(&written.origin)
                .and_then(|file| file.parent().map(Path::to_path_buf))
                .or_else(manifest_dir)?;
            snapshot::Directory {
                path: base.join(&written.value),
                shown: written.value.clone(),
                named_by: Some(&written.origin),
            }
        }
        None => snapshot::Directory {
            path: manifest_dir()?.join(snapshot::DIRECTORY),
            shown: snapshot::DIRECTORY.to_owned(),
            named_by: None,
        },
    };
    snapshot::load(cx, source, &directory)
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
