//! The engine of data-sync: reads one PostgreSQL table and writes it, split
//! column-wise, into several SQLite tables, as a mapping declared with
//! `#[derive(Mapping)]` describes.
//!
//! ```no_run
//! use sync_runtime::{Mapping, SourceConfig, SyncOptions};
//!
//! #[derive(Mapping)]
//! #[sync(from = "public.users", key = "id")]
//! pub struct Users {
//!     #[sync(to = "user_main", primary_key)]
//!     #[sync(to = "user_profile", primary_key, references = "user_main.id")]
//!     pub id: i64,
//!     #[sync(to = "user_main")]
//!     pub username: String,
//!     #[sync(to = "user_profile")]
//!     pub bio: Option<String>,
//! }
//!
//! # fn main() -> sync_runtime::Result<()> {
//! let source = SourceConfig::parse("postgresql://app@localhost/app")?;
//! let summary = sync_runtime::sync::<Users>(&source, "app.sqlite".as_ref(), &SyncOptions::default())?;
//! println!("{} rows", summary.rows_read);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod cli;
mod error;
mod run;
mod source;
mod spec;
mod state;
mod target;
pub mod value;

pub use sync_macros::Mapping;

pub use crate::cli::main;
pub use crate::error::{Error, Result};
pub use crate::run::{Registered, Summary, SyncOptions, TargetSummary, sync};
pub use crate::source::SourceConfig;
pub use crate::spec::{
    ForeignKey, MappingSpec, SourceColumn, SourceSpec, TargetColumn, TargetSpec,
};
pub use crate::state::MappingState;

/// A row type that syncs one PostgreSQL table into SQLite tables: implemented by
/// `#[derive(Mapping)]`, never by hand.
///
/// # Attributes
///
/// On the struct: `#[sync(from = "schema.table", key = "id")]`, plus optional
/// `name = ".."` (default: the struct name in snake case), `key("a", "b")` for a
/// composite key, `cursor = ".."` and `soft_delete = ".."`. On a field:
/// `#[sync(from = "Source Column")]` and `#[sync(type = "bigint")]`, and one
/// `#[sync(to = "table", ...)]` per target the field is written to, with optional
/// `column = ".."`, `primary_key` and `references = "parent.column"`.
pub trait Mapping: Sized + Send + 'static {
    /// The mapping's static description: names, types, SQL.
    const SPEC: &'static MappingSpec;

    #[doc(hidden)]
    fn decode(row: &__private::SourceRow<'_>) -> std::result::Result<Self, __private::DecodeError>;

    #[doc(hidden)]
    fn accepts(field: usize, ty: &__private::Type) -> bool;

    #[doc(hidden)]
    fn bind(
        &self,
        target: usize,
        statement: &mut __private::Statement<'_>,
    ) -> std::result::Result<(), __private::BindError>;

    #[doc(hidden)]
    fn key(&self) -> String;
}

/// What generated code uses; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use postgres::types::Type;
    pub use rusqlite::Statement;

    pub use crate::source::{DecodeError, SourceRow};
    use crate::spec::{MappingSpec, SourceSpec};
    use crate::value::{BoxError, Encode};

    /// Why a field could not be bound.
    #[derive(Debug)]
    pub enum BindError {
        /// The value has no SQLite form; `column` is its position in the target.
        Encode {
            /// Position of the column in the target.
            column: usize,
            /// Why.
            cause: BoxError,
        },
        /// SQLite refused the parameter.
        Sqlite(rusqlite::Error),
    }

    /// Binds `value` as parameter `parameter` (1-based) for target column `column`.
    #[inline]
    pub fn bind<T: Encode + ?Sized>(
        statement: &mut Statement<'_>,
        parameter: usize,
        column: usize,
        value: &T,
    ) -> Result<(), BindError> {
        let encoded = value
            .encode()
            .map_err(|cause| BindError::Encode { column, cause })?;
        statement
            .raw_bind_parameter(parameter, encoded)
            .map_err(BindError::Sqlite)
    }

    /// A row's key values as text, for messages.
    pub fn display_key(values: &[&dyn Encode]) -> String {
        use rusqlite::types::ValueRef;
        values
            .iter()
            .map(|value| match value.encode() {
                Ok(output) => match rusqlite::ToSql::to_sql(&output) {
                    Ok(rusqlite::types::ToSqlOutput::Borrowed(value)) => display_value(value),
                    Ok(rusqlite::types::ToSqlOutput::Owned(value)) => {
                        display_value(ValueRef::from(&value))
                    }
                    _ => "?".to_owned(),
                },
                Err(_) => "?".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn display_value(value: rusqlite::types::ValueRef<'_>) -> String {
        use rusqlite::types::ValueRef;
        match value {
            ValueRef::Null => "NULL".to_owned(),
            ValueRef::Integer(integer) => integer.to_string(),
            ValueRef::Real(real) => real.to_string(),
            ValueRef::Text(text) => format!("{:?}", String::from_utf8_lossy(text)),
            ValueRef::Blob(blob) => blob.iter().map(|byte| format!("{byte:02x}")).collect(),
        }
    }

    /// The description a mapping with compile errors gets, so that no second error
    /// follows the first.
    pub const INVALID_SPEC: &MappingSpec = &MappingSpec {
        name: "",
        struct_name: "",
        source: SourceSpec {
            schema: None,
            table: "",
            columns: &[],
            key: &[],
            cursor: None,
            soft_delete: None,
            select: "",
        },
        targets: &[],
        fingerprint: "",
    };
}
