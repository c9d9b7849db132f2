//! Several mappings linked by references: the catalogue check, one snapshot per
//! run, and foreign keys true in every committed SQLite transaction under a
//! concurrent source writer.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::types::Value;
use sync_runtime::{
    Mapping, Registered, SourceConfig, Summary, SyncOptions, check_catalogue, plan, sync_all,
};

use crate::support::{self, TestDb};

/// `public.customers`, the parent mapping; the cursor is a sequence.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.customers",
    name = "customers",
    key = "id",
    cursor = "version"
)]
pub struct Customers {
    #[sync(to = "g_customer", primary_key)]
    pub id: i64,
    pub version: i64,
    #[sync(to = "g_customer")]
    pub name: String,
}

/// `public.orders`, whose target references `g_customer` of [`Customers`].
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.orders",
    name = "orders",
    key = "id",
    cursor = "version"
)]
pub struct Orders {
    #[sync(to = "g_order", primary_key)]
    pub id: i64,
    pub version: i64,
    #[sync(to = "g_order", references = "g_customer.id")]
    pub customer_id: i64,
    #[sync(to = "g_order")]
    pub amount: i64,
}

/// References a table no mapping has.
#[derive(Mapping)]
#[sync(from = "public.orders", name = "orders_missing", key = "id")]
pub struct OrdersMissing {
    #[sync(to = "g_order_missing", primary_key)]
    pub id: i64,
    #[sync(to = "g_order_missing", references = "g_customr.id")]
    pub customer_id: i64,
}

/// References a column of `g_customer` that is not its primary key.
#[derive(Mapping)]
#[sync(from = "public.orders", name = "orders_non_key", key = "id")]
pub struct OrdersNonKey {
    #[sync(to = "g_order_non_key", primary_key)]
    pub id: i64,
    #[sync(to = "g_order_non_key", references = "g_customer.name")]
    pub customer_name: String,
}

/// References `g_customer.id` (INTEGER) from a TEXT column.
#[derive(Mapping)]
#[sync(from = "public.orders", name = "orders_text", key = "id")]
pub struct OrdersText {
    #[sync(to = "g_order_text", primary_key)]
    pub id: i64,
    #[sync(to = "g_order_text", references = "g_customer.id")]
    pub customer_id: String,
}

/// With [`CycleB`], references that form a cycle between mappings.
#[derive(Mapping)]
#[sync(from = "public.a", name = "cycle_a", key = "id")]
pub struct CycleA {
    #[sync(to = "g_a", primary_key)]
    pub id: i64,
    #[sync(to = "g_a", references = "g_b.id")]
    pub b_id: i64,
}

/// See [`CycleA`].
#[derive(Mapping)]
#[sync(from = "public.b", name = "cycle_b", key = "id")]
pub struct CycleB {
    #[sync(to = "g_b", primary_key)]
    pub id: i64,
    #[sync(to = "g_b", references = "g_a.id")]
    pub a_id: i64,
}

/// The catalogue of the tests: orders first, so that ordering is tested.
pub static CATALOGUE: &[Registered] = &[Registered::of::<Orders>(), Registered::of::<Customers>()];

fn catalogue_error(catalogue: &[Registered]) -> String {
    match check_catalogue(catalogue) {
        Ok(()) => "ok".to_owned(),
        Err(error) => format!("{} {error}", error.kind()),
    }
}

#[test]
fn the_catalogue_check_finds_each_broken_reference() {
    assert_eq!(catalogue_error(CATALOGUE), "ok");
    assert_eq!(
        catalogue_error(&[Registered::of::<Orders>()]),
        "catalogue catalogue: mapping `orders`: `g_order.customer_id` references `g_customer`, which no mapping of the catalogue has as a target"
    );
    assert_eq!(
        catalogue_error(&[
            Registered::of::<Customers>(),
            Registered::of::<OrdersMissing>()
        ]),
        "catalogue catalogue: mapping `orders_missing`: `g_order_missing.customer_id` references `g_customr`, which no mapping of the catalogue has as a target"
    );
    assert_eq!(
        catalogue_error(&[
            Registered::of::<Customers>(),
            Registered::of::<OrdersNonKey>()
        ]),
        "catalogue catalogue: mapping `orders_non_key`: `g_order_non_key.customer_name` references `g_customer.name`, which is not the whole primary key of `g_customer` (mapping `customers`)"
    );
    assert_eq!(
        catalogue_error(&[
            Registered::of::<Customers>(),
            Registered::of::<OrdersText>()
        ]),
        "catalogue catalogue: mapping `orders_text`: `g_order_text.customer_id` is TEXT but `g_customer.id` (mapping `customers`) is INTEGER: a reference must link columns of one type"
    );
    assert_eq!(
        catalogue_error(&[Registered::of::<CycleA>(), Registered::of::<CycleB>()]),
        "catalogue catalogue: `references` form a cycle between mappings: cycle_a -> cycle_b -> cycle_a"
    );
}

#[test]
fn the_command_line_refuses_a_broken_catalogue() {
    let code = sync_cli::main_from(
        &[Registered::of::<CycleA>(), Registered::of::<CycleB>()],
        ["data-sync", "list"],
    );
    assert_eq!(code, std::process::ExitCode::FAILURE);
    assert_eq!(
        sync_cli::main_from(CATALOGUE, ["data-sync", "list"]),
        std::process::ExitCode::SUCCESS
    );
}

#[test]
fn a_named_mapping_brings_in_the_ones_it_references_parents_first() {
    let orders = &CATALOGUE[0];
    let planned: Vec<(&str, Option<&str>)> = plan(CATALOGUE, &[orders])
        .iter()
        .map(|(mapping, by)| (mapping.spec.name, *by))
        .collect();
    assert_eq!(planned, [("customers", Some("orders")), ("orders", None)]);
    let customers = &CATALOGUE[1];
    let planned: Vec<&str> = plan(CATALOGUE, &[orders, customers])
        .iter()
        .map(|(mapping, _)| mapping.spec.name)
        .collect();
    assert_eq!(planned, ["customers", "orders"]);
}

/// Sets its flag when dropped, also while a panic unwinds.
pub(crate) struct StopOnDrop<'a>(pub(crate) &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

pub(crate) fn create_shop(db: &TestDb) {
    db.client()
        .batch_execute(
            "CREATE SEQUENCE public.shop_versions;
             CREATE TABLE public.customers (
                 id bigint PRIMARY KEY,
                 version bigint NOT NULL DEFAULT nextval('public.shop_versions'),
                 name text NOT NULL
             );
             CREATE TABLE public.orders (
                 id bigint PRIMARY KEY,
                 version bigint NOT NULL DEFAULT nextval('public.shop_versions'),
                 customer_id bigint NOT NULL REFERENCES public.customers (id),
                 amount bigint NOT NULL
             );
             INSERT INTO public.customers (id, name) SELECT n, 'c' || n FROM generate_series(1, 50) n;
             INSERT INTO public.orders (id, customer_id, amount) SELECT n, n, n * 10 FROM generate_series(1, 50) n;",
        )
        .expect("shop tables");
}

/// Whether the target file's foreign keys all hold, read as another process would.
pub(crate) fn foreign_key_violations(target: &Path) -> Vec<Vec<Value>> {
    support::sqlite_rows(target, "SELECT * FROM pragma_foreign_key_check")
}

/// A writer on the source until `stop`: a customer and their order inserted in one
/// transaction, and every other time the oldest pair deleted, the order first, in
/// another; the pairs written.
pub(crate) fn write_pairs(db: &TestDb, stop: &AtomicBool) -> i64 {
    let mut client = db.client();
    let mut next = 1_000_i64;
    let mut oldest = 1_i64;
    while !stop.load(Ordering::Relaxed) {
        let mut transaction = client.transaction().expect("begin");
        transaction
            .execute(
                "INSERT INTO public.customers (id, name) VALUES ($1, 'c' || $1::bigint)",
                &[&next],
            )
            .expect("insert customer");
        transaction
            .execute(
                "INSERT INTO public.orders (id, customer_id, amount) VALUES ($1, $1, $1)",
                &[&next],
            )
            .expect("insert order");
        transaction.commit().expect("commit");
        next += 1;
        if next % 2 == 0 {
            let mut transaction = client.transaction().expect("begin");
            transaction
                .execute(
                    "DELETE FROM public.orders WHERE customer_id = $1",
                    &[&oldest],
                )
                .expect("delete orders");
            transaction
                .execute("DELETE FROM public.customers WHERE id = $1", &[&oldest])
                .expect("delete customer");
            transaction.commit().expect("commit");
            oldest += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    next - 1_000
}

/// Runs the test catalogue's `names` (and what they reference) as the command line
/// does; every outcome must be a success.
fn run(db: &TestDb, target: &Path, names: &[&str], options: &SyncOptions) -> Vec<Summary> {
    let source = SourceConfig::parse(&db.url()).expect("test URL parses");
    let selected: Vec<&Registered> = CATALOGUE
        .iter()
        .filter(|mapping| names.contains(&mapping.spec.name))
        .collect();
    let planned: Vec<Registered> = plan(CATALOGUE, &selected)
        .into_iter()
        .map(|(mapping, _)| mapping)
        .collect();
    let mut summaries = Vec::new();
    sync_all(
        CATALOGUE,
        &planned,
        &source,
        target,
        options,
        &mut |name, result| match result {
            Some(Ok(summary)) => summaries.push(summary),
            Some(Err(error)) => panic!("{name}: {error}"),
            None => panic!("{name}: skipped"),
        },
    );
    summaries
}

#[test]
fn linked_mappings_keep_foreign_keys_under_a_concurrent_writer() {
    let db = support::source_db();
    create_shop(&db);
    let target = support::target_file();
    let target = target.path.as_path();

    // Naming the child brings the parent in, parents first.
    let first = run(&db, target, &["orders"], &SyncOptions::default());
    let names: Vec<&str> = first
        .iter()
        .map(|summary| summary.mapping.as_str())
        .collect();
    assert_eq!(names, ["customers", "orders"]);
    assert_eq!(
        support::sqlite_rows(target, "SELECT count(*) FROM g_order"),
        [[Value::Integer(50)]]
    );

    let stop = AtomicBool::new(false);
    let violations_seen = AtomicUsize::new(0);
    let checks = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_pairs(&db, &stop));
        // A reader checks every state it sees committed, while the runs go on.
        let reader = scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if !foreign_key_violations(target).is_empty() {
                    violations_seen.fetch_add(1, Ordering::Relaxed);
                }
                checks.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        // A failing assertion below still stops the writer and the reader.
        let _stop = StopOnDrop(&stop);
        for round in 0..10 {
            let options = SyncOptions {
                full: round % 3 == 0,
                prune: true,
                batch_size: 7,
                ..SyncOptions::default()
            };
            run(&db, target, &["orders", "customers"], &options);
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
    assert_eq!(violations_seen.load(Ordering::Relaxed), 0);
    assert!(checks.load(Ordering::Relaxed) > 0);

    // Once the writer stops, one more run makes the targets equal the source.
    let options = SyncOptions {
        prune: true,
        ..SyncOptions::default()
    };
    run(&db, target, &["customers", "orders"], &options);
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
        support::sqlite_rows(target, "SELECT id, name FROM g_customer ORDER BY id"),
        customers
    );
    assert_eq!(
        support::sqlite_rows(
            target,
            "SELECT id, customer_id, amount FROM g_order ORDER BY id"
        ),
        orders
    );
    assert_eq!(foreign_key_violations(target), Vec::<Vec<Value>>::new());
}

#[test]
fn a_parent_synced_alone_does_not_orphan_the_children() {
    let db = support::source_db();
    create_shop(&db);
    let target = support::target_file();
    let target = target.path.as_path();
    run(&db, target, &["orders"], &SyncOptions::default());
    db.client()
        .batch_execute(
            "DELETE FROM public.orders WHERE customer_id = 7; DELETE FROM public.customers WHERE id = 7",
        )
        .expect("delete a pair");
    let source = SourceConfig::parse(&db.url()).expect("test URL parses");
    let options = SyncOptions {
        full: true,
        ..SyncOptions::default()
    };
    let mut outcomes = Vec::new();
    sync_all(
        CATALOGUE,
        &[CATALOGUE[1]],
        &source,
        target,
        &options,
        &mut |name, result| {
            outcomes.push((name, result.map(|result| result.map_err(|e| e.to_string()))))
        },
    );
    assert_eq!(outcomes.len(), 1);
    let (name, result) = &outcomes[0];
    assert_eq!(*name, "customers");
    let error = result
        .as_ref()
        .expect("tried")
        .as_ref()
        .expect_err("refused");
    assert!(
        error.starts_with("mapping `customers`: row ") && error.contains("of \"g_order\" would lose its parent row in \"g_customer\", so nothing was committed; sync the mapping of \"g_order\" in the same run"),
        "{error}"
    );
    // The parent kept its old rows: customer 7 is still there for its order.
    assert_eq!(
        support::sqlite_rows(target, "SELECT count(*) FROM g_customer WHERE id = 7"),
        [[Value::Integer(1)]]
    );
    assert_eq!(foreign_key_violations(target), Vec::<Vec<Value>>::new());
}
