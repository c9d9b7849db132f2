//! Several mappings linked by references: the catalogue check, one snapshot per
//! run, and foreign keys true in every committed SQLite transaction under a
//! concurrent source writer.

use sync_runtime::{Mapping, Registered, check_catalogue, plan};

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
