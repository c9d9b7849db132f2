//! The Rust front-end: `#[derive(Mapping)]` and its `#[sync(...)]` attributes to the
//! model. Checks only its own syntax (unknown keys, duplicates, bad literals); every
//! semantic rule lives in `check`.

use proc_macro2::Span;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

use crate::ctxt::Ctxt;
use crate::ident::{snake_case, split_qualified, unraw};
use crate::model::{
    Column, Computed, Field, Filter, Mapping, Name, Origin, Reference, Source, Target,
};
use crate::symbol::*;

impl Mapping {
    /// Reads a mapping from a derive input; `None` when its shape is unusable (errors
    /// are in `cx`).
    pub fn from_attrs(cx: &Ctxt, input: &DeriveInput) -> Option<Mapping> {
        let ident = Name::new(input.ident.to_string(), Origin::Span(input.ident.span()));
        let container = Container::from_attrs(cx, input);
        let Data::Struct(data) = &input.data else {
            cx.error(
                &ident.origin,
                "`Mapping` can only be derived for a struct with named fields",
            );
            return None;
        };
        let Fields::Named(named) = &data.fields else {
            cx.error(
                &ident.origin,
                "`Mapping` can only be derived for a struct with named fields",
            );
            return None;
        };
        if !input.generics.params.is_empty() {
            cx.error(
                &Origin::Span(input.generics.span()),
                "a `Mapping` struct cannot be generic",
            );
        }

        let mut fields = Vec::new();
        let mut targets: Vec<Target> = Vec::new();
        for field in &named.named {
            let field_ident = field.ident.as_ref().expect("named field");
            let ident_text = field_ident.to_string();
            let attrs = FieldAttrs::from_attrs(cx, field);
            let column = attrs
                .from
                .unwrap_or_else(|| Name::new(unraw(&ident_text), Origin::Span(field_ident.span())));
            fields.push(Field {
                ident: Name::new(ident_text.clone(), Origin::Span(field_ident.span())),
                column: column.clone(),
                rust_type: Name::new(
                    field.ty.to_token_stream().to_string(),
                    Origin::Span(field.ty.span()),
                ),
                pg_type: attrs.pg_type,
                origin: Origin::Span(field_ident.span()),
            });
            for placement in attrs.placements {
                let target_column = Column {
                    name: placement.column.unwrap_or_else(|| column.clone()),
                    field: ident_text.clone(),
                    primary_key: placement.primary_key,
                    references: placement.references,
                    with: placement.with,
                    origin: placement.to.origin.clone(),
                };
                match targets
                    .iter_mut()
                    .find(|target| target.name.value == placement.to.value)
                {
                    Some(target) => target.columns.push(target_column),
                    None => targets.push(Target {
                        origin: placement.to.origin.clone(),
                        name: placement.to,
                        columns: vec![target_column],
                        computed: Vec::new(),
                    }),
                }
            }
        }

        let container = container?;
        for (to, computed) in container.computed {
            match targets
                .iter_mut()
                .find(|target| target.name.value == to.value)
            {
                Some(target) => target.computed.push(computed),
                None => targets.push(Target {
                    origin: to.origin.clone(),
                    name: to,
                    columns: Vec::new(),
                    computed: vec![computed],
                }),
            }
        }
        Some(Mapping {
            name: container
                .name
                .unwrap_or_else(|| Name::new(snake_case(&ident.value), ident.origin.clone())),
            ident,
            source: container.source,
            snapshot: None,
            fields,
            targets,
            strict: container.strict.unwrap_or(true),
            origin: Origin::Span(input.ident.span()),
        })
    }
}

/// The struct's own `#[sync(...)]`.
struct Container {
    name: Option<Name>,
    source: Source,
    /// Each `computed(..)` with the target it names.
    computed: Vec<(Name, Computed)>,
    strict: Option<bool>,
}

impl Container {
    fn from_attrs(cx: &Ctxt, input: &DeriveInput) -> Option<Container> {
        let mut name = None;
        let mut from: Option<LitStr> = None;
        let mut key: Option<Vec<Name>> = None;
        let mut cursor = None;
        let mut soft_delete = None;
        let mut capture = None;
        let mut publication = None;
        let mut partition_by = None;
        let mut snapshot = None;
        let mut filter = None;
        let mut computed = Vec::new();
        let mut strict = None;
        for attr in input.attrs.iter().filter(|attr| attr.path().is_ident(SYNC)) {
            let parsed = attr.parse_nested_meta(|meta| {
                let Some(word) = keyword(&meta) else {
                    return Err(meta.error("unknown sync attribute"));
                };
                match word.as_str() {
                    // #[sync(name = "users")]
                    NAME => set_once(cx, &meta, &mut name, name_value(&meta)?),
                    // #[sync(from = "public.users")]
                    FROM => {
                        let literal: LitStr = meta.value()?.parse()?;
                        if from.is_some() {
                            duplicate(cx, &meta);
                        }
                        from = Some(literal);
                    }
                    // #[sync(key = "id")] or #[sync(key("tenant", "id"))]
                    KEY => {
                        let names = if meta.input.peek(syn::token::Paren) {
                            let content;
                            syn::parenthesized!(content in meta.input);
                            let literals = content.parse_terminated(
                                <LitStr as syn::parse::Parse>::parse,
                                syn::Token![,],
                            )?;
                            literals
                                .iter()
                                .map(|literal| {
                                    Name::new(literal.value(), Origin::Span(literal.span()))
                                })
                                .collect()
                        } else {
                            vec![name_value(&meta)?]
                        };
                        set_once(cx, &meta, &mut key, names);
                    }
                    // #[sync(cursor = "updated_at")]
                    CURSOR => set_once(cx, &meta, &mut cursor, name_value(&meta)?),
                    // #[sync(soft_delete = "deleted_at")]
                    SOFT_DELETE => set_once(cx, &meta, &mut soft_delete, name_value(&meta)?),
                    // #[sync(capture = "log")]
                    CAPTURE => {
                        let value = name_value(&meta)?;
                        if value.value != CAPTURE_LOG {
                            cx.error(
                                &value.origin,
                                format!(
                                    "unknown `capture` value `{}`: the one value is `log`",
                                    value.value
                                ),
                            );
                        }
                        set_once(cx, &meta, &mut capture, value);
                    }
                    // #[sync(publication = "app_changes")]
                    PUBLICATION => set_once(cx, &meta, &mut publication, name_value(&meta)?),
                    // #[sync(partition_by = "tenant_id")]
                    PARTITION_BY => set_once(cx, &meta, &mut partition_by, name_value(&meta)?),
                    // #[sync(snapshot = "../schema")]
                    SNAPSHOT => set_once(cx, &meta, &mut snapshot, name_value(&meta)?),
                    // #[sync(filter = "tenant_id = $tenant AND status <> 'void'")]
                    FILTER => set_once(cx, &meta, &mut filter, name_value(&meta)?),
                    // #[sync(strict = false)]
                    STRICT => {
                        let value: syn::LitBool = meta.value()?.parse()?;
                        set_once(cx, &meta, &mut strict, value.value);
                    }
                    // #[sync(computed(to = "user_main", column = "domain", with = "crate::f", type = "text"))]
                    COMPUTED => {
                        if let Some(column) = computed_column(cx, &meta)? {
                            computed.push(column);
                        }
                    }
                    _ => {
                        cx.error(
                            &Origin::Span(meta.path.span()),
                            format!("unknown sync attribute `{word}` on a struct"),
                        );
                        skip_value(&meta)?;
                    }
                }
                Ok(())
            });
            if let Err(error) = parsed {
                cx.error(&Origin::Span(error.span()), error);
            }
        }

        let Some(from) = from else {
            cx.error(
                &Origin::Span(input.ident.span()),
                "missing `#[sync(from = \"schema.table\")]` on the struct: the source table",
            );
            return None;
        };
        let written = from.value();
        let (schema, table) = split_qualified(&written);
        let origin = Origin::Span(from.span());
        let key = key.unwrap_or_else(|| {
            cx.error(
                &Origin::Span(input.ident.span()),
                "missing `#[sync(key = \"column\")]` on the struct: the source columns that identify a row",
            );
            Vec::new()
        });
        Some(Container {
            name,
            computed,
            strict,
            source: Source {
                schema: schema.map(|schema| Name::new(schema, origin.clone())),
                table: Name::new(table, origin.clone()),
                key,
                cursor,
                soft_delete,
                capture,
                publication,
                partition_by,
                snapshot,
                filter: filter.map(|text| Filter { text, start: None }),
                origin,
            },
        })
    }
}

/// `computed(to = "t", column = "c", with = "path::fn", type = "text", nullable)`:
/// the target it names and the column; `None` when `to`, `column` or `with` is
/// missing (reported here).
fn computed_column(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<(Name, Computed)>> {
    let origin = Origin::Span(meta.path.span());
    let mut to: Option<Name> = None;
    let mut column: Option<Name> = None;
    let mut with: Option<Name> = None;
    let mut pg_type: Option<Name> = None;
    let mut nullable: Option<Span> = None;
    meta.parse_nested_meta(|inner| {
        let Some(word) = keyword(&inner) else {
            return Err(inner.error("unknown computed column attribute"));
        };
        match word.as_str() {
            TO => set_once(cx, &inner, &mut to, name_value(&inner)?),
            COLUMN => set_once(cx, &inner, &mut column, name_value(&inner)?),
            WITH => set_once(cx, &inner, &mut with, name_value(&inner)?),
            TYPE => set_once(cx, &inner, &mut pg_type, name_value(&inner)?),
            NULLABLE => {
                if nullable.is_some() {
                    duplicate(cx, &inner);
                }
                nullable = Some(inner.path.span());
            }
            _ => {
                cx.error(
                    &Origin::Span(inner.path.span()),
                    format!("unknown computed column attribute `{word}`: it takes `to`, `column`, `with`, `type` and `nullable`"),
                );
                skip_value(&inner)?;
            }
        }
        Ok(())
    })?;
    let missing = |key: &str, example: &str| {
        cx.error(
            &origin,
            format!("`computed` needs `{key}`, e.g. `{key} = \"{example}\"`"),
        );
    };
    let (Some(to), Some(column), Some(with)) = (to.clone(), column.clone(), with.clone()) else {
        if to.is_none() {
            missing(TO, "user_main");
        }
        if column.is_none() {
            missing(COLUMN, "domain");
        }
        if with.is_none() {
            missing(WITH, "crate::custom::email::domain");
        }
        return Ok(None);
    };
    Ok(Some((
        to,
        Computed {
            name: column,
            with,
            pg_type,
            nullable: nullable.is_some(),
            origin,
        },
    )))
}

/// A field's `#[sync(...)]` attributes.
#[derive(Default)]
struct FieldAttrs {
    from: Option<Name>,
    pg_type: Option<Name>,
    placements: Vec<Placement>,
}

/// One `#[sync(to = "..", ...)]`: the field written into one target.
struct Placement {
    to: Name,
    column: Option<Name>,
    primary_key: bool,
    references: Option<Reference>,
    with: Option<Name>,
}

impl FieldAttrs {
    fn from_attrs(cx: &Ctxt, field: &syn::Field) -> FieldAttrs {
        let mut attrs = FieldAttrs::default();
        for attr in field.attrs.iter().filter(|attr| attr.path().is_ident(SYNC)) {
            let mut to: Option<Name> = None;
            let mut column: Option<Name> = None;
            let mut primary_key: Option<Span> = None;
            let mut references: Option<Reference> = None;
            let mut with: Option<Name> = None;
            let mut unknown_key = false;
            let parsed = attr.parse_nested_meta(|meta| {
                let Some(word) = keyword(&meta) else {
                    return Err(meta.error("unknown sync attribute"));
                };
                match word.as_str() {
                    // #[sync(from = "User Name")]
                    FROM => set_once(cx, &meta, &mut attrs.from, name_value(&meta)?),
                    // #[sync(type = "character varying(40)")]
                    TYPE => set_once(cx, &meta, &mut attrs.pg_type, name_value(&meta)?),
                    // #[sync(to = "user_main")]
                    TO => set_once(cx, &meta, &mut to, name_value(&meta)?),
                    // #[sync(to = "user_main", column = "name")]
                    COLUMN => set_once(cx, &meta, &mut column, name_value(&meta)?),
                    // #[sync(to = "user_main", primary_key)]
                    PRIMARY_KEY => {
                        if primary_key.is_some() {
                            duplicate(cx, &meta);
                        }
                        primary_key = Some(meta.path.span());
                    }
                    // #[sync(to = "user_main", with = "crate::mask::email")]
                    WITH => set_once(cx, &meta, &mut with, name_value(&meta)?),
                    // #[sync(to = "user_profile", references = "user_main.id")]
                    REFERENCES => {
                        let literal: LitStr = meta.value()?.parse()?;
                        let origin = Origin::Span(literal.span());
                        let written = literal.value();
                        let reference = match written.split_once('.') {
                            Some((table, column)) => Reference {
                                table: Name::new(table, origin.clone()),
                                column: Name::new(column, origin.clone()),
                                origin,
                            },
                            None => {
                                cx.error(
                                    &origin,
                                    format!("`references` takes `table.column`, not `{written}`"),
                                );
                                return Ok(());
                            }
                        };
                        if references.is_some() {
                            duplicate(cx, &meta);
                        }
                        references = Some(reference);
                    }
                    // Nullability is the field's type: `Option<T>` reads NULL.
                    "nullable" | "optional" | "not_null" | "null" => {
                        cx.recoverable_error(
                            &Origin::Span(meta.path.span()),
                            format!(
                                "unknown sync attribute `{word}`: a column that may be NULL is an `Option<T>` field (`{}: Option<{}>`), one that may not a plain `T`",
                                field
                                    .ident
                                    .as_ref()
                                    .map_or_else(|| "field".to_owned(), ToString::to_string),
                                unwrap_option(&field.ty)
                            ),
                        );
                        skip_value(&meta)?;
                    }
                    _ => {
                        cx.error(
                            &Origin::Span(meta.path.span()),
                            format!("unknown sync attribute `{word}` on a field"),
                        );
                        unknown_key = true;
                        skip_value(&meta)?;
                    }
                }
                Ok(())
            });
            if let Err(error) = parsed {
                cx.error(&Origin::Span(error.span()), error);
                continue;
            }
            match to {
                Some(to) => attrs.placements.push(Placement {
                    to,
                    column,
                    primary_key: primary_key.is_some(),
                    references,
                    with,
                }),
                // An attribute with a misspelt key (`too`) already has its error.
                None if unknown_key => {}
                None => {
                    let misplaced = [
                        (COLUMN, column.map(|name| name.origin.span())),
                        (PRIMARY_KEY, primary_key),
                        (
                            REFERENCES,
                            references.map(|reference| reference.origin.span()),
                        ),
                        (WITH, with.map(|with| with.origin.span())),
                    ];
                    for (key, span) in misplaced {
                        if let Some(span) = span {
                            cx.error(
                                &Origin::Span(span),
                                format!("`{key}` belongs to a placement: write it beside `to = \"table\"` in the same attribute"),
                            );
                        }
                    }
                }
            }
        }
        attrs
    }
}

/// The key of a nested meta as written, keywords (`type`) included.
fn keyword(meta: &ParseNestedMeta<'_>) -> Option<String> {
    meta.path
        .get_ident()
        .map(|ident| unraw(&ident.to_string()).to_owned())
}

/// `key = "value"` as a name at the literal.
fn name_value(meta: &ParseNestedMeta<'_>) -> syn::Result<Name> {
    let literal: LitStr = meta.value()?.parse()?;
    Ok(Name::new(literal.value(), Origin::Span(literal.span())))
}

fn set_once<T>(cx: &Ctxt, meta: &ParseNestedMeta<'_>, slot: &mut Option<T>, value: T) {
    if slot.is_some() {
        duplicate(cx, meta);
    }
    *slot = Some(value);
}

fn duplicate(cx: &Ctxt, meta: &ParseNestedMeta<'_>) {
    let word = keyword(meta).unwrap_or_default();
    cx.error(
        &Origin::Span(meta.path.span()),
        format!("duplicate sync attribute `{word}`"),
    );
}

/// Consumes the value of an unknown key so parsing can go on to the next one.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: syn::Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _content;
        syn::parenthesized!(_content in meta.input);
        let _: proc_macro2::TokenStream = _content.parse()?;
    }
    Ok(())
}

/// The type `ty` as written, or `T` of an `Option<T>`, for messages.
fn unwrap_option(ty: &syn::Type) -> String {
    let written = quote::ToTokens::to_token_stream(ty)
        .to_string()
        .replace(' ', "");
    written
        .strip_prefix("Option<")
        .and_then(|inner| inner.strip_suffix('>'))
        .map_or_else(|| written.clone(), str::to_owned)
}
