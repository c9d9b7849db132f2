//! Must-compile cases (serde's `test_gen.rs`): one mapping per row of the type
//! table, each with the type as a plain field and as an `Option`, checked for the
//! SQLite column type and nullability it generates, and for the SELECT cast of the
//! types read as text.

#![allow(dead_code)]

use sync_runtime::Mapping;
use sync_runtime::value::{
    Array, Date, Json, Numeric, NumericReal, PgText, Time, Timestamp, Timestamptz, UnixMicros,
    UnixSeconds, Uuid, UuidBlob,
};

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct SmallInt {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: i16,
    #[sync(to = "t")]
    maybe: Option<i16>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Integer {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: i32,
    #[sync(to = "t")]
    maybe: Option<i32>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct BigInt {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: i64,
    #[sync(to = "t")]
    maybe: Option<i64>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct NarrowedBigInt {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "bigint")]
    value: i32,
    #[sync(to = "t", type = "bigint")]
    maybe: Option<i32>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Real {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: f32,
    #[sync(to = "t")]
    maybe: Option<f32>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Double {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: f64,
    #[sync(to = "t")]
    maybe: Option<f64>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct WidenedReal {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "real")]
    value: f64,
    #[sync(to = "t", type = "real")]
    maybe: Option<f64>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct NumericText {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "numeric(40, 10)")]
    value: Numeric,
    #[sync(to = "t", type = "numeric(40, 10)")]
    maybe: Option<Numeric>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct NumericAsReal {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: NumericReal,
    #[sync(to = "t")]
    maybe: Option<NumericReal>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Boolean {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: bool,
    #[sync(to = "t")]
    maybe: Option<bool>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Text {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: String,
    #[sync(to = "t")]
    maybe: Option<String>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Varchar {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "character varying(40)")]
    value: String,
    #[sync(to = "t", type = "character varying(40)")]
    maybe: Option<String>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Bpchar {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "character(3)")]
    value: String,
    #[sync(to = "t", type = "character(3)")]
    maybe: Option<String>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Citext {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "citext")]
    value: String,
    #[sync(to = "t", type = "citext")]
    maybe: Option<String>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct PgName {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "name")]
    value: String,
    #[sync(to = "t", type = "name")]
    maybe: Option<String>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Enum {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "enum")]
    value: String,
    #[sync(to = "t", type = "enum")]
    maybe: Option<String>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Bytea {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: Vec<u8>,
    #[sync(to = "t")]
    maybe: Option<Vec<u8>>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct UuidText {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: Uuid,
    #[sync(to = "t")]
    maybe: Option<Uuid>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct UuidBytes {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: UuidBlob,
    #[sync(to = "t")]
    maybe: Option<UuidBlob>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct TimestamptzText {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: Timestamptz,
    #[sync(to = "t")]
    maybe: Option<Timestamptz>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct TimestamptzMicros {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "timestamp with time zone")]
    value: UnixMicros,
    #[sync(to = "t", type = "timestamp with time zone")]
    maybe: Option<UnixMicros>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct TimestampSeconds {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "timestamp without time zone")]
    value: UnixSeconds,
    #[sync(to = "t", type = "timestamp without time zone")]
    maybe: Option<UnixSeconds>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct TimestampText {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: Timestamp,
    #[sync(to = "t")]
    maybe: Option<Timestamp>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct DateText {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: Date,
    #[sync(to = "t")]
    maybe: Option<Date>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct TimeText {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: Time,
    #[sync(to = "t")]
    maybe: Option<Time>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct JsonText {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t")]
    value: Json,
    #[sync(to = "t")]
    maybe: Option<Json>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct JsonbText {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "jsonb")]
    value: Json,
    #[sync(to = "t", type = "jsonb")]
    maybe: Option<Json>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Interval {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "interval")]
    value: PgText,
    #[sync(to = "t", type = "interval")]
    maybe: Option<PgText>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Inet {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "inet")]
    value: PgText,
    #[sync(to = "t", type = "inet")]
    maybe: Option<PgText>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct Cidr {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "cidr")]
    value: PgText,
    #[sync(to = "t", type = "cidr")]
    maybe: Option<PgText>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct IntegerArray {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "integer[]")]
    value: Array,
    #[sync(to = "t", type = "integer[]")]
    maybe: Option<Array>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct TextMatrix {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "text[][]")]
    value: Array,
    #[sync(to = "t", type = "text[][]")]
    maybe: Option<Array>,
}

#[derive(Mapping)]
#[sync(from = "t", key = "id")]
struct IntervalArray {
    #[sync(to = "t", primary_key)]
    id: i64,
    #[sync(to = "t", type = "interval[]")]
    value: Array,
    #[sync(to = "t", type = "interval[]")]
    maybe: Option<Array>,
}

/// A generated column: its SQLite type, NOT NULL flag and PostgreSQL type.
type Generated = (&'static str, bool, &'static str);

/// The generated `value` and `maybe` columns.
fn columns<M: Mapping>() -> [Generated; 2] {
    let spec = M::SPEC;
    let target = &spec.targets[0];
    let column = |index: usize| {
        let column = &target.columns[index];
        (
            column.sqlite_type,
            column.not_null,
            spec.source.columns[column.field.expect("a fed column")].pg_type,
        )
    };
    [column(1), column(2)]
}

#[test]
fn every_type_table_row_compiles_to_its_sqlite_type() {
    let cases: &[(&str, [Generated; 2], &str)] = &[
        ("SmallInt", columns::<SmallInt>(), "INTEGER"),
        ("Integer", columns::<Integer>(), "INTEGER"),
        ("BigInt", columns::<BigInt>(), "INTEGER"),
        ("NarrowedBigInt", columns::<NarrowedBigInt>(), "INTEGER"),
        ("Real", columns::<Real>(), "REAL"),
        ("Double", columns::<Double>(), "REAL"),
        ("WidenedReal", columns::<WidenedReal>(), "REAL"),
        ("NumericText", columns::<NumericText>(), "TEXT"),
        ("NumericAsReal", columns::<NumericAsReal>(), "REAL"),
        ("Boolean", columns::<Boolean>(), "INTEGER"),
        ("Text", columns::<Text>(), "TEXT"),
        ("Varchar", columns::<Varchar>(), "TEXT"),
        ("Bpchar", columns::<Bpchar>(), "TEXT"),
        ("Citext", columns::<Citext>(), "TEXT"),
        ("PgName", columns::<PgName>(), "TEXT"),
        ("Enum", columns::<Enum>(), "TEXT"),
        ("Bytea", columns::<Bytea>(), "BLOB"),
        ("UuidText", columns::<UuidText>(), "TEXT"),
        ("UuidBytes", columns::<UuidBytes>(), "BLOB"),
        ("TimestamptzText", columns::<TimestamptzText>(), "TEXT"),
        (
            "TimestamptzMicros",
            columns::<TimestamptzMicros>(),
            "INTEGER",
        ),
        ("TimestampSeconds", columns::<TimestampSeconds>(), "INTEGER"),
        ("TimestampText", columns::<TimestampText>(), "TEXT"),
        ("DateText", columns::<DateText>(), "TEXT"),
        ("TimeText", columns::<TimeText>(), "TEXT"),
        ("JsonText", columns::<JsonText>(), "TEXT"),
        ("JsonbText", columns::<JsonbText>(), "TEXT"),
        ("Interval", columns::<Interval>(), "TEXT"),
        ("Inet", columns::<Inet>(), "TEXT"),
        ("Cidr", columns::<Cidr>(), "TEXT"),
        ("IntegerArray", columns::<IntegerArray>(), "TEXT"),
        ("TextMatrix", columns::<TextMatrix>(), "TEXT"),
        ("IntervalArray", columns::<IntervalArray>(), "TEXT"),
    ];
    for (name, [value, maybe], sqlite_type) in cases {
        assert_eq!(value.0, *sqlite_type, "{name}");
        assert_eq!(maybe.0, *sqlite_type, "{name}");
        assert!(value.1, "{name}: a plain field is NOT NULL");
        assert!(!maybe.1, "{name}: an `Option` is nullable");
        assert_eq!(value.2, maybe.2, "{name}");
    }
}

#[test]
fn generated_sql_carries_the_type_table() {
    assert_eq!(
        Interval::SPEC.source.select,
        r#"SELECT "id", "value"::text, "maybe"::text FROM "t""#
    );
    assert_eq!(
        IntervalArray::SPEC.source.select,
        r#"SELECT "id", "value"::text[], "maybe"::text[] FROM "t""#
    );
    assert_eq!(
        Inet::SPEC.source.select,
        r#"SELECT "id", "value", "maybe" FROM "t""#
    );
    assert_eq!(
        UuidBytes::SPEC.targets[0].create,
        r#"CREATE TABLE "t" ("id" INTEGER NOT NULL, "value" BLOB NOT NULL, "maybe" BLOB, PRIMARY KEY ("id")) STRICT"#
    );
    assert_eq!(
        NumericText::SPEC.source.columns[1].pg_type,
        "numeric(40, 10)"
    );
    assert_eq!(NumericAsReal::SPEC.source.columns[1].pg_type, "numeric");
    assert_eq!(Enum::SPEC.source.columns[2].rust_type, "Option < String >");
}
