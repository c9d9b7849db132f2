//! `numeric`: exact decimal text by default, a double on request.

use rusqlite::types::ToSqlOutput;
use tokio_postgres::types::Type;

use super::{BoxError, Decode, Encode, non_null, real, text_value};

/// A `numeric` value as PostgreSQL prints it: every digit of any precision and
/// scale (`0.10` keeps its scale), `NaN`, `Infinity`, `-Infinity`; written as TEXT.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Numeric(String);

text_value!(Numeric);

impl Decode for Numeric {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    fn decode(_: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        numeric_text(non_null(raw)?).map(Numeric)
    }
}

/// A `numeric` value rounded to the nearest double and written as REAL: the opt-in
/// for columns used in arithmetic. `NaN` has no REAL form and stops the run, as does
/// a finite value beyond the range of a double; `Infinity` stays infinite.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct NumericReal(pub f64);

impl Decode for NumericReal {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    fn decode(_: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        let text = numeric_text(non_null(raw)?)?;
        let value = match text.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            finite => {
                let value: f64 = finite.parse()?;
                if value.is_infinite() {
                    return Err(
                        format!("numeric {finite} is beyond the range of a REAL (double)").into(),
                    );
                }
                value
            }
        };
        Ok(NumericReal(value))
    }
}

impl Encode for NumericReal {
    fn encode(&self) -> Result<ToSqlOutput<'_>, BoxError> {
        real(self.0)
    }
}

const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;
const POSITIVE_INFINITY: u16 = 0xD000;
const NEGATIVE_INFINITY: u16 = 0xF000;

/// The text `numeric_out` prints for a binary `numeric`: `ndigits`, `weight`, `sign`
/// and `dscale` (16 bits each), then `ndigits` base-10000 digits, the first of which
/// has weight `weight`.
pub(super) fn numeric_text(raw: &[u8]) -> Result<String, BoxError> {
    let word = |index: usize| -> Result<u16, BoxError> {
        raw.get(index * 2..index * 2 + 2)
            .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
            .ok_or_else(|| "truncated numeric value".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(1)?.cast_signed());
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    if raw.len() != 8 + 2 * ndigits {
        return Err(format!(
            "a numeric with {ndigits} digits must be {} bytes, got {}",
            8 + 2 * ndigits,
            raw.len()
        )
        .into());
    }
    match sign {
        NAN => return Ok("NaN".to_owned()),
        POSITIVE_INFINITY => return Ok("Infinity".to_owned()),
        NEGATIVE_INFINITY => return Ok("-Infinity".to_owned()),
        POSITIVE | NEGATIVE => {}
        other => return Err(format!("invalid numeric sign 0x{other:04x}").into()),
    }
    let mut digits = Vec::with_capacity(ndigits);
    for index in 0..ndigits {
        let digit = word(4 + index)?;
        if digit > 9999 {
            return Err(format!("invalid numeric digit {digit}").into());
        }
        digits.push(digit);
    }
    // The base-10000 digit of weight `weight - position`, zero outside the stored ones.
    let digit_at = |position: i64| -> u16 {
        usize::try_from(position)
            .ok()
            .and_then(|position| digits.get(position).copied())
            .unwrap_or(0)
    };

    let mut text = String::with_capacity(4 * ndigits + dscale + 8);
    if sign == NEGATIVE {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for position in 0..=weight {
            let digit = digit_at(position);
            if position == 0 {
                push_leading(&mut text, digit);
            } else {
                push_four(&mut text, digit);
            }
        }
    }
    if dscale > 0 {
        text.push('.');
        let start = text.len();
        let mut position = weight + 1;
        while text.len() - start < dscale {
            push_four(&mut text, digit_at(position));
            position += 1;
        }
        text.truncate(start + dscale);
    }
    Ok(text)
}

/// Appends the base-10000 digit `digit` (at most 9999) as four decimal digits: no
/// `fmt` machinery per digit, since every numeric of every row comes here.
fn push_four(text: &mut String, digit: u16) {
    for divisor in [1000, 100, 10, 1] {
        text.push(char::from(b'0' + (digit / divisor % 10) as u8));
    }
}

/// Appends the leading base-10000 digit without leading zeros (`0` for zero).
fn push_leading(text: &mut String, digit: u16) {
    let mut started = false;
    for divisor in [1000, 100, 10, 1] {
        let decimal = digit / divisor % 10;
        if decimal != 0 || started || divisor == 1 {
            started = true;
            text.push(char::from(b'0' + decimal as u8));
        }
    }
}
