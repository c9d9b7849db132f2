//! `verify`, `check` and `explain` over a fan-out template (`out/{tenant_id}.sqlite`)
//! against a real PostgreSQL: every file compared with its tenant's source rows in
//! one pass, missing and stale files named, shards selecting their files.

use std::path::Path;

use crate::fanout::{create_orders, template, tenants};
use crate::outcomes::data_sync_test_mappings;
use crate::support::{self, TestDb};

/// The shard of `tenant` among `count`, by PostgreSQL's md5 and `shard_of_digest`.
fn shard_of(db: &TestDb, tenant: &str, count: u32) -> u32 {
    let digest: Vec<u8> = db
        .client()
        .query_one("SELECT decode(md5($1), 'hex')", &[&tenant])
        .unwrap()
        .get(0);
    sync_runtime::shard_of_digest(&digest.try_into().unwrap(), count)
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// The `verify --json` entry of `fanout_orders`.
fn verify_json(db: &TestDb, template: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["verify", "--mapping", "fanout_orders", "--json"];
    args.extend_from_slice(extra);
    let output = data_sync_test_mappings(db, template, &args);
    let document = json(&output);
    let entry = document["mappings"][0].clone();
    assert_eq!(entry["mapping"], "fanout_orders", "{document}");
    (output.status.code(), entry)
}

/// `(partition, outcome)` of every file of a `verify --json` entry, in order.
fn outcomes(entry: &serde_json::Value) -> Vec<(String, String)> {
    entry["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| {
            (
                file["partition"].as_str().unwrap().to_owned(),
                file["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn verify_compares_every_file_and_names_the_tampered_missing_and_stale_ones() {
    let db = support::source_db();
    create_orders(&db, 30);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    let output = data_sync_test_mappings(&db, &template, &["sync", "--mapping", "fanout_orders"]);
    assert!(output.status.success(), "{output:?}");
    let tenants = tenants(&db);
    assert_eq!(tenants.len(), 30);

    // Every file equals its tenant.
    let (code, entry) = verify_json(&db, &template, &[]);
    assert_eq!(code, Some(0), "{entry}");
    assert_eq!(entry["outcome"], "ok");
    assert_eq!(entry["template"], template.to_str().unwrap());
    assert_eq!(
        (
            &entry["equal"],
            &entry["differs"],
            &entry["missing"],
            &entry["stale"]
        ),
        (&30.into(), &0.into(), &0.into(), &0.into())
    );
    let expected: Vec<(String, String)> = tenants
        .iter()
        .map(|tenant| (tenant.clone(), "equal".to_owned()))
        .collect();
    assert_eq!(outcomes(&entry), expected);
    let first = &entry["files"][0];
    assert_eq!(
        first["file"],
        directory.path().join("t00.sqlite").to_str().unwrap()
    );
    assert_eq!(first["targets"][0]["table"], "fanout_orders");
    assert_eq!(first["targets"][0]["source_rows"], 10);
    assert_eq!(first["targets"][0]["target_rows"], 10);
    assert_eq!(first["targets"][0]["equal"], true);

    // t03: a value changed (id 33), a row deleted (63), a row added (9999).
    let tampered = directory.path().join("t03.sqlite");
    rusqlite::Connection::open(&tampered)
        .unwrap()
        .execute_batch(
            "UPDATE fanout_orders SET item = 'tampered' WHERE id = 33;
             DELETE FROM fanout_orders WHERE id = 63;
             INSERT INTO fanout_orders VALUES (9999, 't03', 'added', 1);",
        )
        .unwrap();
    // t10's file deleted; a stray file of a tenant the source does not have.
    std::fs::remove_file(directory.path().join("t10.sqlite")).unwrap();
    std::fs::copy(
        directory.path().join("t00.sqlite"),
        directory.path().join("gone.sqlite"),
    )
    .unwrap();

    let output = data_sync_test_mappings(&db, &template, &["verify", "--mapping", "fanout_orders"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = support::stdout(&output);
    let t03 = tampered.display();
    let t10 = directory.path().join("t10.sqlite");
    let gone = directory.path().join("gone.sqlite");
    assert_eq!(
        stdout,
        format!(
            "fanout_orders: 31 files of `{}`: 28 equal, 1 differ, 1 missing, 1 stale\n\
             \x20 {t03}: `fanout_orders` differs from the source: 10 rows in the source, 10 in the target; 1 missing, 1 extra, 1 changed\n\
             \x20 missing key 63\n\
             \x20 extra key 9999\n\
             \x20 changed key 33\n\
             \x20 missing {}: the source has rows of this partition (fanout_orders 10)\n\
             \x20 stale {}: the source has no rows of this partition any more\n",
            template.display(),
            t10.display(),
            gone.display()
        )
    );
    let stderr = support::stderr(&output);
    assert_eq!(
        stderr,
        format!(
            "error: 3 files of `{0}` differ from the source (1 differing, 1 missing, 1 stale); \
             rewrite the files with `data-sync sync --mapping fanout_orders --target '{0}' --full` \
             and delete the stale ones\n",
            template.display()
        )
    );

    let (code, entry) = verify_json(&db, &template, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(entry["outcome"], "ok");
    assert_eq!(
        (
            &entry["equal"],
            &entry["differs"],
            &entry["missing"],
            &entry["stale"]
        ),
        (&28.into(), &1.into(), &1.into(), &1.into())
    );
    let mut expected: Vec<(String, String)> = tenants
        .iter()
        .map(|tenant| {
            let outcome = match tenant.as_str() {
                "t03" => "differs",
                "t10" => "missing",
                _ => "equal",
            };
            (tenant.clone(), outcome.to_owned())
        })
        .collect();
    expected.push(("gone".to_owned(), "stale".to_owned()));
    assert_eq!(outcomes(&entry), expected);
    let differing = &entry["files"][3];
    assert_eq!(differing["file"], tampered.to_str().unwrap());
    assert_eq!(
        differing["targets"][0]["differences"],
        serde_json::json!([
            { "kind": "missing", "key": "63" },
            { "kind": "extra", "key": "9999" },
            { "kind": "changed", "key": "33" },
        ])
    );
    assert_eq!(entry["files"][10]["targets"][0]["source_rows"], 10);
    assert_eq!(entry["files"][10]["targets"][0]["target_rows"], 0);
    assert_eq!(entry["files"][30]["targets"], serde_json::json!([]));
    let document = json(&data_sync_test_mappings(
        &db,
        &template,
        &["verify", "--mapping", "fanout_orders", "--json"],
    ));
    assert_eq!(document["error"]["kind"], "differs", "{document}");

    // `--shard 1/4` compares only the files of its shard.
    let (_, entry) = verify_json(&db, &template, &["--shard", "1/4"]);
    let mut shard: Vec<(String, String)> = expected
        .iter()
        .filter(|(tenant, _)| shard_of(&db, tenant, 4) == 1)
        .cloned()
        .collect();
    shard.sort();
    let mut seen = outcomes(&entry);
    seen.sort();
    assert_eq!(seen, shard);
    assert!(!shard.is_empty() && shard.len() < 31, "{shard:?}");

    // `--partition` compares one file.
    let (code, entry) = verify_json(&db, &template, &["--partition", "t04"]);
    assert_eq!(code, Some(0), "{entry}");
    assert_eq!(outcomes(&entry), [("t04".to_owned(), "equal".to_owned())]);
    let (code, entry) = verify_json(&db, &template, &["--partition", "t03"]);
    assert_eq!(code, Some(1), "{entry}");
    assert_eq!(outcomes(&entry), [("t03".to_owned(), "differs".to_owned())]);

    // A rebuild puts every file right but the stale one, which data-sync never deletes.
    let output = data_sync_test_mappings(
        &db,
        &template,
        &["sync", "--mapping", "fanout_orders", "--full"],
    );
    assert!(output.status.success(), "{output:?}");
    let (code, entry) = verify_json(&db, &template, &[]);
    assert_eq!(code, Some(1), "{entry}");
    assert_eq!(
        (
            &entry["equal"],
            &entry["differs"],
            &entry["missing"],
            &entry["stale"]
        ),
        (&30.into(), &0.into(), &0.into(), &1.into())
    );
    std::fs::remove_file(&gone).unwrap();
    let (code, _) = verify_json(&db, &template, &[]);
    assert_eq!(code, Some(0));
}

#[test]
fn verify_of_a_template_refuses_repair_and_a_template_without_the_placeholder() {
    let db = support::source_db();
    create_orders(&db, 3);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    let output = data_sync_test_mappings(
        &db,
        &template,
        &["verify", "--mapping", "fanout_orders", "--repair"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        support::stderr(&output),
        format!(
            "error: `verify --repair` repairs one file, and `{0}` is a template: verify its files \
             without `--repair`, and rewrite them with \
             `data-sync sync --mapping NAME --target '{0}' --full`\n",
            template.display()
        )
    );
    assert!(
        std::fs::read_dir(directory.path())
            .unwrap()
            .next()
            .is_none()
    );

    let wrong = directory.path().join("{tenant}.sqlite");
    let output = data_sync_test_mappings(&db, &wrong, &["verify", "--mapping", "fanout_orders"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        support::stderr(&output),
        format!(
            "error: mapping `fanout_orders`: the target template `{}` names `{{tenant}}`, but the mapping is partitioned by `tenant_id`: write `{{tenant_id}}`\n",
            wrong.display()
        )
    );
    let plain = directory.path().join("all.sqlite");
    let output = data_sync_test_mappings(
        &db,
        &plain,
        &["verify", "--mapping", "fanout_orders", "--partition", "t01"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        support::stderr(&output),
        format!(
            "error: mapping `fanout_orders`: partitioned by `tenant_id`, so the target `{}` must name a file per value: add the placeholder `{{tenant_id}}`, e.g. `--target 'out/{{tenant_id}}.sqlite'`\n",
            plain.display()
        )
    );
    assert!(
        std::fs::read_dir(directory.path())
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn check_over_a_template_checks_the_source_once_and_every_file() {
    let db = support::source_db();
    create_orders(&db, 6);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    let shown = template.display().to_string();
    // Before the first sync: no file, the next sync creates the table in each.
    let output = data_sync_test_mappings(&db, &template, &["check", "--mapping", "fanout_orders"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        support::stdout(&output),
        format!(
            "fanout_orders: 0 files of `{shown}`: ok (the next sync creates `fanout_orders`)\n"
        )
    );
    let output = data_sync_test_mappings(&db, &template, &["sync", "--mapping", "fanout_orders"]);
    assert!(output.status.success(), "{output:?}");
    let output = data_sync_test_mappings(&db, &template, &["check", "--mapping", "fanout_orders"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        support::stdout(&output),
        format!("fanout_orders: 6 files of `{shown}`: ok\n")
    );

    // One file with a column the mapping does not have, one that is no database.
    let altered = directory.path().join("t02.sqlite");
    rusqlite::Connection::open(&altered)
        .unwrap()
        .execute_batch("ALTER TABLE fanout_orders ADD COLUMN extra TEXT")
        .unwrap();
    let junk = directory.path().join("t05.sqlite");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let output = data_sync_test_mappings(&db, &template, &["check", "--mapping", "fanout_orders"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = support::stdout(&output);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        lines[0],
        format!("fanout_orders: 6 files of `{shown}`: 2 differences")
    );
    assert!(
        lines[1].starts_with(&format!(
            "  target `fanout_orders` in {}: ",
            altered.display()
        )) && lines[1].contains("`extra`"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "  target in {}: the file cannot be read: ",
            junk.display()
        )),
        "{stdout}"
    );
    assert_eq!(
        support::stderr(&output),
        "error: 2 differences between the mappings and the live schemas\n"
    );
    let output = data_sync_test_mappings(
        &db,
        &template,
        &["check", "--mapping", "fanout_orders", "--json"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let document = json(&output);
    let entry = &document["mappings"][0];
    assert_eq!(entry["template"], shown.as_str());
    assert_eq!(entry["files"], 6);
    let differences = entry["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 2);
    assert_eq!(differences[0]["side"], "target");
    assert_eq!(differences[0]["table"], "fanout_orders");
    assert_eq!(differences[0]["file"], altered.to_str().unwrap());
    assert_eq!(differences[1]["file"], junk.to_str().unwrap());
    assert_eq!(document["error"]["kind"], "drift");

    // A template without the placeholder, or with another column's: one error
    // naming it.
    let plain = directory.path().join("all.sqlite");
    let output = data_sync_test_mappings(&db, &plain, &["check", "--mapping", "fanout_orders"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        support::stderr(&output),
        format!(
            "error: mapping `fanout_orders`: partitioned by `tenant_id`, so the target `{}` must name a file per value: add the placeholder `{{tenant_id}}`, e.g. `--target 'out/{{tenant_id}}.sqlite'`\n",
            plain.display()
        )
    );
    assert!(!plain.exists());
    // A mapping without `partition_by` is refused a template.
    let output = data_sync_test_mappings(&db, &template, &["check", "--mapping", "odd_names"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        support::stderr(&output).contains(&format!(
            "the target `{shown}` is a template of the files of a mapping with `partition_by`"
        )),
        "{output:?}"
    );
    assert!(!directory.path().join("{tenant_id}.sqlite").exists());
}

#[test]
fn check_and_verify_work_over_a_capture_mappings_template() {
    let db = support::source_db();
    create_orders(&db, 5);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    let shown = template.display().to_string();
    // Without `REPLICA IDENTITY FULL`: the run's own words, once, for the template.
    let output = data_sync_test_mappings(
        &db,
        &template,
        &["check", "--mapping", "fanout_orders_log", "--json"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let document = json(&output);
    let entry = &document["mappings"][0];
    assert_eq!(entry["template"], shown.as_str());
    assert_eq!(entry["files"], 0);
    let differences = entry["differences"].as_array().unwrap();
    assert!(
        differences
            .iter()
            .any(|difference| difference["side"] == "source"
                && difference["message"]
                    .as_str()
                    .unwrap()
                    .contains("REPLICA IDENTITY FULL")),
        "{document}"
    );
    db.client()
        .batch_execute("ALTER TABLE public.fanout_orders REPLICA IDENTITY FULL")
        .unwrap();
    let output =
        data_sync_test_mappings(&db, &template, &["sync", "--mapping", "fanout_orders_log"]);
    assert!(output.status.success(), "{output:?}");
    let output =
        data_sync_test_mappings(&db, &template, &["check", "--mapping", "fanout_orders_log"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        support::stdout(&output),
        format!("fanout_orders_log: 5 files of `{shown}`: ok\n")
    );
    // The files of a capture template verify as any other; the state file beside
    // them is no file of the template.
    db.client()
        .batch_execute("UPDATE public.fanout_orders SET item = 'later' WHERE id = 7")
        .unwrap();
    let output = data_sync_test_mappings(
        &db,
        &template,
        &["verify", "--mapping", "fanout_orders_log", "--json"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let entry = json(&output)["mappings"][0].clone();
    assert_eq!(
        (
            &entry["equal"],
            &entry["differs"],
            &entry["missing"],
            &entry["stale"]
        ),
        (&4.into(), &1.into(), &0.into(), &0.into())
    );
    assert_eq!(entry["files"][2]["partition"], "t02");
    assert_eq!(
        entry["files"][2]["targets"][0]["differences"],
        serde_json::json!([{ "kind": "changed", "key": "7" }])
    );
    let output =
        data_sync_test_mappings(&db, &template, &["sync", "--mapping", "fanout_orders_log"]);
    assert!(output.status.success(), "{output:?}");
    let output = data_sync_test_mappings(
        &db,
        &template,
        &["verify", "--mapping", "fanout_orders_log"],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        support::stdout(&output),
        format!("fanout_orders_log: 5 files of `{shown}`: 5 equal, 0 differ, 0 missing, 0 stale\n")
    );
    let output = data_sync_test_mappings(
        &db,
        &template,
        &["drop-slot", "--mapping", "fanout_orders_log"],
    );
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn explain_shows_the_partition_column_the_template_and_the_rules() {
    let db = support::source_db();
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    let shown = template.display().to_string();
    let output =
        data_sync_test_mappings(&db, &template, &["explain", "--mapping", "fanout_orders"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = support::stdout(&output);
    for expected in [
        "-- fan-out: one SQLite file per value of `tenant_id` (partition_by), each written in its own SQLite transaction\n".to_owned(),
        format!("-- template: {shown}\n"),
        "-- file name: the value's text form (`column::text`), every byte outside [A-Za-z0-9_-] (and a leading `.`) written %XX; the empty value is `%empty`; a name over 200 bytes keeps its first 180, then `~` and the 16 hex digits of the FNV-1a 64-bit hash of the value\n".to_owned(),
        "ORDER BY \"tenant_id\", \"id\") TO STDOUT (FORMAT binary);\n".to_owned(),
        "-- --partition VALUE: one file; this condition is added, VALUE bound as a setting\n\"tenant_id\"::text = current_setting('data_sync.partition');\n".to_owned(),
        "-- --shard I/N: the files of shard I, shard(value) = the first 15 hex digits of md5(value::text), read as a number, mod N; this condition is added, I and N bound as settings\n('x' || substr(md5(\"tenant_id\"::text), 1, 15))::bit(60)::bigint % current_setting('data_sync.shard_count')::bigint = current_setting('data_sync.shard_index')::bigint;\n".to_owned(),
    ] {
        assert!(stdout.contains(&expected), "{expected}\n--- in ---\n{stdout}");
    }
    // Nothing is written, and no database is needed.
    assert!(
        std::fs::read_dir(directory.path())
            .unwrap()
            .next()
            .is_none()
    );

    let output = data_sync_test_mappings(
        &db,
        &template,
        &["explain", "--mapping", "fanout_orders", "--json"],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let partition = json(&output)["mappings"][0]["partition"].clone();
    assert_eq!(partition["column"], "tenant_id");
    assert_eq!(partition["template"], shown.as_str());
    assert!(
        partition["copy"]
            .as_str()
            .unwrap()
            .ends_with("ORDER BY \"tenant_id\", \"id\") TO STDOUT (FORMAT binary)"),
        "{partition}"
    );
    assert_eq!(
        partition["partition"],
        "\"tenant_id\"::text = current_setting('data_sync.partition')"
    );
    assert!(
        partition["shard"]
            .as_str()
            .unwrap()
            .starts_with("('x' || substr(md5(\"tenant_id\"::text), 1, 15))"),
        "{partition}"
    );
    assert_eq!(
        partition["shard_hash"],
        "shard(value) = the first 15 hex digits of md5(value::text), read as a number, mod N"
    );
    assert!(partition["file_name"].as_str().unwrap().contains("%XX"));
    // A mapping without `partition_by` has none.
    let output = data_sync_test_mappings(
        &db,
        &directory.path().join("app.sqlite"),
        &["explain", "--mapping", "odd_names", "--json"],
    );
    assert_eq!(
        json(&output)["mappings"][0]["partition"],
        serde_json::Value::Null
    );

    // A capture mapping's fan-out: one slot, no selections.
    let output = data_sync_test_mappings(
        &db,
        &template,
        &["explain", "--mapping", "fanout_orders_log"],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = support::stdout(&output);
    assert!(
        stdout.contains(&format!("-- template: {shown}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("-- --partition and --shard: refused for a mapping with `capture: log` (one replication slot feeds every file)\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("data_sync.shard_count"), "{stdout}");

    // A template naming another column: one error naming it.
    let wrong = directory.path().join("{tenant}.sqlite");
    let output = data_sync_test_mappings(&db, &wrong, &["explain", "--mapping", "fanout_orders"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        support::stderr(&output),
        format!(
            "error: mapping `fanout_orders`: the target template `{}` names `{{tenant}}`, but the mapping is partitioned by `tenant_id`: write `{{tenant_id}}`\n",
            wrong.display()
        )
    );
}
