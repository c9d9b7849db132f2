//! How values travel: [`Decode`] reads a field from PostgreSQL's binary format,
//! [`Encode`] writes it into a SQLite column, following DESIGN.md's type table.

use std::error::Error as StdError;

use postgres::types::{FromSql, Kind, Type};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

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

fn non_null<'a>(raw: Option<&'a [u8]>) -> Result<&'a [u8], BoxError> {
    raw.ok_or_else(unexpected_null)
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
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        match self {
            None => Ok(ToSqlOutput::Owned(Value::Null)),
            Some(value) => value.encode(),
        }
    }
}

/// Decode through the postgres crate's own `FromSql`, for types whose binary format it
/// already reads exactly.
macro_rules! decode_via_from_sql {
    ($($ty:ty),*) => {$(
        impl Decode for $ty {
            fn accepts(ty: &Type) -> bool {
                <$ty as FromSql>::accepts(ty)
            }

            fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
                <$ty as FromSql>::from_sql(ty, non_null(raw)?)
            }
        }
    )*};
}

decode_via_from_sql!(i16, i32, i64, f32, f64, bool, Vec<u8>);

impl Decode for String {
    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty) || matches!(ty.kind(), Kind::Enum(_))
    }

    fn decode(_: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        match std::str::from_utf8(non_null(raw)?) {
            Ok(text) => Ok(text.to_owned()),
            Err(error) => Err(format!("text is not valid UTF-8: {error}").into()),
        }
    }
}

macro_rules! encode_integer {
    ($($ty:ty),*) => {$(
        impl Encode for $ty {
            fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
                Ok(ToSqlOutput::Owned(Value::Integer(i64::from(*self))))
            }
        }
    )*};
}

encode_integer!(i16, i32, i64, bool);

macro_rules! encode_float {
    ($($ty:ty),*) => {$(
        impl Encode for $ty {
            fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
                if self.is_nan() {
                    return Err("NaN has no SQLite form".into());
                }
                Ok(ToSqlOutput::Owned(Value::Real(f64::from(*self))))
            }
        }
    )*};
}

encode_float!(f32, f64);

impl Encode for String {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_bytes())))
    }
}

impl Encode for Vec<u8> {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Blob(self)))
    }
}
