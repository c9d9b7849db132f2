//! Arrays, one- or multi-dimensional, as JSON arrays.

use tokio_postgres::types::{Kind, Type};

use super::float::{float4_text, float8_text};
use super::json::json_text;
use super::network::{is_network, network_text};
use super::numeric::numeric_text;
use super::{
    BoxError, Decode, decode_integer, fixed, is_integer, is_text, non_null, text_value, utf8,
};

/// An array of any dimension, written as TEXT holding a JSON array, nested per
/// dimension (`[[1,2],[3,null]]`; an empty array is `[]`; lower bounds other than 1
/// are not kept). Elements are rendered as PostgreSQL's `to_json` renders them, except
/// where that would lose exactness or differ from the scalar form:
///
/// - integers, `real`, `double precision`: JSON numbers (`NaN`, `Infinity`,
///   `-Infinity` as strings, as `to_json` does);
/// - `numeric`: JSON strings of the exact decimal text (`"0.10"`, `"NaN"`), since
///   JSON readers (SQLite's `json_extract` among them) turn numbers into doubles;
/// - `boolean`: `true` / `false`; text types and enums: strings;
/// - `bytea`: `"\\x0102"` strings, as `to_json` does;
/// - `uuid`, `timestamptz`, `timestamp`, `date`, `time`: strings in the scalar form
///   of this module ([`super::Timestamptz`] and so on);
/// - `json`, `jsonb`: the JSON value itself;
/// - `interval`, `inet`, `cidr`: strings of their text form (the SELECT casts
///   `interval[]` to `text[]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Array(String);

text_value!(Array);

impl Decode for Array {
    fn accepts(ty: &Type) -> bool {
        match ty.kind() {
            Kind::Array(element) => element_supported(element),
            _ => false,
        }
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        let mut out = String::with_capacity(raw.map_or(0, <[u8]>::len) * 2 + 2);
        write_array(&mut out, ty, raw)?;
        Ok(Array(out))
    }

    /// What `decode` checks, without writing the JSON: the reader of a full sync
    /// checks every value, and the writer decodes it once more to bind it.
    fn check(ty: &Type, raw: Option<&[u8]>) -> Result<(), BoxError> {
        write_array(&mut Discard, ty, raw)
    }
}

/// Where an array's JSON goes: a `String`, or nowhere when only checked.
trait Out {
    fn push(&mut self, character: char);
    fn push_str(&mut self, text: &str);
    fn push_display(&mut self, value: impl std::fmt::Display);
    /// Runs `write` on the `String`, or on an empty one that is dropped.
    fn with_string<R>(&mut self, write: impl FnOnce(&mut String) -> R) -> R;
}

impl Out for String {
    fn push(&mut self, character: char) {
        String::push(self, character);
    }

    fn push_str(&mut self, text: &str) {
        String::push_str(self, text);
    }

    fn push_display(&mut self, value: impl std::fmt::Display) {
        use std::fmt::Write as _;
        let _ = write!(self, "{value}");
    }

    fn with_string<R>(&mut self, write: impl FnOnce(&mut String) -> R) -> R {
        write(self)
    }
}

/// Checks without writing.
struct Discard;

impl Out for Discard {
    fn push(&mut self, _: char) {}

    fn push_str(&mut self, _: &str) {}

    fn push_display(&mut self, _: impl std::fmt::Display) {}

    fn with_string<R>(&mut self, write: impl FnOnce(&mut String) -> R) -> R {
        write(&mut String::new())
    }
}

/// The JSON of a binary array, or why it has none.
fn write_array(out: &mut impl Out, ty: &Type, raw: Option<&[u8]>) -> Result<(), BoxError> {
    {
        let Kind::Array(element) = ty.kind() else {
            return Err(format!("`{}` is not an array type", ty.name()).into());
        };
        let mut reader = Reader(non_null(raw)?);
        let dimensions = reader.i32()?;
        let _has_nulls = reader.i32()?;
        let _element_oid = reader.i32()?;
        let mut lengths = Vec::new();
        for _ in 0..dimensions {
            let length = usize::try_from(reader.i32()?)
                .map_err(|_| BoxError::from("negative array dimension"))?;
            let _lower_bound = reader.i32()?;
            lengths.push(length);
        }
        if lengths.is_empty() {
            out.push_str("[]");
        } else {
            write_dimension(out, &mut reader, element, &lengths)?;
        }
        if !reader.0.is_empty() {
            return Err("trailing bytes after the array elements".into());
        }
        Ok(())
    }
}

fn element_supported(ty: &Type) -> bool {
    is_integer(ty)
        || is_text(ty)
        || is_network(ty)
        || matches!(
            *ty,
            Type::FLOAT4
                | Type::FLOAT8
                | Type::NUMERIC
                | Type::BOOL
                | Type::BYTEA
                | Type::UUID
                | Type::TIMESTAMPTZ
                | Type::TIMESTAMP
                | Type::DATE
                | Type::TIME
                | Type::JSON
                | Type::JSONB
        )
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], BoxError> {
        if self.0.len() < length {
            return Err("truncated array value".into());
        }
        let (head, rest) = self.0.split_at(length);
        self.0 = rest;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, BoxError> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

fn write_dimension(
    out: &mut impl Out,
    reader: &mut Reader<'_>,
    element: &Type,
    lengths: &[usize],
) -> Result<(), BoxError> {
    out.push('[');
    for index in 0..lengths[0] {
        if index > 0 {
            out.push(',');
        }
        if lengths.len() > 1 {
            write_dimension(out, reader, element, &lengths[1..])?;
        } else {
            let length = reader.i32()?;
            if length < 0 {
                out.push_str("null");
            } else {
                let raw = reader.take(usize::try_from(length).unwrap_or(0))?;
                write_element(out, element, raw)?;
            }
        }
    }
    out.push(']');
    Ok(())
}

fn write_element(out: &mut impl Out, ty: &Type, raw: &[u8]) -> Result<(), BoxError> {
    if is_integer(ty) {
        out.push_display(decode_integer(ty, raw)?);
        return Ok(());
    }
    if is_text(ty) {
        write_string(out, utf8(raw)?);
        return Ok(());
    }
    if is_network(ty) {
        write_string(out, &network_text(ty, raw)?);
        return Ok(());
    }
    match *ty {
        Type::FLOAT4 => write_number(out, &float4_text(f32::from_be_bytes(fixed(ty, raw)?))),
        Type::FLOAT8 => write_number(out, &float8_text(f64::from_be_bytes(fixed(ty, raw)?))),
        Type::NUMERIC => write_string(out, &numeric_text(raw)?),
        Type::BOOL => out.push_str(if bool::decode(ty, Some(raw))? {
            "true"
        } else {
            "false"
        }),
        Type::BYTEA => {
            out.push_str("\"\\\\x");
            for byte in raw {
                out.push_display(format_args!("{byte:02x}"));
            }
            out.push('"');
        }
        Type::UUID => write_string(out, &super::Uuid::decode(ty, Some(raw))?.to_string()),
        Type::JSON | Type::JSONB => out.push_str(json_text(ty, raw)?),
        _ => {
            out.push('"');
            if !out.with_string(|out| super::time::write_element(out, ty, raw))? {
                return Err(format!("arrays of `{}` are not supported", ty.name()).into());
            }
            out.push('"');
        }
    }
    Ok(())
}

/// A float's text as a JSON number, or as a string when it is `NaN` or infinite.
fn write_number(out: &mut impl Out, text: &str) {
    if text.ends_with("NaN") || text.ends_with("Infinity") {
        write_string(out, text);
    } else {
        out.push_str(text);
    }
}

/// `text` as a JSON string, escaped as PostgreSQL's `escape_json` does.
fn write_string(out: &mut impl Out, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            control if u32::from(control) < 0x20 => {
                out.push_display(format_args!("\\u{:04x}", u32::from(control)));
            }
            other => out.push(other),
        }
    }
    out.push('"');
}
