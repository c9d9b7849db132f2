//! The one mapping model both front-ends produce and every later stage reads.
//!
//! `attr::from_attrs` and `yaml::from_yaml` build it, `check::check` validates it,
//! `expand` turns it into tokens and `emit` into annotated Rust. Every element keeps
//! its [`Origin`], so that a rule can point at what the user wrote.

use std::fmt;
use std::sync::Arc;

use proc_macro2::Span;

/// Where an element of a mapping was written.
///
/// Origins never take part in equality: two mappings that say the same thing are
/// equal whichever front-end produced them (the YAML round-trip test relies on it).
#[derive(Clone, Debug)]
pub enum Origin {
    /// A token of a Rust source file.
    Span(Span),
    /// A node of a YAML file.
    Yaml(YamlPosition),
    /// Made up by a front-end, with nothing to point at.
    Unknown,
}

impl PartialEq for Origin {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for Origin {}

impl Origin {
    /// The span to report an error at in a derive; YAML origins have none.
    pub fn span(&self) -> Span {
        match self {
            Origin::Span(span) => *span,
            Origin::Yaml(_) | Origin::Unknown => Span::call_site(),
        }
    }
}

/// A `file:line:column` position in a YAML mapping, 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlPosition {
    /// The file as the user names it, e.g. `mappings/users.yaml`.
    pub file: Arc<str>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for YamlPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A name as the user wrote it, with where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// The exact spelling; names are never case-folded.
    pub value: String,
    /// Where it was written.
    pub origin: Origin,
}

impl Name {
    /// A name at `origin`.
    pub fn new(value: impl Into<String>, origin: Origin) -> Self {
        Name {
            value: value.into(),
            origin,
        }
    }
}

/// One mapping: a source table split column-wise into target tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The mapping name (`users`): the YAML file stem, or `name = ".."`, or the struct
    /// name in snake case.
    pub name: Name,
    /// The Rust struct the mapping is (`Users`).
    pub ident: Name,
    /// The PostgreSQL side.
    pub source: Source,
    /// The schema snapshot of the source table, when one was found; the snapshot
    /// rules of `check` compare the mapping with it.
    pub snapshot: Option<crate::snapshot::Snapshot>,
    /// One field per source column read, in SELECT order.
    pub fields: Vec<Field>,
    /// The SQLite tables, in the order the user declared them.
    pub targets: Vec<Target>,
    /// Whether the targets are STRICT tables (the default); `strict = false` writes
    /// plain tables with the same declared types, for SQLite before 3.37.
    pub strict: bool,
    /// The struct, or the YAML document.
    pub origin: Origin,
}

/// The PostgreSQL table a mapping reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// `public` of `public.users`; `None` uses the connection's search path.
    pub schema: Option<Name>,
    /// `users` of `public.users`.
    pub table: Name,
    /// The source columns that identify a row.
    pub key: Vec<Name>,
    /// The source column incremental sync orders by.
    pub cursor: Option<Name>,
    /// The source column whose non-NULL value deletes a row from the targets.
    pub soft_delete: Option<Name>,
    /// `capture: log`: the changes come from the source's write-ahead log (the value
    /// as written; the front-ends accept only `log`).
    pub capture: Option<Name>,
    /// The publication change capture reads, when the operator created it.
    pub publication: Option<Name>,
    /// `partition_by = ".."`: the source column whose value picks the target file
    /// (one SQLite file per value).
    pub partition_by: Option<Name>,
    /// `#[sync(snapshot = "dir")]`: the directory of the schema snapshot, relative to
    /// the file holding the struct.
    pub snapshot: Option<Name>,
    /// `filter = ".."`: the rows of the source the targets hold.
    pub filter: Option<Filter>,
    /// Where the source was declared.
    pub origin: Origin,
}

/// A row filter as written: a predicate in a small subset of SQL, parsed by
/// `check` (module `filter`).
#[derive(Clone, Debug)]
pub struct Filter {
    /// The SQL text.
    pub text: Name,
    /// Where the text's first character is, when positions inside it can be told
    /// (a one-line YAML scalar held as read); `None` in Rust, whose string
    /// literals give no position inside.
    pub start: Option<YamlPosition>,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Filter {}

impl Filter {
    /// The origin of the character at 1-based `line` and `column` of the text: that
    /// very character where it can be told, else the whole text.
    pub fn origin_at(&self, line: u64, column: u64) -> Origin {
        match &self.start {
            Some(start) if line == 1 && column >= 1 => {
                let mut position = start.clone();
                position.column += usize::try_from(column - 1).unwrap_or(0);
                Origin::Yaml(position)
            }
            _ => self.text.origin.clone(),
        }
    }
}

/// One source column, read into one Rust field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The Rust field name, e.g. `id` or `r#select`.
    pub ident: Name,
    /// The source column name (`from`, default the field name without `r#`).
    pub column: Name,
    /// The Rust type in canonical token form (`quote!(#ty).to_string()`).
    pub rust_type: Name,
    /// The declared PostgreSQL type (`type = ".."`), as spelled.
    pub pg_type: Option<Name>,
    /// The field as a whole.
    pub origin: Origin,
}

impl Field {
    /// Whether the Rust type is `Option<..>`, i.e. the column may be NULL.
    pub fn is_nullable(&self) -> bool {
        crate::types::option_inner(&self.rust_type.value).is_some()
    }
}

/// One SQLite target table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The table name.
    pub name: Name,
    /// Its columns, in declaration order.
    pub columns: Vec<Column>,
    /// Its computed columns, in declaration order: in the table they follow
    /// [`Target::columns`].
    pub computed: Vec<Computed>,
    /// Where the target was first named.
    pub origin: Origin,
}

/// One column of a target table, fed by one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The target column name (`column = ".."`, default the source column name).
    pub name: Name,
    /// The Rust ident of the field that feeds it.
    pub field: String,
    /// Whether the column is part of the target's primary key.
    pub primary_key: bool,
    /// A foreign key to another target of the same mapping.
    pub references: Option<Reference>,
    /// `with = "path::fn"`: the function the field's value goes through before it
    /// is written here, as written.
    pub with: Option<Name>,
    /// The placement (`#[sync(to = ..)]` or the YAML column entry).
    pub origin: Origin,
}

/// A target column that no single source column feeds: a function of the whole row
/// (`#[sync(computed(to = "t", column = "c", with = "path::fn", type = "text"))]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Computed {
    /// The target column name.
    pub name: Name,
    /// The function that computes it from `&Self`, as written (YAML paths rooted
    /// at `crate::`).
    pub with: Name,
    /// The PostgreSQL type whose Rust and SQLite types the column has; required
    /// (`check` reports a missing one).
    pub pg_type: Option<Name>,
    /// Whether the column may be NULL (the function returns an `Option`).
    pub nullable: bool,
    /// The `computed(..)` attribute or the YAML column entry.
    pub origin: Origin,
}

/// `references = "user_main.id"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The parent target table.
    pub table: Name,
    /// The parent column.
    pub column: Name,
    /// The whole reference as written.
    pub origin: Origin,
}

impl Target {
    /// The names of its columns that are not part of the primary key, in table
    /// order: fed columns, then computed ones.
    pub fn non_key_column_names(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter(|column| !column.primary_key)
            .map(|column| column.name.value.as_str())
            .chain(
                self.computed
                    .iter()
                    .map(|computed| computed.name.value.as_str()),
            )
    }

    /// The names of all its columns, in table order: fed columns, then computed
    /// ones.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .map(|column| column.name.value.as_str())
            .chain(
                self.computed
                    .iter()
                    .map(|computed| computed.name.value.as_str()),
            )
    }
}

impl Mapping {
    /// The field named `ident`.
    pub fn field(&self, ident: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.ident.value == ident)
    }

    /// The position of the field that reads source column `column`.
    pub fn field_index_by_column(&self, column: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|field| field.column.value == column)
    }

    /// The target named `name`.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|target| target.name.value == name)
    }
}
