//! The type table, proven against a real PostgreSQL: every type with NULL, zero or
//! empty, minimum, maximum and edge values, each compared exactly with what
//! PostgreSQL itself reports (`::text`, `to_char`, `to_json`, `extract`), and the
//! values SQLite cannot hold stopping the run with nothing committed.

use rusqlite::types::Value;
use sync_runtime::Mapping;
use sync_runtime::value::{
    Array, Date, Json, Numeric, NumericReal, PgText, Time, Timestamp, Timestamptz, UnixMicros,
    UnixSeconds, Uuid, UuidBlob,
};

use crate::support::{self, TestDb};

/// Runs `sql` on the test database.
fn execute(db: &TestDb, sql: &str) {
    db.client()
        .batch_execute(sql)
        .unwrap_or_else(|error| panic!("{error}\n{sql}"));
}

/// The rows of `query` as the SQLite values they must arrive as: PostgreSQL decides
/// the expected value, `query` only converts it (`bigint`, `double precision`,
/// `text` and `bytea` columns map to INTEGER, REAL, TEXT and BLOB).
fn expected(db: &TestDb, query: &str) -> Vec<Vec<Value>> {
    let mut client = db.client();
    client
        .batch_execute("SET extra_float_digits = 1; SET IntervalStyle = postgres")
        .unwrap();
    let rows = client
        .query(query, &[])
        .unwrap_or_else(|error| panic!("{error}\n{query}"));
    rows.iter()
        .map(|row| {
            row.columns()
                .iter()
                .enumerate()
                .map(|(index, column)| {
                    let ty = column.type_();
                    let value = match ty.name() {
                        "int8" => row.get::<_, Option<i64>>(index).map(Value::Integer),
                        "float8" => row.get::<_, Option<f64>>(index).map(Value::Real),
                        "text" => row.get::<_, Option<String>>(index).map(Value::Text),
                        "bytea" => row.get::<_, Option<Vec<u8>>>(index).map(Value::Blob),
                        other => panic!("expected() takes bigint, float8, text, bytea: {other}"),
                    };
                    value.unwrap_or(Value::Null)
                })
                .collect()
        })
        .collect()
}

/// Syncs `M` into a fresh target and returns the rows of `query` on it.
fn sync_and_read<M: Mapping>(db: &TestDb, query: &str) -> Vec<Vec<Value>> {
    let target = support::target_file();
    support::sync::<M>(db, &target.path).unwrap_or_else(|error| panic!("{error}"));
    support::sqlite_rows(&target.path, query)
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

// Integers and booleans: INTEGER, exact, including bigint keys beyond 2^53.

#[derive(Mapping)]
#[sync(from = "ints", key = "id")]
struct Ints {
    #[sync(to = "ints", primary_key)]
    id: i64,
    #[sync(to = "ints")]
    small: Option<i16>,
    #[sync(to = "ints")]
    int: Option<i32>,
    #[sync(to = "ints")]
    big: Option<i64>,
    #[sync(to = "ints")]
    flag: Option<bool>,
    /// A `smallint` column read into a wider field.
    #[sync(to = "ints", type = "smallint")]
    widened: Option<i64>,
}

#[test]
fn integers_and_booleans_are_exact() {
    let db = support::source_db();
    execute(
        &db,
        "CREATE TABLE ints (id bigint PRIMARY KEY, small smallint, int integer, big bigint,
                            flag boolean, widened smallint);
         INSERT INTO ints VALUES
           (1, NULL, NULL, NULL, NULL, NULL),
           (2, 0, 0, 0, false, 0),
           (3, -32768, -2147483648, -9223372036854775808, true, -32768),
           (4, 32767, 2147483647, 9223372036854775807, true, 32767),
           (9007199254740993, 1, 1, 9007199254740993, false, 1),
           (-9223372036854775808, -1, -1, -1, true, -1),
           (9223372036854775807, 2, 2, 2, true, 2);",
    );
    assert_eq!(
        sync_and_read::<Ints>(&db, "SELECT * FROM ints ORDER BY id"),
        expected(
            &db,
            "SELECT id, small::int8, int::int8, big, flag::int::int8, widened::int8
             FROM ints ORDER BY id"
        )
    );
}

// Floats: REAL holding exactly the float's value (a `real` widened exactly), the
// infinities and subnormals included; -0.0 arrives as 0.0 (see `docs/types.md`).

#[derive(Mapping)]
#[sync(from = "floats", key = "id")]
struct Floats {
    #[sync(to = "floats", primary_key)]
    id: i64,
    #[sync(to = "floats")]
    single: Option<f32>,
    #[sync(to = "floats")]
    double: Option<f64>,
    /// A `real` read into `f64`.
    #[sync(to = "floats", type = "real")]
    widened: Option<f64>,
}

#[test]
fn floats_are_exact() {
    let db = support::source_db();
    execute(
        &db,
        "CREATE TABLE floats (id bigint PRIMARY KEY, single real, double double precision,
                              widened real);
         INSERT INTO floats VALUES
           (1, NULL, NULL, NULL),
           (2, 0, 0, 0),
           (3, '-0', '-0', '-0'),
           (4, '1.4e-45', '4.9e-324', '1.4e-45'),
           (5, '3.4028235e38', '1.7976931348623157e308', '3.4028235e38'),
           (6, '-3.4028235e38', '-1.7976931348623157e308', '-3.4028235e38'),
           (7, 'Infinity', 'Infinity', 'Infinity'),
           (8, '-Infinity', '-Infinity', '-Infinity'),
           (9, 0.1, 0.1, 0.1),
           (10, '1.17549435e-38', '2.2250738585072014e-308', '1.17549435e-38'),
           (11, '1e-40', '1e-310', '1e-40');",
    );
    let written = sync_and_read::<Floats>(&db, "SELECT * FROM floats ORDER BY id");
    assert_eq!(
        written,
        expected(
            &db,
            "SELECT id, single::float8, double, widened::float8 FROM floats ORDER BY id"
        )
    );
    // The REAL of a `real` reads back as exactly that `real`.
    assert_eq!(written[8][1], Value::Real(f64::from(0.1f32)));
    assert_eq!(written[3][2], Value::Real(f64::from_bits(1)));
    // SQLite stores an integral REAL as an integer in its record format, so -0.0
    // comes back as +0.0 (equal under IEEE 754, sign lost).
    let Value::Real(negative_zero) = written[2][2] else {
        panic!("REAL expected: {:?}", written[2]);
    };
    assert_eq!(negative_zero.to_bits(), 0.0f64.to_bits());
}

// numeric: exact decimal text of any precision and scale, NaN and infinities kept.

#[derive(Mapping)]
#[sync(from = "numerics", key = "id")]
struct Numerics {
    #[sync(to = "numerics", primary_key)]
    id: i64,
    #[sync(to = "numerics")]
    free: Option<Numeric>,
    #[sync(to = "numerics")]
    scaled: Option<Numeric>,
}

#[test]
fn numerics_are_exact_text() {
    let db = support::source_db();
    execute(
        &db,
        "CREATE TABLE numerics (id bigint PRIMARY KEY, free numeric, scaled numeric(50, 10));
         INSERT INTO numerics VALUES
           (1, NULL, NULL),
           (2, 0, 0),
           (3, 0.000, -0.5),
           (4, -1.50, 1.5),
           (5, 1234567890123456789012345678901234567890, 1234567890123456789012345678901234567890),
           (6, -1234567890123456789012345678901234567890.0123456789012345678901234567890123456789,
               -0.0000000001),
           (7, 0.0000000000000000000000000000000000000001, 12345.6789),
           (8, 'NaN', 'NaN'),
           (9, 'Infinity', 10000),
           (10, '-Infinity', 99999999.9999999999),
           (11, 1e300, 0.00001),
           (12, 100000000, 1000.1);",
    );
    assert_eq!(
        sync_and_read::<Numerics>(&db, "SELECT * FROM numerics ORDER BY id"),
        expected(
            &db,
            "SELECT id, free::text, scaled::text FROM numerics ORDER BY id"
        )
    );
}

// Text types: TEXT as is; char(n) keeps its padding, which `format('%s')` (the
// type's output function) shows and a cast to text would strip.

#[derive(Mapping)]
#[sync(from = "texts", key = "id")]
struct Texts {
    #[sync(to = "texts", primary_key)]
    id: i64,
    #[sync(to = "texts")]
    plain: Option<String>,
    #[sync(to = "texts", type = "character varying(8)")]
    limited: Option<String>,
    #[sync(to = "texts", type = "character(5)")]
    padded: Option<String>,
    #[sync(to = "texts", type = "name")]
    named: Option<String>,
    #[sync(to = "texts", type = "citext")]
    folded: Option<String>,
    #[sync(to = "texts", type = "enum")]
    mood: Option<String>,
}

#[test]
fn text_types_arrive_as_is() {
    let db = support::source_db();
    execute(
        &db,
        "CREATE EXTENSION IF NOT EXISTS citext;
         CREATE TYPE mood AS ENUM ('happy', 'sehr glücklich 😀', '');
         CREATE TABLE texts (id bigint PRIMARY KEY, plain text, limited varchar(8),
                             padded char(5), named name, folded citext, mood mood);
         INSERT INTO texts VALUES
           (1, NULL, NULL, NULL, NULL, NULL, NULL),
           (2, '', '', '', '', '', ''),
           (3, 'a', 'a', 'a', 'a', 'a', 'happy'),
           (4, 'Grüße, ß, 日本語, 👩‍🚀🎉', 'ü€😀', 'ü😀', 'ñame', 'MiXeD Ünï', 'sehr glücklich 😀'),
           (5, E'quote '' \" backslash \\\\ tab \\t newline \\n nul-free \\u0001', 'x  ', ' y ',
               repeat('n', 63), 'Z', 'happy'),
           (6, repeat('ä€😀x', 100000), repeat('😀', 8), '😀😀😀😀😀', 'end', 'x', 'happy');",
    );
    let written = sync_and_read::<Texts>(&db, "SELECT * FROM texts ORDER BY id");
    assert_eq!(
        written,
        expected(
            &db,
            "SELECT id, plain, limited::text,
                    CASE WHEN padded IS NULL THEN NULL ELSE format('%s', padded) END,
                    named::text, folded::text, mood::text
             FROM texts ORDER BY id"
        )
    );
    assert_eq!(written[2][3], text("a    "));
    let Value::Text(long) = &written[5][1] else {
        panic!()
    };
    assert_eq!(long.len(), 1_000_000);
}

// bytea: BLOB, exact bytes.

#[derive(Mapping)]
#[sync(from = "blobs", key = "id")]
struct Blobs {
    #[sync(to = "blobs", primary_key)]
    id: i64,
    #[sync(to = "blobs")]
    bytes: Option<Vec<u8>>,
}

#[test]
fn bytea_is_exact_bytes() {
    let db = support::source_db();
    execute(
        &db,
        "CREATE TABLE blobs (id bigint PRIMARY KEY, bytes bytea);
         INSERT INTO blobs VALUES
           (1, NULL), (2, ''), (3, '\\x00'), (4, '\\x00ff00fe7f80'),
           (5, decode(repeat('00ff00017f80', 200000), 'hex'));",
    );
    let written = sync_and_read::<Blobs>(&db, "SELECT * FROM blobs ORDER BY id");
    assert_eq!(
        written,
        expected(&db, "SELECT id, bytes FROM blobs ORDER BY id")
    );
    assert_eq!(
        written[4][1],
        Value::Blob([0, 0xff, 0, 1, 0x7f, 0x80].repeat(200_000))
    );
}

// uuid: lowercase hyphenated TEXT, or 16 bytes as BLOB on request.

#[derive(Mapping)]
#[sync(from = "uuids", key = "id")]
struct Uuids {
    #[sync(to = "uuids", primary_key)]
    id: i64,
    #[sync(to = "uuids")]
    text: Option<Uuid>,
    #[sync(to = "uuids")]
    blob: Option<UuidBlob>,
}

#[test]
fn uuids_are_lowercase_text_or_bytes() {
    let db = support::source_db();
    execute(
        &db,
        "CREATE TABLE uuids (id bigint PRIMARY KEY, text uuid, blob uuid);
         INSERT INTO uuids VALUES
           (1, NULL), (2, '00000000-0000-0000-0000-000000000000'),
           (3, 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'), (4, 'A0EEBC999C0B4EF8BB6D6BB9BD380A11'),
           (5, gen_random_uuid());
         UPDATE uuids SET blob = text;",
    );
    assert_eq!(
        sync_and_read::<Uuids>(&db, "SELECT * FROM uuids ORDER BY id"),
        expected(
            &db,
            "SELECT id, text::text, decode(replace(blob::text, '-', ''), 'hex')
             FROM uuids ORDER BY id"
        )
    );
}

// Dates and times: ISO 8601 text, timestamptz in UTC with `Z`, always six fractional
// digits, infinities as text. Values are entered in a non-UTC session time zone and
// with explicit offsets.

#[derive(Mapping)]
#[sync(from = "times", key = "id")]
struct Times {
    #[sync(to = "times", primary_key)]
    id: i64,
    #[sync(to = "times")]
    instant: Option<Timestamptz>,
    #[sync(to = "times")]
    local: Option<Timestamp>,
    #[sync(to = "times")]
    day: Option<Date>,
    #[sync(to = "times")]
    clock: Option<Time>,
}

const TIMES: &str = "
    SET TimeZone = 'Asia/Kolkata';
    CREATE TABLE times (id bigint PRIMARY KEY, instant timestamptz, local timestamp,
                        day date, clock time);
    INSERT INTO times VALUES
      (1, NULL, NULL, NULL, NULL),
      (2, '2000-01-01 00:00:00+00', '2000-01-01 00:00:00', '2000-01-01', '00:00:00'),
      (3, '1969-12-31 23:59:59.999999+00', '1969-12-31 23:59:59.999999', '1969-12-31',
          '23:59:59.999999'),
      (4, '1900-06-15 12:00:00.5+05:30', '1900-06-15 12:00:00.5', '1900-06-15', '12:00:00.5'),
      (5, '9999-12-31 23:59:59.999999+00', '9999-12-31 23:59:59.999999', '9999-12-31',
          '24:00:00'),
      (6, '2024-07-01 12:00:00.123456 Europe/Berlin', '2024-07-01 12:00:00.000001',
          '2024-02-29', '12:34:56.789'),
      (7, '2024-03-10 01:59:59.999999 America/New_York', '0001-01-01 00:00:00',
          '0001-01-01', '00:00:00.000001'),
      (8, '2024-05-01 10:00', '2024-05-01 10:00', '2024-05-01', '10:00'),
      (9, 'infinity', 'infinity', 'infinity', '01:02:03'),
      (10, '-infinity', '-infinity', '-infinity', '04:05:06');";

#[test]
fn dates_and_times_are_iso_8601_text() {
    let db = support::source_db();
    execute(&db, TIMES);
    assert_eq!(
        sync_and_read::<Times>(&db, "SELECT * FROM times ORDER BY id"),
        expected(
            &db,
            "SELECT id,
                    CASE WHEN isfinite(instant)
                         THEN to_char(instant AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
                         ELSE instant::text END,
                    CASE WHEN isfinite(local)
                         THEN to_char(local, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')
                         ELSE local::text END,
                    CASE WHEN isfinite(day) THEN to_char(day, 'YYYY-MM-DD') ELSE day::text END,
                    to_char(clock::interval, 'HH24:MI:SS.US')
             FROM times ORDER BY id"
        )
    );
}

#[test]
fn dates_and_times_beyond_four_digit_years_use_expanded_years() {
    let db = support::source_db();
    execute(
        &db,
        "CREATE TABLE times (id bigint PRIMARY KEY, instant timestamptz, local timestamp,
                             day date, clock time);
         INSERT INTO times VALUES
           (1, '4713-11-24 00:00:00+00 BC', '4713-11-24 00:00:00 BC', '4713-11-24 BC', NULL),
           (2, '0001-12-31 23:59:59.999999+00 BC', '0001-12-31 23:59:59.999999 BC',
               '0001-12-31 BC', NULL),
           (3, '294276-12-31 23:59:59.999999+00', '294276-12-31 23:59:59.999999',
               '5874897-12-31', NULL),
           (4, '10000-01-01 00:00:00+00', '10000-01-01 00:00:00', '10000-01-01', NULL);",
    );
    let row = |id: i64, instant: &str, local: &str, day: &str| {
        vec![
            Value::Integer(id),
            text(instant),
            text(local),
            text(day),
            Value::Null,
        ]
    };
    assert_eq!(
        sync_and_read::<Times>(&db, "SELECT * FROM times ORDER BY id"),
        vec![
            row(
                1,
                "-4712-11-24T00:00:00.000000Z",
                "-4712-11-24T00:00:00.000000",
                "-4712-11-24"
            ),
            row(
                2,
                "0000-12-31T23:59:59.999999Z",
                "0000-12-31T23:59:59.999999",
                "0000-12-31"
            ),
            row(
                3,
                "+294276-12-31T23:59:59.999999Z",
                "+294276-12-31T23:59:59.999999",
                "+5874897-12-31"
            ),
            row(
                4,
                "+10000-01-01T00:00:00.000000Z",
                "+10000-01-01T00:00:00.000000",
                "+10000-01-01"
            ),
        ]
    );
}

// json and jsonb: the JSON text as PostgreSQL prints it (json verbatim, jsonb
// normalized).

#[derive(Mapping)]
#[sync(from = "documents", key = "id")]
struct Documents {
    #[sync(to = "documents", primary_key)]
    id: i64,
    #[sync(to = "documents")]
    verbatim: Option<Json>,
    #[sync(to = "documents", type = "jsonb")]
    binary: Option<Json>,
}

#[test]
fn json_is_postgres_json_text() {
    let db = support::source_db();
    execute(
        &db,
        r#"CREATE TABLE documents (id bigint PRIMARY KEY, verbatim json, "binary" jsonb);
           INSERT INTO documents VALUES
             (1, NULL, NULL),
             (2, '{}', '{}'),
             (3, '[]', '[]'),
             (4, 'null', 'null'),
             (5, '  { "b" : 1,  "a":[1, 2.50, 1e3, true, null] , "b": 2 }  ',
                 '  { "b" : 1,  "a":[1, 2.50, 1e3, true, null] , "b": 2 }  '),
             (6, '{"a": {"b": {"c": [[1, [2, [3, {"d": "deep"}]]]]}}}',
                 '{"a": {"b": {"c": [[1, [2, [3, {"d": "deep"}]]]]}}}'),
             (7, '{"ключ": "значение", "😀": "\u00e9\n\"", "日本": 12345678901234567890}',
                 '{"ключ": "значение", "😀": "\u00e9\n\"", "日本": 12345678901234567890}'),
             (8, '"just a string"', '-0.0');"#,
    );
    assert_eq!(
        sync_and_read::<Documents>(&db, "SELECT * FROM documents ORDER BY id"),
        expected(
            &db,
            "SELECT id, verbatim::text, \"binary\"::text FROM documents ORDER BY id"
        )
    );
}

// interval, inet, cidr: PostgreSQL's text form, with IntervalStyle pinned to
// `postgres` whatever the database's default.

#[derive(Mapping)]
#[sync(from = "text_forms", key = "id")]
struct TextForms {
    #[sync(to = "text_forms", primary_key)]
    id: i64,
    #[sync(to = "text_forms", type = "interval")]
    span: Option<PgText>,
    #[sync(to = "text_forms", type = "inet")]
    host: Option<PgText>,
    #[sync(to = "text_forms", type = "cidr")]
    network: Option<PgText>,
}

#[test]
fn interval_inet_and_cidr_are_postgres_text() {
    let db = support::source_db();
    execute(
        &db,
        &format!(
            "CREATE TABLE text_forms (id bigint PRIMARY KEY, span interval, host inet,
                                      network cidr);
             INSERT INTO text_forms VALUES
               (1, NULL, NULL, NULL),
               (2, '0', '0.0.0.0', '0.0.0.0/0'),
               (3, '1 year 2 months 3 days 04:05:06.789', '192.168.0.1/24', '192.168.0.0/24'),
               (4, '-1 day +02:00:00.000001', '::1', '2001:db8::/32'),
               (5, '178000000 years', '2001:db8:0:0:0:0:2:1/64', '::ffff:1.2.3.0/120'),
               (6, '-178000000 years', '255.255.255.255', '10.0.0.0/8'),
               (7, '1 mon -1 days', '::1.2.3.4', '::ffff:0.0.0.0/96'),
               (8, '00:00:00.000001', '::ffff:1.2.3.4/128', '::/0'),
               (9, '1 day', 'fe80:0:0:1:0:0:0:1', '2001:0:0:1::/64'),
               (10, '1 day', '1:0:0:2:0:0:0:3', '1.2.3.4/32');
             ALTER DATABASE \"{}\" SET IntervalStyle = 'iso_8601';",
            db.name()
        ),
    );
    let written = sync_and_read::<TextForms>(&db, "SELECT * FROM text_forms ORDER BY id");
    assert_eq!(
        written,
        expected(
            &db,
            "SELECT id, span::text,
                    CASE WHEN host IS NULL THEN NULL ELSE format('%s', host) END,
                    CASE WHEN network IS NULL THEN NULL ELSE format('%s', network) END
             FROM text_forms ORDER BY id"
        )
    );
    assert_eq!(written[2][1], text("1 year 2 mons 3 days 04:05:06.789"));
}

// Arrays: JSON arrays, nested per dimension, NULL elements as `null`; elements as
// `to_json` renders them, except numeric (exact strings) and dates and times (the
// scalar form).

#[derive(Mapping)]
#[sync(from = "arrays", key = "id")]
struct Arrays {
    #[sync(to = "arrays", primary_key)]
    id: i64,
    #[sync(to = "arrays", type = "integer[]")]
    ints: Option<Array>,
    #[sync(to = "arrays", type = "bigint[]")]
    bigs: Option<Array>,
    #[sync(to = "arrays", type = "text[]")]
    texts: Option<Array>,
    #[sync(to = "arrays", type = "double precision[]")]
    doubles: Option<Array>,
    #[sync(to = "arrays", type = "real[]")]
    reals: Option<Array>,
    #[sync(to = "arrays", type = "boolean[]")]
    flags: Option<Array>,
    #[sync(to = "arrays", type = "bytea[]")]
    blobs: Option<Array>,
    #[sync(to = "arrays", type = "uuid[]")]
    uuids: Option<Array>,
    #[sync(to = "arrays", type = "jsonb[]")]
    documents: Option<Array>,
    #[sync(to = "arrays", type = "json[]")]
    verbatim: Option<Array>,
    #[sync(to = "arrays", type = "enum[]")]
    moods: Option<Array>,
}

#[test]
fn arrays_match_to_json() {
    let db = support::source_db();
    execute(
        &db,
        r#"CREATE TYPE mood AS ENUM ('happy', 'sad "really"');
           CREATE TABLE arrays (id bigint PRIMARY KEY, ints integer[], bigs bigint[],
               texts text[], doubles double precision[], reals real[], flags boolean[],
               blobs bytea[], uuids uuid[], documents jsonb[], verbatim json[], moods mood[]);
           INSERT INTO arrays VALUES
             (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
             (2, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
             (3, '{1,NULL,-3}', '{9223372036854775807,-9223372036854775808,9007199254740993}',
                 '{"a","b c","\"q\" \\ ","",NULL,"ü😀","NULL"}',
                 '{NaN,Infinity,-Infinity,-0,0,4.9e-324,1.7976931348623157e308,0.1,1e15,123456789012345,1.5e-5}',
                 '{NaN,1e-45,3.4028235e38,0.1,100000,1000000,-0}',
                 '{true,false,NULL}', '{"\\x00ff",NULL,""}',
                 '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}',
                 ARRAY['{"b": 1, "a": [1, 2.50]}'::jsonb, NULL, 'null'::jsonb],
                 ARRAY['{ "b" : 1 }'::json, '[1, 2]'::json],
                 '{happy,"sad \"really\"",NULL}'),
             (4, '{{1,2},{3,NULL}}', '{{{1}},{{2}}}', '{{"a",NULL},{"c","d"}}',
                 '{{1.5},{NULL}}', '{{1},{2}}', '{{true},{false}}', '{{"\\x01"}}',
                 '{{00000000-0000-0000-0000-000000000000}}', NULL, NULL, '{{happy}}'),
             (5, '[0:1]={7,8}', NULL, ARRAY[E'tab\t newline\n bell\u0007 slash/'], NULL, NULL,
                 NULL, NULL, NULL, NULL, NULL, NULL);"#,
    );
    assert_eq!(
        sync_and_read::<Arrays>(&db, "SELECT * FROM arrays ORDER BY id"),
        expected(
            &db,
            "SELECT id, to_json(ints)::text, to_json(bigs)::text, to_json(texts)::text,
                    to_json(doubles)::text, to_json(reals)::text, to_json(flags)::text,
                    to_json(blobs)::text, to_json(uuids)::text, to_json(documents)::text,
                    to_json(verbatim)::text, to_json(moods)::text
             FROM arrays ORDER BY id"
        )
    );
}

#[derive(Mapping)]
#[sync(from = "exact_arrays", key = "id")]
struct ExactArrays {
    #[sync(to = "exact_arrays", primary_key)]
    id: i64,
    #[sync(to = "exact_arrays", type = "numeric[]")]
    numerics: Option<Array>,
    #[sync(to = "exact_arrays", type = "timestamptz[]")]
    instants: Option<Array>,
    #[sync(to = "exact_arrays", type = "timestamp[]")]
    locals: Option<Array>,
    #[sync(to = "exact_arrays", type = "date[]")]
    days: Option<Array>,
    #[sync(to = "exact_arrays", type = "time[]")]
    clocks: Option<Array>,
    #[sync(to = "exact_arrays", type = "interval[]")]
    spans: Option<Array>,
    #[sync(to = "exact_arrays", type = "inet[]")]
    hosts: Option<Array>,
}

#[test]
fn arrays_keep_numerics_exact_and_times_in_scalar_form() {
    let db = support::source_db();
    execute(
        &db,
        "SET TimeZone = 'America/Los_Angeles';
         CREATE TABLE exact_arrays (id bigint PRIMARY KEY, numerics numeric[],
             instants timestamptz[], locals timestamp[], days date[], clocks time[],
             spans interval[], hosts inet[]);
         INSERT INTO exact_arrays VALUES
           (1, '{1.50,NaN,NULL,-Infinity,12345678901234567890123456789012345678.90}',
               '{\"2000-01-01 00:00:00+00\",infinity,NULL,\"1969-12-31 16:00:00.000001\"}',
               '{{\"1999-12-31 23:59:59.5\",-infinity}}',
               '{2024-02-29,NULL,infinity}',
               '{00:00,24:00,12:34:56.789}',
               '{\"1 day\",NULL,\"-1 mon +00:00:01\"}',
               '{::1,192.168.0.1/24,NULL}');",
    );
    assert_eq!(
        sync_and_read::<ExactArrays>(&db, "SELECT * FROM exact_arrays ORDER BY id"),
        vec![vec![
            Value::Integer(1),
            text(r#"["1.50","NaN",null,"-Infinity","12345678901234567890123456789012345678.90"]"#),
            text(
                r#"["2000-01-01T00:00:00.000000Z","infinity",null,"1970-01-01T00:00:00.000001Z"]"#
            ),
            text(r#"[["1999-12-31T23:59:59.500000","-infinity"]]"#),
            text(r#"["2024-02-29",null,"infinity"]"#),
            text(r#"["00:00:00.000000","24:00:00.000000","12:34:56.789000"]"#),
            text(r#"["1 day",null,"-1 mons +00:00:01"]"#),
            text(r#"["::1","192.168.0.1/24",null]"#),
        ]]
    );
}

// Opt-ins: numeric as REAL, timestamps as INTEGER Unix microseconds or seconds.

#[derive(Mapping)]
#[sync(from = "opt_ins", key = "id")]
struct OptIns {
    #[sync(to = "opt_ins", primary_key)]
    id: i64,
    #[sync(to = "opt_ins")]
    amount: Option<NumericReal>,
    #[sync(to = "opt_ins", type = "timestamptz")]
    micros: Option<UnixMicros>,
    #[sync(to = "opt_ins", type = "timestamp")]
    seconds: Option<UnixSeconds>,
}

#[test]
fn opt_ins_write_real_and_unix_integers() {
    let db = support::source_db();
    execute(
        &db,
        "SET TimeZone = 'Pacific/Chatham';
         CREATE TABLE opt_ins (id bigint PRIMARY KEY, amount numeric, micros timestamptz,
                               seconds timestamp);
         INSERT INTO opt_ins VALUES
           (1, NULL, NULL, NULL),
           (2, 0, '1970-01-01 00:00:00+00', '1970-01-01 00:00:00'),
           (3, 0.1, '1969-12-31 23:59:59.999999+00', '1969-12-31 23:59:59.999999'),
           (4, 1234567890123456789012345678901234567890.123, '9999-12-31 23:59:59.999999+00',
               '9999-12-31 23:59:59.999999'),
           (5, 'Infinity', '0001-01-01 00:00:00+00', '0001-01-01 00:00:00.5'),
           (6, '-Infinity', '2024-07-01 12:00:00.123456 Europe/Berlin', '2024-07-01 12:00:00.9'),
           (7, -1e-320, '2000-01-01 00:00:00+00', '1900-01-01 00:00:00.000001');",
    );
    let target = support::target_file();
    support::sync::<OptIns>(&db, &target.path).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT * FROM opt_ins ORDER BY id"),
        expected(
            &db,
            "SELECT id, amount::float8,
                    (extract(epoch FROM micros) * 1000000)::int8,
                    floor(extract(epoch FROM seconds))::int8
             FROM opt_ins ORDER BY id"
        )
    );
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT type FROM pragma_table_info('opt_ins') ORDER BY cid"
        ),
        ["INTEGER", "REAL", "INTEGER", "INTEGER"]
            .map(|name| vec![text(name)])
            .to_vec()
    );
}

// Keys: composite primary keys in the targets; reserved words and spaces in names.

#[derive(Mapping)]
#[sync(from = "Order Lines", key("order id", "select"))]
struct OrderLines {
    #[sync(from = "order id")]
    #[sync(to = "Line Items", primary_key, column = "Order Id")]
    #[sync(to = "notes", primary_key)]
    order_id: i64,
    #[sync(to = "Line Items", primary_key)]
    #[sync(to = "notes", primary_key)]
    select: i32,
    #[sync(from = "User Name", to = "Line Items")]
    user_name: String,
    #[sync(to = "notes", column = "from")]
    r#where: Option<String>,
}

#[test]
fn composite_keys_and_awkward_names() {
    let db = support::source_db();
    execute(
        &db,
        r#"CREATE TABLE "Order Lines" ("order id" bigint, "select" integer, "User Name" text NOT NULL,
                                      "where" text, PRIMARY KEY ("order id", "select"));
           INSERT INTO "Order Lines" VALUES
             (9007199254740993, 1, 'a', NULL),
             (9007199254740993, 2, 'b', 'x'),
             (-9223372036854775808, 1, 'c', 'y'),
             (1, -2147483648, '', '');"#,
    );
    let target = support::target_file();
    support::sync::<OrderLines>(&db, &target.path).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            r#"SELECT "Order Id", "select", "User Name" FROM "Line Items" ORDER BY 1, 2"#
        ),
        expected(
            &db,
            r#"SELECT "order id", "select"::int8, "User Name" FROM "Order Lines" ORDER BY 1, 2"#
        )
    );
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            r#"SELECT "order id", "select", "from" FROM "notes" ORDER BY 1, 2"#
        ),
        expected(
            &db,
            r#"SELECT "order id", "select"::int8, "where" FROM "Order Lines" ORDER BY 1, 2"#
        )
    );
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT name, pk FROM pragma_table_info('Line Items') WHERE pk > 0 ORDER BY pk"
        ),
        vec![
            vec![text("Order Id"), Value::Integer(1)],
            vec![text("select"), Value::Integer(2)],
        ]
    );
}

// Values with no SQLite form stop the run, naming mapping, table, key and column;
// nothing of the run is committed.

/// Syncs `M` once with good data, breaks the source with `break_sql`, syncs again and
/// returns the error message, after checking the target still holds the first run.
fn failing_run<M: Mapping>(db: &TestDb, table: &str, break_sql: &str) -> String {
    let target = support::target_file();
    support::sync::<M>(db, &target.path).unwrap_or_else(|error| panic!("{error}"));
    let query = format!("SELECT * FROM \"{table}\" ORDER BY 1");
    let before = support::sqlite_rows(&target.path, &query);
    assert!(!before.is_empty());
    execute(db, break_sql);
    let error = support::sync::<M>(db, &target.path)
        .expect_err("the run must fail")
        .to_string();
    assert_eq!(
        support::sqlite_rows(&target.path, &query),
        before,
        "{error}"
    );
    error
}

#[derive(Mapping)]
#[sync(from = "measurements", key = "id")]
struct Measurements {
    #[sync(to = "readings", primary_key)]
    id: i64,
    #[sync(to = "readings")]
    value: f64,
    #[sync(to = "readings")]
    note: Option<f64>,
}

#[test]
fn nan_into_real_stops_the_run() {
    let db = support::source_db();
    execute(
        &db,
        "CREATE TABLE measurements (id bigint PRIMARY KEY, value float8 NOT NULL, note float8);
         INSERT INTO measurements SELECT g, g, NULL FROM generate_series(1, 100) g;",
    );
    let error = failing_run::<Measurements>(
        &db,
        "readings",
        "UPDATE measurements SET value = 'NaN' WHERE id = 77;
         INSERT INTO measurements VALUES (101, 1, NULL);",
    );
    assert_eq!(
        error,
        "mapping `measurements`: cannot write column `value` of `readings` at key 77: \
         NaN has no SQLite REAL form (SQLite stores it as NULL)"
    );
    // An `Option` is no licence to turn NaN into NULL.
    execute(&db, "UPDATE measurements SET value = 1 WHERE id = 77");
    let error = failing_run::<Measurements>(
        &db,
        "readings",
        "UPDATE measurements SET note = 'NaN' WHERE id = 77;",
    );
    assert!(
        error.contains("column `note` of `readings` at key 77"),
        "{error}"
    );
}

#[derive(Mapping)]
#[sync(from = "counters", key = "id")]
struct Counters {
    #[sync(to = "counters", primary_key)]
    id: i64,
    #[sync(to = "counters", type = "bigint")]
    hits: i32,
}

#[test]
fn integer_out_of_range_for_a_narrower_field_stops_the_run() {
    let db = support::source_db();
    execute(
        &db,
        "CREATE TABLE counters (id bigint PRIMARY KEY, hits bigint NOT NULL);
         INSERT INTO counters VALUES (1, 2147483647), (9007199254740993, -2147483648);",
    );
    let error = failing_run::<Counters>(
        &db,
        "counters",
        "UPDATE counters SET hits = 2147483648 WHERE id = 9007199254740993;",
    );
    assert_eq!(
        error,
        "mapping `counters`: cannot read column `hits` of `counters` at key 9007199254740993: \
         int8 value 2147483648 is out of range for `i32`"
    );
}

#[derive(Mapping)]
#[sync(from = "labels", key = "id")]
struct Labels {
    #[sync(to = "labels", primary_key)]
    id: i64,
    #[sync(to = "labels")]
    label: String,
}

/// A database with `SQL_ASCII` encoding beside `db`, dropped with the guard.
struct AsciiDb {
    admin: String,
    name: String,
    url: String,
}

impl AsciiDb {
    fn create(db: &TestDb) -> AsciiDb {
        let name = format!("{}_ascii", db.name());
        let admin = db.url();
        let url = match admin.rsplit_once('/') {
            Some((server, last)) => {
                let query = last.split_once('?').map_or("", |(_, query)| query);
                if query.is_empty() {
                    format!("{server}/{name}")
                } else {
                    format!("{server}/{name}?{query}")
                }
            }
            None => panic!("test URL without a database"),
        };
        let mut client = db.client();
        client
            .batch_execute(&format!(
                "CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' TEMPLATE template0 \
                 LC_COLLATE 'C' LC_CTYPE 'C'"
            ))
            .unwrap();
        AsciiDb { admin, name, url }
    }
}

impl Drop for AsciiDb {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The chain of `error`'s sources, each after a newline.
fn error_sources(error: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n{cause}"));
        source = cause.source();
    }
    text
}

#[test]
fn invalid_utf8_from_a_sql_ascii_database_stops_the_run() {
    let db = support::source_db();
    let ascii = AsciiDb::create(&db);
    let mut client = postgres::Client::connect(&ascii.url, postgres::NoTls).unwrap();
    client
        .batch_execute(
            "CREATE TABLE labels (id bigint PRIMARY KEY, label text NOT NULL);
             INSERT INTO labels VALUES (1, 'plain'), (2, 'caf' || E'\\303\\251');",
        )
        .unwrap();
    let source = sync_runtime::SourceConfig::parse(&ascii.url).unwrap();
    let target = support::target_file();
    let options = sync_runtime::SyncOptions::default();
    sync_runtime::sync::<Labels>(&source, &target.path, &options)
        .unwrap_or_else(|error| panic!("{error:?}"));
    let before = support::sqlite_rows(&target.path, "SELECT * FROM labels ORDER BY id");
    assert_eq!(before[1], vec![Value::Integer(2), text("café")]);
    client
        .batch_execute("INSERT INTO labels VALUES (3, 'caf' || E'\\351')")
        .unwrap();
    let error = sync_runtime::sync::<Labels>(&source, &target.path, &options)
        .expect_err("invalid UTF-8 must stop the run");
    let error = format!("{error}{}", error_sources(&error));
    assert!(
        error.starts_with(
            "mapping `labels`: cannot read column `label` of `labels` at key 3: \
             text is not valid UTF-8 (byte 0xe9 at offset 3)"
        ),
        "{error}"
    );
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT * FROM labels ORDER BY id"),
        before
    );
}

#[derive(Mapping)]
#[sync(from = "infinite", key = "id")]
struct Infinite {
    #[sync(to = "infinite", primary_key)]
    id: i64,
    #[sync(to = "infinite")]
    at: UnixMicros,
    #[sync(to = "infinite")]
    amount: NumericReal,
}

#[test]
fn values_outside_an_opt_in_stop_the_run() {
    let db = support::source_db();
    execute(
        &db,
        "CREATE TABLE infinite (id bigint PRIMARY KEY, at timestamptz NOT NULL,
                                amount numeric NOT NULL);
         INSERT INTO infinite VALUES (1, now(), 1.5);",
    );
    let error = failing_run::<Infinite>(
        &db,
        "infinite",
        "INSERT INTO infinite VALUES (2, 'infinity', 1);",
    );
    assert!(
        error.contains("column `at` of `infinite` at key 2: infinity has no Unix time"),
        "{error}"
    );
    execute(&db, "UPDATE infinite SET at = now() WHERE id = 2");
    let error = failing_run::<Infinite>(
        &db,
        "infinite",
        "UPDATE infinite SET amount = 1e400 WHERE id = 2;",
    );
    assert!(
        error.contains("column `amount` of `infinite` at key 2: numeric 1"),
        "{error}"
    );
}
