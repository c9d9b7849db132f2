//! Dates and times, from PostgreSQL's binary form: microseconds (`timestamp`,
//! `timestamptz`, `time`) or days (`date`) since 2000-01-01, with the extreme values
//! meaning `infinity` / `-infinity`.
//!
//! The calendar arithmetic is written here rather than taken from chrono because
//! PostgreSQL's range (4713 BC to 294276 AD for timestamps, 5874897 AD for dates)
//! reaches beyond chrono's (year 262142).

use std::fmt::{self, Write};

use rusqlite::types::{ToSqlOutput, Value};
use tokio_postgres::types::Type;

use super::{BoxError, Decode, Encode, fixed, non_null, text};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// Days from 1970-01-01 to PostgreSQL's epoch 2000-01-01.
const EPOCH_DAYS: i64 = 10_957;
/// Microseconds from the Unix epoch to PostgreSQL's.
const EPOCH_MICROS: i64 = EPOCH_DAYS * MICROS_PER_DAY;

/// A `timestamp with time zone`, written as RFC 3339 text in UTC with `Z` and always
/// six fractional digits (`2024-05-01T12:30:00.000000Z`), so the text sorts as the
/// instants do; `infinity` and `-infinity` as PostgreSQL spells them. Years outside
/// 0000-9999 use ISO 8601's expanded form (`+10000`, `-0001` for 2 BC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamptz(i64);

/// A `timestamp without time zone`, written as ISO 8601 text without offset and with
/// six fractional digits (`2024-05-01T12:30:00.000000`); infinities as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

/// A `date`, written as ISO 8601 text (`2024-05-01`); infinities as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(i32);

/// A `time without time zone`, written as ISO 8601 text with six fractional digits
/// (`12:30:00.000000`; PostgreSQL allows `24:00:00.000000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Time(i64);

impl Timestamptz {
    /// Microseconds since 2000-01-01 00:00:00 UTC, PostgreSQL's own representation;
    /// `i64::MAX` and `i64::MIN` are `infinity` and `-infinity`.
    pub fn pg_micros(self) -> i64 {
        self.0
    }
}

impl Timestamp {
    /// Microseconds since 2000-01-01 00:00:00, PostgreSQL's own representation;
    /// `i64::MAX` and `i64::MIN` are `infinity` and `-infinity`.
    pub fn pg_micros(self) -> i64 {
        self.0
    }
}

impl Date {
    /// Days since 2000-01-01; `i32::MAX` and `i32::MIN` are `infinity` and `-infinity`.
    pub fn pg_days(self) -> i32 {
        self.0
    }
}

impl Time {
    /// Microseconds since midnight.
    pub fn micros(self) -> i64 {
        self.0
    }
}

fn decode_micros(ty: &Type, raw: Option<&[u8]>) -> Result<i64, BoxError> {
    Ok(i64::from_be_bytes(fixed(ty, non_null(raw)?)?))
}

impl Decode for Timestamptz {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        decode_micros(ty, raw).map(Timestamptz)
    }
}

impl Decode for Timestamp {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMP
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        decode_micros(ty, raw).map(Timestamp)
    }
}

impl Decode for Date {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        Ok(Date(i32::from_be_bytes(fixed(ty, non_null(raw)?)?)))
    }
}

impl Decode for Time {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIME
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        let micros = decode_micros(ty, raw)?;
        if !(0..=MICROS_PER_DAY).contains(&micros) {
            return Err(format!("time value {micros} µs is outside a day").into());
        }
        Ok(Time(micros))
    }
}

impl Timestamptz {
    fn write_to(&self, f: &mut impl Write) -> fmt::Result {
        write_timestamp(f, self.0, "Z")
    }
}

impl Timestamp {
    fn write_to(&self, f: &mut impl Write) -> fmt::Result {
        write_timestamp(f, self.0, "")
    }
}

impl Date {
    fn write_to(&self, f: &mut impl Write) -> fmt::Result {
        match self.0 {
            i32::MAX => f.write_str("infinity"),
            i32::MIN => f.write_str("-infinity"),
            days => write_date(f, i64::from(days)),
        }
    }
}

impl Time {
    fn write_to(&self, f: &mut impl Write) -> fmt::Result {
        write_time(f, self.0)
    }
}

macro_rules! encode_display {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.write_to(f)
            }
        }

        impl Encode for $ty {
            fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
                // Straight into a `String`: no `Formatter` between the digits and it.
                let mut out = String::with_capacity(32);
                self.write_to(&mut out)?;
                Ok(text(out))
            }
        }
    )*};
}

encode_display!(Timestamptz, Timestamp, Date, Time);

/// `2024-05-01T12:30:00.000000` plus `zone`, or an infinity.
fn write_timestamp(f: &mut impl Write, micros: i64, zone: &str) -> fmt::Result {
    match micros {
        i64::MAX => f.write_str("infinity"),
        i64::MIN => f.write_str("-infinity"),
        micros => {
            write_date(f, micros.div_euclid(MICROS_PER_DAY))?;
            f.write_char('T')?;
            write_time(f, micros.rem_euclid(MICROS_PER_DAY))?;
            f.write_str(zone)
        }
    }
}

/// `12:30:00.000000`.
fn write_time(f: &mut impl Write, micros: i64) -> fmt::Result {
    let seconds = (micros / MICROS_PER_SECOND).unsigned_abs();
    write_padded(f, seconds / 3600, 2)?;
    f.write_char(':')?;
    write_padded(f, seconds / 60 % 60, 2)?;
    f.write_char(':')?;
    write_padded(f, seconds % 60, 2)?;
    f.write_char('.')?;
    write_padded(f, (micros % MICROS_PER_SECOND).unsigned_abs(), 6)
}

/// `2024-05-01` for `days` since 2000-01-01, proleptic Gregorian with astronomical
/// year numbering (ISO 8601: 1 BC is year 0000).
fn write_date(f: &mut impl Write, days: i64) -> fmt::Result {
    let (year, month, day) = civil_from_days(days + EPOCH_DAYS);
    match year {
        0..=9999 => write_padded(f, year.unsigned_abs(), 4)?,
        10_000.. => {
            f.write_char('+')?;
            write_padded(f, year.unsigned_abs(), 1)?;
        }
        _ => {
            f.write_char('-')?;
            write_padded(f, year.unsigned_abs(), 4)?;
        }
    }
    f.write_char('-')?;
    write_padded(f, u64::from(month), 2)?;
    f.write_char('-')?;
    write_padded(f, u64::from(day), 2)
}

/// Writes `value` in decimal, zero-padded to at least `width` (at most 20) digits:
/// what `{:0width$}` does, without the `fmt` machinery that cost a full sync about
/// as much per timestamp as SQLite's insert of it.
fn write_padded(f: &mut impl Write, value: u64, width: usize) -> fmt::Result {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let start = start.min(digits.len() - width.min(digits.len()));
    for &digit in &digits[start..] {
        f.write_char(char::from(digit))?;
    }
    Ok(())
}

/// Year, month, day of `days` since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are small by construction: 1..=31 and 1..=12.
    (year, month as u32, day as u32)
}

/// A `timestamptz` (the instant) or `timestamp` (its wall-clock time read as UTC),
/// written as INTEGER microseconds since 1970-01-01 00:00:00 UTC: the opt-in for
/// columns compared or computed on as numbers. Infinities have no Unix time and stop
/// the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnixMicros(pub i64);

/// As [`UnixMicros`], in whole seconds: the sub-second part is dropped (rounded
/// toward the past, as `date_trunc('second', ..)` does), which is the precision this
/// opt-in asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnixSeconds(pub i64);

fn unix_micros(ty: &Type, raw: Option<&[u8]>) -> Result<i64, BoxError> {
    let micros = decode_micros(ty, raw)?;
    match micros {
        i64::MAX | i64::MIN => Err(format!(
            "{} has no Unix time: read the column as `{}` to keep it as text",
            if micros == i64::MAX {
                "infinity"
            } else {
                "-infinity"
            },
            if *ty == Type::TIMESTAMPTZ {
                "Timestamptz"
            } else {
                "Timestamp"
            }
        )
        .into()),
        micros => micros
            .checked_add(EPOCH_MICROS)
            .ok_or_else(|| "timestamp is beyond the range of Unix microseconds".into()),
    }
}

impl Decode for UnixMicros {
    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TIMESTAMPTZ | Type::TIMESTAMP)
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        unix_micros(ty, raw).map(UnixMicros)
    }
}

impl Decode for UnixSeconds {
    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TIMESTAMPTZ | Type::TIMESTAMP)
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        let micros = decode_micros(ty, raw)?;
        if micros == i64::MAX || micros == i64::MIN {
            unix_micros(ty, Some(&micros.to_be_bytes()))?;
        }
        // Seconds since 2000 plus the epoch offset cannot overflow.
        Ok(UnixSeconds(
            micros.div_euclid(MICROS_PER_SECOND) + EPOCH_MICROS / MICROS_PER_SECOND,
        ))
    }
}

impl Encode for UnixMicros {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        Ok(ToSqlOutput::Owned(Value::Integer(self.0)))
    }
}

impl Encode for UnixSeconds {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        Ok(ToSqlOutput::Owned(Value::Integer(self.0)))
    }
}

/// The scalar text form of a date/time element of an array.
pub(super) fn write_element(out: &mut String, ty: &Type, raw: &[u8]) -> Result<bool, BoxError> {
    match *ty {
        Type::TIMESTAMPTZ => write!(out, "{}", Timestamptz::decode(ty, Some(raw))?)?,
        Type::TIMESTAMP => write!(out, "{}", Timestamp::decode(ty, Some(raw))?)?,
        Type::DATE => write!(out, "{}", Date::decode(ty, Some(raw))?)?,
        Type::TIME => write!(out, "{}", Time::decode(ty, Some(raw))?)?,
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(EPOCH_DAYS), (2000, 1, 1));
        assert_eq!(civil_from_days(-719_528), (0, 1, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }

    #[test]
    fn timestamps_print_like_rfc_3339() {
        assert_eq!(Timestamptz(0).to_string(), "2000-01-01T00:00:00.000000Z");
        assert_eq!(Timestamptz(-1).to_string(), "1999-12-31T23:59:59.999999Z");
        assert_eq!(Timestamptz(i64::MAX).to_string(), "infinity");
        assert_eq!(Timestamp(i64::MIN).to_string(), "-infinity");
        assert_eq!(Date(i32::MAX).to_string(), "infinity");
        assert_eq!(Date(-730_850).to_string(), "-0001-01-01");
        assert_eq!(Time(MICROS_PER_DAY).to_string(), "24:00:00.000000");
    }
}
