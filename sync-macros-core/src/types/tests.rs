use super::*;

#[test]
fn parses_format_type_spellings_and_aliases() {
    assert_eq!(parse_pg_type("bigint"), Some(PgType::BigInt));
    assert_eq!(parse_pg_type("INT8"), Some(PgType::BigInt));
    assert_eq!(parse_pg_type("character varying(40)"), Some(PgType::Text));
    assert_eq!(parse_pg_type("varchar"), Some(PgType::Text));
    assert_eq!(parse_pg_type("double  precision"), Some(PgType::Double));
    assert_eq!(parse_pg_type("numeric(40, 10)"), Some(PgType::Numeric));
    assert_eq!(
        parse_pg_type("timestamp(3) with time zone"),
        Some(PgType::Timestamptz)
    );
    assert_eq!(parse_pg_type("timestamptz"), Some(PgType::Timestamptz));
    assert_eq!(
        parse_pg_type("timestamp without time zone"),
        Some(PgType::Timestamp)
    );
    assert_eq!(
        parse_pg_type("integer[]"),
        Some(PgType::Array(Box::new(PgType::Integer)))
    );
    assert_eq!(
        parse_pg_type("text[][]"),
        Some(PgType::Array(Box::new(PgType::Text)))
    );
    assert_eq!(parse_pg_type("enum"), Some(PgType::Enum));
    assert_eq!(parse_pg_type("geometry"), None);
    assert_eq!(parse_pg_type("time with time zone"), None);
    assert_eq!(parse_pg_type("numeric(1"), None);
    assert_eq!(parse_pg_type(""), None);
}

#[test]
fn sqlite_types_follow_the_type_table() {
    assert_eq!(PgType::BigInt.sqlite_type(), SqliteType::Integer);
    assert_eq!(PgType::Boolean.sqlite_type(), SqliteType::Integer);
    assert_eq!(PgType::Double.sqlite_type(), SqliteType::Real);
    assert_eq!(PgType::Numeric.sqlite_type(), SqliteType::Text);
    assert_eq!(PgType::Bytea.sqlite_type(), SqliteType::Blob);
    assert_eq!(
        PgType::Array(Box::new(PgType::Integer)).sqlite_type(),
        SqliteType::Text
    );
}

#[test]
fn resolves_declared_and_inferred_types() {
    assert_eq!(resolve(None, "i64"), Resolved::Type(PgType::BigInt));
    assert_eq!(
        resolve(None, "Option < String >"),
        Resolved::Type(PgType::Text)
    );
    assert_eq!(resolve(None, "Vec < u8 >"), Resolved::Type(PgType::Bytea));
    assert_eq!(
        resolve(None, ":: sync_runtime :: value :: Numeric"),
        Resolved::Type(PgType::Numeric)
    );
    assert_eq!(
        resolve(Some("character varying(40)"), "String"),
        Resolved::Type(PgType::Text)
    );
    assert_eq!(
        resolve(Some("enum"), "String"),
        Resolved::Type(PgType::Enum)
    );
    assert_eq!(resolve(Some("enum"), "Mood"), Resolved::Type(PgType::Enum));
    assert_eq!(
        resolve(Some("bigint"), "String"),
        Resolved::Mismatch(&[PgType::Text, PgType::Enum])
    );
    assert_eq!(resolve(Some("int9"), "i64"), Resolved::UnknownPgType);
    assert_eq!(resolve(None, "Mood"), Resolved::CannotInfer);
    assert_eq!(resolve(None, "Array"), Resolved::ArrayNeedsType);
    assert_eq!(
        resolve(
            Some("integer[]"),
            "Option < :: sync_runtime :: value :: Array >"
        ),
        Resolved::Type(PgType::Array(Box::new(PgType::Integer)))
    );
}

#[test]
fn option_inner_unwraps_only_option() {
    assert_eq!(option_inner("Option < String >"), Some("String"));
    assert_eq!(
        option_inner(":: std :: option :: Option < i64 >"),
        Some("i64")
    );
    assert_eq!(option_inner("String"), None);
    assert_eq!(option_inner("Vec < u8 >"), None);
}
