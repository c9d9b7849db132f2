//! What the derive emits when the mapping has errors: the errors, plus a stub
//! implementation so that no cascade of "trait not implemented" errors follows
//! (thiserror's fallback.rs, clap's dummies).

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use crate::ctxt::Diagnostic;

/// The compile errors of `diagnostics` and a stub `impl ::sync_runtime::Mapping`.
pub fn expand(input: &DeriveInput, diagnostics: Vec<Diagnostic>) -> TokenStream {
    let ident = &input.ident;
    let errors = diagnostics.into_iter().map(|diagnostic| {
        syn::Error::new(diagnostic.origin.span(), diagnostic.message).to_compile_error()
    });
    quote! {
        #(#errors)*
        const _: () = {
            #[automatically_derived]
            impl ::sync_runtime::Mapping for #ident {
                const SPEC: &'static ::sync_runtime::MappingSpec = ::sync_runtime::__private::INVALID_SPEC;

                fn decode(
                    _: &::sync_runtime::__private::SourceRow<'_>,
                ) -> ::core::result::Result<Self, ::sync_runtime::__private::DecodeError> {
                    ::core::unreachable!("a mapping with compile errors never runs")
                }

                fn accepts(_: usize, _: &::sync_runtime::__private::Type) -> bool {
                    false
                }

                fn key(&self) -> ::std::string::String {
                    ::std::string::String::new()
                }

                fn bind(
                    &self,
                    _: usize,
                    _: &mut ::sync_runtime::__private::Statement<'_>,
                ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
                    ::core::unreachable!("a mapping with compile errors never runs")
                }

                fn bind_at<'v>(
                    &self,
                    _: usize,
                    _: &mut impl ::sync_runtime::__private::Bind<'v>,
                    _: usize,
                ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
                    ::core::unreachable!("a mapping with compile errors never runs")
                }

                fn bind_row<'r>(
                    _: &::sync_runtime::__private::SourceRow<'r>,
                    _: usize,
                    _: &mut impl ::sync_runtime::__private::Bind<'r>,
                    _: usize,
                ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
                    ::core::unreachable!("a mapping with compile errors never runs")
                }

                fn bind_key(
                    &self,
                    _: &mut ::sync_runtime::__private::Statement<'_>,
                ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
                    ::core::unreachable!("a mapping with compile errors never runs")
                }

                fn bind_key_row(
                    _: &::sync_runtime::__private::SourceRow<'_>,
                    _: &mut ::sync_runtime::__private::Statement<'_>,
                ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
                    ::core::unreachable!("a mapping with compile errors never runs")
                }

                fn bind_row_field(
                    _: &::sync_runtime::__private::SourceRow<'_>,
                    _: usize,
                    _: &mut ::sync_runtime::__private::Statement<'_>,
                    _: usize,
                    _: usize,
                ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
                    ::core::unreachable!("a mapping with compile errors never runs")
                }
            }
        };
    }
}
