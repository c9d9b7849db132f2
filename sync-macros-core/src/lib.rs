//! The mapping model behind data-sync's two front-ends.
//!
//! Entry points: [`derive_mapping`] (the body of `#[derive(Mapping)]`),
//! [`Mapping::from_attrs`] and `yaml::from_yaml` (the front-ends), [`check::check`]
//! (every semantic rule), [`expand::expand`] (tokens) and `emit` (annotated Rust for
//! `cargo xtask gen`). The pipeline is parse -> check -> expand over one [`Mapping`].

pub mod attr;
pub mod check;
pub mod ctxt;
pub mod emit;
pub mod expand;
pub mod fallback;
pub mod ident;
pub mod model;
pub mod sql;
pub mod symbol;
pub mod types;
pub mod yaml;

use proc_macro2::TokenStream;
use syn::DeriveInput;

pub use crate::ctxt::{Ctxt, Diagnostic};
pub use crate::model::Mapping;

/// `#[derive(Mapping)]`: parse, check, then expand, or the errors and a stub.
pub fn derive_mapping(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let mapping = Mapping::from_attrs(&cx, input);
    // Semantic rules run only on a mapping whose attributes parsed: a misspelt key
    // would otherwise come back as a cascade of follow-on errors.
    if let Some(mapping) = mapping.as_ref().filter(|_| !cx.has_errors()) {
        check::check(&cx, mapping);
    }
    match (cx.check(), mapping) {
        (Ok(()), Some(mapping)) => expand::expand(&mapping),
        (Err(diagnostics), _) => fallback::expand(input, diagnostics),
        (Ok(()), None) => unreachable!("a front-end that returns no mapping records an error"),
    }
}
