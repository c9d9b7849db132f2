//! A checked mapping to tokens: `impl ::sync_runtime::Mapping` with the static
//! description of the mapping (its SQL text included) and the decode and bind code.
//! Takes only mappings that passed `check`, and reports no user errors.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};

use crate::checked::Checked;
use crate::filter::{Operand, Predicate, SlotValue};
use crate::model::Column;
use crate::sql;

/// `const _: () = { impl ::sync_runtime::Mapping for .. };`
pub fn expand(mapping: &Checked) -> TokenStream {
    let ident = format_ident!(
        "{}",
        raw_free(&mapping.ident.value),
        span = mapping.ident.origin.span()
    );
    let spec = expand_spec(mapping);
    let decode = expand_decode(mapping);
    let accepts = expand_accepts(mapping);
    let key = expand_key(mapping);
    let bind = expand_bind(mapping);
    let bind_key = expand_bind_key(mapping);
    let snapshot = expand_snapshot(mapping);
    quote! {
        const _: () = {
            #snapshot

            #[automatically_derived]
            impl ::sync_runtime::Mapping for #ident {
                const SPEC: &'static ::sync_runtime::MappingSpec = &#spec;

                #decode

                #accepts

                #bind

                #key

                #bind_key
            }
        };
    }
}

/// `include_str!` of the schema snapshot the mapping was checked against, so that
/// cargo rebuilds the crate when the snapshot changes.
fn expand_snapshot(mapping: &Checked) -> TokenStream {
    match mapping
        .snapshot
        .as_ref()
        .and_then(|snapshot| snapshot.tracked_path.as_deref())
    {
        Some(path) => quote!(
            const _: &str = ::core::include_str!(#path);
        ),
        None => TokenStream::new(),
    }
}

fn expand_spec(mapping: &Checked) -> TokenStream {
    let name = &mapping.name.value;
    let struct_name = &mapping.ident.value;
    let source = &mapping.source;
    let schema = option_str(source.schema.as_ref().map(|name| name.value.as_str()));
    let table = &source.table.value;
    let select = sql::select(mapping);
    let key = mapping.key_fields();
    let cursor = option_usize(mapping.cursor_field());
    let soft_delete = option_usize(mapping.soft_delete_field());
    let partition_by = option_usize(
        source
            .partition_by
            .as_ref()
            .and_then(|column| mapping.field_index_by_column(&column.value)),
    );
    let columns = mapping.typed_fields().map(|(field, types)| {
        let column = &field.column.value;
        let field_name = &field.ident.value;
        let declared = &types.declared;
        let rust_type = &field.rust_type.value;
        let nullable = field.is_nullable();
        quote! {
            ::sync_runtime::SourceColumn {
                name: #column,
                field: #field_name,
                pg_type: #declared,
                rust_type: #rust_type,
                nullable: #nullable,
            }
        }
    });
    let targets = mapping.write_order().iter().map(|&index| {
        let target = mapping.target_at(index);
        let target_name = &target.name.value;
        let create = sql::create_table(mapping, index);
        let strict = mapping.strict;
        let insert = sql::insert(target);
        let upsert = sql::upsert(mapping, index);
        let delete_all = sql::delete_all(target);
        let delete_by_key = sql::delete_by_key(mapping, index);
        let target_columns = mapping.columns(index).map(|(column, field_index)| {
            let column_name = &column.name.value;
            let field = &mapping.fields[field_index];
            let sqlite_type = mapping.field_type(field_index).sqlite_type.as_sql();
            let not_null = !field.is_nullable();
            let primary_key = column.primary_key;
            let references = match &column.references {
                Some(reference) => {
                    let parent = &reference.table.value;
                    let parent_column = &reference.column.value;
                    quote!(::core::option::Option::Some(::sync_runtime::ForeignKey {
                        table: #parent,
                        column: #parent_column,
                    }))
                }
                None => quote!(::core::option::Option::None),
            };
            let transform = match &column.with {
                Some(with) => {
                    let path = &with.value;
                    quote!(::core::option::Option::Some(#path))
                }
                None => quote!(::core::option::Option::None),
            };
            quote! {
                ::sync_runtime::TargetColumn {
                    name: #column_name,
                    sqlite_type: #sqlite_type,
                    not_null: #not_null,
                    primary_key: #primary_key,
                    references: #references,
                    field: ::core::option::Option::Some(#field_index),
                    computed: ::core::option::Option::None,
                    transform: #transform,
                }
            }
        });
        let computed_columns = mapping.computed(index).map(|(computed, types)| {
            let column_name = &computed.name.value;
            let sqlite_type = types.sqlite_type.as_sql();
            let not_null = !computed.nullable;
            let with = &computed.with.value;
            quote! {
                ::sync_runtime::TargetColumn {
                    name: #column_name,
                    sqlite_type: #sqlite_type,
                    not_null: #not_null,
                    primary_key: false,
                    references: ::core::option::Option::None,
                    field: ::core::option::Option::None,
                    computed: ::core::option::Option::Some(#with),
                    transform: ::core::option::Option::None,
                }
            }
        });
        quote! {
            ::sync_runtime::TargetSpec {
                name: #target_name,
                columns: &[#(#target_columns,)* #(#computed_columns),*],
                create: #create,
                strict: #strict,
                insert: #insert,
                upsert: #upsert,
                delete_all: #delete_all,
                delete_by_key: #delete_by_key,
            }
        }
    });
    let fingerprint = sql::fingerprint(mapping);
    let incremental = expand_incremental(mapping);
    let capture = match &mapping.source.capture {
        None => quote!(::core::option::Option::None),
        Some(_) => {
            let publication = option_str(
                mapping
                    .source
                    .publication
                    .as_ref()
                    .map(|name| name.value.as_str()),
            );
            quote! {
                ::core::option::Option::Some(::sync_runtime::CaptureSpec {
                    publication: #publication,
                })
            }
        }
    };
    let filter = expand_filter(mapping);
    quote! {
        ::sync_runtime::MappingSpec {
            name: #name,
            struct_name: #struct_name,
            source: ::sync_runtime::SourceSpec {
                schema: #schema,
                table: #table,
                columns: &[#(#columns),*],
                key: &[#(#key),*],
                cursor: #cursor,
                soft_delete: #soft_delete,
                partition_by: #partition_by,
                select: #select,
                incremental: #incremental,
                capture: #capture,
                filter: #filter,
            },
            targets: &[#(#targets),*],
            fingerprint: #fingerprint,
        }
    }
}

fn expand_decode(mapping: &Checked) -> TokenStream {
    let ident = format_ident!(
        "{}",
        raw_free(&mapping.ident.value),
        span = mapping.ident.origin.span()
    );
    let fields = mapping
        .typed_fields()
        .enumerate()
        .map(|(index, (field, types))| {
            let name = field_ident(&field.ident.value, field.ident.origin.span());
            let span = field.rust_type.origin.span();
            let ty = respan(types.rust_type.to_token_stream(), span);
            let get = quote_spanned!(span=> row.get::<#ty>(#index)?);
            quote!(#name: #get)
        });
    let assert_values = expand_assert_values(mapping);
    quote! {
        fn decode(
            row: &::sync_runtime::__private::SourceRow<'_>,
        ) -> ::core::result::Result<Self, ::sync_runtime::__private::DecodeError> {
            #assert_values
            ::core::result::Result::Ok(#ident { #(#fields),* })
        }
    }
}

fn expand_accepts(mapping: &Checked) -> TokenStream {
    let arms = mapping
        .typed_fields()
        .enumerate()
        .map(|(index, (field, types))| {
            let span = field.rust_type.origin.span();
            let ty = respan(types.rust_type.to_token_stream(), span);
            quote_spanned!(span=> #index => <#ty as ::sync_runtime::value::Decode>::accepts(ty),)
        });
    let assert_values = expand_assert_values(mapping);
    quote! {
        fn accepts(field: usize, ty: &::sync_runtime::__private::Type) -> bool {
            #assert_values
            match field {
                #(#arms)*
                _ => false,
            }
        }
    }
}

fn expand_key(mapping: &Checked) -> TokenStream {
    let values = mapping.key_fields().iter().map(|&index| {
        let field = &mapping.fields[index];
        let name = field_ident(&field.ident.value, field.ident.origin.span());
        let span = field.rust_type.origin.span();
        let ty = respan(mapping.field_type(index).rust_type.to_token_stream(), span);
        quote_spanned! {span=>
            {
                let value: &#ty = &self.#name;
                value as &dyn ::sync_runtime::value::Encode
            }
        }
    });
    let assert_values = expand_assert_values(mapping);
    quote! {
        fn key(&self) -> ::std::string::String {
            #assert_values
            ::sync_runtime::__private::display_key(&[#(#values),*])
        }
    }
}

/// `bind` and `bind_at` (from the fields), `check` and `bind_row` (from a raw row
/// of the source, without building the struct).
fn expand_bind(mapping: &Checked) -> TokenStream {
    let order = mapping.write_order();
    let from_fields = order.iter().enumerate().map(|(position, &index)| {
        let binds = mapping.columns(index).enumerate().map(|(column_index, (column, field_index))| {
            let field = &mapping.fields[field_index];
            let name = field_ident(&field.ident.value, field.ident.origin.span());
            let span = field.rust_type.origin.span();
            let parameter = column_index + 1;
            match mapping.transform(index, column_index) {
                Some(path) => expand_transformed(
                    mapping,
                    column,
                    field_index,
                    path,
                    quote!(&self.#name),
                    parameter,
                    column_index,
                ),
                None => {
                    let ty = respan(mapping.field_type(field_index).rust_type.to_token_stream(), span);
                    quote_spanned! {span=>
                        {
                            let value: &#ty = &self.#name;
                            ::sync_runtime::__private::bind::<#ty>(statement, first + #parameter, #column_index, value)?;
                        }
                    }
                }
            }
        });
        let fed = mapping.target_at(index).columns.len();
        let computed = mapping
            .computed(index)
            .enumerate()
            .map(|(offset, (computed, types))| {
                let span = computed.with.origin.span();
                let function = respan(types.function.to_token_stream(), span);
                let ty = respan(types.rust_type.to_token_stream(), span);
                let column_index = fed + offset;
                let parameter = column_index + 1;
                quote_spanned! {span=>
                    ::sync_runtime::__private::bind_computed::<#ty, _>(
                        statement,
                        first + #parameter,
                        #column_index,
                        #function(self),
                    )?;
                }
            });
        quote! {
            #position => {
                #(#binds)*
                #(#computed)*
            }
        }
    });
    let from_row = order.iter().enumerate().map(|(position, &index)| {
        let binds =
            mapping
                .columns(index)
                .enumerate()
                .map(|(column_index, (column, field_index))| {
                    let field = &mapping.fields[field_index];
                    let span = field.rust_type.origin.span();
                    let ty = respan(
                        mapping.field_type(field_index).rust_type.to_token_stream(),
                        span,
                    );
                    let parameter = column_index + 1;
                    // Only a transformed field is decoded; the others bind raw bytes.
                    if let Some(path) = mapping.transform(index, column_index) {
                        let value = quote_spanned!(span=> &row.get::<#ty>(#field_index)?);
                        return expand_transformed(
                            mapping,
                            column,
                            field_index,
                            path,
                            value,
                            parameter,
                            column_index,
                        );
                    }
                    quote_spanned! {span=>
                        ::sync_runtime::__private::bind_raw::<#ty>(
                            statement,
                            first + #parameter,
                            #column_index,
                            row,
                            #field_index,
                        )?;
                    }
                });
        quote! {
            #position => {
                #(#binds)*
            }
        }
    });
    let field_binds = mapping
        .typed_fields()
        .enumerate()
        .map(|(index, (field, types))| {
            let span = field.rust_type.origin.span();
            let ty = respan(types.rust_type.to_token_stream(), span);
            quote_spanned! {span=>
                #index => {
                    row.check::<#ty>(#index)?;
                    ::sync_runtime::__private::bind_raw::<#ty>(statement, parameter, column, row, #index)
                }
            }
        });
    let checks = mapping
        .typed_fields()
        .enumerate()
        .map(|(index, (field, types))| {
            let span = field.rust_type.origin.span();
            let ty = respan(types.rust_type.to_token_stream(), span);
            quote_spanned!(span=> row.check::<#ty>(#index)?;)
        });
    // A computed column takes the whole row, so a mapping with one decodes it; the
    // others bind the raw bytes.
    let bind_row_body = if mapping.has_computed() {
        quote! {
            let value = <Self as ::sync_runtime::Mapping>::decode(row)?;
            value.bind_at(target, statement, first)
        }
    } else {
        quote! {
            match target {
                #(#from_row)*
                _ => ::core::panic!("no target {} in mapping", target),
            }
            ::core::result::Result::Ok(())
        }
    };
    let assert_values = expand_assert_values(mapping);
    quote! {
        fn bind(
            &self,
            target: usize,
            statement: &mut ::sync_runtime::__private::Statement<'_>,
        ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
            self.bind_at(target, statement, 0)
        }

        fn bind_at<'v>(
            &self,
            target: usize,
            statement: &mut impl ::sync_runtime::__private::Bind<'v>,
            first: usize,
        ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
            #assert_values
            match target {
                #(#from_fields)*
                _ => ::core::panic!("no target {} in mapping", target),
            }
            ::core::result::Result::Ok(())
        }

        fn check(
            row: &::sync_runtime::__private::SourceRow<'_>,
        ) -> ::core::result::Result<(), ::sync_runtime::__private::DecodeError> {
            #assert_values
            #(#checks)*
            ::core::result::Result::Ok(())
        }

        fn bind_row<'r>(
            row: &::sync_runtime::__private::SourceRow<'r>,
            target: usize,
            statement: &mut impl ::sync_runtime::__private::Bind<'r>,
            first: usize,
        ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
            #assert_values
            #bind_row_body
        }

        fn bind_row_field(
            row: &::sync_runtime::__private::SourceRow<'_>,
            field: usize,
            statement: &mut ::sync_runtime::__private::Statement<'_>,
            parameter: usize,
            column: usize,
        ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
            #assert_values
            match field {
                #(#field_binds)*
                _ => ::core::panic!("no field {} in mapping", field),
            }
        }
    }
}

/// Binds `value` (a `&T` of field `field_index`) through transform `path`, whose
/// call and return type rustc checks at the `with` the user wrote.
fn expand_transformed(
    mapping: &Checked,
    column: &Column,
    field_index: usize,
    path: &syn::Path,
    value: TokenStream,
    parameter: usize,
    column_index: usize,
) -> TokenStream {
    let with = column.with.as_ref().map_or(&column.name, |with| with);
    let span = with.origin.span();
    let path_text = &with.value;
    let function = respan(path.to_token_stream(), span);
    let ty = respan(
        mapping.field_type(field_index).rust_type.to_token_stream(),
        span,
    );
    let field_span = mapping.fields[field_index].rust_type.origin.span();
    let field_ty = respan(
        mapping.field_type(field_index).rust_type.to_token_stream(),
        field_span,
    );
    quote_spanned! {span=>
        {
            let value: &#field_ty = #value;
            ::sync_runtime::__private::bind_transformed::<#ty, _>(
                statement,
                first + #parameter,
                #column_index,
                #path_text,
                #function(value),
            )?;
        }
    }
}

/// `Some(FilterSpec { .. })` for a mapping with a filter.
fn expand_filter(mapping: &Checked) -> TokenStream {
    let (Some(filter), Some(condition)) = (mapping.filter(), sql::filter_condition(mapping)) else {
        return quote!(::core::option::Option::None);
    };
    let text = &filter.text;
    let slots = filter.slots.iter().enumerate().map(|(index, slot)| {
        let setting = sql::filter_setting(index);
        let value = match &slot.value {
            SlotValue::Literal(text) => quote!(::sync_runtime::SlotValue::Literal(#text)),
            SlotValue::Parameter(name) => quote!(::sync_runtime::SlotValue::Parameter(#name)),
        };
        let ty = format_ident!("{}", slot.ty.variant());
        let field = slot.field;
        quote! {
            ::sync_runtime::FilterSlot {
                setting: #setting,
                value: #value,
                ty: ::sync_runtime::FilterType::#ty,
                field: #field,
            }
        }
    });
    let predicate = expand_predicate(&filter.predicate);
    quote! {
        ::core::option::Option::Some(::sync_runtime::FilterSpec {
            text: #text,
            condition: #condition,
            slots: &[#(#slots),*],
            predicate: &#predicate,
        })
    }
}

fn expand_predicate(predicate: &Predicate) -> TokenStream {
    match predicate {
        Predicate::And(left, right) | Predicate::Or(left, right) => {
            let variant = format_ident!(
                "{}",
                if matches!(predicate, Predicate::And(..)) {
                    "And"
                } else {
                    "Or"
                }
            );
            let (left, right) = (expand_predicate(left), expand_predicate(right));
            quote!(::sync_runtime::Predicate::#variant(&#left, &#right))
        }
        Predicate::Not(inner) => {
            let inner = expand_predicate(inner);
            quote!(::sync_runtime::Predicate::Not(&#inner))
        }
        Predicate::Compare { left, op, right } => {
            let (left, right) = (expand_operand(*left), expand_operand(*right));
            let op = format_ident!("{}", op.variant());
            quote!(::sync_runtime::Predicate::Compare {
                left: #left,
                op: ::sync_runtime::CompareOp::#op,
                right: #right,
            })
        }
        Predicate::In {
            operand,
            list,
            negated,
        } => {
            let operand = expand_operand(*operand);
            let list = list.iter().map(|item| expand_operand(*item));
            quote!(::sync_runtime::Predicate::In {
                operand: #operand,
                list: &[#(#list),*],
                negated: #negated,
            })
        }
        Predicate::Between {
            operand,
            low,
            high,
            negated,
        } => {
            let (operand, low, high) = (
                expand_operand(*operand),
                expand_operand(*low),
                expand_operand(*high),
            );
            quote!(::sync_runtime::Predicate::Between {
                operand: #operand,
                low: #low,
                high: #high,
                negated: #negated,
            })
        }
        Predicate::Like {
            operand,
            pattern,
            negated,
        } => {
            let (operand, pattern) = (expand_operand(*operand), expand_operand(*pattern));
            quote!(::sync_runtime::Predicate::Like {
                operand: #operand,
                pattern: #pattern,
                negated: #negated,
            })
        }
        Predicate::IsNull { operand, negated } => {
            let operand = expand_operand(*operand);
            quote!(::sync_runtime::Predicate::IsNull {
                operand: #operand,
                negated: #negated,
            })
        }
    }
}

fn expand_operand(operand: Operand) -> TokenStream {
    match operand {
        Operand::Field(index) => quote!(::sync_runtime::Operand::Field(#index)),
        Operand::Slot(index) => quote!(::sync_runtime::Operand::Slot(#index)),
    }
}

/// `Some(IncrementalSpec { .. })` for a mapping with a cursor.
fn expand_incremental(mapping: &Checked) -> TokenStream {
    if mapping.source.cursor.is_none() {
        return quote!(::core::option::Option::None);
    }
    let select_all = sql::incremental_select_all(mapping);
    let select_after = sql::incremental_select_after(mapping);
    let select_from = sql::incremental_select_from(mapping);
    let watermark = sql::watermark(mapping);
    let null_cursor = sql::null_cursor(mapping);
    let select_keys = sql::select_keys(mapping);
    let prune_keys_create = sql::prune_keys_create(mapping);
    let prune_keys_insert = sql::prune_keys_insert(mapping);
    let prune_keys_drop = sql::prune_keys_drop();
    let prune = mapping
        .write_order()
        .iter()
        .map(|&index| sql::prune(mapping, index));
    quote! {
        ::core::option::Option::Some(::sync_runtime::IncrementalSpec {
            select_all: #select_all,
            select_after: #select_after,
            select_from: #select_from,
            watermark: #watermark,
            null_cursor: #null_cursor,
            select_keys: #select_keys,
            prune_keys_create: #prune_keys_create,
            prune_keys_insert: #prune_keys_insert,
            prune_keys_drop: #prune_keys_drop,
            prune: &[#(#prune),*],
        })
    }
}

/// `bind_key` (from the fields) and `bind_key_row` (from a key row of the source),
/// both binding `?1..` in source key order.
fn expand_bind_key(mapping: &Checked) -> TokenStream {
    let key_fields: Vec<_> = mapping
        .key_fields()
        .iter()
        .map(|&index| (&mapping.fields[index], mapping.field_type(index)))
        .collect();
    let from_fields = key_fields
        .iter()
        .enumerate()
        .map(|(position, (field, types))| {
            let name = field_ident(&field.ident.value, field.ident.origin.span());
            let span = field.rust_type.origin.span();
            let ty = respan(types.rust_type.to_token_stream(), span);
            let parameter = position + 1;
            quote_spanned! {span=>
                {
                    let value: &#ty = &self.#name;
                    ::sync_runtime::__private::bind::<#ty>(statement, #parameter, #position, value)?;
                }
            }
        });
    let assert_values = expand_assert_values(mapping);
    let from_row = key_fields
        .iter()
        .enumerate()
        .map(|(position, (field, types))| {
            let span = field.rust_type.origin.span();
            let ty = respan(types.rust_type.to_token_stream(), span);
            let parameter = position + 1;
            quote_spanned! {span=>
                ::sync_runtime::__private::bind(
                    statement,
                    #parameter,
                    #position,
                    &row.get::<#ty>(#position)?,
                )?;
            }
        });
    quote! {
        fn bind_key(
            &self,
            statement: &mut ::sync_runtime::__private::Statement<'_>,
        ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
            #assert_values
            #(#from_fields)*
            ::core::result::Result::Ok(())
        }

        fn bind_key_row(
            row: &::sync_runtime::__private::SourceRow<'_>,
            statement: &mut ::sync_runtime::__private::Statement<'_>,
        ) -> ::core::result::Result<(), ::sync_runtime::__private::BindError> {
            #assert_values
            #(#from_row)*
            ::core::result::Result::Ok(())
        }
    }
}

/// `assert_value::<T>();` for every field's type `T`, spanned at the type: the
/// first statement of every generated function, so that a type outside the type
/// table is one error at the field's type (rustc drops the `Decode`/`Encode` errors
/// at the same span that `Value` implies, and the identical copies of the others).
fn expand_assert_values(mapping: &Checked) -> TokenStream {
    let asserts = mapping.typed_fields().map(|(field, types)| {
        let span = field.rust_type.origin.span();
        let ty = respan(types.rust_type.to_token_stream(), span);
        quote_spanned!(span=> ::sync_runtime::__private::assert_value::<#ty>();)
    });
    quote!(#(#asserts)*)
}

/// A field ident, raw (`r#type`) where the name is a keyword.
fn field_ident(text: &str, span: Span) -> syn::Ident {
    match text.strip_prefix("r#") {
        Some(raw) => syn::Ident::new_raw(raw, span),
        None => syn::Ident::new(text, span),
    }
}

fn raw_free(text: &str) -> &str {
    text.strip_prefix("r#").unwrap_or(text)
}

/// Gives every token of `tokens` the span `span`, so that an error about a type (a
/// missing trait implementation) points at the field's type.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                token = TokenTree::Group(respanned);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

fn option_str(value: Option<&str>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

fn option_usize(value: Option<usize>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}
