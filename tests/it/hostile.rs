//! Hostile input: values and identifiers that would break SQL if any were spliced into
//! it. Values are bound, identifiers quoted; both arrive exactly.

use rusqlite::types::Value;
use sync_runtime::Mapping;

use crate::support;

/// Identifiers with quotes, semicolons, comment markers and spaces.
#[derive(Debug, Mapping)]
#[sync(
    name = "hostile",
    from = "public.Bobby\"; DROP TABLE x; --",
    key = "id\"q"
)]
struct Hostile {
    #[sync(from = "id\"q", to = "t\"1", primary_key)]
    #[sync(to = "t2; DROP TABLE t", primary_key, references = "t\"1.id\"q")]
    id: i64,
    #[sync(
        from = "val'); DROP TABLE user_main; --",
        to = "t\"1",
        column = "v\"al"
    )]
    value: String,
    #[sync(from = "x\"y", to = "t2; DROP TABLE t", column = "-- c")]
    other: Option<String>,
}

const VALUES: [&str; 6] = [
    "'); DROP TABLE user_main; --",
    "\"; DROP TABLE \"t\"\"1\"; --",
    "Robert'); DELETE FROM _data_sync_state; --",
    "?1 ?2 $1 :name @x",
    "\\x00 \\' \\\"",
    "",
];

#[test]
fn hostile_values_and_identifiers_arrive_exactly() {
    let db = support::source_db();
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE TABLE public.\"Bobby\"\"; DROP TABLE x; --\" (
                 \"id\"\"q\" bigint PRIMARY KEY,
                 \"val'); DROP TABLE user_main; --\" text NOT NULL,
                 \"x\"\"y\" text
             )",
        )
        .unwrap();
    for (index, value) in VALUES.iter().enumerate() {
        client
            .execute(
                "INSERT INTO public.\"Bobby\"\"; DROP TABLE x; --\" VALUES ($1, $2, $3)",
                &[&(index as i64), value, &Some(*value)],
            )
            .unwrap();
    }
    let target = support::target_file();
    // A table the values name, which must survive.
    rusqlite::Connection::open(&target.path)
        .unwrap()
        .execute_batch("CREATE TABLE user_main (id INTEGER)")
        .unwrap();
    let summary = support::sync::<Hostile>(&db, &target.path).unwrap();
    assert_eq!(summary.rows_read, VALUES.len() as u64);

    let expected: Vec<Vec<Value>> = VALUES
        .iter()
        .enumerate()
        .map(|(index, value)| {
            vec![
                Value::Integer(index as i64),
                Value::Text((*value).to_owned()),
                Value::Text((*value).to_owned()),
            ]
        })
        .collect();
    let actual = support::sqlite_rows(
        &target.path,
        "SELECT a.\"id\"\"q\", a.\"v\"\"al\", b.\"-- c\"
         FROM \"t\"\"1\" AS a JOIN \"t2; DROP TABLE t\" AS b USING (\"id\"\"q\") ORDER BY 1",
    );
    assert_eq!(actual, expected);
    let tables = support::sqlite_rows(
        &target.path,
        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
    );
    assert_eq!(
        tables,
        ["_data_sync_state", "t\"1", "t2; DROP TABLE t", "user_main"]
            .map(|name| vec![Value::Text(name.to_owned())])
            .to_vec()
    );
}

#[test]
fn generated_sql_quotes_every_identifier() {
    let spec = Hostile::SPEC;
    assert_eq!(
        spec.source.select,
        "SELECT \"id\"\"q\", \"val'); DROP TABLE user_main; --\", \"x\"\"y\" FROM \"public\".\"Bobby\"\"; DROP TABLE x; --\""
    );
    assert_eq!(
        spec.targets[1].insert,
        "INSERT INTO \"t2; DROP TABLE t\" (\"id\"\"q\", \"-- c\") VALUES (?1, ?2)"
    );
}
