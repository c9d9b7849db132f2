use super::*;

fn users() -> Table {
    Table {
        columns: vec![
            column("id", "bigint", true),
            column("email", "text", true),
            column("bio", "text", false),
            Column {
                enum_labels: Some(vec!["happy".into(), "sad".into()]),
                ..column("mood", "mood", false)
            },
            Column {
                element_type: Some("integer".into()),
                ..column("scores", "integer[]", false)
            },
        ],
        kind: "table".into(),
        primary_key: vec!["id".into()],
        schema: "public".into(),
        table: "users".into(),
        unique: vec![vec!["email".into()]],
        version: VERSION,
    }
}

fn column(name: &str, pg_type: &str, not_null: bool) -> Column {
    Column {
        domain: None,
        element_type: None,
        enum_labels: None,
        name: name.into(),
        not_null,
        pg_type: pg_type.into(),
    }
}

#[test]
fn json_round_trips_with_sorted_keys() {
    let text = to_json(&users());
    assert_eq!(from_json(&text).unwrap(), users());
    assert!(text.ends_with("}\n"));
    assert!(!text.contains('\r'));
    // Top-level keys in sorted order.
    let keys: Vec<usize> = [
        "\"columns\"",
        "\"kind\"",
        "\"primary_key\"",
        "\"schema\"",
        "\"table\"",
        "\"unique\"",
        "\"version\"",
    ]
    .iter()
    .map(|key| text.find(&format!("\n  {key}:")).unwrap())
    .collect();
    assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{text}");
    assert!(
        !text.contains("domain"),
        "absent options are left out: {text}"
    );
}

#[test]
fn equal_tables_give_equal_files() {
    let mut shuffled = users();
    shuffled.unique = vec![vec!["b".into()], vec!["a".into()], vec!["b".into()]];
    let mut sorted = users();
    sorted.unique = vec![vec!["a".into()], vec!["b".into()]];
    assert_eq!(to_json(&shuffled), to_json(&sorted));
}

#[test]
fn other_versions_and_unknown_keys_are_errors() {
    let text = to_json(&users()).replace("\"version\": 1", "\"version\": 2");
    assert!(
        from_json(&text)
            .unwrap_err()
            .to_string()
            .contains("version 2")
    );
    let text = to_json(&users()).replace("\"kind\"", "\"knid\"");
    assert!(from_json(&text).is_err());
}

#[test]
fn file_names_are_the_mapping_spelling_escaped() {
    assert_eq!(file_name(Some("public"), "users"), "public.users.json");
    assert_eq!(file_name(None, "users"), "users.json");
    assert_eq!(
        file_name(Some("public"), "Odd Source"),
        "public.Odd Source.json"
    );
    assert_eq!(file_name(Some("a"), "b/c%d"), "a.b%2Fc%25d.json");
    assert_eq!(file_name(None, ".hidden"), "%2Ehidden.json");
}

#[test]
fn column_types_for_the_checks() {
    let table = users();
    assert_eq!(
        table.column("id").unwrap().parsed_type(),
        Some(PgType::BigInt)
    );
    assert_eq!(
        table.column("mood").unwrap().parsed_type(),
        Some(PgType::Enum)
    );
    assert_eq!(
        table.column("mood").unwrap().declared_type().as_deref(),
        Some("enum")
    );
    assert_eq!(
        table.column("scores").unwrap().declared_type().as_deref(),
        Some("integer[]")
    );
    assert_eq!(column("p", "point", false).declared_type(), None);
}

#[test]
fn differences_list_every_drift() {
    let snapshot = users();
    let mut live = users();
    live.columns.retain(|column| column.name != "bio");
    live.columns[0].pg_type = "numeric".into();
    live.columns[1].not_null = false;
    live.columns.push(column("added", "date", false));
    live.primary_key = vec![];
    let differences = differences(&snapshot, &live);
    assert_eq!(
        differences,
        [
            "column `id` is `numeric`, the snapshot says `bigint`",
            "column `email` is nullable, the snapshot says NOT NULL",
            "column `bio` was dropped",
            "column `added` (`date`) is new",
            "primary key is (), the snapshot says (`id`)",
        ]
    );
    assert!(super::differences(&snapshot, &snapshot).is_empty());
}

/// The errors of YAML `text` checked against `users()` as `public.users`.
fn yaml_errors(text: &str) -> Result<crate::Mapping, Vec<String>> {
    let cx = crate::Ctxt::new();
    let mapping = crate::Mapping::from_yaml_with(&cx, "mappings/users.yaml", text, &mut |_| {
        Some(Snapshot {
            file: "mappings/schema/public.users.json".into(),
            tracked_path: None,
            table: users(),
        })
    });
    if let Some(mapping) = mapping.as_ref().filter(|_| !cx.has_errors()) {
        let _ = crate::check::check(&cx, mapping.clone());
    }
    match cx.check() {
        Ok(()) => Ok(mapping.unwrap()),
        Err(errors) => Err(errors.iter().map(ToString::to_string).collect()),
    }
}

#[test]
fn yaml_without_types_takes_them_from_the_snapshot() {
    let mapping = yaml_errors(
        "source: { table: public.users, key: id }\n\
         targets:\n  main:\n    columns:\n      id: { primary_key: true }\n      bio: {}\n      mood: {}\n      scores: {}\n",
    )
    .unwrap();
    let types: Vec<(&str, Option<&str>)> = mapping
        .fields
        .iter()
        .map(|field| {
            (
                field.rust_type.value.as_str(),
                field.pg_type.as_ref().map(|name| name.value.as_str()),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("i64", Some("bigint")),
            ("Option < String >", Some("text")),
            ("Option < String >", Some("enum")),
            (
                "Option < :: sync_runtime :: value :: Array >",
                Some("integer[]")
            ),
        ]
    );
}

#[test]
fn yaml_disagreeing_with_the_snapshot_fails_at_its_positions() {
    let errors = yaml_errors(
        "source: { table: public.users, key: email, cursor: scores }\n\
         targets:\n  main:\n    columns:\n      email: { primary_key: true }\n      nmae: { type: text }\n      id: { type: integer }\n      bio: { type: text, nullable: false }\n      scores: {}\n",
    )
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "mappings/users.yaml:9:7: cursor column `scores` cannot be NULL: rows with a NULL cursor would never sync; remove `nullable: true`",
            "mappings/users.yaml:1:52: cursor column `scores` is `integer[]`, which has no useful order",
            "mappings/users.yaml:6:7: column `nmae` is not in `public.users` (schema snapshot `mappings/schema/public.users.json`)",
            "mappings/users.yaml:7:19: column `id` of `public.users` is `bigint`, not `integer` as declared here",
            "mappings/users.yaml:8:36: column `bio` of `public.users` is nullable but field `bio` is `String`: write `nullable: true`",
        ]
    );
}

#[test]
fn a_key_must_be_unique_in_the_table() {
    let key_is = |key: &str| {
        yaml_errors(&format!(
            "source: {{ table: public.users, key: {key} }}\n\
             targets:\n  main:\n    columns:\n      {key}: {{ primary_key: true }}\n      mood: {{ type: enum, nullable: true }}\n"
        ))
    };
    assert!(key_is("id").is_ok());
    assert!(key_is("email").is_ok(), "a unique NOT NULL column is a key");
    let mut errors = yaml_errors(
        "source: { table: public.users, key: mood }\n\
         targets:\n  main:\n    columns:\n      mood: { primary_key: true }\n",
    )
    .unwrap_err();
    errors.retain(|error| error.contains("not unique"));
    assert_eq!(
        errors,
        [
            "mappings/users.yaml:1:37: key (`mood`) is not unique in `public.users`: its primary key is (`id`) and no unique constraint of NOT NULL columns is within the key; rows sharing a key would overwrite each other in every target"
        ]
    );
}

#[test]
fn an_integer_field_narrower_than_its_column_needs_an_explicit_type() {
    let mut mapping = yaml_errors(
        "source: { table: public.users, key: id }\n\
         targets:\n  main:\n    columns:\n      id: { primary_key: true }\n",
    )
    .unwrap();
    mapping.fields[0].rust_type.value = "i32".into();
    mapping.fields[0].pg_type = None;
    let cx = crate::Ctxt::new();
    let _ = crate::check::check(&cx, mapping.clone());
    let errors: Vec<String> = cx
        .check()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "mappings/users.yaml:5:7: column `id` of `public.users` is `bigint` but Rust type `i32` is narrower: use `i64`, or write `#[sync(type = \"bigint\")]` to check each value at run time"
        ]
    );
    mapping.fields[0].pg_type = Some(crate::model::Name::new(
        "bigint",
        crate::model::Origin::Unknown,
    ));
    let cx = crate::Ctxt::new();
    let _ = crate::check::check(&cx, mapping.clone());
    assert!(
        cx.check().is_ok(),
        "an explicit type opts into the range check"
    );
}
