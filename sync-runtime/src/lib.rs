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
//!
//! [`SyncJob`] is the same as a builder, and takes a [`Progress`] observer:
//!
//! ```no_run
//! # use sync_runtime::{Mapping, SourceConfig, SyncJob};
//! # #[derive(Mapping)]
//! # #[sync(from = "public.users", key = "id")]
//! # pub struct Users {
//! #     #[sync(to = "user_main", primary_key)]
//! #     pub id: i64,
//! # }
//! # fn main() -> sync_runtime::Result<()> {
//! let source = SourceConfig::parse("postgresql://app@localhost/app")?;
//! let job = SyncJob::new(source, "app.sqlite")
//!     .full(true)
//!     .progress(|mapping: &'static sync_runtime::MappingSpec, rows: u64| {
//!         eprintln!("{}: {rows} rows", mapping.name)
//!     });
//! let summary = job.run::<Users>()?;
//! # Ok(())
//! # }
//! ```
//!
//! The `data-sync` command line over a catalogue of mappings is the `sync-cli`
//! crate; this crate is the engine alone. See `examples/library.rs` for a complete
//! program.
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod catalogue;
mod check;
mod error;
mod filter;
mod job;
mod options;
mod partition;
mod progress;
mod registered;
mod source;
mod spec;
mod summary;
mod sync;
mod target;
pub mod value;
mod verify;

pub use sync_macros::Mapping;

pub use crate::catalogue::{check_catalogue, linked_groups, plan};
pub use crate::check::{
    CheckReport, ColumnSchema, Difference, TableSchema, check, check_mapping, describe_table,
};
pub use crate::error::{Error, Result};
pub use crate::filter::{
    CompareOp, FilterSlot, FilterSpec, FilterType, Operand, ParamError, Params, Predicate,
    SlotValue,
};
pub use crate::job::SyncJob;
pub use crate::options::SyncOptions;
pub use crate::partition::{
    EMPTY_NAME, MAX_NAME, Selection, Shard, Template, file_name as partition_file_name,
    shard_of_digest,
};
pub use crate::progress::Progress;
pub use crate::registered::Registered;
pub use crate::source::client::Client;
pub use crate::source::config::{SourceConfig, SslMode};
pub use crate::source::copy_out_sql;
pub use crate::spec::{
    CaptureSpec, ForeignKey, IncrementalSpec, MappingSpec, SourceColumn, SourceSpec, TargetColumn,
    TargetSpec,
};
pub use crate::summary::{ColumnMigration, Summary, TargetSummary};
pub use crate::sync::capture::SlotStatus;
pub use crate::sync::capture::lsn::{Lsn, ParseLsnError};
pub use crate::sync::fanout::{FanoutPlan, FanoutSummary, PartitionOutcome, fanout, fanout_plan};
pub use crate::sync::group::sync_all;
pub use crate::sync::retry::RetryPolicy;
pub use crate::sync::signal::{cancel_running_queries, interrupt, signal_received};
pub use crate::sync::watermark::Overlap;
pub use crate::sync::{drop_slot, follow, follow_group, sync};
pub use crate::target::missing_targets;
pub use crate::target::state::{MappingState, Migration, NEVER_SYNCED, RUNNING, load_states};
pub use crate::verify::{
    FanoutVerification, FileOutcome, FileVerification, KeyDifference, Repaired, TargetVerification,
    Verification, repair, verify, verify_fanout,
};

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
/// `column = ".."`, `primary_key` and `references = "parent.column"`. Every key
/// is described in `docs/mapping.md`.
///
/// # Examples
///
/// The generated SQL is in [`Mapping::SPEC`], known at compile time (and printed by
/// `data-sync explain`):
///
/// ```
/// use sync_runtime::Mapping;
///
/// #[derive(Mapping)]
/// #[sync(from = "public.users", key = "id")]
/// pub struct Users {
///     #[sync(to = "user_main", primary_key)]
///     pub id: i64,
///     #[sync(to = "user_main", column = "name")]
///     pub username: String,
/// }
///
/// assert_eq!(Users::SPEC.name, "users");
/// assert_eq!(
///     Users::SPEC.source.select,
///     r#"SELECT "id", "username" FROM "public"."users""#
/// );
/// assert_eq!(
///     Users::SPEC.targets[0].insert,
///     r#"INSERT INTO "user_main" ("id", "name") VALUES (?1, ?2)"#
/// );
/// ```
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

    /// Binds target `target`'s columns as parameters `first + 1..`, in column order
    /// (a row of a multi-row `INSERT`).
    #[doc(hidden)]
    fn bind_at<'v>(
        &self,
        target: usize,
        statement: &mut impl __private::Bind<'v>,
        first: usize,
    ) -> std::result::Result<(), __private::BindError>;

    /// Checks that `row` decodes as `Self`, without keeping it: the reader of a
    /// full sync, which hands raw rows to the writer.
    #[doc(hidden)]
    fn check(row: &__private::SourceRow<'_>) -> std::result::Result<(), __private::DecodeError> {
        Self::decode(row).map(drop)
    }

    /// Binds target `target`'s columns straight from `row`, which passed
    /// [`Mapping::check`], as parameters `first + 1..`, in column order.
    #[doc(hidden)]
    fn bind_row<'r>(
        row: &__private::SourceRow<'r>,
        target: usize,
        statement: &mut impl __private::Bind<'r>,
        first: usize,
    ) -> std::result::Result<(), __private::BindError>;

    /// Checks field `field` of `row` and binds it as parameter `parameter` for
    /// column `column` of a target, without its transform (change capture's partial
    /// updates; the backfill of a column added without a full sync, which reads only
    /// the key and the added columns' fields, `row` holding NULL for the others).
    #[doc(hidden)]
    fn bind_row_field(
        row: &__private::SourceRow<'_>,
        field: usize,
        statement: &mut __private::Statement<'_>,
        parameter: usize,
        column: usize,
    ) -> std::result::Result<(), __private::BindError>;

    #[doc(hidden)]
    fn key(&self) -> String;

    /// Binds the key fields as `?1..` in source key order (`delete_by_key`).
    #[doc(hidden)]
    fn bind_key(
        &self,
        statement: &mut __private::Statement<'_>,
    ) -> std::result::Result<(), __private::BindError>;

    /// Decodes the key fields from `row` (the key columns, in key order, as
    /// `IncrementalSpec::select_keys` reads them) and binds them as `?1..`.
    #[doc(hidden)]
    fn bind_key_row(
        row: &__private::SourceRow<'_>,
        statement: &mut __private::Statement<'_>,
    ) -> std::result::Result<(), __private::BindError>;
}

/// What generated code uses; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use rusqlite::Statement;
    use rusqlite::types::{ToSqlOutput, ValueRef};
    pub use tokio_postgres::types::Type;

    pub use crate::source::{DecodeError, SourceRow};
    use crate::spec::{MappingSpec, SourceSpec};
    use crate::value::{BoxError, Decode, Encode};

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
        /// A computed column's function returned an `Err`; `column` is its position
        /// in the target.
        Computed {
            /// Position of the column in the target.
            column: usize,
            /// The function's error, as text.
            message: String,
        },
        /// SQLite refused the parameter.
        Sqlite(rusqlite::Error),
        /// A key value could not be read from the source (`bind_key_row`).
        Decode(DecodeError),
    }

    impl From<DecodeError> for BindError {
        fn from(error: DecodeError) -> Self {
            BindError::Decode(error)
        }
    }

    /// Where generated code binds values: a rusqlite statement (text and blobs
    /// copied), or a full sync's `INSERT`, which takes text and blobs that live for
    /// `'v` without a copy.
    pub trait Bind<'v> {
        /// Binds `value`, which lives for `'v`, as parameter `parameter` (1-based).
        ///
        /// # Errors
        ///
        /// SQLite's.
        fn bind_borrowed(&mut self, parameter: usize, value: ValueRef<'v>) -> rusqlite::Result<()>;

        /// Binds `value`, copying it, as parameter `parameter` (1-based).
        ///
        /// # Errors
        ///
        /// SQLite's.
        fn bind_copied(&mut self, parameter: usize, value: ToSqlOutput<'_>)
        -> rusqlite::Result<()>;
    }

    /// One implementation for both statement types: data-sync's (bindings that borrow,
    /// for the full sync) and rusqlite's cached ones (every other write).
    macro_rules! bind_through_raw_parameters {
        ($($statement:ty),+) => {$(
            impl<'v> Bind<'v> for $statement {
                #[inline]
                fn bind_borrowed(
                    &mut self,
                    parameter: usize,
                    value: ValueRef<'v>,
                ) -> rusqlite::Result<()> {
                    self.raw_bind_parameter(parameter, ToSqlOutput::Borrowed(value))
                }

                #[inline]
                fn bind_copied(
                    &mut self,
                    parameter: usize,
                    value: ToSqlOutput<'_>,
                ) -> rusqlite::Result<()> {
                    self.raw_bind_parameter(parameter, value)
                }
            }
        )+};
    }

    bind_through_raw_parameters!(Statement<'_>, rusqlite::CachedStatement<'_>);

    /// A type a field can have: read from PostgreSQL and written to SQLite. The
    /// derive names every field's type once through [`assert_value`] at the top of
    /// each generated function, so that a type outside the type table is one error
    /// (rustc drops the `Decode`/`Encode` errors this one implies, and the identical
    /// copies from the other functions).
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not a type data-sync can sync",
        label = "not in the type table (docs/types.md)",
        note = "a field's type is one of i16, i32, i64, f32, f64, bool, String, Vec<u8>, or sync_runtime::value::{{Numeric, NumericReal, Uuid, UuidBlob, Timestamptz, Timestamp, UnixMicros, UnixSeconds, Date, Time, Json, Array, PgText}}, or an Option of one; any other type needs its own `sync_runtime::value::Decode` and `Encode` implementations"
    )]
    pub trait Value: Decode + Encode {}

    #[diagnostic::do_not_recommend]
    impl<T: Decode + Encode> Value for T {}

    /// Requires `T: Value`; see [`Value`].
    #[inline(always)]
    pub fn assert_value<T: Value>() {}

    /// Binds `value` as parameter `parameter` (1-based) for target column `column`.
    #[inline]
    pub fn bind<'v, T: Encode + ?Sized>(
        statement: &mut (impl Bind<'v> + ?Sized),
        parameter: usize,
        column: usize,
        value: &T,
    ) -> Result<(), BindError> {
        let encoded = value
            .encode()
            .map_err(|cause| BindError::Encode { column, cause })?;
        statement
            .bind_copied(parameter, encoded)
            .map_err(BindError::Sqlite)
    }

    /// What a transform (`with = "path::fn"`) or a computed column's function may
    /// return for a column of value type `T`: a `T`, or a `Result<T, E>` whose `Err`
    /// stops the run (`E: Display`).
    #[diagnostic::on_unimplemented(
        message = "a function for a column of type `{T}` returns `{Self}`",
        label = "this function returns `{Self}`",
        note = "a transform takes `&{T}`, a computed column's function the whole row (`&Self`); either returns `{T}`, or `Result<{T}, E>` with `E: Display`"
    )]
    pub trait TransformOutput<T> {
        /// The value, or the transform's error as text.
        fn into_value(self) -> Result<T, String>;
    }

    impl<T> TransformOutput<T> for T {
        #[inline]
        fn into_value(self) -> Result<T, String> {
            Ok(self)
        }
    }

    impl<T, E: std::fmt::Display> TransformOutput<T> for Result<T, E> {
        #[inline]
        fn into_value(self) -> Result<T, String> {
            self.map_err(|error| error.to_string())
        }
    }

    /// Binds the value a transform returned as parameter `parameter` (1-based) for
    /// target column `column`; an `Err` of the transform `path` is an encode error
    /// of that column, naming the transform.
    #[inline]
    pub fn bind_transformed<'v, T: Encode, O: TransformOutput<T>>(
        statement: &mut (impl Bind<'v> + ?Sized),
        parameter: usize,
        column: usize,
        path: &'static str,
        output: O,
    ) -> Result<(), BindError> {
        match output.into_value() {
            Ok(value) => bind(statement, parameter, column, &value),
            Err(message) => Err(BindError::Encode {
                column,
                cause: format!("transform `{path}` failed: {message}").into(),
            }),
        }
    }

    /// Binds the value a computed column's function returned as parameter
    /// `parameter` (1-based) for target column `column`; an `Err` of the function is
    /// a [`BindError::Computed`] of that column.
    #[inline]
    pub fn bind_computed<'v, T: Encode, O: TransformOutput<T>>(
        statement: &mut (impl Bind<'v> + ?Sized),
        parameter: usize,
        column: usize,
        output: O,
    ) -> Result<(), BindError> {
        match output.into_value() {
            Ok(value) => bind(statement, parameter, column, &value),
            Err(message) => Err(BindError::Computed { column, message }),
        }
    }

    /// Binds field `field` of the raw `row` (which passed [`Mapping::check`](crate::Mapping))
    /// as parameter `parameter` (1-based) for target column `column`, borrowing the
    /// bytes where `T`'s binary form is what SQLite stores.
    #[inline]
    pub fn bind_raw<'r, T: Decode + Encode>(
        statement: &mut (impl Bind<'r> + ?Sized),
        parameter: usize,
        column: usize,
        row: &SourceRow<'r>,
        field: usize,
    ) -> Result<(), BindError> {
        let ty = row.ty(field);
        let raw = row.raw(field);
        let encode_error = |cause| BindError::Encode { column, cause };
        match T::transcode(ty, raw) {
            Some(value) => statement.bind_borrowed(parameter, value.map_err(encode_error)?),
            None => {
                let value = T::decode(ty, raw).map_err(encode_error)?;
                statement.bind_copied(parameter, value.encode().map_err(encode_error)?)
            }
        }
        .map_err(BindError::Sqlite)
    }

    /// A row's key values as text, for messages.
    pub fn display_key(values: &[&dyn Encode]) -> String {
        use rusqlite::types::ValueRef;
        values
            .iter()
            .map(|value| match value.encode() {
                Ok(output) => match rusqlite::ToSql::to_sql(&output) {
                    Ok(rusqlite::types::ToSqlOutput::Borrowed(value)) => {
                        crate::value::display_value(value)
                    }
                    Ok(rusqlite::types::ToSqlOutput::Owned(value)) => {
                        crate::value::display_value(ValueRef::from(&value))
                    }
                    _ => "?".to_owned(),
                },
                Err(_) => "?".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
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
            partition_by: None,
            select: "",
            incremental: None,
            capture: None,
            filter: None,
        },
        targets: &[],
        fingerprint: "",
    };
}
