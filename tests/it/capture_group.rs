//! Capture mappings linked by references (`customers_log`, `orders_log` of
//! `tests/mappings/`): one replication slot for the group, every source
//! transaction applied as one SQLite transaction, so the targets' foreign keys hold
//! after every commit, under a concurrent writer, through `sync` runs (one of them
//! killed mid-drain) and a `follow`.

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use sync_runtime::{Mapping, Registered, SourceConfig, Summary, SyncOptions, plan, sync_all};

use crate::generated::CATALOGUE;
use crate::multi::{StopOnDrop, create_shop, foreign_key_violations, write_pairs};
use crate::outcomes::test_mappings_command;
use crate::support::{self, TestDb};

/// Runs the test catalogue's `names` (and what they are linked to) as `data-sync
/// sync` does; the outcome of each, in run order.
fn run(
    db: &TestDb,
    target: &Path,
    catalogue: &[Registered],
    names: &[&str],
) -> Vec<(&'static str, sync_runtime::Result<Summary>)> {
    let source = SourceConfig::parse(&db.url()).expect("test URL parses");
    let selected: Vec<&Registered> = catalogue
        .iter()
        .filter(|mapping| names.contains(&mapping.spec.name))
        .collect();
    let planned: Vec<Registered> = plan(catalogue, &selected)
        .into_iter()
        .map(|(mapping, _)| mapping)
        .collect();
    let mut outcomes = Vec::new();
    sync_all(
        catalogue,
        &planned,
        &source,
        target,
        &SyncOptions {
            batch_size: 7,
            ..SyncOptions::default()
        },
        &mut |name, result| outcomes.push((name, result.expect("not skipped"))),
    );
    outcomes
}

/// [`run`] of the group; every outcome must be a success.
fn sync_group(db: &TestDb, target: &Path, names: &[&str]) -> Vec<Summary> {
    run(db, target, CATALOGUE, names)
        .into_iter()
        .map(|(name, result)| result.unwrap_or_else(|error| panic!("{name}: {error}")))
        .collect()
}

/// The slots of the source whose names start with `prefix`.
fn slots(db: &TestDb, prefix: &str) -> Vec<String> {
    db.client()
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE database = current_database() AND starts_with(slot_name::text, $1) ORDER BY 1",
            &[&prefix],
        )
        .expect("slots")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// A reader of the target file until `stop`, as another process would read it:
/// counts the states it saw with a broken foreign key, and its checks.
fn check_states(target: &Path, stop: &AtomicBool, broken: &AtomicUsize, checks: &AtomicUsize) {
    while !stop.load(Ordering::Relaxed) {
        if target.exists() {
            let violations = support::sqlite_rows(
                target,
                "SELECT count(*) FROM sqlite_master WHERE name = 'log_order'",
            );
            if violations[0][0] == Value::Integer(1) && !foreign_key_violations(target).is_empty() {
                broken.fetch_add(1, Ordering::Relaxed);
            }
            checks.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Asserts that the targets equal the source's customers and orders exactly.
#[track_caller]
fn assert_same_shop(db: &TestDb, target: &Path) {
    let mut client = db.client();
    let customers: Vec<Vec<Value>> = client
        .query("SELECT id, name FROM public.customers ORDER BY id", &[])
        .expect("customers")
        .iter()
        .map(|row| vec![Value::Integer(row.get(0)), Value::Text(row.get(1))])
        .collect();
    let orders: Vec<Vec<Value>> = client
        .query(
            "SELECT id, customer_id, amount FROM public.orders ORDER BY id",
            &[],
        )
        .expect("orders")
        .iter()
        .map(|row| {
            vec![
                Value::Integer(row.get(0)),
                Value::Integer(row.get(1)),
                Value::Integer(row.get(2)),
            ]
        })
        .collect();
    assert_eq!(
        support::sqlite_rows(target, "SELECT id, name FROM log_customer ORDER BY id"),
        customers
    );
    assert_eq!(
        support::sqlite_rows(
            target,
            "SELECT id, customer_id, amount FROM log_order ORDER BY id"
        ),
        orders
    );
}

/// The position `mapping` stores (its group's).
fn position_of(target: &Path, mapping: &str) -> Option<String> {
    let connection = rusqlite::Connection::open(target).ok()?;
    connection
        .query_row(
            "SELECT \"capture_position\" FROM \"_data_sync_state\" WHERE \"mapping\" = ?1",
            [mapping],
            |row| row.get(0),
        )
        .ok()
}

/// The position `orders_log` stores.
fn position(target: &Path) -> Option<String> {
    position_of(target, "orders_log")
}

/// `data-sync sync --mapping orders_log` over the test mappings, as a child.
fn spawn_sync(db: &TestDb, target: &Path) -> Child {
    test_mappings_command(
        &db.url(),
        target,
        &[
            "sync",
            "--mapping",
            "orders_log",
            "--quiet",
            "--batch-size",
            "1",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("data-sync starts")
}

#[test]
fn linked_capture_mappings_read_one_slot_and_keep_foreign_keys_under_a_writer() {
    let db = support::source_db();
    create_shop(&db);
    let target = support::target_file();
    let target = target.path.as_path();

    // Naming the child brings the parent in, parents first; both copied from one
    // snapshot, with one slot.
    let first = sync_group(&db, target, &["orders_log"]);
    let names: Vec<&str> = first
        .iter()
        .map(|summary| summary.mapping.as_str())
        .collect();
    assert_eq!(names, ["customers_log", "orders_log"]);
    assert_eq!(
        first
            .iter()
            .map(|summary| summary.mode.as_str())
            .collect::<Vec<_>>(),
        ["full", "full"]
    );
    assert_eq!(
        first
            .iter()
            .map(|summary| summary.rows_read)
            .collect::<Vec<_>>(),
        [50, 50]
    );
    let group_slots = slots(&db, "data_sync_customers_log_");
    assert_eq!(group_slots.len(), 1, "{group_slots:?}");
    assert_eq!(slots(&db, "data_sync_orders_log_"), Vec::<String>::new());
    assert_eq!(
        support::sqlite_rows(
            target,
            "SELECT \"mapping\", \"capture_slot\" FROM \"_data_sync_state\" ORDER BY 1"
        ),
        [
            [
                Value::Text("customers_log".into()),
                Value::Text(group_slots[0].clone())
            ],
            [
                Value::Text("orders_log".into()),
                Value::Text(group_slots[0].clone())
            ],
        ]
    );
    assert_same_shop(&db, target);

    let stop = AtomicBool::new(false);
    let broken = AtomicUsize::new(0);
    let checks = AtomicUsize::new(0);
    let (mut killed, mut drains) = (0, 0);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_pairs(&db, &stop));
        let reader = scope.spawn(|| check_states(target, &stop, &broken, &checks));
        // A failing assertion below still stops the writer and the reader.
        let _stop = StopOnDrop(&stop);
        for round in 0..8 {
            std::thread::sleep(Duration::from_millis(150));
            if round == 4 {
                // A run killed mid-drain (SIGKILL), once it committed some source
                // transactions and not all: what it committed is whole source
                // transactions, with their position. Up to 5 tries, each after a
                // backlog of the writer's transactions.
                for _ in 0..5 {
                    std::thread::sleep(Duration::from_millis(1500));
                    let before = position(target);
                    let mut child = spawn_sync(&db, target);
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while child.try_wait().expect("child").is_none()
                        && position(target) == before
                        && Instant::now() < deadline
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    if child.try_wait().expect("child").is_none() {
                        child.kill().expect("SIGKILL");
                        killed += 1;
                    }
                    child.wait().expect("child ends");
                    if killed > 0 {
                        break;
                    }
                }
                // Every commit moved both members' positions together.
                assert_eq!(position_of(target, "customers_log"), position(target));
            } else {
                let summaries = sync_group(&db, target, &["customers_log"]);
                drains += summaries
                    .iter()
                    .filter(|summary| summary.mode == "capture")
                    .count();
            }
            assert_eq!(
                foreign_key_violations(target),
                Vec::<Vec<Value>>::new(),
                "round {round}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        let pairs = writer.join().expect("writer");
        assert!(pairs > 0, "the writer wrote while the runs went on");
        reader.join().expect("reader");
    });
    assert_eq!(
        broken.load(Ordering::Relaxed),
        0,
        "a state with a broken foreign key"
    );
    assert!(checks.load(Ordering::Relaxed) > 0);
    assert!(drains >= 14, "{drains} drains");
    assert_eq!(killed, 1, "a run was killed mid-drain");

    // Once the writer stops, one more run makes the targets equal the source, from
    // the same slot.
    sync_group(&db, target, &["orders_log"]);
    assert_same_shop(&db, target);
    assert_eq!(foreign_key_violations(target), Vec::<Vec<Value>>::new());
    assert_eq!(slots(&db, "data_sync_"), group_slots);

    // `status` shows the one slot for each member; `drop-slot` of one member drops
    // it and forgets it for both.
    let source = SourceConfig::parse(&db.url()).expect("test URL parses");
    let registered = |name: &str| {
        *CATALOGUE
            .iter()
            .find(|mapping| mapping.spec.name == name)
            .expect("a test mapping")
    };
    for name in ["customers_log", "orders_log"] {
        let status = registered(name)
            .slot_status(&source, target)
            .expect("status")
            .expect("a slot");
        assert_eq!(status.slot, group_slots[0], "{name}");
        assert_eq!(status.wal_status, "reserved", "{name}");
    }
    let output = crate::outcomes::data_sync_test_mappings(&db, target, &["drop-slot"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(crate::outcomes::harness_free(&output.stdout)),
        "customers_log: replication slot dropped; the next sync copies the table again\n\
         fanout_orders_log: no replication slot for this target\n\
         orders_log: replication slot dropped with `customers_log` (linked capture mappings read one slot); the next sync copies the table again\n\
         users_log: no replication slot for this target\n"
    );
    assert_eq!(slots(&db, "data_sync_"), Vec::<String>::new());
    assert!(
        !registered("orders_log")
            .drop_slot(&source, target)
            .expect("drop-slot")
    );
    // The next run copies both again, into a new slot.
    let again = sync_group(&db, target, &["customers_log"]);
    assert_eq!(
        again
            .iter()
            .map(|summary| summary.mode.as_str())
            .collect::<Vec<_>>(),
        ["full", "full"]
    );
    assert_eq!(slots(&db, "data_sync_").len(), 1);
    assert_same_shop(&db, target);
}

#[test]
fn follow_applies_linked_capture_mappings_one_source_transaction_at_a_time() {
    let db = support::source_db();
    create_shop(&db);
    let target = support::target_file();
    let target = target.path.as_path();
    let mut follow = support::Logged::start({
        let mut command = test_mappings_command(
            &db.url(),
            target,
            &[
                "-v",
                "--log-format",
                "json",
                "follow",
                "--mapping",
                "customers_log",
            ],
        );
        command.env_remove("RUST_LOG");
        command
    });
    // The first copy of both, from one snapshot, with one position.
    let copied = || {
        let Ok(connection) = rusqlite::Connection::open(target) else {
            return false;
        };
        connection
            .query_row(
                "SELECT count(DISTINCT \"capture_position\") = 1 AND count(\"capture_position\") = 2
                 FROM \"_data_sync_state\" WHERE \"capture_slot\" IS NOT NULL",
                [],
                |row| row.get::<_, bool>(0),
            )
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !copied() {
        assert!(Instant::now() < deadline, "follow made its first copy");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stop = AtomicBool::new(false);
    let broken = AtomicUsize::new(0);
    let checks = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_pairs(&db, &stop));
        let reader = scope.spawn(|| check_states(target, &stop, &broken, &checks));
        let _stop = StopOnDrop(&stop);
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        assert!(writer.join().expect("writer") > 0);
        reader.join().expect("reader");
    });
    assert_eq!(
        broken.load(Ordering::Relaxed),
        0,
        "a state with a broken foreign key"
    );
    assert!(checks.load(Ordering::Relaxed) > 0);
    // Every change arrives.
    let deadline = Instant::now() + Duration::from_secs(30);
    let source_orders = || -> i64 {
        db.client()
            .query_one("SELECT count(*) FROM public.orders", &[])
            .expect("count")
            .get(0)
    };
    let expected = source_orders();
    while support::sqlite_rows(target, "SELECT count(*) FROM log_order")[0][0]
        != Value::Integer(expected)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = follow.terminate();
    assert!(status.success(), "{status:?}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(
        follow.child.stdout.as_mut().expect("stdout piped"),
        &mut stdout,
    )
    .expect("stdout");
    let stdout =
        String::from_utf8_lossy(crate::outcomes::harness_free(stdout.as_bytes())).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("customers_log: followed, "),
        "{stdout}"
    );
    assert!(lines[1].starts_with("orders_log: followed, "), "{stdout}");
    assert_same_shop(&db, target);
    assert_eq!(foreign_key_violations(target), Vec::<Vec<Value>>::new());
    assert_eq!(slots(&db, "data_sync_customers_log_").len(), 1);
    assert_eq!(slots(&db, "data_sync_orders_log_"), Vec::<String>::new());
}

/// A TRUNCATE of both tables in one statement (children first in the targets) and a
/// new pair in the same source transaction: both members apply them, and the
/// targets hold just the new pair with its foreign key true.
#[test]
fn a_truncate_of_the_group_and_a_new_pair_in_one_transaction_apply_whole() {
    let db = support::source_db();
    create_shop(&db);
    let target = support::target_file();
    let target = target.path.as_path();
    sync_group(&db, target, &["orders_log"]);
    db.client()
        .batch_execute(
            "BEGIN;
             TRUNCATE public.orders, public.customers;
             INSERT INTO public.customers (id, name) VALUES (500, 'c500');
             INSERT INTO public.orders (id, customer_id, amount) VALUES (500, 500, 7);
             COMMIT;",
        )
        .expect("truncate");
    let drained = sync_group(&db, target, &["orders_log"]);
    assert_eq!(
        drained
            .iter()
            .map(|summary| (
                summary.mapping.as_str(),
                summary.mode.as_str(),
                summary.rows_read
            ))
            .collect::<Vec<_>>(),
        [
            ("customers_log", "capture", 2),
            ("orders_log", "capture", 2)
        ]
    );
    assert_eq!(
        support::sqlite_rows(target, "SELECT id, name FROM log_customer"),
        [[Value::Integer(500), Value::Text("c500".into())]]
    );
    assert_eq!(
        support::sqlite_rows(target, "SELECT id, customer_id, amount FROM log_order"),
        [[Value::Integer(500), Value::Integer(500), Value::Integer(7)]]
    );
    assert_eq!(foreign_key_violations(target), Vec::<Vec<Value>>::new());
}

/// Members synced alone first (each with a slot of its own, as before they were
/// grouped) are copied again as a group into one new slot, and their old slots
/// dropped.
#[test]
fn members_with_slots_of_their_own_are_copied_again_into_one_slot() {
    let db = support::source_db();
    create_shop(&db);
    let target = support::target_file();
    let target = target.path.as_path();
    let source = SourceConfig::parse(&db.url()).expect("test URL parses");
    let options = SyncOptions::default();
    sync_runtime::sync::<crate::generated::CustomersLog>(&source, target, &options)
        .expect("customers_log alone");
    sync_runtime::sync::<crate::generated::OrdersLog>(&source, target, &options)
        .expect("orders_log alone");
    let alone = slots(&db, "data_sync_");
    assert_eq!(alone.len(), 2, "{alone:?}");
    db.client()
        .batch_execute(
            "INSERT INTO public.customers (id, name) VALUES (600, 'c600');
             INSERT INTO public.orders (id, customer_id, amount) VALUES (600, 600, 6);",
        )
        .expect("a new pair");
    let grouped = sync_group(&db, target, &["orders_log"]);
    assert_eq!(
        grouped
            .iter()
            .map(|summary| (
                summary.mapping.as_str(),
                summary.mode.as_str(),
                summary.rows_read
            ))
            .collect::<Vec<_>>(),
        [("customers_log", "full", 51), ("orders_log", "full", 51)]
    );
    let now = slots(&db, "data_sync_");
    assert_eq!(now.len(), 1, "{now:?}");
    assert!(!alone.contains(&now[0]), "{alone:?} {now:?}");
    assert_same_shop(&db, target);
    assert_eq!(foreign_key_violations(target), Vec::<Vec<Value>>::new());
}

/// A capture mapping whose target references the target of a cursor mapping
/// (`customers` of `multi`).
#[derive(Mapping)]
#[sync(
    from = "public.orders",
    name = "orders_on_cursor",
    key = "id",
    capture = "log"
)]
pub struct OrdersOnCursor {
    #[sync(to = "g_order_on_cursor", primary_key)]
    pub id: i64,
    #[sync(to = "g_order_on_cursor", references = "g_customer.id")]
    pub customer_id: i64,
}

#[test]
fn a_capture_mapping_linked_to_a_cursor_mapping_is_refused() {
    let db = support::source_db();
    create_shop(&db);
    let target = support::target_file();
    let catalogue = [
        Registered::of::<crate::multi::Customers>(),
        Registered::of::<OrdersOnCursor>(),
    ];
    let outcomes = run(&db, &target.path, &catalogue, &["orders_on_cursor"]);
    let messages: Vec<(&str, String)> = outcomes
        .iter()
        .map(|(name, result)| {
            (
                *name,
                result
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        messages,
        [
            (
                "customers",
                "mapping `customers`: not committed, since `orders_on_cursor`, synced with it in one transaction, failed".to_owned()
            ),
            (
                "orders_on_cursor",
                "mapping `orders_on_cursor`: it reads the change log (`capture: log`) and is linked by references to `customers`, which does not: mappings linked by references are synced together, so they must all have `capture: log` or none; change one of them (then `cargo xtask gen` and rebuild), nothing was synced".to_owned()
            ),
        ]
    );
    // Nothing was created: no slot, no target file written.
    assert_eq!(slots(&db, "data_sync_"), Vec::<String>::new());
    assert!(
        !target.path.exists()
            || support::sqlite_rows(&target.path, "SELECT count(*) FROM sqlite_master")[0][0]
                == Value::Integer(0)
    );
}
