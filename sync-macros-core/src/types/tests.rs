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

#[test]
fn integers_read_every_integer_type() {
    assert_eq!(resolve(None, "i32"), Resolved::Type(PgType::Integer));
    assert_eq!(
        resolve(Some("bigint"), "i32"),
        Resolved::Type(PgType::BigInt)
    );
    assert_eq!(
        resolve(Some("smallint"), "i64"),
        Resolved::Type(PgType::SmallInt)
    );
    assert_eq!(resolve(Some("real"), "f64"), Resolved::Type(PgType::Real));
    assert_eq!(
        resolve(Some("double precision"), "f32"),
        Resolved::Mismatch(&[PgType::Real])
    );
}

#[test]
fn opt_in_rust_types_choose_the_sqlite_type() {
    let cases = [
        (
            "numeric",
            ":: sync_runtime :: value :: Numeric",
            SqliteType::Text,
        ),
        (
            "numeric",
            ":: sync_runtime :: value :: NumericReal",
            SqliteType::Real,
        ),
        (
            "numeric",
            "Option < value :: NumericReal >",
            SqliteType::Real,
        ),
        ("timestamptz", "Timestamptz", SqliteType::Text),
        ("timestamptz", "UnixMicros", SqliteType::Integer),
        ("timestamp", "Option < UnixSeconds >", SqliteType::Integer),
        ("uuid", "Uuid", SqliteType::Text),
        ("uuid", "UuidBlob", SqliteType::Blob),
        ("bigint", "i32", SqliteType::Integer),
        ("integer[]", "Array", SqliteType::Text),
    ];
    for (declared, rust_type, expected) in cases {
        let Resolved::Type(pg_type) = resolve(Some(declared), rust_type) else {
            panic!("{declared} / {rust_type} does not resolve");
        };
        assert_eq!(sqlite_type(&pg_type, rust_type), expected, "{rust_type}");
    }
    assert_eq!(
        resolve(Some("numeric"), "UnixMicros"),
        Resolved::Mismatch(&[PgType::Timestamptz, PgType::Timestamp])
    );
    assert_eq!(resolve(None, "UuidBlob"), Resolved::Type(PgType::Uuid));
}

#[test]
fn text_form_types_are_cast_in_the_select() {
    assert_eq!(PgType::Interval.select_cast(), Some("text"));
    assert_eq!(PgType::Cidr.select_cast(), None);
    assert_eq!(
        PgType::Array(Box::new(PgType::Interval)).select_cast(),
        Some("text[]")
    );
    assert_eq!(PgType::Array(Box::new(PgType::Integer)).select_cast(), None);
    assert_eq!(PgType::Timestamptz.select_cast(), None);
}

#[test]
fn every_type_table_row_has_a_rust_type_that_reads_it() {
    for spelling in [
        "smallint",
        "integer",
        "bigint",
        "real",
        "double precision",
        "numeric",
        "boolean",
        "text",
        "character varying(3)",
        "character(3)",
        "citext",
        "name",
        "enum",
        "bytea",
        "uuid",
        "timestamptz",
        "timestamp",
        "date",
        "time",
        "json",
        "jsonb",
        "interval",
        "inet",
        "cidr",
        "integer[]",
        "text[]",
        "interval[]",
    ] {
        let pg_type = parse_pg_type(spelling).unwrap();
        let rust_type = pg_type.rust_type();
        assert_eq!(
            resolve(Some(spelling), rust_type),
            Resolved::Type(pg_type.clone()),
            "{spelling}"
        );
        assert_eq!(sqlite_type(&pg_type, rust_type), pg_type.sqlite_type());
    }
}
