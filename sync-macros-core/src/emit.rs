//! A checked mapping to annotated Rust text, for `cargo xtask gen`.
//!
//! Entry points: [`emit`] writes the `#[derive(Mapping)]` struct a person would write
//! for a YAML mapping, [`emit_catalogue`] the module that registers every mapping.
//! The output always spells `name` and every field's `type`, so that reading it back
//! with `Mapping::from_attrs` gives the same model; it is formatted with prettyplease
//! and deterministic. Takes only mappings that passed `check`.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

use crate::checked::{Checked, FieldType};
use crate::ident::unraw;
use crate::model::{Field, Mapping};
use crate::symbol::*;

/// The generated file of `mapping`, read from `source_file` (as the header names it,
/// e.g. `mappings/users.yaml`).
pub fn emit(mapping: &Checked, source_file: &str) -> String {
    let struct_ident = rust_ident(&mapping.ident.value);
    let container = emit_container(mapping);
    let struct_doc = string(&format!(
        " A row of `{}`, written to {}.",
        source_display(mapping),
        mapping
            .targets
            .iter()
            .map(|target| format!("`{}`", target.name.value))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let fields = mapping
        .typed_fields()
        .map(|(field, types)| emit_field(mapping, field, types));
    let module_doc = string(&format!(
        " The `{}` mapping, generated from `{source_file}`.",
        mapping.name.value
    ));
    // Two computed columns of one target repeat `to` (and maybe `type`), which
    // clippy's `duplicated_attributes` reads as a mistake.
    let allow = (mapping
        .targets
        .iter()
        .map(|target| target.computed.len())
        .sum::<usize>()
        > 1)
    .then(|| quote!(#[allow(clippy::duplicated_attributes)]));
    let tokens = quote! {
        #![doc = #module_doc]

        use sync_runtime::Mapping;

        #[doc = #struct_doc]
        #allow
        #[derive(Debug, Clone, PartialEq, Mapping)]
        #container
        pub struct #struct_ident {
            #(#fields),*
        }
    };
    format_file(&generated_header(source_file), tokens)
}

/// One mapping of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// The module holding it, e.g. `users`.
    pub module: String,
    /// For a hand-written module, its file under `mappings/src/custom/`
    /// (`orders.rs`): the module is then `custom::<module>`.
    pub path: Option<String>,
    /// Its struct, e.g. `Users`.
    pub struct_ident: String,
    /// Its mapping name, which orders the catalogue.
    pub name: String,
}

/// The catalogue module: declares every mapping module, re-exports every struct and
/// lists them in `CATALOGUE`, in mapping name order. Every hand-written file of
/// `mappings/src/custom/` (`custom`, its stems) is declared as `custom::<stem>`, which
/// the catalogue re-exports at the crate root, so that `crate::custom::mask::email`
/// names a function of `custom/mask.rs` (`custom` lists `(module, file)`); their
/// mapping structs are entries with a `path`. `sources` names what it was generated
/// from, for the header.
pub fn emit_catalogue(
    entries: &[CatalogueEntry],
    custom: &[(String, String)],
    sources: &str,
) -> String {
    let mut modules: Vec<&CatalogueEntry> = entries
        .iter()
        .filter(|entry| entry.path.is_none())
        .collect();
    modules.sort_by(|a, b| a.module.cmp(&b.module));
    modules.dedup_by(|a, b| a.module == b.module);
    let declarations = modules.iter().map(|entry| {
        let module = rust_ident(&entry.module);
        quote!(mod #module;)
    });
    let custom_module = (!custom.is_empty()).then(|| {
        quote! {
            /// The hand-written modules of `mappings/src/custom/`: mappings, and the
            /// functions YAML mappings name with `with: custom::<file>::<function>`.
            pub mod custom;
        }
    });
    let mut by_struct: Vec<&CatalogueEntry> = entries.iter().collect();
    by_struct.sort_by(|a, b| (&a.module, &a.struct_ident).cmp(&(&b.module, &b.struct_ident)));
    let exports = by_struct.iter().map(|entry| {
        let module = rust_ident(&entry.module);
        let struct_ident = rust_ident(&entry.struct_ident);
        match entry.path {
            Some(_) => quote!(pub use self::custom::#module::#struct_ident;),
            None => quote!(pub use self::#module::#struct_ident;),
        }
    });
    let mut by_name: Vec<&CatalogueEntry> = entries.iter().collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    let registered = by_name.iter().map(|entry| {
        let struct_ident = rust_ident(&entry.struct_ident);
        quote!(::sync_runtime::Registered::of::<#struct_ident>())
    });
    let tokens = quote! {
        #(#declarations)*

        #custom_module

        #(#exports)*

        /// Every compiled-in mapping, in name order.
        pub static CATALOGUE: &[::sync_runtime::Registered] = &[#(#registered),*];
    };
    format_file(&generated_header(sources), tokens)
}

/// The `custom` module of the catalogue (`generated/custom.rs`): every file of
/// `mappings/src/custom/` (`custom` lists `(module, file)`) as `custom::<module>`.
pub fn emit_custom(custom: &[(String, String)], sources: &str) -> String {
    let mut custom: Vec<&(String, String)> = custom.iter().collect();
    custom.sort();
    custom.dedup();
    let files = custom.iter().map(|(module, file)| {
        let module = rust_ident(module);
        let path = string(&format!("../custom/{file}"));
        let doc = string(&format!(" `mappings/src/custom/{file}`."));
        quote! {
            #[doc = #doc]
            #[path = #path]
            pub mod #module;
        }
    });
    format_file(&generated_header(sources), quote!(#(#files)*))
}

/// `// @generated by cargo xtask gen from <source>. Do not edit.`
pub fn generated_header(source: &str) -> String {
    format!("// @generated by cargo xtask gen from {source}. Do not edit.\n")
}

// #[sync(name = "users", from = "public.users", key = "id", cursor = "..", soft_delete = "..")]
fn emit_container(mapping: &Mapping) -> TokenStream {
    let source = &mapping.source;
    let name_keyword = keyword(NAME);
    let name = string(&mapping.name.value);
    let from_keyword = keyword(FROM);
    let from = string(&source_display(mapping));
    let key_keyword = keyword(KEY);
    let key = match source.key.as_slice() {
        [single] => {
            let single = string(&single.value);
            quote!(#key_keyword = #single)
        }
        several => {
            let several = several.iter().map(|key| string(&key.value));
            quote!(#key_keyword(#(#several),*))
        }
    };
    let mut arguments = vec![
        quote!(#name_keyword = #name),
        quote!(#from_keyword = #from),
        key,
    ];
    for (word, column) in [
        (CURSOR, &source.cursor),
        (SOFT_DELETE, &source.soft_delete),
        (CAPTURE, &source.capture),
        (PUBLICATION, &source.publication),
        (PARTITION_BY, &source.partition_by),
    ] {
        if let Some(column) = column {
            let word = keyword(word);
            let column = string(&column.value);
            arguments.push(quote!(#word = #column));
        }
    }
    if !mapping.strict {
        let word = keyword(STRICT);
        arguments.push(quote!(#word = false));
    }
    if let Some(filter) = &source.filter {
        let word = keyword(FILTER);
        let text = string(&filter.text.value);
        arguments.push(quote!(#word = #text));
    }
    let computed = mapping.targets.iter().flat_map(|target| {
        target.computed.iter().map(|computed| {
            let (to, column, with, pg_type) = (
                keyword(TO),
                keyword(COLUMN),
                keyword(WITH),
                keyword(TYPE),
            );
            let table = string(&target.name.value);
            let name = string(&computed.name.value);
            let path = string(&computed.with.value);
            let declared = string(
                &computed
                    .pg_type
                    .as_ref()
                    .map_or_else(String::new, |pg_type| pg_type.value.clone()),
            );
            let nullable = computed.nullable.then(|| {
                let nullable = keyword(NULLABLE);
                quote!(, #nullable)
            });
            let computed_keyword = keyword(COMPUTED);
            quote! {
                #[sync(#computed_keyword(#to = #table, #column = #name, #with = #path, #pg_type = #declared #nullable))]
            }
        })
    });
    quote! {
        #[sync(#(#arguments),*)]
        #(#computed)*
    }
}

// #[sync(from = "User Name", type = "text")]
// #[sync(to = "user_main", column = "name", primary_key, references = "t.id")]
fn emit_field(mapping: &Mapping, field: &Field, types: &FieldType) -> TokenStream {
    let ident = rust_ident(&field.ident.value);
    let rust_type = &types.rust_type;
    let mut first = Vec::new();
    if field.column.value != unraw(&field.ident.value) {
        let from_keyword = keyword(FROM);
        let from = string(&field.column.value);
        first.push(quote!(#from_keyword = #from));
    }
    let type_keyword = keyword(TYPE);
    let pg_type = string(&types.declared);
    first.push(quote!(#type_keyword = #pg_type));

    let mut placements = Vec::new();
    let mut written_to = Vec::new();
    for target in &mapping.targets {
        for column in target
            .columns
            .iter()
            .filter(|column| column.field == field.ident.value)
        {
            let to_keyword = keyword(TO);
            let to = string(&target.name.value);
            let mut arguments = vec![quote!(#to_keyword = #to)];
            if column.name.value != field.column.value {
                let column_keyword = keyword(COLUMN);
                let column_name = string(&column.name.value);
                arguments.push(quote!(#column_keyword = #column_name));
            }
            if column.primary_key {
                let primary_key = keyword(PRIMARY_KEY);
                arguments.push(quote!(#primary_key));
            }
            if let Some(with) = &column.with {
                let with_keyword = keyword(WITH);
                let path = string(&with.value);
                arguments.push(quote!(#with_keyword = #path));
            }
            if let Some(reference) = &column.references {
                let references = keyword(REFERENCES);
                let parent = string(&format!(
                    "{}.{}",
                    reference.table.value, reference.column.value
                ));
                arguments.push(quote!(#references = #parent));
            }
            placements.push(quote!(#[sync(#(#arguments),*)]));
            written_to.push(format!("`{}.{}`", target.name.value, column.name.value));
        }
    }
    let doc = if written_to.is_empty() {
        format!(" Source column `{}`, read only.", field.column.value)
    } else {
        format!(
            " Source column `{}`, written to {}.",
            field.column.value,
            written_to.join(", ")
        )
    };
    let doc = string(&doc);
    quote! {
        #[doc = #doc]
        #[sync(#(#first),*)]
        #(#placements)*
        pub #ident: #rust_type
    }
}

/// `schema.table` or `table`, as `from` takes it.
fn source_display(mapping: &Mapping) -> String {
    let source = &mapping.source;
    match &source.schema {
        Some(schema) => format!("{}.{}", schema.value, source.table.value),
        None => source.table.value.clone(),
    }
}

fn keyword(word: &str) -> Ident {
    Ident::new(word, Span::call_site())
}

fn string(value: &str) -> Literal {
    Literal::string(value)
}

/// `r#type` is a raw ident, `users` a plain one.
fn rust_ident(ident: &str) -> Ident {
    match ident.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(ident, Span::call_site()),
    }
}

fn format_file(header: &str, tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).expect("emitted tokens form a Rust file");
    let mut text = header.to_owned();
    text.push('\n');
    let mut previous: Option<&str> = None;
    for line in prettyplease::unparse(&file).lines() {
        if let Some(previous) = previous
            && starts_group(previous, line)
        {
            text.push('\n');
        }
        text.push_str(line);
        text.push('\n');
        previous = Some(line);
    }
    text
}

/// Whether top-level `line` starts a new group of items after `previous`: a blank
/// line after the module docs and between items, but not inside a run of `mod` or
/// `use` declarations.
fn starts_group(previous: &str, line: &str) -> bool {
    let top_level = |text: &str| !text.starts_with(char::is_whitespace);
    if !top_level(previous) || !top_level(line) {
        return false;
    }
    if previous.starts_with("//!") {
        return !line.starts_with("//!");
    }
    let kind = |text: &str| {
        ["mod ", "#[path", "use ", "pub use "]
            .into_iter()
            .find(|prefix| text.starts_with(prefix))
            .map(|prefix| if prefix == "#[path" { "mod " } else { prefix })
    };
    let ends_item = previous.ends_with(';') || previous.ends_with('}');
    ends_item && (kind(previous).is_none() || kind(previous) != kind(line))
}

#[cfg(test)]
mod tests;
