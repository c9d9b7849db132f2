//! The incremental watermark: the `(cursor, key)` of the last row a run applied,
//! kept type-agnostically as PostgreSQL's binary form of each value (read with
//! [`RawField`], sent back as a parameter with [`RawValue`]), plus the overlap
//! window that re-reads a margin below it.

use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days between the Unix epoch and PostgreSQL's.
const PG_EPOCH_DAYS: i64 = 10_957;
/// The overlap of a time-typed cursor when none is given.
pub(crate) const DEFAULT_TIME_OVERLAP: Duration = Duration::from_secs(300);

/// Any column, as its raw binary value: `None` for NULL. Lets a `postgres::Row` read
/// through a binary portal become a `SourceRow` for the generated decoder.
pub(crate) struct RawField<'a>(pub(crate) Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawField<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawField(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawField(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// One non-NULL value in PostgreSQL's binary form, with the OID of its type; sent
/// back as a parameter of exactly that type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawValue {
    pub(crate) oid: u32,
    pub(crate) bytes: Vec<u8>,
}

impl ToSql for RawValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if ty.oid() != self.oid {
            return Err(format!(
                "a watermark value of type oid {} sent as `{}`",
                self.oid,
                ty.name()
            )
            .into());
        }
        out.extend_from_slice(&self.bytes);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// The `(cursor, key..)` a run has applied every row up to, in `(cursor, key)` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Watermark {
    /// The cursor, then the key columns.
    pub(crate) values: Vec<RawValue>,
    /// Their types, for display.
    types: Vec<Type>,
}

impl Watermark {
    /// The watermark of a row whose trailing fields (cursor, key) are `fields`;
    /// `None` when one is NULL.
    pub(crate) fn from_fields(types: &[Type], fields: &[Option<&[u8]>]) -> Option<Watermark> {
        let values = types
            .iter()
            .zip(fields)
            .map(|(ty, field)| {
                field.map(|bytes| RawValue {
                    oid: ty.oid(),
                    bytes: bytes.to_vec(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Watermark {
            values,
            types: types.to_vec(),
        })
    }

    /// The stored form: per value, the type OID (u32), the length (u32) and the bytes,
    /// big-endian, as in PostgreSQL's own binary formats.
    pub(crate) fn to_blob(&self) -> Vec<u8> {
        let mut blob = Vec::new();
        for value in &self.values {
            blob.extend(value.oid.to_be_bytes());
            blob.extend(
                u32::try_from(value.bytes.len())
                    .unwrap_or(u32::MAX)
                    .to_be_bytes(),
            );
            blob.extend(&value.bytes);
        }
        blob
    }

    /// Reads [`Watermark::to_blob`]'s form; `None` when it is malformed.
    pub(crate) fn from_blob(mut blob: &[u8]) -> Option<Watermark> {
        let mut values = Vec::new();
        while !blob.is_empty() {
            let oid = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?);
            let length = u32::from_be_bytes(blob.get(4..8)?.try_into().ok()?) as usize;
            let bytes = blob.get(8..8 + length)?.to_vec();
            blob = &blob[8 + length..];
            values.push(RawValue { oid, bytes });
        }
        let types = values
            .iter()
            .map(|value| Type::from_oid(value.oid).unwrap_or(Type::UNKNOWN))
            .collect();
        Some(Watermark { values, types })
    }

    /// The cursor value as a person reads it.
    pub(crate) fn display_cursor(&self) -> String {
        display(&self.types[0], &self.values[0].bytes)
    }

    /// The key values as a person reads them, as a JSON array.
    pub(crate) fn display_key(&self) -> String {
        let key: Vec<serde_json::Value> = self.types[1..]
            .iter()
            .zip(&self.values[1..])
            .map(|(ty, value)| match integer(ty, &value.bytes) {
                Some(number) => serde_json::Value::from(number),
                None => serde_json::Value::from(display(ty, &value.bytes)),
            })
            .collect();
        serde_json::Value::from(key).to_string()
    }
}

/// An integer value of `ty`, if it is one.
fn integer(ty: &Type, bytes: &[u8]) -> Option<i64> {
    match *ty {
        Type::INT2 => Some(i16::from_be_bytes(bytes.try_into().ok()?).into()),
        Type::INT4 => Some(i32::from_be_bytes(bytes.try_into().ok()?).into()),
        Type::INT8 => Some(i64::from_be_bytes(bytes.try_into().ok()?)),
        _ => None,
    }
}

/// A raw value as text: numbers, times (UTC, RFC 3339), text and UUIDs as such,
/// anything else as `\x` and hex (PostgreSQL's `bytea` form).
pub(crate) fn display(ty: &Type, bytes: &[u8]) -> String {
    if let Some(number) = integer(ty, bytes) {
        return number.to_string();
    }
    let text = match *ty {
        Type::TIMESTAMPTZ | Type::TIMESTAMP => <[u8; 8]>::try_from(bytes).ok().map(|array| {
            let micros = i64::from_be_bytes(array);
            match micros {
                i64::MAX => "infinity".to_owned(),
                i64::MIN => "-infinity".to_owned(),
                _ => {
                    chrono::DateTime::from_timestamp_micros(micros.saturating_add(PG_EPOCH_MICROS))
                        .map_or_else(
                            || micros.to_string(),
                            |time| {
                                if *ty == Type::TIMESTAMPTZ {
                                    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                                } else {
                                    time.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
                                }
                            },
                        )
                }
            }
        }),
        Type::DATE => {
            <[u8; 4]>::try_from(bytes)
                .ok()
                .map(|array| match i32::from_be_bytes(array) {
                    i32::MAX => "infinity".to_owned(),
                    i32::MIN => "-infinity".to_owned(),
                    days => chrono::DateTime::from_timestamp(
                        (i64::from(days) + PG_EPOCH_DAYS) * 86_400,
                        0,
                    )
                    .map_or_else(|| days.to_string(), |time| time.date_naive().to_string()),
                })
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            std::str::from_utf8(bytes).ok().map(str::to_owned)
        }
        Type::UUID => <[u8; 16]>::try_from(bytes).ok().map(|array| {
            let hex: String = array.iter().map(|byte| format!("{byte:02x}")).collect();
            format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            )
        }),
        _ => None,
    };
    text.unwrap_or_else(|| {
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("\\x{hex}")
    })
}

/// How far below the watermark's cursor an incremental run starts reading again, so
/// that rows of transactions that committed late are not missed.
///
/// Parsed from `--overlap`: a duration (`90s`, `5m`, `1h`, `500ms`, `2d`) for time
/// cursors (`timestamptz`, `timestamp`, `date`), a plain number for integer cursors
/// (that many cursor values; for a time cursor, seconds). `0` turns it off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// A plain number.
    Number(u64),
    /// A number with a time unit.
    Duration(Duration),
}

impl Overlap {
    /// Whether the overlap is zero.
    pub fn is_zero(&self) -> bool {
        match self {
            Overlap::Number(number) => *number == 0,
            Overlap::Duration(duration) => duration.is_zero(),
        }
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overlap::Number(number) => write!(f, "{number}"),
            Overlap::Duration(duration) => write!(f, "{}ms", duration.as_millis()),
        }
    }
}

impl FromStr for Overlap {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|character: char| !character.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let number: u64 = digits.parse().map_err(|_| {
            format!(
                "`{text}` is not an overlap: give a number, or a duration like `90s`, `5m`, `1h`"
            )
        })?;
        let unit_micros: u64 = match unit.trim() {
            "" => return Ok(Overlap::Number(number)),
            "us" => 1,
            "ms" => 1_000,
            "s" | "sec" | "secs" | "seconds" => 1_000_000,
            "m" | "min" | "mins" | "minutes" => 60_000_000,
            "h" | "hour" | "hours" => 3_600_000_000,
            "d" | "day" | "days" => 86_400_000_000,
            other => {
                return Err(format!(
                    "unknown unit `{other}` in overlap `{text}`: use us, ms, s, m, h or d"
                ));
            }
        };
        let micros = number
            .checked_mul(unit_micros)
            .ok_or_else(|| format!("overlap `{text}` is too large"))?;
        Ok(Overlap::Duration(Duration::from_micros(micros)))
    }
}

/// The lower bound of an incremental read: the watermark's cursor less the overlap,
/// in the cursor's binary form; `None` when the overlap is zero (read strictly after
/// the watermark).
///
/// # Errors
///
/// A message when the cursor's type has no arithmetic for the overlap asked for.
pub(crate) fn lower_bound(
    overlap: Option<Overlap>,
    cursor_column: &str,
    ty: &Type,
    cursor: &RawValue,
) -> Result<Option<RawValue>, String> {
    let is_time = matches!(*ty, Type::TIMESTAMPTZ | Type::TIMESTAMP | Type::DATE);
    let is_integer = matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8);
    let overlap = match overlap {
        Some(overlap) => overlap,
        None if is_time => Overlap::Duration(DEFAULT_TIME_OVERLAP),
        None => return Ok(None),
    };
    if overlap.is_zero() {
        return Ok(None);
    }
    let bytes = cursor.bytes.as_slice();
    let malformed = || format!("the stored watermark of cursor `{cursor_column}` is malformed");
    let lowered = if is_time {
        let micros = match overlap {
            Overlap::Number(seconds) => seconds.saturating_mul(1_000_000),
            Overlap::Duration(duration) => u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
        };
        let micros = i64::try_from(micros).unwrap_or(i64::MAX);
        if *ty == Type::DATE {
            let value = i32::from_be_bytes(bytes.try_into().map_err(|_| malformed())?);
            if value == i32::MAX || value == i32::MIN {
                return Ok(None);
            }
            // Whole days, rounded up, and never below the type's range.
            let days = micros.saturating_add(86_399_999_999) / 86_400_000_000;
            let lowered = (i64::from(value) - days).max(i64::from(i32::MIN) + 1);
            i32::try_from(lowered)
                .map_err(|_| malformed())?
                .to_be_bytes()
                .to_vec()
        } else {
            let value = i64::from_be_bytes(bytes.try_into().map_err(|_| malformed())?);
            if value == i64::MAX || value == i64::MIN {
                return Ok(None);
            }
            // PostgreSQL's earliest timestamp, 4713 BC, in its microseconds.
            let earliest = -211_813_488_000_000_000;
            value
                .saturating_sub(micros)
                .max(earliest)
                .to_be_bytes()
                .to_vec()
        }
    } else if is_integer {
        let Overlap::Number(count) = overlap else {
            return Err(format!(
                "`--overlap {overlap}` is a duration, but cursor `{cursor_column}` is `{}`: give a number of cursor values, e.g. `--overlap 1000`",
                ty.name()
            ));
        };
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        match *ty {
            Type::INT2 => {
                let value = i16::from_be_bytes(bytes.try_into().map_err(|_| malformed())?);
                let lowered = (i64::from(value) - count).max(i64::from(i16::MIN));
                i16::try_from(lowered)
                    .map_err(|_| malformed())?
                    .to_be_bytes()
                    .to_vec()
            }
            Type::INT4 => {
                let value = i32::from_be_bytes(bytes.try_into().map_err(|_| malformed())?);
                let lowered = (i64::from(value) - count).max(i64::from(i32::MIN));
                i32::try_from(lowered)
                    .map_err(|_| malformed())?
                    .to_be_bytes()
                    .to_vec()
            }
            _ => {
                let value = i64::from_be_bytes(bytes.try_into().map_err(|_| malformed())?);
                value.saturating_sub(count).to_be_bytes().to_vec()
            }
        }
    } else {
        return Err(format!(
            "cursor `{cursor_column}` is `{}`, which has no arithmetic for `--overlap {overlap}`; pass `--overlap 0`",
            ty.name()
        ));
    };
    Ok(Some(RawValue {
        oid: cursor.oid,
        bytes: lowered,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(ty: &Type, bytes: Vec<u8>) -> RawValue {
        RawValue {
            oid: ty.oid(),
            bytes,
        }
    }

    #[test]
    fn overlap_parses_numbers_and_durations() {
        assert_eq!("0".parse(), Ok(Overlap::Number(0)));
        assert_eq!("1000".parse(), Ok(Overlap::Number(1000)));
        assert_eq!(
            "5m".parse(),
            Ok(Overlap::Duration(Duration::from_secs(300)))
        );
        assert_eq!(
            "90 s".parse(),
            Ok(Overlap::Duration(Duration::from_secs(90)))
        );
        assert_eq!(
            "250ms".parse(),
            Ok(Overlap::Duration(Duration::from_millis(250)))
        );
        assert!("5 fortnights".parse::<Overlap>().is_err());
        assert!("-5".parse::<Overlap>().is_err());
    }

    #[test]
    fn lower_bound_subtracts_in_the_cursor_type() {
        let cursor = raw(&Type::INT8, 100i64.to_be_bytes().to_vec());
        let lowered = lower_bound(Some(Overlap::Number(30)), "v", &Type::INT8, &cursor)
            .unwrap()
            .unwrap();
        assert_eq!(lowered.bytes, 70i64.to_be_bytes());
        assert_eq!(lower_bound(None, "v", &Type::INT8, &cursor), Ok(None));
        assert!(lower_bound(Some("5m".parse().unwrap()), "v", &Type::INT8, &cursor).is_err());

        let cursor = raw(&Type::TIMESTAMPTZ, 1_000_000_000i64.to_be_bytes().to_vec());
        let lowered = lower_bound(None, "t", &Type::TIMESTAMPTZ, &cursor)
            .unwrap()
            .unwrap();
        assert_eq!(
            lowered.bytes,
            (1_000_000_000i64 - 300_000_000).to_be_bytes()
        );
        let infinity = raw(&Type::TIMESTAMPTZ, i64::MAX.to_be_bytes().to_vec());
        assert_eq!(
            lower_bound(None, "t", &Type::TIMESTAMPTZ, &infinity),
            Ok(None)
        );

        let cursor = raw(&Type::DATE, 10i32.to_be_bytes().to_vec());
        let lowered = lower_bound(Some("1h".parse().unwrap()), "d", &Type::DATE, &cursor)
            .unwrap()
            .unwrap();
        assert_eq!(lowered.bytes, 9i32.to_be_bytes());

        let text = raw(&Type::TEXT, b"x".to_vec());
        assert_eq!(lower_bound(None, "s", &Type::TEXT, &text), Ok(None));
        assert!(lower_bound(Some(Overlap::Number(1)), "s", &Type::TEXT, &text).is_err());
    }

    #[test]
    fn watermark_round_trips_and_displays() {
        let types = [Type::TIMESTAMPTZ, Type::INT8, Type::TEXT];
        let time = 0i64.to_be_bytes();
        let id = 42i64.to_be_bytes();
        let fields = [Some(&time[..]), Some(&id[..]), Some(&b"a\"b"[..])];
        let watermark = Watermark::from_fields(&types, &fields).unwrap();
        let read = Watermark::from_blob(&watermark.to_blob()).unwrap();
        assert_eq!(read, watermark);
        assert_eq!(read.display_cursor(), "2000-01-01T00:00:00.000000Z");
        assert_eq!(read.display_key(), r#"[42,"a\"b"]"#);
        assert!(Watermark::from_fields(&types, &[None, Some(&id[..]), None]).is_none());
        assert!(Watermark::from_blob(&[0, 0, 0, 20, 0, 0, 0, 9, 1]).is_none());
    }
}
