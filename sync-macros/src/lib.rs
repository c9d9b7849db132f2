//! The `#[derive(Mapping)]` macro of data-sync.
//!
//! This crate is a shim, as `sqlx-macros` is: the model, the checks and the expansion
//! live in `sync-macros-core`, a plain library that `xtask` shares. Use the derive
//! through `sync_runtime::Mapping`; its attributes are documented there.

use proc_macro::TokenStream;

/// Derives `sync_runtime::Mapping` for a struct annotated with `#[sync(...)]`.
#[proc_macro_derive(Mapping, attributes(sync))]
pub fn derive_mapping(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    sync_macros_core::derive_mapping(&input).into()
}
