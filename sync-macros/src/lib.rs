//! The `#[derive(Mapping)]` macro of data-sync.
//!
//! This crate is a shim, as `sqlx-macros` is: the model, the checks and the expansion
//! live in `sync-macros-core`, a plain library that `xtask` shares. Use the derive
//! through `sync_runtime::Mapping`; its attributes are documented there.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

/// Derives `sync_runtime::Mapping` for a struct annotated with `#[sync(...)]`.
///
/// Every attribute is described in `docs/mapping.md`; mistakes are compile errors
/// pointing at the attribute.
///
/// # Examples
///
/// Used through `sync_runtime`, whose documentation of `Mapping` compiles and runs
/// this example (this crate cannot depend on the runtime it serves):
///
/// ```ignore
/// use sync_runtime::Mapping;
///
/// #[derive(Mapping)]
/// #[sync(from = "public.users", key = "id")]
/// pub struct Users {
///     #[sync(to = "user_main", primary_key)]
///     #[sync(to = "user_profile", primary_key, references = "user_main.id")]
///     pub id: i64,
///     #[sync(to = "user_main")]
///     pub username: String,
///     #[sync(to = "user_profile")]
///     pub bio: Option<String>,
/// }
/// ```
#[proc_macro_derive(Mapping, attributes(sync))]
pub fn derive_mapping(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    sync_macros_core::derive_mapping(&input).into()
}
