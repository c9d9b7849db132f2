use crate::checked::Checked;
use crate::{Ctxt, Mapping, check, sql};

/// The checked mapping of a YAML `orders` mapping with filter `filter`, or its
/// errors (without the file name).
fn checked(filter: &str) -> Result<Checked, Vec<String>> {
    checked_yaml(&format!(
        "source:\n  table: public.orders\n  key: id\n  filter: {filter:?}\ntargets:\n  order_main:\n    columns:\n      tenant_id: {{ type: bigint }}\n      id: {{ type: bigint, primary_key: true }}\n      status: {{ type: text }}\n      total: {{ type: numeric, nullable: true }}\n      kind: {{ type: enum }}\n      placed_at: {{ type: timestamptz, nullable: true }}\n      payload: {{ type: jsonb, nullable: true }}\n"
    ))
}

fn checked_yaml(text: &str) -> Result<Checked, Vec<String>> {
    let cx = Ctxt::new();
    let mapping =
        Mapping::from_yaml(&cx, "orders.yaml", text).and_then(|mapping| check::check(&cx, mapping));
    match cx.check() {
        Ok(()) => Ok(mapping.expect("no errors, so a mapping")),
        Err(errors) => Err(errors
            .iter()
            .map(|error| error.to_string().replacen("orders.yaml:", "", 1))
            .collect()),
    }
}

fn condition(filter: &str) -> String {
    sql::filter_condition(&checked(filter).unwrap()).unwrap()
}

#[test]
fn the_issue_example_renders_quoted_with_bound_values() {
    let mapping = checked("tenant_id = $tenant AND status <> 'void'").unwrap();
    assert_eq!(
        sql::filter_condition(&mapping).unwrap(),
        r#"(("tenant_id" = current_setting('data_sync.f1')::bigint) AND ("status" <> current_setting('data_sync.f2')::text))"#
    );
    let filter = mapping.filter().unwrap();
    assert_eq!(
        filter.slots,
        [
            Slot {
                value: SlotValue::Parameter("tenant".into()),
                ty: FilterType::Integer,
                field: 0,
            },
            Slot {
                value: SlotValue::Literal("void".into()),
                ty: FilterType::Text,
                field: 2,
            },
        ]
    );
    assert_eq!(
        sql::select(&mapping),
        r#"SELECT "tenant_id", "id", "status", "total", "kind", "placed_at", "payload" FROM "public"."orders" WHERE (("tenant_id" = current_setting('data_sync.f1')::bigint) AND ("status" <> current_setting('data_sync.f2')::text))"#
    );
}

#[test]
fn every_form_of_the_subset_renders() {
    assert_eq!(
        condition(
            "NOT (tenant_id IN (1, -2, $t) OR total BETWEEN 0.5 AND 10) AND status NOT LIKE 'x%' AND placed_at IS NOT NULL AND kind = 'big' AND total >= tenant_id"
        ),
        concat!(
            r#"(((((NOT (("tenant_id" IN (current_setting('data_sync.f1')::bigint, current_setting('data_sync.f2')::bigint, current_setting('data_sync.f3')::bigint)) "#,
            r#"OR ("total" BETWEEN current_setting('data_sync.f4')::numeric AND current_setting('data_sync.f5')::numeric))) "#,
            r#"AND ("status" NOT LIKE current_setting('data_sync.f6')::text)) "#,
            r#"AND ("placed_at" IS NOT NULL)) "#,
            r#"AND ("kind"::text = current_setting('data_sync.f7')::text)) "#,
            r#"AND ("total" >= "tenant_id"))"#,
        )
    );
}

#[test]
fn number_columns_compare_with_each_other() {
    assert_eq!(condition("total = tenant_id"), r#"("total" = "tenant_id")"#);
}

#[test]
fn a_parameter_used_twice_is_one_value() {
    let mapping = checked("tenant_id = $t OR tenant_id > $t").unwrap();
    assert_eq!(mapping.filter().unwrap().slots.len(), 1);
}

#[test]
fn mistakes_are_errors_at_their_place() {
    for (filter, expected) in [
        (
            "tenant_id = NULL",
            "4:24: nothing equals `NULL` in SQL: test a column with `IS NULL` or `IS NOT NULL`",
        ),
        (
            "tenant_id",
            "4:12: `tenant_id` is a column, not a condition: compare it, e.g. `tenant_id = true`",
        ),
        (
            "tenant_id = 1 OR $a = 1",
            "4:29: `$a = 1` compares no column: one side must be a column",
        ),
        (
            "tenant_id = $1",
            "4:24: parameter `$1` needs a name of ASCII letters, digits and `_`, such as `$tenant`",
        ),
        (
            "payload = 'x'",
            "4:12: a filter cannot compare column `payload`, which is `jsonb`",
        ),
        (
            "tenant_id LIKE 'x'",
            "4:12: `LIKE` matches text, but column `tenant_id` is `bigint`",
        ),
        (
            "status = true",
            "4:21: `true` is a boolean but column `status` is `text`",
        ),
        (
            "status = tenant_id",
            "4:12: `status = tenant_id` compares column `status` (`text`) with column `tenant_id` (`bigint`)",
        ),
        (
            "id = 1.5",
            "4:17: `1.5` is not an integer but column `id` is `bigint`",
        ),
        (
            "id IN (SELECT 1)",
            "4:12: `id IN (SELECT 1)` is outside the filter subset: a filter takes column names, literals, `$name` parameters, comparisons, `AND`, `OR`, `NOT`, `IN (..)`, `IS [NOT] NULL`, `BETWEEN` and `LIKE`",
        ),
        (
            "status ILIKE 'x'",
            "4:12: `status ILIKE 'x'` is outside the filter subset: a filter takes column names, literals, `$name` parameters, comparisons, `AND`, `OR`, `NOT`, `IN (..)`, `IS [NOT] NULL`, `BETWEEN` and `LIKE`",
        ),
        (
            "Status = 'x'",
            "4:12: filter names column `Status`, which no field reads; did you mean `status`?",
        ),
    ] {
        assert_eq!(
            checked(filter).err().unwrap_or_default(),
            [expected],
            "{filter}"
        );
    }
}

#[test]
fn a_column_only_the_filter_reads_is_not_unused() {
    // `tenant_id` goes to no target; the filter reads it.
    let yaml = "source:\n  table: public.orders\n  key: id\n  filter: tenant_id = 1\n  columns:\n    tenant_id: { type: bigint }\ntargets:\n  order_main:\n    columns:\n      id: { type: bigint, primary_key: true }\n";
    assert!(checked_yaml(yaml).is_ok());
    let unfiltered = yaml.replace("  filter: tenant_id = 1\n", "");
    assert_eq!(
        checked_yaml(&unfiltered).err().unwrap_or_default(),
        [
            "5:5: source column `tenant_id` goes to no target: add it to a target's `columns` or remove it"
        ]
    );
}

use super::{FilterType, Slot, SlotValue};

/// Change capture judges the filter on each changed row (the runtime's
/// `FilterSpec::evaluate`), so the two go together.
#[test]
fn change_capture_takes_a_filter() {
    let yaml = "source:\n  table: public.orders\n  key: id\n  capture: log\n  filter: id > 1\ntargets:\n  order_main:\n    columns:\n      id: { type: bigint, primary_key: true }\n";
    let mapping = checked_yaml(yaml).unwrap();
    assert!(mapping.source.capture.is_some());
    assert!(mapping.source.filter.is_some());
}
