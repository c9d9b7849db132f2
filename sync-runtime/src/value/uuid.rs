//! `uuid`: lowercase hyphenated text by default, the 16 bytes on request.

use std::fmt;

use rusqlite::types::{ToSqlOutput, ValueRef};
use tokio_postgres::types::Type;

use super::{BoxError, Decode, Encode, fixed, non_null, text};

/// A `uuid`, written as lowercase hyphenated TEXT
/// (`a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`), the form PostgreSQL prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

/// A `uuid` written as its 16 bytes in a BLOB: the opt-in for compact keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UuidBlob(pub [u8; 16]);

impl Decode for Uuid {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        fixed(ty, non_null(raw)?).map(Uuid)
    }
}

impl Decode for UuidBlob {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        fixed(ty, non_null(raw)?).map(UuidBlob)
    }
}

impl Uuid {
    /// The lowercase hyphenated text, built from a table: a full sync writes one per
    /// row and target, and `{:02x}` per byte cost several thousand instructions each.
    fn hyphenated(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(36);
        for (index, byte) in self.0.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                text.push('-');
            }
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        text
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hyphenated())
    }
}

impl Encode for Uuid {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        Ok(text(self.hyphenated()))
    }
}

impl Encode for UuidBlob {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Blob(&self.0)))
    }
}
