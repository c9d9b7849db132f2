//! `json` and `jsonb` as their JSON text, and the types written as PostgreSQL's
//! own text form.

use rusqlite::types::ValueRef;
use tokio_postgres::types::Type;

use super::network::{is_network, network_text};
use super::{BoxError, Decode, is_text, non_null, text_value, utf8};

/// A `json` or `jsonb` value, written as TEXT exactly as PostgreSQL prints it: `json`
/// keeps the text as it was entered, `jsonb` is PostgreSQL's normalized form
/// (`{"a": 1, "b": [2]}`, keys sorted by length then bytes, duplicates removed).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Json(String);

text_value!(Json);

/// The version byte that starts `jsonb`'s binary form.
const JSONB_VERSION: u8 = 1;

/// The JSON text of a binary `json` or `jsonb` value.
pub(super) fn json_text<'a>(ty: &Type, raw: &'a [u8]) -> Result<&'a str, BoxError> {
    if *ty == Type::JSONB {
        match raw.split_first() {
            Some((&JSONB_VERSION, rest)) => utf8(rest),
            Some((version, _)) => Err(format!("unknown jsonb format version {version}").into()),
            None => Err("empty jsonb value".into()),
        }
    } else {
        utf8(raw)
    }
}

impl Decode for Json {
    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        json_text(ty, non_null(raw)?).map(|json| Json(json.to_owned()))
    }

    fn check(ty: &Type, raw: Option<&[u8]>) -> Result<(), BoxError> {
        json_text(ty, non_null(raw)?).map(drop)
    }

    /// The JSON text where it lies in the binary form (after `jsonb`'s version byte).
    fn transcode<'a>(ty: &Type, raw: Option<&'a [u8]>) -> Option<Result<ValueRef<'a>, BoxError>> {
        Some(
            non_null(raw)
                .and_then(|raw| json_text(ty, raw))
                .map(|json| ValueRef::Text(json.as_bytes())),
        )
    }
}

/// A value written as PostgreSQL's text form, as its output function prints it:
/// `interval`, which the generated SELECT casts to `text` (`"col"::text`), printed in
/// the `postgres` IntervalStyle (`1 year 2 mons 3 days 04:05:06`), which data-sync
/// sets for its session so that a server or role default cannot change it; and
/// `inet` and `cidr` (`192.168.0.1/24`, `::1`), read in their binary form, since a cast
/// to `text` would add `/32` to every host address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PgText(String);

text_value!(PgText);

impl Decode for PgText {
    fn accepts(ty: &Type) -> bool {
        is_text(ty) || is_network(ty)
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        let raw = non_null(raw)?;
        if is_network(ty) {
            return network_text(ty, raw).map(PgText);
        }
        utf8(raw).map(|text| PgText(text.to_owned()))
    }
}
