//! Change capture with `partition_by` (`fanout_orders_log`): one slot for every
//! file of the template; the first run writes one file per tenant, later runs
//! route each change to its tenant's file, a row moving between tenants leaves the
//! old file, a new tenant gets its file, and a file that fails catches up later.

use std::path::Path;

use rusqlite::types::Value;
use sync_runtime::{SourceConfig, SyncOptions};

use crate::capture::slots;
use crate::fanout::{assert_files_equal_tenants, create_orders, file_rows, source_rows, template};
use crate::generated::FanoutOrdersLog;
use crate::support::{self, TestDb};

/// `public.fanout_orders` with `tenants` tenants of 10 rows, with `REPLICA
/// IDENTITY FULL`.
fn source(tenants: i64) -> TestDb {
    let db = support::source_db();
    create_orders(&db, tenants);
    db.client()
        .batch_execute("ALTER TABLE public.fanout_orders REPLICA IDENTITY FULL")
        .unwrap();
    db
}

fn sync(db: &TestDb, template: &Path) -> sync_runtime::Result<sync_runtime::Summary> {
    let source = SourceConfig::parse(&db.url()).unwrap();
    let options = SyncOptions {
        batch_size: 7,
        ..SyncOptions::default()
    };
    sync_runtime::sync::<FanoutOrdersLog>(&source, template, &options)
}

/// The position a file (or the state file) stores; `None` also for a file no drain
/// wrote yet (its first copy has no capture columns).
fn position(path: &Path) -> Option<String> {
    let columns = support::sqlite_rows(
        path,
        "SELECT 1 FROM pragma_table_info('_data_sync_state') WHERE name = 'capture_position'",
    );
    if columns.is_empty() {
        return None;
    }
    match support::sqlite_rows(
        path,
        "SELECT capture_position FROM _data_sync_state WHERE mapping = 'fanout_orders_log'",
    )
    .as_slice()
    {
        [row] => match &row[0] {
            Value::Text(text) => Some(text.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn one_slot_routes_inserts_updates_deletes_and_moves() {
    let db = source(30);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    let first = sync(&db, &template).unwrap();
    assert_eq!(first.rows_read, 300);
    assert_files_equal_tenants(&db, directory.path());
    // One slot for the 30 files, named in the state file beside them.
    assert_eq!(slots(&db).len(), 1);
    let state = directory
        .path()
        .join(".data-sync-capture-fanout_orders_log.sqlite");
    assert!(position(&state).is_some());
    db.client()
        .batch_execute(
            "UPDATE public.fanout_orders SET item = 'changed' WHERE id % 9 = 0;
             UPDATE public.fanout_orders SET tenant_id = 't03', item = 'moved' WHERE id IN (1, 2, 4);
             UPDATE public.fanout_orders SET tenant_id = 't01' WHERE id = 3;
             DELETE FROM public.fanout_orders WHERE id IN (40, 41, 77);
             INSERT INTO public.fanout_orders VALUES (1001, 't29', NULL, 5000), (1002, 't30', 'new tenant', 5001);
             BEGIN;
             UPDATE public.fanout_orders SET tenant_id = 't05' WHERE id = 100;
             UPDATE public.fanout_orders SET tenant_id = 't06', item = 'moved twice' WHERE id = 100;
             COMMIT;",
        )
        .unwrap();
    let second = sync(&db, &template).unwrap();
    assert_eq!(second.mode, "capture");
    // 33 updates in place, 4 moves, 3 deletes, 2 inserts, 2 updates of one row.
    assert_eq!(second.rows_read, 44);
    assert_files_equal_tenants(&db, directory.path());
    // The moved rows left their old files.
    assert!(
        !file_rows(&directory.path().join("t01.sqlite"))
            .iter()
            .any(|row| row[0] == Value::Integer(1))
    );
    assert_eq!(
        file_rows(&directory.path().join("t30.sqlite")),
        source_rows(&db, "t30")
    );
    // Every touched file and the state file stand at the same position.
    assert_eq!(
        position(&directory.path().join("t03.sqlite")),
        position(&state)
    );
    // A run with nothing new changes nothing.
    let third = sync(&db, &template).unwrap();
    assert_eq!(third.rows_read, 0);
    assert_files_equal_tenants(&db, directory.path());
    assert_eq!(slots(&db).len(), 1);
    // `drop-slot` on the template releases the one slot.
    let source = SourceConfig::parse(&db.url()).unwrap();
    assert!(sync_runtime::drop_slot::<FanoutOrdersLog>(&source, &template).unwrap());
    assert!(slots(&db).is_empty());
    assert_eq!(position(&state), None);
}

#[test]
fn follow_over_a_template_is_refused() {
    let db = source(3);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    let source = SourceConfig::parse(&db.url()).unwrap();
    let error =
        sync_runtime::follow::<FanoutOrdersLog>(&source, &template, &SyncOptions::default())
            .unwrap_err();
    assert_eq!(error.kind(), "partition");
    assert_eq!(
        error.to_string(),
        format!(
            "mapping `fanout_orders_log`: `follow` does not follow a template of partition files; \
             run `data-sync sync --mapping fanout_orders_log --target '{}' --every 10s` instead",
            template.display()
        )
    );
    assert!(slots(&db).is_empty());
}

#[test]
fn a_table_without_replica_identity_full_is_refused() {
    let db = support::source_db();
    create_orders(&db, 3);
    let directory = tempfile::tempdir().unwrap();
    let error = sync(&db, &template(directory.path())).unwrap_err();
    assert_eq!(error.kind(), "capture");
    assert_eq!(
        error.to_string(),
        "mapping `fanout_orders_log`: a capture mapping with `partition_by` routes deletes and \
         moved rows by the old row's partition value, which PostgreSQL sends only with \
         `REPLICA IDENTITY FULL`: run `ALTER TABLE public.fanout_orders REPLICA IDENTITY FULL`"
    );
    // Nothing was created on the source.
    assert!(slots(&db).is_empty());
}

#[test]
fn partition_and_shard_are_refused() {
    let db = source(3);
    let directory = tempfile::tempdir().unwrap();
    let source = SourceConfig::parse(&db.url()).unwrap();
    let options = SyncOptions {
        selection: sync_runtime::Selection::One("t01".to_owned()),
        ..SyncOptions::default()
    };
    let error =
        sync_runtime::sync::<FanoutOrdersLog>(&source, &template(directory.path()), &options)
            .unwrap_err();
    assert_eq!(error.kind(), "partition");
    assert!(
        error
            .to_string()
            .contains("`--partition` and `--shard` cannot be used with a capture mapping"),
        "{error}"
    );
    assert!(slots(&db).is_empty());
}

#[test]
fn a_read_only_file_fails_alone_and_catches_up() {
    let db = source(5);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    sync(&db, &template).unwrap();
    let state = directory
        .path()
        .join(".data-sync-capture-fanout_orders_log.sqlite");
    let read_only = directory.path().join("t02.sqlite");
    support::checkpoint(&read_only);
    let before = file_rows(&read_only);
    let position_before = position(&state);
    db.client()
        .batch_execute("UPDATE public.fanout_orders SET item = 'second run'")
        .unwrap();
    let error = {
        let _read_only = crate::faults::ReadOnly::new(&read_only);
        sync(&db, &template).unwrap_err()
    };
    assert_eq!(error.kind(), "partition");
    assert!(
        error.to_string().starts_with(
            "mapping `fanout_orders_log`: 1 of 5 partitions failed, the others were synced: `t02`"
        ),
        "{error}"
    );
    assert_eq!(file_rows(&read_only), before);
    for tenant in ["t00", "t01", "t03", "t04"] {
        assert_eq!(
            file_rows(&directory.path().join(format!("{tenant}.sqlite"))),
            source_rows(&db, tenant)
        );
    }
    // Neither the state file nor the slot moved past the failed file's changes.
    assert_eq!(position(&state), position_before);
    // Writable again: the next run catches it up, the others skip what they have.
    sync(&db, &template).unwrap();
    assert_files_equal_tenants(&db, directory.path());
    assert_eq!(
        position(&read_only),
        position(&directory.path().join("t00.sqlite"))
    );
}

#[test]
fn killed_runs_leave_no_file_half_applied_and_lose_nothing() {
    let seed = crate::capture_faults::seed();
    let mut random = crate::capture_faults::Random(seed);
    let db = source(30);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    sync(&db, &template).unwrap();
    let mut next_id = 1_000;
    let mut killed = 0;
    for round in 0..6 {
        // Updates in place, moves between tenants, deletes and inserts, in several
        // source transactions.
        let mut sql = String::new();
        for _ in 0..20 {
            let id = 1 + random.below(300);
            let tenant = format!("t{:02}", random.below(32));
            sql.push_str(&match random.below(4) {
                0 => format!(
                    "UPDATE public.fanout_orders SET item = 'round {round}' WHERE id = {id};"
                ),
                1 => format!(
                    "UPDATE public.fanout_orders SET tenant_id = '{tenant}' WHERE id = {id};"
                ),
                2 => format!("DELETE FROM public.fanout_orders WHERE id = {id};"),
                _ => {
                    next_id += 1;
                    format!(
                        "INSERT INTO public.fanout_orders VALUES ({next_id}, '{tenant}', 'new', {next_id});"
                    )
                }
            });
        }
        db.client().batch_execute(&sql).unwrap();
        let mut child = crate::outcomes::test_mappings_command(
            &db.url(),
            &template,
            &[
                "sync",
                "--mapping",
                "fanout_orders_log",
                "--quiet",
                "--batch-size",
                "3",
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("data-sync starts");
        std::thread::sleep(std::time::Duration::from_millis(random.below(1500)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    eprintln!("seed {seed}: {killed} of 6 runs killed");
    sync(&db, &template).unwrap();
    // Every tenant's file equals its rows; a tenant every row left keeps an empty
    // file.
    for tenant in crate::fanout::tenants(&db) {
        let path = directory.path().join(format!("{tenant}.sqlite"));
        assert_eq!(
            file_rows(&path),
            source_rows(&db, &tenant),
            "seed {seed}: {tenant}"
        );
    }
    for name in crate::fanout::files(directory.path()) {
        let tenant = name.trim_end_matches(".sqlite");
        assert_eq!(
            file_rows(&directory.path().join(&name)),
            source_rows(&db, tenant),
            "seed {seed}: {tenant}"
        );
    }
}

#[test]
fn batches_of_batch_size_move_the_shared_position_before_a_failed_file() {
    let db = source(5);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    sync(&db, &template).unwrap();
    let state = directory
        .path()
        .join(".data-sync-capture-fanout_orders_log.sqlite");
    let read_only = directory.path().join("t02.sqlite");
    support::checkpoint(&read_only);
    let before = file_rows(&read_only);
    let position_before = position(&state).unwrap();
    // Three source transactions: 10 changes of t00, then 10 of t02, then 10 of t01.
    // With `--batch-size 7` each is a batch of its own.
    for tenant in ["t00", "t02", "t01"] {
        db.client()
            .batch_execute(&format!(
                "UPDATE public.fanout_orders SET item = 'batch' WHERE tenant_id = '{tenant}'"
            ))
            .unwrap();
    }
    let error = {
        let _read_only = crate::faults::ReadOnly::new(&read_only);
        sync(&db, &template).unwrap_err()
    };
    assert_eq!(error.kind(), "partition");
    assert!(
        error.to_string().starts_with(
            "mapping `fanout_orders_log`: 1 of 2 partitions failed, the others were synced: `t02`"
        ),
        "{error}"
    );
    assert_eq!(file_rows(&read_only), before);
    // The first batch committed everywhere it went, and the state file moved to its
    // end; the run stopped at the batch of the failed file, so t01 waits.
    let t00 = directory.path().join("t00.sqlite");
    assert_eq!(file_rows(&t00), source_rows(&db, "t00"));
    let after_first = position(&state).unwrap();
    assert_ne!(after_first, position_before);
    assert_eq!(position(&t00), Some(after_first.clone()));
    assert_ne!(
        file_rows(&directory.path().join("t01.sqlite")),
        source_rows(&db, "t01")
    );
    // Writable again: the next run applies the rest.
    sync(&db, &template).unwrap();
    assert_files_equal_tenants(&db, directory.path());
    // Each file stands at the end of the last batch that touched it.
    assert_eq!(
        position(&directory.path().join("t01.sqlite")),
        position(&state)
    );
    let t02 = position(&read_only).unwrap();
    assert!(
        t02 != position_before && t02 != after_first && Some(&t02) != position(&state).as_ref()
    );
}

/// A drain of many changes over many files, run by the CLI under `/usr/bin/time
/// -v`: prints its peak RSS and the most file descriptors it held, and checks every
/// file. `DATA_SYNC_MEASURE_TENANTS` (default 1000) tenants of 10 rows, updated in
/// `DATA_SYNC_MEASURE_ROUNDS` (default 20) source transactions of every row. Run
/// with `cargo test --test it -- --ignored capture_fanout::measure_drain
/// --nocapture`.
#[test]
#[ignore = "a measurement, run by hand"]
fn measure_drain() {
    let number = |name: &str, default: i64| {
        std::env::var(name)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(default)
    };
    let tenants = number("DATA_SYNC_MEASURE_TENANTS", 1000);
    let rounds = number("DATA_SYNC_MEASURE_ROUNDS", 20);
    let db = source(tenants);
    // `create_orders` names tenants with two digits; here each has its own name.
    db.client()
        .batch_execute(&format!(
            "UPDATE public.fanout_orders SET tenant_id = 't' || lpad((id % {tenants})::text, 5, '0')"
        ))
        .unwrap();
    assert_eq!(crate::fanout::tenants(&db).len() as i64, tenants);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    let first = measure(&db, &template);
    eprintln!("first run ({tenants} tenants): {first}");
    for round in 0..rounds {
        db.client()
            .batch_execute(&format!(
                "UPDATE public.fanout_orders SET item = repeat('x', 100) || ' {round}'"
            ))
            .unwrap();
    }
    let drain = measure(&db, &template);
    eprintln!(
        "drain of {} changes over {tenants} files: {drain}",
        rounds * tenants * 10
    );
    assert_files_equal_tenants(&db, directory.path());
}

/// Runs `data-sync sync --mapping fanout_orders_log` under `/usr/bin/time -v`,
/// sampling its open file descriptors; its peak RSS, descriptors and time.
fn measure(db: &TestDb, template: &Path) -> String {
    let command = crate::outcomes::test_mappings_command(
        &db.url(),
        template,
        &["sync", "--mapping", "fanout_orders_log", "--quiet"],
    );
    let mut timed = std::process::Command::new("/usr/bin/time");
    timed
        .arg("-v")
        .arg(command.get_program())
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(name, value),
            None => timed.env_remove(name),
        };
    }
    let started = std::time::Instant::now();
    let mut child = timed
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/time starts");
    let children = format!("/proc/{0}/task/{0}/children", child.id());
    let mut descriptors = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(pid) = std::fs::read_to_string(&children)
            .ok()
            .and_then(|text| text.split_whitespace().next().map(str::to_owned))
            && let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd"))
        {
            descriptors = descriptors.max(entries.count());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    let rss = report
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .expect("a peak RSS")
        .to_owned();
    format!(
        "peak RSS {rss} KiB, at most {descriptors} file descriptors, {:.2} s",
        started.elapsed().as_secs_f64()
    )
}

/// The `status --json` entry of `fanout_orders_log` over `template`, and the
/// human form of `status`.
fn status(db: &TestDb, template: &Path) -> (serde_json::Value, String) {
    let output = crate::outcomes::data_sync_test_mappings(
        db,
        template,
        &["status", "--json", "--wal-warning", "1"],
    );
    assert!(output.status.success(), "{}", support::stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let entry = json["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mapping| mapping["mapping"] == "fanout_orders_log")
        .unwrap()
        .clone();
    let output =
        crate::outcomes::data_sync_test_mappings(db, template, &["status", "--wal-warning", "1"]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    (entry, support::printed(&output))
}

#[test]
fn status_over_the_template_shows_the_slot_lag_and_the_shared_position() {
    let db = source(3);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    let state = directory
        .path()
        .join(".data-sync-capture-fanout_orders_log.sqlite");
    // Before the first run: no slot to show, and no state file made by looking.
    let (entry, _) = status(&db, &template);
    assert_eq!(entry["capture"], serde_json::Value::Null);
    assert!(!state.exists());

    sync(&db, &template).unwrap();
    // Changes nobody drained: the slot holds their WAL back.
    db.client()
        .batch_execute("UPDATE public.fanout_orders SET item = 'behind'")
        .unwrap();
    let slot = slots(&db).pop().unwrap();
    let shared = position(&state).unwrap();
    let (entry, text) = status(&db, &template);
    assert_eq!(entry["outcomes"], serde_json::json!({ "ok": 3 }));
    let capture = &entry["capture"];
    assert_eq!(capture["slot"], slot.as_str());
    assert_eq!(capture["position"], shared.as_str());
    assert_eq!(capture["confirmed"], shared.as_str());
    assert_eq!(capture["wal_status"], "reserved");
    assert!(capture["retained_bytes"].as_i64().unwrap() > 1, "{capture}");
    assert_eq!(
        capture["warning"].as_str().unwrap(),
        format!(
            "replication slot `{slot}` holds back {} bytes of WAL on the source; run `data-sync \
             sync` (or keep `data-sync follow` running), or release it with `data-sync \
             drop-slot --mapping fanout_orders_log`",
            capture["retained_bytes"]
        )
    );
    assert!(
        text.contains(&format!(
            "fanout_orders_log: slot {slot}, position {shared}, confirmed {shared}, "
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "warning: fanout_orders_log: replication slot `{slot}` holds back "
        )),
        "{text}"
    );

    // A drain moves the shared position, and status follows it.
    sync(&db, &template).unwrap();
    let drained = position(&state).unwrap();
    assert_ne!(drained, shared);
    let (entry, _) = status(&db, &template);
    assert_eq!(entry["capture"]["position"], drained.as_str());
    assert_eq!(entry["capture"]["confirmed"], drained.as_str());
}

/// The `rows` a file's `_data_sync_state` records for the last run that wrote it.
fn recorded_rows(path: &Path) -> i64 {
    match support::sqlite_rows(
        path,
        "SELECT rows FROM _data_sync_state WHERE mapping = 'fanout_orders_log'",
    )
    .as_slice()
    {
        [row] => match row[0] {
            Value::Integer(rows) => rows,
            ref other => panic!("rows {other:?}"),
        },
        rows => panic!("{rows:?}"),
    }
}

/// The position the server has as confirmed for the one slot.
fn confirmed(db: &TestDb) -> String {
    db.client()
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots
             WHERE database = current_database()",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_run_killed_between_two_file_commits_is_caught_up_exactly() {
    let db = source(5);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    sync(&db, &template).unwrap();
    let state = directory
        .path()
        .join(".data-sync-capture-fanout_orders_log.sqlite");
    let shared = position(&state).unwrap();
    let confirmed_before = confirmed(&db);
    // One source transaction whose changes meet t00, t01, t02, t03, t04 in that
    // order: a run applies the files in that order.
    db.client()
        .batch_execute(
            "BEGIN;
             UPDATE public.fanout_orders SET item = 'killed run' WHERE tenant_id = 't00';
             UPDATE public.fanout_orders SET item = 'killed run' WHERE tenant_id = 't01';
             UPDATE public.fanout_orders SET item = 'killed run' WHERE tenant_id = 't02';
             UPDATE public.fanout_orders SET item = 'killed run' WHERE tenant_id = 't03';
             UPDATE public.fanout_orders SET item = 'killed run' WHERE tenant_id = 't04';
             COMMIT;",
        )
        .unwrap();
    // Another writer holds t02's write lock: the run commits t00 and t01, then waits
    // for the lock (up to the busy timeout, 5 s) and says so on stderr.
    let locked = directory.path().join("t02.sqlite");
    let lock = rusqlite::Connection::open(&locked).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut child = crate::outcomes::test_mappings_command(
        &db.url(),
        &template,
        &["sync", "--mapping", "fanout_orders_log"],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("data-sync starts");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(
            read > 0,
            "the run ended without waiting for the lock: {printed}"
        );
        printed.push_str(&line);
        if line.contains("another connection holds a lock on the target file") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL, while it waits between two file commits
    child.wait().unwrap();
    drop(stderr);
    // t00 and t01 committed the batch and its end; t02, t03 and t04 did not (no
    // drain wrote them yet: they hold no position); the state file and the slot
    // stayed where they were.
    let t00 = position(&directory.path().join("t00.sqlite")).unwrap();
    assert_ne!(t00, shared);
    assert_eq!(
        position(&directory.path().join("t01.sqlite")),
        Some(t00.clone())
    );
    for tenant in ["t02", "t03", "t04"] {
        let path = directory.path().join(format!("{tenant}.sqlite"));
        assert_eq!(position(&path), None, "{tenant}");
        assert_ne!(file_rows(&path), source_rows(&db, tenant), "{tenant}");
    }
    for tenant in ["t00", "t01"] {
        let path = directory.path().join(format!("{tenant}.sqlite"));
        assert_eq!(file_rows(&path), source_rows(&db, tenant), "{tenant}");
        assert_eq!(recorded_rows(&path), 10, "{tenant}");
    }
    assert_eq!(position(&state), Some(shared.clone()));
    assert_eq!(confirmed(&db), confirmed_before);

    // The lock released, the next run applies the batch to t02, t03 and t04 only:
    // t00 and t01 skip it (their run records no change), and all stand at its end.
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    sync(&db, &template).unwrap();
    assert_files_equal_tenants(&db, directory.path());
    for tenant in ["t00", "t01", "t02", "t03", "t04"] {
        let path = directory.path().join(format!("{tenant}.sqlite"));
        assert_eq!(position(&path), Some(t00.clone()), "{tenant}");
        let expected = if tenant < "t02" { 0 } else { 10 };
        assert_eq!(recorded_rows(&path), expected, "{tenant}");
    }
    assert_eq!(position(&state), Some(t00.clone()));
    assert_eq!(confirmed(&db), t00);
}
