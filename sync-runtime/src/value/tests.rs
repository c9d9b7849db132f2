use tokio_postgres::types::Type;

use super::numeric::numeric_text;
use super::*;

/// A binary `numeric` from its header words and base-10000 digits.
fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
    let mut raw = Vec::new();
    for word in [digits.len() as u16, weight.cast_unsigned(), sign, dscale]
        .into_iter()
        .chain(digits.iter().copied())
    {
        raw.extend_from_slice(&word.to_be_bytes());
    }
    raw
}

#[test]
fn numeric_prints_every_digit_and_its_scale() {
    assert_eq!(numeric_text(&numeric(0, 0, 0, &[])).unwrap(), "0");
    assert_eq!(numeric_text(&numeric(0, 0, 2, &[])).unwrap(), "0.00");
    assert_eq!(
        numeric_text(&numeric(0, 0x4000, 2, &[1, 5000])).unwrap(),
        "-1.50"
    );
    assert_eq!(numeric_text(&numeric(-1, 0, 4, &[1])).unwrap(), "0.0001");
    assert_eq!(
        numeric_text(&numeric(1, 0, 0, &[12, 3456])).unwrap(),
        "123456"
    );
    assert_eq!(numeric_text(&numeric(2, 0, 0, &[1])).unwrap(), "100000000");
    assert_eq!(
        numeric_text(&numeric(-2, 0, 9, &[1234])).unwrap(),
        "0.000012340"
    );
    assert_eq!(numeric_text(&numeric(0, 0xC000, 0, &[])).unwrap(), "NaN");
    assert_eq!(
        numeric_text(&numeric(0, 0xD000, 0, &[])).unwrap(),
        "Infinity"
    );
    assert_eq!(
        numeric_text(&numeric(0, 0xF000, 0, &[])).unwrap(),
        "-Infinity"
    );
    assert!(numeric_text(&numeric(0, 0, 0, &[10_000])).is_err());
    assert!(numeric_text(&[0, 1]).is_err());
}

#[test]
fn integers_widen_and_narrow_checked() {
    let raw = 3_000_000_000i64.to_be_bytes();
    assert_eq!(i64::decode(&Type::INT8, Some(&raw)).unwrap(), 3_000_000_000);
    let error = i32::decode(&Type::INT8, Some(&raw))
        .unwrap_err()
        .to_string();
    assert_eq!(error, "int8 value 3000000000 is out of range for `i32`");
    assert_eq!(
        i64::decode(&Type::INT2, Some(&7i16.to_be_bytes())).unwrap(),
        7
    );
    assert!(i64::decode(&Type::INT8, None).is_err());
    assert_eq!(Option::<i64>::decode(&Type::INT8, None).unwrap(), None);
}

#[test]
fn nan_has_no_real_form() {
    let error = f64::NAN.encode().unwrap_err().to_string();
    assert!(error.starts_with("NaN has no SQLite REAL form"), "{error}");
    assert!(f64::INFINITY.encode().is_ok());
}

#[test]
fn invalid_utf8_names_the_byte() {
    let error = String::decode(&Type::TEXT, Some(b"ab\xffc"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("byte 0xff at offset 2"), "{error}");
}

#[test]
fn uuid_prints_lowercase_hyphenated() {
    let raw: Vec<u8> = (0..16).map(|n| n * 17).collect();
    let uuid = Uuid::decode(&Type::UUID, Some(&raw)).unwrap();
    assert_eq!(uuid.to_string(), "00112233-4455-6677-8899-aabbccddeeff");
}

#[test]
fn jsonb_drops_its_version_byte() {
    let json = Json::decode(&Type::JSONB, Some(b"\x01{\"a\": 1}")).unwrap();
    assert_eq!(json.as_str(), "{\"a\": 1}");
    assert!(Json::decode(&Type::JSONB, Some(b"\x02{}")).is_err());
}

#[test]
fn arrays_nest_per_dimension_with_nulls() {
    let mut raw = Vec::new();
    for word in [2i32, 1, 23, 2, 1, 2, 1] {
        raw.extend_from_slice(&word.to_be_bytes());
    }
    for element in [Some(1i32), None, Some(-3), Some(4)] {
        match element {
            Some(value) => {
                raw.extend_from_slice(&4i32.to_be_bytes());
                raw.extend_from_slice(&value.to_be_bytes());
            }
            None => raw.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let array = Array::decode(&Type::INT4_ARRAY, Some(&raw)).unwrap();
    assert_eq!(array.as_str(), "[[1,null],[-3,4]]");
    let empty = [0i32, 0, 23]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect::<Vec<_>>();
    assert_eq!(
        Array::decode(&Type::INT4_ARRAY, Some(&empty))
            .unwrap()
            .as_str(),
        "[]"
    );
    assert!(Array::accepts(&Type::TEXT_ARRAY));
    assert!(!Array::accepts(&Type::POINT_ARRAY));
    assert!(!Array::accepts(&Type::INT4));
}
