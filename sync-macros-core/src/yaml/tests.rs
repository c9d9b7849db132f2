use std::path::Path;

use super::*;
use crate::check;

/// Every error of fixture `name`, as `cargo xtask gen` prints them.
fn errors(name: &str) -> Vec<String> {
    let file = format!("tests/fixtures/yaml/{name}.yaml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&file)).unwrap();
    let cx = Ctxt::new();
    let mapping = Mapping::from_yaml(&cx, &file, &text);
    let _ = mapping.and_then(|mapping| check::check(&cx, mapping));
    match cx.check() {
        Ok(()) => Vec::new(),
        Err(diagnostics) => diagnostics.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn cursor_not_read() {
    assert_eq!(
        errors("cursor-not-read"),
        [
            "tests/fixtures/yaml/cursor-not-read.yaml:4:11: `cursor` names `updated_at`, which no field reads; declare it under `source.columns` with its `type`",
        ]
    );
}

#[test]
fn cursor_and_capture() {
    assert_eq!(
        errors("cursor-and-capture"),
        [
            "tests/fixtures/yaml/cursor-and-capture.yaml:5:12: a mapping has either a `cursor` or `capture`, not both: remove `cursor` (the log sees every change) or `capture`",
        ]
    );
}

#[test]
fn capture_unknown_value() {
    assert_eq!(
        errors("capture-unknown-value"),
        [
            "tests/fixtures/yaml/capture-unknown-value.yaml:4:12: unknown `capture` value `trigger`: the one value is `log`",
        ]
    );
}

#[test]
fn publication_without_capture() {
    assert_eq!(
        errors("publication-without-capture"),
        [
            "tests/fixtures/yaml/publication-without-capture.yaml:4:16: `publication` is read by change capture only: add `capture` (its value is `log`) or remove it",
        ]
    );
}

#[test]
fn partition_not_read() {
    assert_eq!(
        errors("partition-not-read"),
        [
            "tests/fixtures/yaml/partition-not-read.yaml:4:17: `partition_by` names `tenant`, which no field reads; declare it under `source.columns` with its `type`",
        ]
    );
}

#[test]
fn partition_with_capture_is_accepted() {
    // Change capture routes each change to its partition's file.
    let text = "\
source:
  table: public.orders
  key: id
  capture: log
  partition_by: tenant_id
targets:
  orders:
    columns:
      id: { type: bigint, primary_key: true }
      tenant_id: { type: bigint }
";
    assert_eq!(read("m.yaml", text).err(), None);
}

#[test]
fn partition_wrong_type() {
    assert_eq!(
        errors("partition-wrong-type"),
        [
            "tests/fixtures/yaml/partition-wrong-type.yaml:4:17: partition column `placed_at` is `timestamp with time zone`: a partition column is an integer, text, enum or uuid column, whose text form names a file",
        ]
    );
}

#[test]
fn duplicate_column() {
    assert_eq!(
        errors("duplicate-column"),
        [
            "tests/fixtures/yaml/duplicate-column.yaml:9:7: duplicate column `email` in target `user_main`",
        ]
    );
}

#[test]
fn duplicate_key() {
    assert_eq!(
        errors("duplicate-key"),
        [
            "tests/fixtures/yaml/duplicate-key.yaml:4:3: duplicate key `table` in `source` (first at 2:3)",
        ]
    );
}

#[test]
fn duplicate_target() {
    assert_eq!(
        errors("duplicate-target"),
        [
            "tests/fixtures/yaml/duplicate-target.yaml:8:3: duplicate target `user_main` (first at 5:3)",
        ]
    );
}

#[test]
fn empty_file() {
    assert_eq!(
        errors("empty-file"),
        [
            "tests/fixtures/yaml/empty-file.yaml:1:1: the file is empty: a mapping needs `source` and `targets`",
        ]
    );
}

#[test]
fn empty_targets() {
    assert_eq!(
        errors("empty-targets"),
        [
            "tests/fixtures/yaml/empty-targets.yaml:3:8: `key` names `id`, which no field reads; a target must write it as its primary key",
            "tests/fixtures/yaml/empty-targets.yaml:4:1: the mapping has no target: declare one under `targets`",
        ]
    );
}

#[test]
fn inconsistent_nullable() {
    assert_eq!(
        errors("inconsistent-nullable"),
        [
            "tests/fixtures/yaml/inconsistent-nullable.yaml:12:7: source column `bio` is not nullable here but nullable at 8:7: write the same `nullable` everywhere it is read",
        ]
    );
}

#[test]
fn inconsistent_type() {
    assert_eq!(
        errors("inconsistent-type"),
        [
            "tests/fixtures/yaml/inconsistent-type.yaml:10:19: source column `id` is `integer` here but `bigint` at 7:19: a source column has one type",
        ]
    );
}

#[test]
fn key_not_read() {
    assert_eq!(
        errors("key-not-read"),
        [
            "tests/fixtures/yaml/key-not-read.yaml:3:8: `key` names `user_id`, which no field reads; did you mean `id`, the targets' primary key?",
        ]
    );
}

#[test]
fn long_identifier() {
    assert_eq!(
        errors("long-identifier"),
        [
            "tests/fixtures/yaml/long-identifier.yaml:8:7: invalid identifier: `a_column_name_that_is_much_too_long_for_postgresql_to_keep_whole` is 64 bytes long; PostgreSQL truncates identifiers to 63 bytes",
            "tests/fixtures/yaml/long-identifier.yaml:8:7: invalid column name: `a_column_name_that_is_much_too_long_for_postgresql_to_keep_whole` is 64 bytes long; PostgreSQL truncates identifiers to 63 bytes",
        ]
    );
}

#[test]
fn missing_key() {
    assert_eq!(
        errors("missing-key"),
        ["tests/fixtures/yaml/missing-key.yaml:2:3: missing key `key` in `source`",]
    );
}

#[test]
fn missing_type() {
    assert_eq!(
        errors("missing-type"),
        [
            "tests/fixtures/yaml/missing-type.yaml:7:7: column `id` of target `user_main` needs a `type`: the PostgreSQL type of its source column, e.g. `{ type: bigint }`, or a schema snapshot of the source table (`cargo xtask schema`)",
        ]
    );
}

#[test]
fn no_primary_key() {
    assert_eq!(
        errors("no-primary-key"),
        [
            "tests/fixtures/yaml/no-primary-key.yaml:8:3: target `user_profile` has no primary key; mark its key column `primary_key`",
        ]
    );
}

#[test]
fn nul_identifier() {
    assert_eq!(
        errors("nul-identifier"),
        [
            "tests/fixtures/yaml/nul-identifier.yaml:8:7: invalid identifier: `e\\0mail` contains a NUL character",
            "tests/fixtures/yaml/nul-identifier.yaml:8:7: invalid column name: `e\\0mail` contains a NUL character",
        ]
    );
}

#[test]
fn nullable_key() {
    assert_eq!(
        errors("nullable-key"),
        [
            "tests/fixtures/yaml/nullable-key.yaml:7:56: key column `id` cannot be NULL: remove `nullable: true`",
        ]
    );
}

#[test]
fn reference_cycle() {
    assert_eq!(
        errors("reference-cycle"),
        [
            "tests/fixtures/yaml/reference-cycle.yaml:7:58: `references` form a cycle: user_main -> user_profile -> user_main",
        ]
    );
}

#[test]
fn references_without_column() {
    assert_eq!(
        errors("references-without-column"),
        [
            "tests/fixtures/yaml/references-without-column.yaml:10:58: `references` takes `table.column`, not `user_main`",
        ]
    );
}

#[test]
fn reserved_target_name() {
    assert_eq!(
        errors("reserved-target-name"),
        [
            "tests/fixtures/yaml/reserved-target-name.yaml:5:3: invalid target table name: `sqlite_users`: SQLite reserves table names that begin with `sqlite_`",
        ]
    );
}

#[test]
fn several_documents() {
    assert_eq!(
        errors("several-documents"),
        [
            "tests/fixtures/yaml/several-documents.yaml:3:1: a mapping file holds one YAML document, not several",
        ]
    );
}

#[test]
fn soft_delete_not_nullable() {
    assert_eq!(
        errors("soft-delete-not-nullable"),
        [
            "tests/fixtures/yaml/soft-delete-not-nullable.yaml:6:5: soft-delete column `deleted_at` is NULL for live rows: add `nullable: true`",
        ]
    );
}

#[test]
fn syntax() {
    assert_eq!(
        errors("syntax"),
        [
            "tests/fixtures/yaml/syntax.yaml:8:1: invalid YAML: while parsing a flow mapping, did not find expected ',' or '}'",
        ]
    );
}

#[test]
fn unknown_key() {
    assert_eq!(
        errors("unknown-key"),
        [
            "tests/fixtures/yaml/unknown-key.yaml:2:3: unknown key `tabel` in `source`; expected `table`, `key`, `cursor`, `soft_delete`, `filter`, `capture`, `publication`, `partition_by`, `columns`",
            "tests/fixtures/yaml/unknown-key.yaml:2:3: missing key `table` in `source`",
        ]
    );
}

/// The errors of `check_catalogue` over the YAML fixtures `names` (of
/// `tests/fixtures/catalogue/`), each of which passes `check` on its own: a
/// mapping on its own may reference another mapping's target.
fn catalogue_errors(names: &[&str]) -> Vec<String> {
    let checked: Vec<_> = names
        .iter()
        .map(|name| {
            let file = format!("tests/fixtures/catalogue/{name}.yaml");
            let text =
                std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&file)).unwrap();
            let cx = Ctxt::new();
            let checked = Mapping::from_yaml(&cx, &file, &text)
                .and_then(|mapping| check::check(&cx, mapping));
            cx.check().unwrap();
            checked.unwrap()
        })
        .collect();
    let cx = Ctxt::new();
    check::check_catalogue(&cx, &checked.iter().collect::<Vec<_>>());
    match cx.check() {
        Ok(()) => Vec::new(),
        Err(diagnostics) => diagnostics.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn unknown_references() {
    assert_eq!(
        catalogue_errors(&["unknown-references"]),
        [
            "tests/fixtures/catalogue/unknown-references.yaml:10:58: `references` names no target `user_mian` of this mapping or of another mapping of the catalogue; did you mean `user_main`?",
        ]
    );
}

#[test]
fn references_across_mappings() {
    assert_eq!(
        catalogue_errors(&["catalogue-customers", "catalogue-orders"]),
        Vec::<String>::new()
    );
    assert_eq!(
        catalogue_errors(&["catalogue-orders"]),
        [
            "tests/fixtures/catalogue/catalogue-orders.yaml:8:48: `references` names no target `g_customer` of this mapping or of another mapping of the catalogue",
        ]
    );
    assert_eq!(
        catalogue_errors(&["catalogue-customers", "catalogue-non-key"]),
        [
            "tests/fixtures/catalogue/catalogue-non-key.yaml:8:48: `references` must name the whole primary key of `g_customer` (mapping `catalogue-customers`), not `name`",
        ]
    );
    assert_eq!(
        catalogue_errors(&["catalogue-customers", "catalogue-mismatched-type"]),
        [
            "tests/fixtures/catalogue/catalogue-mismatched-type.yaml:8:46: `g_order.customer_id` is TEXT but `g_customer.id` (mapping `catalogue-customers`) is INTEGER: a reference must link columns of one type",
        ]
    );
    assert_eq!(
        catalogue_errors(&["catalogue-cycle-a", "catalogue-cycle-b"]),
        [
            "tests/fixtures/catalogue/catalogue-cycle-a.yaml:8:41: `references` form a cycle between mappings: catalogue-cycle-a -> catalogue-cycle-b -> catalogue-cycle-a",
        ]
    );
}

#[test]
fn unknown_type() {
    assert_eq!(
        errors("unknown-type"),
        [
            "tests/fixtures/yaml/unknown-type.yaml:8:21: unknown PostgreSQL type `string` for column `name`; use a type as `format_type` prints it, such as `bigint`, `text` or `timestamp with time zone`; data-sync reads the types of its type table (docs/types.md); to carry another type as its text form, sync from a view that selects the column cast to text (`\"col\"::text AS \"col\"`) and declare `type = \"text\"`",
        ]
    );
}

#[test]
fn wrong_node_kind() {
    assert_eq!(
        errors("wrong-node-kind"),
        ["tests/fixtures/yaml/wrong-node-kind.yaml:5:3: `targets` takes target tables, not a list",]
    );
}

#[test]
fn wrong_value_type() {
    assert_eq!(
        errors("wrong-value-type"),
        [
            "tests/fixtures/yaml/wrong-value-type.yaml:7:40: `primary_key` takes `true` or `false`, not `yes`",
        ]
    );
}

/// The model of YAML `text`, or its errors.
fn read(file: &str, text: &str) -> Result<crate::checked::Checked, Vec<String>> {
    let cx = Ctxt::new();
    let mapping = Mapping::from_yaml(&cx, file, text);
    let mapping = mapping.and_then(|mapping| check::check(&cx, mapping));
    match cx.check() {
        Ok(()) => Ok(mapping.expect("no errors, so a mapping")),
        Err(diagnostics) => Err(diagnostics.iter().map(ToString::to_string).collect()),
    }
}

/// The reference `users` mapping in the documented YAML format, verbatim.
const DESIGN_EXAMPLE: &str = "\
# mappings/users.yaml  (mapping name = file stem)
source:
  table: public.users          # [schema.]table
  key: id                      # a column or a list of columns
  cursor: updated_at           # optional: enables incremental sync
  soft_delete: deleted_at      # optional: a non-NULL value deletes the row from the targets
targets:
  user_main:
    columns:
      id:       { type: bigint, primary_key: true }
      username: { type: text }
      email:    { type: text }
  user_profile:
    columns:
      id:         { type: bigint, primary_key: true, references: user_main.id }
      bio:        { type: text, nullable: true }
      avatar_url: { type: text, nullable: true }   # from: <source column>, default = same name
";

#[test]
fn design_example_needs_only_the_types_of_its_cursor_and_soft_delete_columns() {
    assert_eq!(
        read("mappings/users.yaml", DESIGN_EXAMPLE).unwrap_err(),
        [
            "mappings/users.yaml:5:11: `cursor` names `updated_at`, which no field reads; declare it under `source.columns` with its `type`",
            "mappings/users.yaml:6:16: `soft_delete` names `deleted_at`, which no field reads; declare it under `source.columns` with its `type`",
        ]
    );
    let declared = DESIGN_EXAMPLE.replace(
        "targets:\n",
        "  columns:\n    updated_at: { type: timestamp with time zone }\n    deleted_at: { type: timestamptz, nullable: true }\ntargets:\n",
    );
    let mapping = read("mappings/users.yaml", &declared).unwrap();
    assert_eq!(mapping.name.value, "users");
    assert_eq!(mapping.ident.value, "Users");
    let columns: Vec<&str> = mapping
        .fields
        .iter()
        .map(|field| field.column.value.as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "updated_at",
            "deleted_at",
            "id",
            "username",
            "email",
            "bio",
            "avatar_url"
        ]
    );
    assert_eq!(
        mapping.fields[1].rust_type.value,
        "Option < :: sync_runtime :: value :: Timestamptz >"
    );
    assert_eq!(mapping.source.cursor.as_ref().unwrap().value, "updated_at");
    let targets: Vec<(&str, usize)> = mapping
        .targets
        .iter()
        .map(|target| (target.name.value.as_str(), target.columns.len()))
        .collect();
    assert_eq!(targets, [("user_main", 3), ("user_profile", 3)]);
}

#[test]
fn odd_names_become_fields_with_from() {
    let text = "\
source:
  table: public.Odd Source
  key: [Id, select]
targets:
  Odd Main:
    columns:
      Id:        { type: bigint, primary_key: true }
      select:    { type: text, primary_key: true }
      User Name: { type: text, nullable: true }
      type:      { type: enum }
      Tags:      { type: 'integer[]', nullable: true }
";
    let mapping = read("mappings/odd.yaml", text).unwrap();
    assert_eq!(mapping.source.schema.as_ref().unwrap().value, "public");
    assert_eq!(mapping.source.table.value, "Odd Source");
    let fields: Vec<(&str, &str, &str)> = mapping
        .fields
        .iter()
        .map(|field| {
            (
                field.ident.value.as_str(),
                field.column.value.as_str(),
                field.rust_type.value.as_str(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("id", "Id", "i64"),
            ("select", "select", "String"),
            ("user_name", "User Name", "Option < String >"),
            ("r#type", "type", "String"),
            (
                "tags",
                "Tags",
                "Option < :: sync_runtime :: value :: Array >"
            ),
        ]
    );
}

#[test]
fn errors_point_into_values() {
    let text = "\
source: { table: public.users, key: id }
targets:
  user_main:
    columns:
      id: { type: bigint, primary_key: true }
  user_profile:
    columns:
      id: { type: bigint, primary_key: true, references: user_main.key }
";
    assert_eq!(
        read("m.yaml", text).unwrap_err(),
        ["m.yaml:8:68: `references` names no column `key` in target `user_main`"]
    );
}

#[test]
fn columns_sharing_a_name_get_distinct_fields() {
    let text = "\
source: { table: t, key: user_name }
targets:
  a:
    columns:
      user_name: { type: text, primary_key: true }
      User Name: { type: text }
";
    let mapping = read("m.yaml", text).unwrap();
    let idents: Vec<&str> = mapping
        .fields
        .iter()
        .map(|field| field.ident.value.as_str())
        .collect();
    assert_eq!(idents, ["user_name", "user_name_2"]);
}

#[test]
fn aliases_and_quoted_names_work() {
    let text = "\
source: { table: 'public.users', key: \"id\" }
targets:
  a:
    columns:
      id: &key { type: bigint, primary_key: true }
  b:
    columns:
      id: *key
";
    let mapping = read("m.yaml", text).unwrap();
    assert_eq!(mapping.targets.len(), 2);
    assert!(mapping.targets[1].columns[0].primary_key);
}

#[test]
fn a_quoted_true_is_not_a_boolean() {
    let text = "\
source: { table: t, key: id }
targets:
  a:
    columns:
      id: { type: bigint, primary_key: 'true' }
";
    assert_eq!(
        read("m.yaml", text).unwrap_err(),
        ["m.yaml:5:40: `primary_key` takes `true` or `false`, not the string `true`"]
    );
}

#[test]
fn every_error_fixture_fails_with_a_position() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yaml");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry
            .unwrap()
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let errors = errors(&name);
        assert!(!errors.is_empty(), "{name} has no error");
        let prefix = format!("tests/fixtures/yaml/{name}.yaml:");
        assert!(
            errors.iter().all(|error| error.starts_with(&prefix)),
            "{errors:?}"
        );
        count += 1;
    }
    assert!(count >= 15);
}

#[test]
fn as_unknown_value() {
    assert_eq!(
        errors("as-unknown-value"),
        [
            "tests/fixtures/yaml/as-unknown-value.yaml:8:36: `as` takes `real` (numeric), `unix_micros` or `unix_seconds` (timestamp with time zone, timestamp without time zone), `blob` (uuid), not `float`",
        ]
    );
}

#[test]
fn as_wrong_type() {
    assert_eq!(
        errors("as-wrong-type"),
        [
            "tests/fixtures/yaml/as-wrong-type.yaml:8:23: column `amount` is `text` but `as: real` reads `numeric`; `as` takes `real` (numeric), `unix_micros` or `unix_seconds` (timestamp with time zone, timestamp without time zone), `blob` (uuid)",
        ]
    );
}

/// Each `as` of the opt-ins fixture: the Rust type gen emits and the SQLite type of
/// the target column.
#[test]
fn as_chooses_the_rust_type_and_the_sqlite_type() {
    let file = "tests/fixtures/emit/opt-ins.yaml";
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let mapping = read(file, &text).unwrap();
    let emitted = crate::emit::emit(&mapping, file);
    let ddl: String = mapping
        .targets
        .iter()
        .enumerate()
        .map(|(index, _)| crate::sql::create_table(&mapping, index))
        .collect();
    for (column, rust_type, emitted_type, sqlite) in [
        (
            "updated_at",
            ":: sync_runtime :: value :: UnixMicros",
            "pub updated_at: ::sync_runtime::value::UnixMicros,",
            None,
        ),
        (
            "id",
            ":: sync_runtime :: value :: UuidBlob",
            "pub id: ::sync_runtime::value::UuidBlob,",
            Some("\"id\" BLOB NOT NULL"),
        ),
        (
            "amount",
            ":: sync_runtime :: value :: NumericReal",
            "pub amount: ::sync_runtime::value::NumericReal,",
            Some("\"amount\" REAL NOT NULL"),
        ),
        (
            "settled_at",
            "Option < :: sync_runtime :: value :: UnixSeconds >",
            "pub settled_at: Option<::sync_runtime::value::UnixSeconds>,",
            Some("\"settled_at\" INTEGER"),
        ),
        (
            "memo",
            "Option < String >",
            "pub memo: Option<String>,",
            Some("\"memo\" TEXT"),
        ),
    ] {
        let field = mapping
            .fields
            .iter()
            .find(|field| field.column.value == column)
            .unwrap();
        assert_eq!(field.rust_type.value, rust_type, "{column}");
        assert!(emitted.contains(emitted_type), "{column}:\n{emitted}");
        if let Some(sqlite) = sqlite {
            assert!(ddl.contains(sqlite), "{column}:\n{ddl}");
        }
    }
}

#[test]
fn as_must_agree_wherever_a_column_is_read() {
    let text = "\
source:
  table: public.payments
  key: id
targets:
  a:
    columns:
      id:     { type: bigint, primary_key: true }
      amount: { type: numeric, as: real }
  b:
    columns:
      id:     { type: bigint, primary_key: true }
      amount: { type: numeric }
";
    assert_eq!(
        read("mappings/p.yaml", text).unwrap_err(),
        [
            "mappings/p.yaml:12:7: source column `amount` has no `as` here but `as: real` at 8:7: write the same `as` everywhere it is read",
        ]
    );
}

#[test]
fn filter_unknown_column() {
    assert_eq!(
        errors("filter-unknown-column"),
        [
            "tests/fixtures/yaml/filter-unknown-column.yaml:4:36: filter names column `statsu`, which no field reads",
        ]
    );
}

#[test]
fn filter_outside_subset() {
    assert_eq!(
        errors("filter-outside-subset"),
        [
            "tests/fixtures/yaml/filter-outside-subset.yaml:4:36: `lower(status)` is outside the filter subset: a filter takes column names, literals, `$name` parameters, comparisons, `AND`, `OR`, `NOT`, `IN (..)`, `IS [NOT] NULL`, `BETWEEN` and `LIKE`",
        ]
    );
}

#[test]
fn filter_parameter_two_types() {
    assert_eq!(
        errors("filter-parameter-two-types"),
        [
            "tests/fixtures/yaml/filter-parameter-two-types.yaml:4:43: parameter `$tenant` is compared with column `tenant_id` (`bigint`) and with column `status` (`text`): one parameter has one type",
        ]
    );
}

#[test]
fn filter_trailing_statement() {
    assert_eq!(
        errors("filter-trailing-statement"),
        [
            "tests/fixtures/yaml/filter-trailing-statement.yaml:4:27: filter: unexpected `;` after the condition",
        ]
    );
}

#[test]
fn filter_literal_type() {
    assert_eq!(
        errors("filter-literal-type"),
        [
            "tests/fixtures/yaml/filter-literal-type.yaml:4:24: `seven` is a string but column `tenant_id` is `bigint`",
        ]
    );
}

#[test]
fn unquoted_comma() {
    assert_eq!(
        errors("unquoted-comma"),
        [
            "tests/fixtures/yaml/unquoted-comma.yaml:8:33: `numeric(12,2)` is cut at its comma, which ends a value inside `{ }`: quote it, `type: \"numeric(12,2)\"`",
        ]
    );
}

#[test]
fn key_typo() {
    assert_eq!(
        errors("key-typo"),
        [
            "tests/fixtures/yaml/key-typo.yaml:3:8: `key` names `idd`, which no field reads; did you mean `id`?",
        ]
    );
}

#[test]
fn with_paths_start_at_the_mappings_crate_root() {
    let text = "source: { table: public.users, key: id }\ntargets:\n  t:\n    columns:\n      id: { type: bigint, primary_key: true }\n      email: { type: text, with: custom::mask::email }\n      bio: { type: text, with: \"crate::x::y\" }\n";
    let mapping = read("mappings/users.yaml", text).unwrap();
    let with: Vec<&str> = mapping.targets[0]
        .columns
        .iter()
        .filter_map(|column| column.with.as_ref())
        .map(|with| with.value.as_str())
        .collect();
    assert_eq!(with, ["crate::custom::mask::email", "crate::x::y"]);
}

#[test]
fn a_key_column_or_a_bad_path_cannot_have_with() {
    let text = "source: { table: public.users, key: id }\ntargets:\n  t:\n    columns:\n      id: { type: bigint, primary_key: true, with: custom::mask::id }\n      email: { type: text, with: \"not a path\" }\n";
    assert_eq!(
        read("mappings/users.yaml", text).unwrap_err(),
        [
            "mappings/users.yaml:5:52: column `id` of target `t` is a key column: it cannot go through a transform, since upserts, deletes and `--prune` find target rows by the source key",
            "mappings/users.yaml:6:34: `with` takes the path of a function, such as `crate::mask::email`, not `crate::not a path`",
        ]
    );
}

#[test]
fn computed_columns_follow_the_fed_columns() {
    let text = "source: { table: public.users, key: id }\ntargets:\n  t:\n    columns:\n      id: { type: bigint, primary_key: true }\n      domain: { computed: custom::email::domain, type: text, nullable: true }\n      email: { type: text }\n";
    let mapping = read("mappings/users.yaml", text).unwrap();
    assert_eq!(
        crate::sql::create_table(&mapping, 0),
        r#"CREATE TABLE "t" ("id" INTEGER NOT NULL, "email" TEXT NOT NULL, "domain" TEXT, PRIMARY KEY ("id")) STRICT"#
    );
    let computed = &mapping.targets[0].computed[0];
    assert_eq!(
        (computed.with.value.as_str(), computed.nullable),
        ("crate::custom::email::domain", true)
    );
}

#[test]
fn a_computed_column_needs_a_type_and_takes_only_its_keys() {
    let text = "source: { table: public.users, key: id }\ntargets:\n  t:\n    columns:\n      id: { type: bigint, primary_key: true }\n      domain: { computed: custom::email::domain }\n      label: { computed: custom::label, type: text, primary_key: true }\n";
    assert_eq!(
        read("mappings/users.yaml", text).unwrap_err(),
        [
            "mappings/users.yaml:7:53: unknown key `primary_key` in column `label` of target `t`; expected `computed`, `type`, `nullable`",
        ]
    );
    let text = "source: { table: public.users, key: id }\ntargets:\n  t:\n    columns:\n      id: { type: bigint, primary_key: true }\n      domain: { computed: custom::email::domain }\n      label: { computed: custom::label, type: texte }\n";
    assert_eq!(
        read("mappings/users.yaml", text).unwrap_err(),
        [
            "mappings/users.yaml:6:7: computed column `domain` of target `t` needs a `type`: the PostgreSQL type its value is written as, e.g. `{ computed: custom::email::domain, type: text }`",
            "mappings/users.yaml:7:47: unknown PostgreSQL type `texte` for computed column `label` of target `t`",
        ]
    );
}

#[test]
fn strict_false_writes_plain_tables() {
    let text = "strict: false\nsource: { table: public.users, key: id }\ntargets:\n  t:\n    columns:\n      id: { type: bigint, primary_key: true }\n";
    let mapping = read("mappings/users.yaml", text).unwrap();
    assert_eq!(
        crate::sql::create_table(&mapping, 0),
        r#"CREATE TABLE "t" ("id" INTEGER NOT NULL, PRIMARY KEY ("id"))"#
    );
    let text = "strict: no\nsource: { table: public.users, key: id }\ntargets:\n  t:\n    columns:\n      id: { type: bigint, primary_key: true }\n";
    assert_eq!(
        read("mappings/users.yaml", text).unwrap_err(),
        ["mappings/users.yaml:1:9: `strict` takes `true` or `false`, not `no`"]
    );
}
