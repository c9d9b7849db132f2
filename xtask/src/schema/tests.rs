use std::fs;

use super::*;

/// A source table with one column of each kind the snapshot records.
const DDL: &str = "
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN short_text AS character varying(20);
    CREATE TABLE public.people (
        id bigint PRIMARY KEY,
        email text NOT NULL UNIQUE,
        name short_text,
        feeling mood NOT NULL,
        scores integer[],
        moods mood[],
        updated_at timestamp with time zone NOT NULL
    );
";

/// A YAML mapping that omits every type: the snapshot supplies them.
const PEOPLE: &str = "\
source:
  table: public.people
  key: id
  cursor: updated_at
  columns: { updated_at: {} }
targets:
  people:
    columns:
      id: { primary_key: true }
      email: {}
      name: {}
      feeling: {}
      scores: {}
";

/// A connection to `db` through data-sync's own client, as `cargo xtask schema` opens.
fn source_client(db: &testkit::TestDb) -> sync_runtime::Client {
    SourceConfig::parse(&db.url()).unwrap().connect().unwrap()
}

fn workspace() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("mappings")).unwrap();
    fs::write(root.path().join("mappings/people.yaml"), PEOPLE).unwrap();
    root
}

#[test]
fn snapshots_are_deterministic_and_check_reports_drift() {
    let db = testkit::PgServer::shared().create_database();
    let mut client = source_client(&db);
    client.batch_execute(DDL).unwrap();
    let root = workspace();
    let file = root.path().join(SCHEMA).join("public.people.json");

    assert!(
        run(root.path(), &mut client, Mode::Check).is_err(),
        "no snapshot yet"
    );
    run(root.path(), &mut client, Mode::Overwrite).unwrap();
    let first = fs::read_to_string(&file).unwrap();
    run(root.path(), &mut client, Mode::Overwrite).unwrap();
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        first,
        "a second run is identical"
    );
    run(root.path(), &mut client, Mode::Check).unwrap();

    let table = snapshot::from_json(&first).unwrap();
    assert_eq!(snapshot::to_json(&table), first);
    assert_eq!(table.primary_key, ["id"]);
    assert_eq!(table.unique, [vec!["email".to_owned()]]);
    let name = table.column("name").unwrap();
    assert_eq!(name.pg_type, "character varying(20)");
    assert_eq!(name.domain.as_deref(), Some("short_text"));
    let feeling = table.column("feeling").unwrap();
    assert_eq!(
        feeling.enum_labels.as_deref().unwrap(),
        ["sad", "ok", "happy"]
    );
    assert!(feeling.not_null);
    let moods = table.column("moods").unwrap();
    assert_eq!(moods.pg_type, "mood[]");
    assert_eq!(moods.element_type.as_deref(), Some("mood"));
    assert!(moods.enum_labels.is_some());
    assert_eq!(
        table.column("scores").unwrap().element_type.as_deref(),
        Some("integer")
    );

    // The YAML mapping without types compiles from the snapshot.
    crate::r#gen::run(root.path(), Mode::Overwrite).unwrap();
    let generated =
        fs::read_to_string(root.path().join("mappings/src/generated/people.rs")).unwrap();
    assert!(
        generated.contains("#[sync(type = \"bigint\")]"),
        "{generated}"
    );
    assert!(
        generated.contains("pub name: Option<String>"),
        "{generated}"
    );
    assert!(
        generated.contains("#[sync(type = \"enum\")]"),
        "{generated}"
    );
    assert!(generated.contains("pub feeling: String"), "{generated}");

    client
        .batch_execute(
            "ALTER TABLE public.people DROP COLUMN scores;
             ALTER TABLE public.people ALTER COLUMN id TYPE numeric;
             ALTER TABLE public.people ALTER COLUMN email DROP NOT NULL;",
        )
        .unwrap();
    let error = run(root.path(), &mut client, Mode::Check).unwrap_err();
    assert_eq!(
        error.to_string(),
        "3 differences between mappings/schema and the database; run `cargo xtask schema`"
    );
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        first,
        "--check writes nothing"
    );
}

#[test]
fn a_snapshot_of_no_mapping_is_stale() {
    let db = testkit::PgServer::shared().create_database();
    let mut client = source_client(&db);
    client.batch_execute(DDL).unwrap();
    let root = workspace();
    run(root.path(), &mut client, Mode::Overwrite).unwrap();
    let orphan = root.path().join(SCHEMA).join("public.gone.json");
    fs::copy(root.path().join(SCHEMA).join("public.people.json"), &orphan).unwrap();
    assert!(run(root.path(), &mut client, Mode::Check).is_err());
    run(root.path(), &mut client, Mode::Overwrite).unwrap();
    assert!(!orphan.exists());
}

#[test]
fn a_missing_source_table_is_an_error_that_keeps_every_snapshot() {
    let db = testkit::PgServer::shared().create_database();
    let mut client = source_client(&db);
    let root = workspace();
    let snapshot = root.path().join("mappings/schema/public.people.json");
    fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
    fs::write(&snapshot, "{}").unwrap();
    let error = run(root.path(), &mut client, Mode::Overwrite).unwrap_err();
    assert!(
        format!("{error:#}")
            .starts_with("nothing written: a mapping's source table is not in this database"),
        "{error:#}"
    );
    assert_eq!(
        fs::read_to_string(&snapshot).unwrap(),
        "{}",
        "the snapshot is kept"
    );
}

#[test]
fn mapping_limits_the_tables_and_removes_no_snapshot() {
    let db = testkit::PgServer::shared().create_database();
    let mut client = source_client(&db);
    client.batch_execute(DDL).unwrap();
    let root = workspace();
    // A second mapping whose table this database lacks, and an orphan snapshot.
    fs::write(
        root.path().join("mappings/orders.yaml"),
        PEOPLE
            .replace("public.people", "public.orders")
            .replace("people:", "orders:"),
    )
    .unwrap();
    let orphan = root.path().join("mappings/schema/public.gone.json");
    fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    fs::write(&orphan, "{}").unwrap();
    run_only(
        root.path(),
        &mut client,
        Mode::Overwrite,
        &["people".to_owned()],
    )
    .unwrap();
    assert!(
        root.path()
            .join("mappings/schema/public.people.json")
            .exists()
    );
    assert!(
        !root
            .path()
            .join("mappings/schema/public.orders.json")
            .exists()
    );
    assert!(orphan.exists(), "--mapping removes no snapshot");
    // Without `--mapping`, the missing `public.orders` stops it, naming the way out.
    let error = run(root.path(), &mut client, Mode::Overwrite).unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        "nothing written: a mapping's source table is not in this database; point `--source` (or DATA_SYNC_SOURCE) at the database that has it, or fix the mapping's `table`; or snapshot only the tables it has: `cargo xtask schema --mapping people`"
    );
    let error = run_only(
        root.path(),
        &mut client,
        Mode::Overwrite,
        &["nobody".to_owned()],
    )
    .unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        "no mapping `nobody`; the mappings are: orders, people"
    );
}

/// The reference source schema of the committed mappings: the tables the
/// integration tests create (`testkit::reference`, `tests/it/yaml_mapping.rs`).
const ODD_SOURCE_DDL: &str = r#"
    CREATE TABLE public."Odd Source" (
        "Id" bigint PRIMARY KEY,
        "select" text NOT NULL,
        "User Name" text,
        "type" character varying(20) NOT NULL,
        "id" integer
    );
"#;

/// `mappings/schema/` is the snapshot of the reference schema; with
/// `DATA_SYNC_UPDATE_SNAPSHOTS=1` this test rewrites it.
#[test]
fn committed_snapshots_are_fresh() {
    let db = testkit::PgServer::shared().create_database();
    let mut client = source_client(&db);
    client.batch_execute(testkit::reference::USERS_DDL).unwrap();
    client.batch_execute(ODD_SOURCE_DDL).unwrap();
    let mode = if std::env::var_os("DATA_SYNC_UPDATE_SNAPSHOTS").is_some() {
        Mode::Overwrite
    } else {
        Mode::Check
    };
    run(&crate::project_root(), &mut client, mode).unwrap();
}
