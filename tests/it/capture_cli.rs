//! Change capture through the real binary: `follow` applies a commit within a second
//! and stops within a second of SIGTERM; `drop-slot` leaves no slot; `status` reports
//! the slot's lag; every prerequisite error says what to change.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use testkit::{PgServer, TestDb};

use crate::capture::{assert_same_users, slots, stored_position, users_source};
use crate::outcomes::{data_sync_test_mappings, harness_free, test_mappings_command};
use crate::support::{self, stderr};

/// Waits up to `limit` for `condition`, polling every 5 ms.
fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn spawn_follow(db: &TestDb, target: &Path) -> Child {
    test_mappings_command(&db.url(), target, &["follow", "--mapping", "users_log"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("data-sync follow starts")
}

/// `data-sync follow` on `target`, once its first copy is committed (it then holds
/// the slot, and the target file has a position).
fn follow_after_its_first_copy(db: &TestDb, target: &Path) -> Child {
    let child = spawn_follow(db, target);
    assert!(
        wait_for(Duration::from_secs(60), || stored_position(target)
            .is_some()),
        "follow made its first copy"
    );
    child
}

fn row_count(target: &Path, id: i64) -> i64 {
    let connection = rusqlite::Connection::open(target).unwrap();
    connection
        .query_row(
            "SELECT count(*) FROM live_user WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .unwrap_or(0)
}

#[test]
fn follow_applies_a_commit_within_a_second_and_stops_within_a_second_of_sigterm() {
    let db = users_source(100);
    let target = support::target_file();
    let mut child = follow_after_its_first_copy(&db, &target.path);
    let mut client = db.client();
    let mut worst = Duration::ZERO;
    for id in [5001, 5002, 5003] {
        client
            .execute(
                "INSERT INTO public.users (id, username, email) VALUES ($1, 'f', 'f@example.com')",
                &[&id],
            )
            .unwrap();
        let committed = Instant::now();
        assert!(
            wait_for(Duration::from_secs(5), || row_count(&target.path, id) == 1),
            "the row arrived"
        );
        worst = worst.max(committed.elapsed());
    }
    eprintln!("slowest commit to visible in SQLite: {worst:?}");
    assert!(worst < Duration::from_secs(1), "took {worst:?}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let sent = Instant::now();
    let mut exit = None;
    assert!(wait_for(Duration::from_secs(10), || {
        exit = child.try_wait().unwrap();
        exit.is_some()
    }));
    let took = sent.elapsed();
    let output = child.wait_with_output().unwrap();
    assert!(took < Duration::from_secs(1), "took {took:?} to stop");
    assert_eq!(exit.unwrap().code(), Some(0), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(harness_free(&output.stdout));
    assert!(stdout.starts_with("users_log: followed, "), "{stdout}");
    // The position of the last commit is recorded and confirmed to the slot.
    assert_same_users(&db, &target.path);
    let confirmed: String = client
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots
             WHERE database = current_database()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(Some(confirmed), stored_position(&target.path));
    // The next run has nothing to apply.
    let output = data_sync_test_mappings(
        &db,
        &target.path,
        &["sync", "--mapping", "users_log", "--json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["mappings"][0]["rows_read"], 0);
    assert_eq!(json["mappings"][0]["mode"], "capture");
}

/// The slot's `confirmed_flush_lsn` and `restart_lsn`, as `pg_lsn` differences from
/// `0/0` (comparable numbers); not the temporary slot a run may create for a moment
/// to move the restart point.
fn slot_positions(client: &mut postgres::Client) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint,
                    pg_wal_lsn_diff(restart_lsn, '0/0')::bigint
             FROM pg_replication_slots WHERE database = current_database() AND NOT temporary",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

/// What standby status updates give the server, the slot's confirm after each SQLite
/// commit gives it too: under steady writes both the confirmed position and the
/// restart point (the oldest WAL the slot keeps) move forward during a `follow`.
#[test]
fn follow_moves_the_confirmed_position_and_the_restart_point_forward() {
    let db = users_source(10);
    let target = support::target_file();
    let mut child = follow_after_its_first_copy(&db, &target.path);
    let mut client = db.client();
    let (confirmed, restart) = slot_positions(&mut client);
    let mut moved = (confirmed, restart);
    let mut id = 1000;
    let deadline = Instant::now() + Duration::from_secs(60);
    while (moved.0 <= confirmed || moved.1 <= restart) && Instant::now() < deadline {
        for _ in 0..20 {
            id += 1;
            client
                .execute(
                    "INSERT INTO public.users (id, username, email) VALUES ($1, 'w', 'w@example.com')",
                    &[&id],
                )
                .unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        // The restart point moves only at a record of the transactions running,
        // which the server writes every 15 s, and at a checkpoint: one now, rather
        // than waiting.
        client.batch_execute("CHECKPOINT").unwrap();
        moved = slot_positions(&mut client);
    }
    let last = id;
    assert!(
        wait_for(Duration::from_secs(10), || row_count(&target.path, last)
            == 1),
        "the last row arrived"
    );
    child.kill().unwrap();
    let follow = child.wait_with_output().unwrap();
    assert!(
        moved.0 > confirmed,
        "confirmed_flush_lsn stayed at {confirmed}; follow said: {}",
        stderr(&follow)
    );
    assert!(
        moved.1 > restart,
        "restart_lsn stayed at {restart}; follow said: {}",
        stderr(&follow)
    );
    assert_same_users(&db, &target.path);
}

#[test]
fn a_second_consumer_of_the_slot_is_refused() {
    let db = users_source(10);
    let target = support::target_file();
    let mut child = follow_after_its_first_copy(&db, &target.path);
    // The command line stops at the lock beside the target file, naming `follow`.
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "is being written by process {} (`data-sync follow`)",
            child.id()
        )),
        "{}",
        stderr(&output)
    );
    // A consumer the lock does not stop (the library takes none) meets the busy slot.
    let source = sync_runtime::SourceConfig::parse(&db.url()).unwrap();
    let second = sync_runtime::sync::<crate::generated::UsersLog>(
        &source,
        &target.path,
        &sync_runtime::SyncOptions::default(),
    );
    child.kill().unwrap();
    let follow = child.wait_with_output().unwrap();
    let Err(error) = second else {
        panic!("the second run succeeded; follow said: {}", stderr(&follow));
    };
    let message = format!("error: {error}\n");
    assert!(
        message
            .starts_with("error: mapping `users_log`: the replication slot `data_sync_users_log_"),
        "{message:?}"
    );
    assert!(
        message.contains("is busy: another `data-sync follow` or `sync` of this target is running (server process "),
        "{message}"
    );
    assert!(message.ends_with("); stop it first\n"), "{message}");
}

#[test]
fn drop_slot_leaves_no_slot_and_status_reports_the_lag() {
    let db = users_source(20);
    let target = support::target_file();
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let slot = slots(&db);
    assert_eq!(slot.len(), 1);
    assert!(slot[0].starts_with("data_sync_users_log_"), "{slot:?}");

    // Changes nobody consumes: the slot holds their WAL back.
    db.client()
        .batch_execute("UPDATE public.users SET username = username || '!'")
        .unwrap();
    let output = data_sync_test_mappings(
        &db,
        &target.path,
        &["status", "--json", "--wal-warning", "1"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mapping = json["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mapping| mapping["mapping"] == "users_log")
        .unwrap();
    let capture = &mapping["capture"];
    assert_eq!(capture["slot"], slot[0].as_str());
    assert_eq!(capture["wal_status"], "reserved");
    assert_eq!(capture["position"], capture["confirmed"]);
    assert!(capture["retained_bytes"].as_i64().unwrap() > 1, "{capture}");
    let warning = capture["warning"].as_str().unwrap();
    assert!(
        warning.starts_with(&format!("replication slot `{}` holds back ", slot[0])),
        "{warning}"
    );
    assert!(
        warning.ends_with("bytes of WAL on the source; run `data-sync sync` (or keep `data-sync follow` running), or release it with `data-sync drop-slot --mapping users_log`"),
        "{warning}"
    );
    let output = data_sync_test_mappings(&db, &target.path, &["status"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("users_log: slot {}, position ", slot[0])),
        "{text}"
    );

    let output =
        data_sync_test_mappings(&db, &target.path, &["drop-slot", "--mapping", "users_log"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "users_log: replication slot dropped; the next sync copies the table again\n"
    );
    assert!(slots(&db).is_empty(), "no slot is left");
    let publications: i64 = db
        .client()
        .query_one("SELECT count(*) FROM pg_publication", &[])
        .unwrap()
        .get(0);
    assert_eq!(publications, 0, "the publication data-sync created is gone");
    let output =
        data_sync_test_mappings(&db, &target.path, &["drop-slot", "--mapping", "users_log"]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "users_log: no replication slot for this target\n"
    );
    // The next sync copies again, into a new slot.
    let output = data_sync_test_mappings(
        &db,
        &target.path,
        &["sync", "--mapping", "users_log", "--json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["mappings"][0]["mode"], "full");
    assert_eq!(slots(&db).len(), 1);
    assert_same_users(&db, &target.path);
}

/// Runs `users_log` as the role `role` (created with `attributes`, allowed to read
/// `public.users`); returns the error line.
fn error_as_role(db: &TestDb, role: &str, attributes: &str) -> String {
    let mut client = db.client();
    client
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN {attributes}; GRANT SELECT ON public.users TO {role};"
        ))
        .unwrap();
    let url = db.url().replacen("postgres@", &format!("{role}@"), 1);
    let target = support::target_file();
    let output = test_mappings_command(&url, &target.path, &["sync", "--mapping", "users_log"])
        .output()
        .unwrap();
    client
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    stderr(&output)
}

#[test]
fn a_role_without_replication_is_told_what_to_grant() {
    let db = users_source(1);
    assert_eq!(
        error_as_role(&db, "capture_plain", ""),
        "error: mapping `users_log`: the source role has neither `REPLICATION` nor superuser, \
         which replication slots need; run `ALTER ROLE <role> REPLICATION` as a superuser\n"
    );
}

#[test]
fn a_role_that_cannot_create_the_publication_is_told_who_can() {
    let db = users_source(1);
    let message = error_as_role(&db, "capture_replicator", "REPLICATION");
    assert!(
        message.starts_with(
            "error: mapping `users_log`: the source role cannot create the publication (permission denied for database "
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "); have the table's owner run `CREATE PUBLICATION <name> FOR TABLE public.users` and \
             name it with `publication: <name>` in the mapping\n"
        ),
        "{message}"
    );
}

#[test]
fn a_key_the_replica_identity_does_not_send_is_refused() {
    let db = support::source_db();
    db.client()
        .batch_execute(
            "CREATE TABLE public.users (id bigint NOT NULL, username text NOT NULL, email text NOT NULL,
                 bio text, avatar_url text, deleted_at timestamptz);
             CREATE UNIQUE INDEX users_id ON public.users (id);",
        )
        .unwrap();
    let target = support::target_file();
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: mapping `users_log`: the replica identity of `public.users` is DEFAULT, without a \
         primary key, so a DELETE does not send the key column `id`; run `ALTER TABLE \
         \"public\".\"users\" REPLICA IDENTITY FULL` (or make the key the primary key)\n"
    );
    assert!(slots(&db).is_empty(), "nothing was created");
}

#[test]
fn an_altered_table_stops_the_run_at_the_change_and_an_added_column_does_not() {
    let db = users_source(10);
    let target = support::target_file();
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut client = db.client();
    client
        .batch_execute(
            "ALTER TABLE public.users ADD COLUMN extra integer;
             INSERT INTO public.users (id, username, email, extra) VALUES (100, 'x', 'x@example.com', 7);",
        )
        .unwrap();
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert!(
        output.status.success(),
        "an added column is no error: {}",
        stderr(&output)
    );
    assert_same_users(&db, &target.path);

    // Three transactions: one before the change, the change, one after it.
    for statement in [
        "UPDATE public.users SET username = 'before' WHERE id = 1",
        "ALTER TABLE public.users DROP COLUMN email",
        "INSERT INTO public.users (id, username) VALUES (101, 'after')",
    ] {
        client.batch_execute(statement).unwrap();
    }
    let before = stored_position(&target.path);
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: mapping `users_log`: source table `public.users` changed so that the mapping no \
         longer matches: column `email` was dropped or renamed; nothing after the change was \
         applied and the position is kept; update the mapping (then `cargo xtask gen` and \
         rebuild) and run `data-sync sync --full`\n"
    );
    // What came before the change is applied, nothing after it.
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT username FROM live_user WHERE id = 1"),
        vec![vec![Value::Text("before".into())]]
    );
    assert_eq!(row_count(&target.path, 101), 0);
    assert_ne!(
        stored_position(&target.path),
        before,
        "the change before it committed"
    );
}

/// A cluster of its own, with `settings` in postgresql.auto.conf.
fn server_with(settings: &str) -> PgServer {
    let server = PgServer::start().expect("a throwaway cluster starts");
    let db = server.create_database();
    db.client().batch_execute(settings).unwrap();
    drop(db);
    server.restart().expect("the server restarts");
    server
}

/// The source-side messages of `check --mapping users_log --json`, which exits 1.
fn check_source_messages(db: &TestDb, target: &Path) -> Vec<String> {
    let output =
        data_sync_test_mappings(db, target, &["check", "--mapping", "users_log", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(harness_free(&output.stdout)).unwrap();
    json["mappings"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|difference| difference["side"] == "source")
        .map(|difference| difference["message"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn wal_level_and_exhausted_slots_are_told_what_to_change() {
    let server = server_with("ALTER SYSTEM SET wal_level = replica");
    let db = server.create_database();
    db.client()
        .batch_execute(testkit::reference::USERS_DDL)
        .unwrap();
    let target = support::target_file();
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: mapping `users_log`: the source's `wal_level` is `replica`, change capture needs \
         `logical`: set `wal_level = logical` in postgresql.conf (or `ALTER SYSTEM SET wal_level = \
         logical`) and restart PostgreSQL\n"
    );
    // `check` says the same, before any run.
    assert_eq!(
        check_source_messages(&db, &target.path),
        [
            "the source's `wal_level` is `replica`, change capture needs `logical`: set \
          `wal_level = logical` in postgresql.conf (or `ALTER SYSTEM SET wal_level = logical`) \
          and restart PostgreSQL"
        ]
    );

    let mut client = db.client();
    client
        .batch_execute("ALTER SYSTEM SET wal_level = logical")
        .unwrap();
    client
        .batch_execute("ALTER SYSTEM SET max_replication_slots = 1")
        .unwrap();
    server.restart().expect("the server restarts");
    db.client()
        .batch_execute("SELECT pg_create_logical_replication_slot('someone_else', 'pgoutput')")
        .unwrap();
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: mapping `users_log`: all replication slots of the source are in use; raise \
         `max_replication_slots` in postgresql.conf and restart PostgreSQL, or drop an unused \
         slot (`SELECT pg_drop_replication_slot('name')`)\n"
    );
}

#[test]
fn an_invalidated_slot_asks_for_a_full_run() {
    let server = server_with("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
    let db = server.create_database();
    {
        let mut client = db.client();
        client.batch_execute(testkit::reference::USERS_DDL).unwrap();
        client
            .batch_execute(
                "INSERT INTO public.users (id, username, email) VALUES (1, 'a', 'a@example.com')",
            )
            .unwrap();
    }
    let target = support::target_file();
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // More WAL than the slot may keep, then a checkpoint: the slot is invalidated.
    let mut client = db.client();
    for _ in 0..4 {
        client
            .batch_execute(
                "INSERT INTO public.users (id, username, email)
                     SELECT i, 'b', 'b@example.com' FROM generate_series(1000, 20000) AS i;
                 DELETE FROM public.users WHERE id >= 1000;
                 SELECT pg_switch_wal();
                 CHECKPOINT;",
            )
            .unwrap();
    }
    let status: String = client
        .query_one("SELECT wal_status FROM pg_replication_slots", &[])
        .unwrap()
        .get(0);
    assert_eq!(status, "lost");
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message
            .starts_with("error: mapping `users_log`: the replication slot `data_sync_users_log_"),
        "{message:?}"
    );
    assert!(
        message.ends_with(
            "` was invalidated: the source removed WAL it still needed (`max_slot_wal_keep_size`); \
             rerun with `data-sync sync --full` to copy again\n"
        ),
        "{message}"
    );
    // `check` says the same.
    let messages = check_source_messages(&db, &target.path);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        message.contains(&messages[0]) && messages[0].contains("was invalidated"),
        "{messages:?}"
    );
    let output = data_sync_test_mappings(
        &db,
        &target.path,
        &["sync", "--mapping", "users_log", "--full"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_same_users(&db, &target.path);
}
