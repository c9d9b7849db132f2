//! Values read from the log equal values read by a copy: one table with a column of
//! each kind, synced by a capture mapping (inserts and updates through the log) and
//! by the same mapping without capture (a full copy), compared exactly.

use sync_runtime::value::{Array, Date, Json, Numeric, PgText, Time, Timestamp, Timestamptz, Uuid};
use sync_runtime::{Mapping, SourceConfig, SyncOptions};

use crate::support;

macro_rules! kinds {
    ($name:ident, $($capture:tt)*) => {
        #[derive(Mapping)]
        #[sync(from = "kinds", key = "id" $($capture)*)]
        struct $name {
            #[sync(to = "kinds", primary_key)]
            id: i64,
            #[sync(to = "kinds")]
            small: Option<i16>,
            #[sync(to = "kinds")]
            int: Option<i32>,
            #[sync(to = "kinds")]
            flag: Option<bool>,
            #[sync(to = "kinds")]
            real: Option<f64>,
            #[sync(to = "kinds")]
            exact: Option<Numeric>,
            #[sync(to = "kinds")]
            words: Option<String>,
            #[sync(to = "kinds")]
            bytes: Option<Vec<u8>>,
            #[sync(to = "kinds")]
            identifier: Option<Uuid>,
            #[sync(to = "kinds")]
            instant: Option<Timestamptz>,
            #[sync(to = "kinds")]
            local: Option<Timestamp>,
            #[sync(to = "kinds")]
            day: Option<Date>,
            #[sync(to = "kinds")]
            clock: Option<Time>,
            #[sync(to = "kinds", type = "jsonb")]
            document: Option<Json>,
            #[sync(to = "kinds", type = "integer[]")]
            numbers: Option<Array>,
            #[sync(to = "kinds", type = "text[]")]
            names: Option<Array>,
            #[sync(to = "kinds", type = "inet")]
            host: Option<PgText>,
            #[sync(to = "kinds", type = "enum")]
            mood: Option<String>,
        }
    };
}

kinds!(KindsCopied,);
kinds!(KindsCaptured, , capture = "log");

#[test]
fn every_kind_of_value_arrives_from_the_log_as_a_copy_reads_it() {
    let db = support::source_db();
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
             CREATE TABLE kinds (id bigint PRIMARY KEY, small smallint, int integer, flag boolean,
                 real double precision, exact numeric, words text, bytes bytea, identifier uuid,
                 instant timestamptz, local timestamp, day date, clock time, document jsonb,
                 numbers integer[], names text[], host inet, mood mood);
             INSERT INTO kinds (id, words) VALUES (1, 'before the copy');",
        )
        .unwrap();
    let source = SourceConfig::parse(&db.url()).unwrap();
    let captured = support::target_file();
    sync_runtime::sync::<KindsCaptured>(&source, &captured.path, &SyncOptions::default()).unwrap();
    // Everything below arrives through the log.
    client
        .batch_execute(
            "INSERT INTO kinds VALUES
               (2, -32768, 2147483647, true, -0.0, 'NaN', '', '\\x00ff', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
                '2024-02-29 23:59:59.999999+05:30', 'infinity', '-infinity', '24:00', '{\"b\": [1, 2.5, null], \"a\": \"ü\"}',
                '{1, NULL, -3}', ARRAY['a b', NULL, 'q\"'], '2001:db8::1/64', 'happy'),
               (3, 0, 0, false, 1e308, '-123456789012345678901234567890.000000000001', 'naïve ☕',
                '\\x', '00000000-0000-0000-0000-000000000000', '0001-01-01 00:00:00+00 BC', '294276-12-31 23:59:59.999999',
                '5874897-12-31', '00:00:00.000001', '[]', '{}', '{}', '0.0.0.0', 'sad'),
               (4, NULL, NULL, NULL, 'Infinity', '0.000', repeat('x', 100000), NULL, NULL,
                NULL, NULL, NULL, NULL, 'null', '{{1,2},{3,4}}', NULL, NULL, NULL);
             UPDATE kinds SET words = 'updated', exact = 1.50, mood = 'ok' WHERE id = 1;
             UPDATE kinds SET int = -1 WHERE id = 4;",
        )
        .unwrap();
    sync_runtime::sync::<KindsCaptured>(&source, &captured.path, &SyncOptions::default()).unwrap();
    let copied = support::target_file();
    support::sync::<KindsCopied>(&db, &copied.path).unwrap();
    let query = "SELECT * FROM kinds ORDER BY id";
    let from_copy = support::sqlite_rows(&copied.path, query);
    assert_eq!(from_copy.len(), 4);
    assert_eq!(support::sqlite_rows(&captured.path, query), from_copy);
}
