use super::*;

#[test]
fn safe_bytes_stay_and_others_are_percent_escaped() {
    assert_eq!(file_name(b"tenant_7-B"), "tenant_7-B");
    assert_eq!(file_name(b"a.b.c"), "a.b.c");
    assert_eq!(file_name(b"a b"), "a%20b");
    assert_eq!(file_name(b"100%"), "100%25");
    assert_eq!(file_name("é".as_bytes()), "%C3%A9");
    assert_eq!(file_name(b"\xff\xfe"), "%FF%FE");
    assert_eq!(file_name(b"~"), "%7E");
}

#[test]
fn no_value_names_a_traversal_a_separator_or_a_hidden_file() {
    assert_eq!(file_name(b"."), "%2E");
    assert_eq!(file_name(b".."), "%2E.");
    assert_eq!(file_name(b"../x"), "%2E.%2Fx");
    assert_eq!(file_name(b"a/b"), "a%2Fb");
    assert_eq!(file_name(b"a\\b"), "a%5Cb");
    assert_eq!(file_name(b"a\0b"), "a%00b");
    assert_eq!(file_name(b".hidden"), "%2Ehidden");
    for value in [&b"."[..], b"..", b"../x", b"a/b", b"/", b"\0", b".x"] {
        let name = file_name(value);
        assert!(!name.contains('/') && !name.contains('\0'), "{name}");
        assert!(!name.starts_with('.'), "{name}");
    }
}

#[test]
fn the_empty_value_has_a_name_no_other_value_gets() {
    assert_eq!(file_name(b""), EMPTY_NAME);
    assert_eq!(file_name(b"%empty"), "%25empty");
    assert_eq!(file_name(b"empty"), "empty");
}

#[test]
fn long_values_keep_a_prefix_and_a_hash_of_the_whole_value() {
    let long = vec![b'a'; 300];
    let name = file_name(&long);
    assert_eq!(name.len(), 180 + 1 + 16);
    assert_eq!(&name[..180], &"a".repeat(180));
    assert_eq!(&name[180..], format!("~{:016x}", sync_sql::fnv1a_64(&long)));
    // Another value with the same prefix gets another name.
    let mut other = long.clone();
    other[299] = b'b';
    assert_ne!(file_name(&other), name);
    // Exactly at the limit: kept whole.
    assert_eq!(file_name(&[b'z'; MAX_NAME]), "z".repeat(MAX_NAME));
    // A cut never splits a `%XX`.
    for offset in 0..3 {
        let mut value = vec![b'a'; 178 + offset];
        value.extend(std::iter::repeat_n(b'/', 40));
        let name = file_name(&value);
        let (prefix, hash) = name.split_once('~').unwrap();
        assert!(prefix.len() <= 180, "{prefix}");
        assert!(!prefix.ends_with('%') && !prefix[..prefix.len() - 1].ends_with('%'));
        assert_eq!(hash.len(), 16);
        assert!(name.len() <= MAX_NAME);
    }
}

#[test]
fn the_escape_is_stable() {
    // Pinned: other tools compute the same names (docs/fanout.md).
    assert_eq!(
        file_name("Zürich/Nord 2".as_bytes()),
        "Z%C3%BCrich%2FNord%202"
    );
    assert_eq!(sync_sql::fnv1a_64(b"foobar"), 0x85944171f73967e8);
    // The long name of docs/fanout.md's Python, for 300 `x`.
    assert_eq!(
        file_name(&[b'x'; 300]),
        format!("{}~e78ddf9f1ba85555", "x".repeat(180))
    );
}

#[test]
fn text_forms_are_what_postgresql_prints() {
    assert_eq!(
        text_form(&Type::INT4, &(-42i32).to_be_bytes()),
        Some(b"-42".to_vec())
    );
    assert_eq!(
        text_form(&Type::INT2, &7i16.to_be_bytes()),
        Some(b"7".to_vec())
    );
    assert_eq!(
        text_form(&Type::INT8, &i64::MIN.to_be_bytes()),
        Some(b"-9223372036854775808".to_vec())
    );
    assert_eq!(text_form(&Type::TEXT, b"a/b"), Some(b"a/b".to_vec()));
    let uuid = [
        0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a,
        0x11,
    ];
    assert_eq!(
        text_form(&Type::UUID, &uuid),
        Some(b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_vec())
    );
    assert_eq!(text_form(&Type::FLOAT8, &1f64.to_be_bytes()), None);
    assert_eq!(text_form(&Type::INT4, b"12"), None);
}

#[test]
fn shards_parse_from_zero() {
    assert_eq!("0/4".parse(), Ok(Shard { index: 0, count: 4 }));
    assert_eq!("3/4".parse(), Ok(Shard { index: 3, count: 4 }));
    assert_eq!("0/1".parse(), Ok(Shard { index: 0, count: 1 }));
    for bad in ["4/4", "1/0", "-1/4", "1", "a/b", "1/4/5", ""] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
}

#[test]
fn the_shard_is_the_first_60_bits_of_the_md5_modulo_n() {
    // md5("7") = 8f14e45fceea167a5a36dedd4bea2543; 0x8f14e45fceea167 % 4 = 3.
    let digest = [
        0x8f, 0x14, 0xe4, 0x5f, 0xce, 0xea, 0x16, 0x7a, 0x5a, 0x36, 0xde, 0xdd, 0x4b, 0xea, 0x25,
        0x43,
    ];
    assert_eq!(
        shard_of_digest(&digest, 4),
        (0x8f14e45fceea167u64 % 4) as u32
    );
    assert_eq!(shard_of_digest(&digest, 1), 0);
}

fn spec() -> &'static MappingSpec {
    static COLUMNS: [crate::spec::SourceColumn; 2] = [
        crate::spec::SourceColumn {
            name: "id",
            field: "id",
            pg_type: "bigint",
            rust_type: "i64",
            nullable: false,
        },
        crate::spec::SourceColumn {
            name: "tenant_id",
            field: "tenant_id",
            pg_type: "text",
            rust_type: "String",
            nullable: false,
        },
    ];
    static SPEC: MappingSpec = MappingSpec {
        name: "orders",
        struct_name: "Orders",
        source: crate::spec::SourceSpec {
            schema: None,
            table: "orders",
            columns: &COLUMNS,
            key: &[0],
            cursor: None,
            soft_delete: None,
            partition_by: Some(1),
            select: "",
            incremental: None,
            capture: None,
            filter: None,
        },
        targets: &[],
        fingerprint: "",
    };
    &SPEC
}

#[test]
fn templates_name_the_partition_column() {
    let template = Template::parse(spec(), Path::new("out/{tenant_id}.sqlite")).unwrap();
    assert_eq!(template.path(b"a/b"), PathBuf::from("out/a%2Fb.sqlite"));
    assert_eq!(template.directory(), Some(PathBuf::from("out")));
    assert_eq!(
        template.name_of(Path::new("out/a%2Fb.sqlite")).as_deref(),
        Some("a%2Fb")
    );
    assert_eq!(template.name_of(Path::new("out/a.db")), None);
    assert_eq!(template.name_of(Path::new("other/a.sqlite")), None);
    let nested = Template::parse(spec(), Path::new("{tenant_id}/{tenant_id}.db")).unwrap();
    assert_eq!(nested.path(b"7"), PathBuf::from("7/7.db"));
    assert_eq!(nested.directory(), None);

    let other = Template::parse(spec(), Path::new("out/{tenant}.sqlite")).unwrap_err();
    assert_eq!(
        other.to_string(),
        "mapping `orders`: the target template `out/{tenant}.sqlite` names `{tenant}`, but the mapping is partitioned by `tenant_id`: write `{tenant_id}`"
    );
    let none = Template::parse(spec(), Path::new("out.sqlite")).unwrap_err();
    assert_eq!(
        none.to_string(),
        "mapping `orders`: partitioned by `tenant_id`, so the target `out.sqlite` must name a file per value: add the placeholder `{tenant_id}`, e.g. `--target 'out/{tenant_id}.sqlite'`"
    );
    let open = Template::parse(spec(), Path::new("out/{tenant_id.sqlite")).unwrap_err();
    assert!(
        open.to_string().contains("opens a `{` it does not close"),
        "{open}"
    );
}

#[test]
fn selections_bind_their_values() {
    let (condition, settings) = Selection::One("a'b".to_owned())
        .condition(spec(), &Type::TEXT)
        .unwrap()
        .unwrap();
    assert_eq!(
        condition,
        r#""tenant_id"::text = current_setting('data_sync.partition')"#
    );
    assert_eq!(settings, [("data_sync.partition", "a'b".to_owned())]);
    let error = Selection::One("x".to_owned())
        .condition(spec(), &Type::INT8)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "mapping `orders`: `--partition x` is not a value of `tenant_id`, an integer column"
    );
    let (_, settings) = Selection::Shard(Shard { index: 1, count: 4 })
        .condition(spec(), &Type::TEXT)
        .unwrap()
        .unwrap();
    assert_eq!(
        settings,
        [
            ("data_sync.shard_index", "1".to_owned()),
            ("data_sync.shard_count", "4".to_owned())
        ]
    );
    assert_eq!(Selection::All.condition(spec(), &Type::TEXT).unwrap(), None);
}

#[test]
fn a_file_name_reads_back_as_its_value() {
    for value in [
        &b"acme-7"[..],
        b"../x",
        b"a b.c",
        b"",
        b"100%",
        b"\xff\xfe",
        b"~",
    ] {
        assert_eq!(value_of_name(&file_name(value)).as_deref(), Some(value));
    }
    // A long value keeps only a hash: it does not read back.
    assert_eq!(value_of_name(&file_name(&[b'x'; 300])), None);
    // Names no value has.
    for name in ["", "%2", "%zz", "a%2e", "%41", ".x"] {
        assert_eq!(value_of_name(name), None, "{name}");
    }
}
