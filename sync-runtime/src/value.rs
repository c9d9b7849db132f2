//! How values travel: [`Decode`] reads a field from PostgreSQL's binary format,
//! [`Encode`] writes it into a SQLite column, following the type table of
//! `docs/types.md`.
//!
//! | PostgreSQL | Rust field | SQLite |
//! |---|---|---|
//! | `smallint`, `integer`, `bigint` | `i16`, `i32`, `i64` (any of them, range-checked) | `INTEGER` |
//! | `real`, `double precision` | `f32` (`real`), `f64` (both) | `REAL` |
//! | `numeric` | [`Numeric`] / [`NumericReal`] | `TEXT` / `REAL` |
//! | `boolean` | `bool` | `INTEGER` 0 / 1 |
//! | `text`, `varchar`, `char`, `name`, `citext`, enums | `String` | `TEXT` |
//! | `bytea` | `Vec<u8>` | `BLOB` |
//! | `uuid` | [`Uuid`] / [`UuidBlob`] | `TEXT` / `BLOB` |
//! | `timestamptz` | [`Timestamptz`] / [`UnixMicros`] / [`UnixSeconds`] | `TEXT` / `INTEGER` |
//! | `timestamp` | [`Timestamp`] / [`UnixMicros`] / [`UnixSeconds`] | `TEXT` / `INTEGER` |
//! | `date`, `time` | [`Date`], [`Time`] | `TEXT` |
//! | `json`, `jsonb` | [`Json`] | `TEXT` |
//! | arrays | [`Array`] | `TEXT` (a JSON array) |
//! | `interval` (selected as `::text`), `inet`, `cidr` | [`PgText`] | `TEXT` |

use std::error::Error as StdError;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use tokio_postgres::types::{Kind, Type};

mod array;
mod float;
mod json;
mod network;
mod numeric;
mod time;
mod uuid;

pub use self::array::Array;
pub use self::json::{Json, PgText};
pub use self::numeric::{Numeric, NumericReal};
pub use self::time::{Date, Time, Timestamp, Timestamptz, UnixMicros, UnixSeconds};
pub use self::uuid::{Uuid, UuidBlob};

/// Why one value could not be decoded or encoded.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A Rust type a source column can be read into, from PostgreSQL's binary format.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read from PostgreSQL by data-sync",
    label = "no `sync_runtime::value::Decode` for this type",
    note = "use a type from the type table (i64, String, Vec<u8>, sync_runtime::value::*) or implement `Decode`"
)]
pub trait Decode: Sized {
    /// Whether a column of PostgreSQL type `ty` can be read into `Self`.
    fn accepts(ty: &Type) -> bool;

    /// Reads a value; `raw` is `None` for SQL NULL.
    ///
    /// # Errors
    ///
    /// When the bytes are not a valid value of `ty`, or NULL for a non-`Option` type.
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError>;

    /// Checks that `raw` decodes, without keeping the value: the reader of a full
    /// sync checks each raw row before the writer binds it with [`Decode::transcode`].
    ///
    /// # Errors
    ///
    /// Exactly when [`Decode::decode`] fails.
    #[doc(hidden)]
    fn check(ty: &Type, raw: Option<&[u8]>) -> Result<(), BoxError> {
        Self::decode(ty, raw).map(drop)
    }

    /// The SQLite value of `raw`, which passed [`Decode::check`], borrowed from it
    /// where the binary form is what SQLite stores; `None` where the value must be
    /// decoded and encoded.
    #[doc(hidden)]
    fn transcode<'a>(ty: &Type, raw: Option<&'a [u8]>) -> Option<Result<ValueRef<'a>, BoxError>> {
        let _ = (ty, raw);
        None
    }
}

/// A Rust type that can be written into a SQLite column of a STRICT table.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be written to SQLite by data-sync",
    label = "no `sync_runtime::value::Encode` for this type",
    note = "use a type from the type table (i64, String, Vec<u8>, sync_runtime::value::*) or implement `Encode`"
)]
pub trait Encode {
    /// The value as SQLite stores it.
    ///
    /// # Errors
    ///
    /// When the value has no SQLite form (a NaN float, say).
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError>;
}

/// The error for NULL in a column whose field is not an `Option`.
fn unexpected_null() -> BoxError {
    "unexpected NULL: make the field an `Option`".into()
}

fn non_null(raw: Option<&[u8]>) -> Result<&[u8], BoxError> {
    raw.ok_or_else(unexpected_null)
}

/// `raw` as UTF-8 text. A `SQL_ASCII` database hands over whatever bytes were stored.
fn utf8(raw: &[u8]) -> Result<&str, BoxError> {
    // The SIMD check is several times faster on non-ASCII text; the standard one
    // runs only to describe invalid input.
    if let Ok(text) = simdutf8::basic::from_utf8(raw) {
        return Ok(text);
    }
    std::str::from_utf8(raw).map_err(|error| {
        let offset = error.valid_up_to();
        format!(
            "text is not valid UTF-8 (byte 0x{:02x} at offset {offset}); a `SQL_ASCII` database stores bytes unchecked: fix the data or read the column as `bytea`",
            raw[offset]
        )
        .into()
    })
}

/// Checks that `raw` is UTF-8 text, as [`utf8`] does, without building the `&str`.
/// ASCII, most short text, is told word by word: both UTF-8 checks fall back to
/// the standard one, byte by byte, below 64 bytes.
fn check_utf8(raw: &[u8]) -> Result<(), BoxError> {
    if raw.is_ascii() {
        Ok(())
    } else {
        utf8(raw).map(drop)
    }
}

/// `raw` as exactly `N` bytes.
fn fixed<const N: usize>(ty: &Type, raw: &[u8]) -> Result<[u8; N], BoxError> {
    raw.try_into().map_err(|_| {
        format!(
            "a `{}` value must be {N} bytes, got {}",
            ty.name(),
            raw.len()
        )
        .into()
    })
}

fn text(value: String) -> ToSqlOutput<'static> {
    ToSqlOutput::Owned(Value::Text(value))
}

impl<T: Decode> Decode for Option<T> {
    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        match raw {
            None => Ok(None),
            Some(raw) => T::decode(ty, Some(raw)).map(Some),
        }
    }

    fn check(ty: &Type, raw: Option<&[u8]>) -> Result<(), BoxError> {
        match raw {
            None => Ok(()),
            Some(raw) => T::check(ty, Some(raw)),
        }
    }

    fn transcode<'a>(ty: &Type, raw: Option<&'a [u8]>) -> Option<Result<ValueRef<'a>, BoxError>> {
        match raw {
            None => Some(Ok(ValueRef::Null)),
            Some(raw) => T::transcode(ty, Some(raw)),
        }
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        match self {
            None => Ok(ToSqlOutput::Owned(Value::Null)),
            Some(value) => value.encode(),
        }
    }
}

/// Whether `ty` is `smallint`, `integer` or `bigint`.
fn is_integer(ty: &Type) -> bool {
    matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8)
}

/// A `smallint`, `integer` or `bigint` value, widened to `i64`.
fn decode_integer(ty: &Type, raw: &[u8]) -> Result<i64, BoxError> {
    Ok(match *ty {
        Type::INT2 => i64::from(i16::from_be_bytes(fixed(ty, raw)?)),
        Type::INT4 => i64::from(i32::from_be_bytes(fixed(ty, raw)?)),
        _ => i64::from_be_bytes(fixed(ty, raw)?),
    })
}

// Every Rust integer reads every PostgreSQL integer type: widening is exact, and a
// narrower field checks each value, so a value that does not fit stops the run
// instead of wrapping.
macro_rules! integer {
    ($($ty:ty),*) => {$(
        impl Decode for $ty {
            fn accepts(ty: &Type) -> bool {
                is_integer(ty)
            }

            fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
                let value = decode_integer(ty, non_null(raw)?)?;
                <$ty>::try_from(value).map_err(|_| {
                    format!(
                        "{} value {value} is out of range for `{}`",
                        ty.name(),
                        stringify!($ty)
                    )
                    .into()
                })
            }
        }

        impl Encode for $ty {
            fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
                Ok(ToSqlOutput::Owned(Value::Integer(i64::from(*self))))
            }
        }
    )*};
}

integer!(i16, i32, i64);

impl Decode for bool {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::BOOL
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        let [byte] = fixed(ty, non_null(raw)?)?;
        Ok(byte != 0)
    }
}

impl Encode for bool {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        Ok(ToSqlOutput::Owned(Value::Integer(i64::from(*self))))
    }
}

impl Decode for f32 {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::FLOAT4
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        Ok(f32::from_be_bytes(fixed(ty, non_null(raw)?)?))
    }
}

impl Decode for f64 {
    /// `double precision`, and `real` widened exactly.
    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::FLOAT4 | Type::FLOAT8)
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        let raw = non_null(raw)?;
        if *ty == Type::FLOAT4 {
            return Ok(f64::from(f32::from_be_bytes(fixed(ty, raw)?)));
        }
        Ok(f64::from_be_bytes(fixed(ty, raw)?))
    }
}

/// A float as SQLite's REAL: every float but NaN (SQLite turns NaN into NULL).
/// A `real` is widened to the double of exactly the same value.
fn real(value: f64) -> Result<ToSqlOutput<'static>, BoxError> {
    if value.is_nan() {
        return Err("NaN has no SQLite REAL form (SQLite stores it as NULL)".into());
    }
    Ok(ToSqlOutput::Owned(Value::Real(value)))
}

impl Encode for f32 {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        real(f64::from(*self))
    }
}

impl Encode for f64 {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        real(*self)
    }
}

/// Whether `ty` is a type whose binary form is its UTF-8 text: `text`, `varchar`,
/// `char(n)` (padding kept), `name`, `citext`, or an enum (its label).
fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    ) || ty.name() == "citext"
        || matches!(ty.kind(), Kind::Enum(_))
}

impl Decode for String {
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    fn decode(_: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        utf8(non_null(raw)?).map(str::to_owned)
    }

    fn check(_: &Type, raw: Option<&[u8]>) -> Result<(), BoxError> {
        check_utf8(non_null(raw)?)
    }

    /// The bytes as they are: [`Decode::check`] has found them UTF-8.
    fn transcode<'a>(_: &Type, raw: Option<&'a [u8]>) -> Option<Result<ValueRef<'a>, BoxError>> {
        Some(non_null(raw).map(ValueRef::Text))
    }
}

impl Encode for String {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_bytes())))
    }
}

impl Decode for Vec<u8> {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::BYTEA
    }

    fn decode(_: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        Ok(non_null(raw)?.to_vec())
    }

    fn check(_: &Type, raw: Option<&[u8]>) -> Result<(), BoxError> {
        non_null(raw).map(drop)
    }

    fn transcode<'a>(_: &Type, raw: Option<&'a [u8]>) -> Option<Result<ValueRef<'a>, BoxError>> {
        Some(non_null(raw).map(ValueRef::Blob))
    }
}

impl Encode for Vec<u8> {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Blob(self)))
    }
}

/// A string value type: `Clone`, comparisons, `Display`, `as_str`, `Encode` as TEXT.
macro_rules! text_value {
    ($name:ident) => {
        impl $name {
            /// The text written to SQLite.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text written to SQLite.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl $crate::value::Encode for $name {
            fn encode(
                &self,
            ) -> Result<::rusqlite::types::ToSqlOutput<'_>, $crate::value::BoxError> {
                Ok(::rusqlite::types::ToSqlOutput::Borrowed(
                    ::rusqlite::types::ValueRef::Text(self.0.as_bytes()),
                ))
            }
        }
    };
}
pub(crate) use text_value;

#[cfg(test)]
mod tests;

/// A SQLite value as text for a message or report: numbers as they are, text quoted,
/// blobs as hex.
pub(crate) fn display_value(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(integer) => integer.to_string(),
        ValueRef::Real(real) => real.to_string(),
        ValueRef::Text(text) => format!("{:?}", String::from_utf8_lossy(text)),
        ValueRef::Blob(blob) => blob.iter().map(|byte| format!("{byte:02x}")).collect(),
    }
}
