//! Floats as PostgreSQL prints them (`float4out` / `float8out` with the default
//! `extra_float_digits = 1`): the shortest text that reads back as the same float,
//! fixed-point for decimal exponents from -4 up to 5 (`real`) or 14 (`double
//! precision`), otherwise `1.5e+20`; `NaN`, `Infinity`, `-Infinity`, `-0`.

/// `value` as `float8out` prints it.
pub(super) fn float8_text(value: f64) -> String {
    format_shortest(
        value.is_nan(),
        value.is_infinite(),
        value.is_sign_negative(),
        &format!("{value:e}"),
        15,
    )
}

/// `value` as `float4out` prints it.
pub(super) fn float4_text(value: f32) -> String {
    format_shortest(
        value.is_nan(),
        value.is_infinite(),
        value.is_sign_negative(),
        &format!("{value:e}"),
        6,
    )
}

/// Rewrites Rust's shortest round-trip `LowerExp` form (`-1.25e-7`) as PostgreSQL
/// does, switching to exponent notation at decimal exponent `fixed_limit`.
fn format_shortest(
    nan: bool,
    infinite: bool,
    negative: bool,
    exponent_form: &str,
    fixed_limit: i32,
) -> String {
    if nan {
        return "NaN".to_owned();
    }
    if infinite {
        return if negative { "-Infinity" } else { "Infinity" }.to_owned();
    }
    let unsigned = exponent_form.trim_start_matches('-');
    let (mantissa, exponent) = unsigned.split_once('e').unwrap_or((unsigned, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut text = String::with_capacity(digits.len() + 8);
    if negative {
        text.push('-');
    }
    if digits == "0" {
        text.push('0');
        return text;
    }
    let length = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if (-4..fixed_limit).contains(&exponent) {
        if exponent < 0 {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
            text.push_str(&digits);
        } else if length <= exponent + 1 {
            text.push_str(&digits);
            text.extend(std::iter::repeat_n('0', (exponent + 1 - length) as usize));
        } else {
            let (whole, fraction) = digits.split_at(exponent as usize + 1);
            text.push_str(whole);
            text.push('.');
            text.push_str(fraction);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        text.push_str(first);
        if !rest.is_empty() {
            text.push('.');
            text.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        text.push_str(&format!("e{sign}{:02}", exponent.unsigned_abs()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(float8_text(0.1), "0.1");
        assert_eq!(float8_text(-0.0), "-0");
        assert_eq!(float8_text(1.0), "1");
        assert_eq!(float8_text(123_456_789_012_345.0), "123456789012345");
        assert_eq!(float8_text(1e15), "1e+15");
        assert_eq!(float8_text(1.5e-5), "1.5e-05");
        assert_eq!(float8_text(0.000_123), "0.000123");
        assert_eq!(float8_text(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(float8_text(5e-324), "5e-324");
        assert_eq!(float4_text(100_000.0), "100000");
        assert_eq!(float4_text(1_000_000.0), "1e+06");
        assert_eq!(float4_text(0.1), "0.1");
        assert_eq!(float4_text(f32::NEG_INFINITY), "-Infinity");
    }
}
