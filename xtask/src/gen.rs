//! `cargo xtask gen [--check]`: every `mappings/*.yaml` through the model, `check`
//! and `emit` into `mappings/src/generated/<module>.rs`, plus the catalogue module
//! `mappings/src/generated/mod.rs`, which also registers the `#[derive(Mapping)]`
//! structs of the hand-written modules in `mappings/src/custom/*.rs`.
//!
//! Nothing is written unless every file is free of errors. Every write goes through
//! [`ensure_file_contents`]; `--check` writes nothing and fails when a generated file
//! is stale or has no source.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sync_macros_core::emit::{self, CatalogueEntry};
use sync_macros_core::ident::{field_ident_for, unraw};
use sync_macros_core::snapshot;
use sync_macros_core::{Ctxt, Mapping, check};

/// Whether `gen` writes or only compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Write every file whose contents differ.
    Overwrite,
    /// Write nothing; fail when a file would change.
    Check,
}

/// The command to bring generated code up to date, for messages.
const COMMAND: &str = "cargo xtask gen";

/// Where the YAML mappings live, relative to the workspace root.
const MAPPINGS: &str = "mappings";
/// Where generated modules go.
const GENERATED: &str = "mappings/src/generated";
/// Where hand-written mapping modules go.
const CUSTOM: &str = "mappings/src/custom";

/// One catalogue `gen` compiles: its YAML files, hand-written modules, snapshots,
/// and where its generated code goes; paths relative to the workspace root.
struct Catalogue {
    /// The directory of the `*.yaml` files.
    mappings: &'static str,
    /// The directory of the hand-written modules, if the catalogue has one.
    custom: Option<&'static str>,
    /// The directory of the schema snapshots.
    schema: &'static str,
    /// Where the generated modules and `mod.rs` go.
    generated: &'static str,
    /// Whether the hashes of the inputs are recorded for the build script.
    record_inputs: bool,
}

/// The catalogue the `data-sync` binary ships, and the test mappings, which only
/// the integration tests compile in.
const CATALOGUES: [Catalogue; 2] = [
    Catalogue {
        mappings: MAPPINGS,
        custom: Some(CUSTOM),
        schema: crate::schema::SCHEMA,
        generated: GENERATED,
        record_inputs: true,
    },
    Catalogue {
        mappings: "tests/mappings",
        custom: None,
        schema: "tests/mappings/schema",
        generated: "tests/it/generated",
        record_inputs: false,
    },
];

/// `cargo xtask gen [--check]`.
pub fn main(args: &[String]) -> Result<()> {
    let mode = match args {
        [] => Mode::Overwrite,
        [flag] if flag == "--check" => Mode::Check,
        _ => bail!("usage: {COMMAND} [--check]"),
    };
    run(&crate::project_root(), mode)
}

/// Generates (or, in [`Mode::Check`], verifies) the mapping code of the workspace at
/// `root`: the shipped catalogue, then the test mappings.
pub fn run(root: &Path, mode: Mode) -> Result<()> {
    for catalogue in &CATALOGUES {
        // A workspace without test mappings (the tests' own) has nothing to do there.
        if catalogue.mappings != MAPPINGS && !root.join(catalogue.mappings).is_dir() {
            continue;
        }
        run_catalogue(root, catalogue, mode)?;
    }
    Ok(())
}

fn run_catalogue(root: &Path, catalogue: &Catalogue, mode: Mode) -> Result<()> {
    let mut errors: Vec<String> = Vec::new();
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    let mut entries: Vec<CatalogueEntry> = Vec::new();
    // Module name -> the file that defines it, to report clashes.
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    // `custom` is the module of the hand-written files.
    if let Some(custom) = catalogue.custom {
        modules.insert("custom".to_owned(), format!("{custom}/"));
    }
    // Every checked YAML mapping, for the rules that span mappings.
    let mut checked_mappings = Vec::new();

    for file in list(&root.join(catalogue.mappings), &["yaml", "yml"])? {
        let shown = format!("{}/{file}", catalogue.mappings);
        if file.ends_with(".yml") {
            errors.push(format!(
                "{shown}:1:1: mapping files end in `.yaml`; rename it to `{}`",
                file.replace(".yml", ".yaml")
            ));
            continue;
        }
        let text =
            fs::read_to_string(root.join(&shown)).with_context(|| format!("reading {shown}"))?;
        let cx = Ctxt::new();
        // A column without `type` takes it from the source table's snapshot.
        let mapping = Mapping::from_yaml_with(&cx, &shown, &text, &mut |source| {
            snapshot::load(&cx, source, &snapshot_directory(root, catalogue.schema))
        });
        let checked = mapping.and_then(|mapping| check::check(&cx, mapping));
        let mapping = match (cx.check(), checked) {
            (Ok(()), Some(mapping)) => mapping,
            (Err(diagnostics), _) => {
                errors.extend(diagnostics.iter().map(ToString::to_string));
                continue;
            }
            (Ok(()), None) => unreachable!("a front-end that returns no mapping records an error"),
        };
        let module = field_ident_for(&mapping.name.value);
        if let Some(first) = modules.insert(module.clone(), shown.clone()) {
            errors.push(format!(
                "{shown}:1:1: `{first}` and `{shown}` both become module `{module}`; rename one"
            ));
            continue;
        }
        outputs.insert(
            format!("{}/{}.rs", catalogue.generated, unraw(&module)),
            emit::emit(&mapping, &shown),
        );
        entries.push(CatalogueEntry {
            module,
            path: None,
            struct_ident: mapping.ident.value.clone(),
            name: mapping.name.value.clone(),
        });
        checked_mappings.push(mapping);
    }
    // References between mappings (`references: other_target.id`), checked once
    // every YAML mapping is; a derive's are checked when the binary registers it.
    let cx = Ctxt::new();
    check::check_catalogue(&cx, &checked_mappings.iter().collect::<Vec<_>>());
    if let Err(diagnostics) = cx.check() {
        errors.extend(diagnostics.iter().map(ToString::to_string));
    }

    // Every hand-written file: `custom::<module>` of the catalogue.
    let mut custom_modules = Vec::new();
    let custom = match catalogue.custom {
        Some(custom) => list(&root.join(custom), &["rs"])?,
        None => Vec::new(),
    };
    for file in custom {
        let shown = format!("{}/{file}", catalogue.custom.unwrap_or(CUSTOM));
        let text =
            fs::read_to_string(root.join(&shown)).with_context(|| format!("reading {shown}"))?;
        let stem = file.trim_end_matches(".rs");
        let module = field_ident_for(stem);
        if let Some(first) = modules.insert(module.clone(), shown.clone()) {
            errors.push(format!(
                "{shown}:1:1: `{first}` and `{shown}` both become module `{module}`; rename one"
            ));
            continue;
        }
        custom_modules.push((module.clone(), file.clone()));
        match custom_mappings(&text) {
            Ok(found) => {
                entries.extend(
                    found
                        .into_iter()
                        .map(|(struct_ident, name)| CatalogueEntry {
                            module: module.clone(),
                            path: Some(file.clone()),
                            struct_ident,
                            name,
                        }),
                )
            }
            Err(error) => errors.push(format!("{shown}:1:1: not valid Rust: {error}")),
        }
    }

    // The catalogue re-exports every struct and finds mappings by name: both unique.
    let mut structs: BTreeMap<&str, &str> = BTreeMap::new();
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for entry in &entries {
        let file = &modules[&entry.module];
        if let Some(first) = structs.insert(&entry.struct_ident, file) {
            errors.push(format!(
                "{file}:1:1: struct `{}` is also defined by `{first}`; rename one",
                entry.struct_ident
            ));
        }
        if let Some(first) = names.insert(&entry.name, file) {
            errors.push(format!(
                "{file}:1:1: mapping name `{}` is also used by `{first}`; rename one",
                entry.name
            ));
        }
    }

    if !errors.is_empty() {
        for error in &errors {
            eprintln!("{error}");
        }
        bail!(
            "{} error{} in mappings; nothing written",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
    }

    if catalogue.record_inputs {
        let inputs = inputs::hashes(&root.join(catalogue.mappings))
            .with_context(|| format!("reading the files of {}/", catalogue.mappings))?;
        outputs.insert(
            format!("{}/{}", catalogue.mappings, inputs::RECORD),
            inputs::record(&inputs),
        );
    }
    let sources = match catalogue.custom {
        Some(custom) => format!("{}/*.yaml and {custom}/*.rs", catalogue.mappings),
        None => format!("{}/*.yaml", catalogue.mappings),
    };
    if let (Some(custom), false) = (catalogue.custom, custom_modules.is_empty()) {
        outputs.insert(
            format!("{}/custom.rs", catalogue.generated),
            emit::emit_custom(&custom_modules, &format!("{custom}/*.rs")),
        );
    }
    outputs.insert(
        format!("{}/mod.rs", catalogue.generated),
        emit::emit_catalogue(&entries, &custom_modules, &sources),
    );
    let mut stale = Vec::new();
    for file in list(&root.join(catalogue.generated), &["rs"])? {
        let shown = format!("{}/{file}", catalogue.generated);
        if !outputs.contains_key(&shown) {
            match mode {
                Mode::Check => stale.push(format!(
                    "{shown} has no YAML source; run `{COMMAND}` to remove it"
                )),
                Mode::Overwrite => {
                    fs::remove_file(root.join(&shown))
                        .with_context(|| format!("removing {shown}"))?;
                    eprintln!("removed {shown}");
                }
            }
        }
    }
    for (shown, text) in &outputs {
        if let Err(error) = ensure_file_contents(root, Path::new(shown), text, mode) {
            stale.push(format!("{error:#}"));
        }
    }
    if !stale.is_empty() {
        for message in &stale {
            eprintln!("{message}");
        }
        bail!("generated code is stale; run `{COMMAND}`");
    }
    Ok(())
}

/// Where the snapshots of a catalogue's source tables are: `schema`, such as `mappings/schema/`.
fn snapshot_directory(root: &Path, schema: &str) -> snapshot::Directory<'static> {
    snapshot::Directory {
        path: root.join(schema),
        shown: schema.to_owned(),
        named_by: None,
    }
}

/// Makes `root/path` hold `contents` (rust-analyzer's `ensure_file_contents`):
/// unchanged, it does nothing; in [`Mode::Check`] it fails naming the file and the
/// command to run; otherwise it writes.
pub fn ensure_file_contents(root: &Path, path: &Path, contents: &str, mode: Mode) -> Result<()> {
    let full: PathBuf = root.join(path);
    if fs::read_to_string(&full).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    match mode {
        Mode::Check => bail!("{} is stale; run `{COMMAND}`", path.display()),
        Mode::Overwrite => {
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            fs::write(&full, contents).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("updated {}", path.display());
            Ok(())
        }
    }
}

/// The `(struct, mapping name)` of every `#[derive(.., Mapping)]` struct of a
/// hand-written module. Its errors are the compiler's to report.
fn custom_mappings(text: &str) -> syn::Result<Vec<(String, String)>> {
    let file = syn::parse_file(text)?;
    let mut found = Vec::new();
    for item in file.items {
        let syn::Item::Struct(item) = item else {
            continue;
        };
        let derives_mapping = item
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("derive"))
            .any(|attr| {
                attr.parse_args_with(
                    syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
                )
                .is_ok_and(|paths| {
                    paths.iter().any(|path| {
                        path.segments
                            .last()
                            .is_some_and(|segment| segment.ident == "Mapping")
                    })
                })
            });
        if !derives_mapping {
            continue;
        }
        let input = syn::DeriveInput::from(item);
        let cx = Ctxt::new();
        let name = Mapping::from_attrs(&cx, &input).map(|mapping| mapping.name.value);
        // The derive reports the mapping's own errors when the crate compiles.
        let _ = cx.check();
        let struct_ident = input.ident.to_string();
        let name = name.unwrap_or_else(|| sync_macros_core::ident::snake_case(&struct_ident));
        found.push((struct_ident, name));
    }
    Ok(found)
}

/// The names of the files in `dir` ending in one of `extensions`, sorted; none when
/// `dir` does not exist.
pub(crate) fn list(dir: &Path, extensions: &[&str]) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("listing {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let matches = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| extensions.contains(&extension));
        if matches
            && path.is_file()
            && let Some(name) = path.file_name().and_then(|name| name.to_str())
        {
            files.push(name.to_owned());
        }
    }
    files.sort();
    Ok(files)
}

/// The record of `gen`'s inputs that the `mappings` crate's build script checks.
#[path = "../../mappings/build/inputs.rs"]
#[allow(dead_code)] // `stale` is for the build script.
mod inputs;

#[cfg(test)]
mod tests;
