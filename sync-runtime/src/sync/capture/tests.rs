//! The `pgoutput` decoder and `Lsn`, on messages captured from PostgreSQL 15
//! (`pg_logical_slot_peek_binary_changes(.., 'proto_version', '1', 'binary', 'true',
//! 'messages', 'true')`).

use super::lsn::Lsn;
use super::pgoutput::{Message, OldTuple, Relation, RelationColumn, Tuple, Value, decode};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).unwrap())
        .collect()
}

#[test]
fn lsn_parses_and_displays_as_postgresql_does() {
    let lsn: Lsn = "16/B374D848".parse().unwrap();
    assert_eq!(lsn, Lsn(0x0000_0016_B374_D848));
    assert_eq!(lsn.to_string(), "16/B374D848");
    assert_eq!("0/0".parse::<Lsn>().unwrap(), Lsn::ZERO);
    assert_eq!(Lsn::ZERO.to_string(), "0/0");
    assert_eq!("FFFFFFFF/FFFFFFFF".parse::<Lsn>().unwrap(), Lsn(u64::MAX));
    assert_eq!("0/1a".parse::<Lsn>().unwrap(), Lsn(0x1A));
    assert!("0/1A" < "0/2" && Lsn(0x1A) > Lsn(0x2), "ordered as numbers");
    for bad in [
        "",
        "16",
        "/1",
        "1/",
        "16/B374D848/1",
        "x/1",
        "100000000/0",
        "-1/0",
        "+1/0",
    ] {
        let error = bad.parse::<Lsn>().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("`{bad}` is not a WAL position (like `16/B374D848`)")
        );
    }
}

#[test]
fn begin_and_commit() {
    assert_eq!(
        decode(&hex("4200000000015493a00003047bdc53e3d0000002e0")).unwrap(),
        Message::Begin {
            final_lsn: "0/15493A0".parse().unwrap(),
            timestamp: 0x0003_047b_dc53_e3d0,
            xid: 736,
        }
    );
    assert_eq!(
        decode(&hex("430000000000015493a000000000015493d00003047bdc53e3d0")).unwrap(),
        Message::Commit {
            flags: 0,
            commit_lsn: "0/15493A0".parse().unwrap(),
            end_lsn: "0/15493D0".parse().unwrap(),
            timestamp: 0x0003_047b_dc53_e3d0,
        }
    );
}

#[test]
fn relation_lists_columns_in_table_order_with_key_flags() {
    // public.t (id bigint PRIMARY KEY, name text, big text, n int).
    let bytes = hex(
        "52000040007075626c69630074006400040169640000000014ffffffff006e616d650000000019\
         ffffffff006269670000000019ffffffff006e0000000017ffffffff",
    );
    let column = |key, name, type_id| RelationColumn {
        key,
        name,
        type_id,
        type_modifier: -1,
    };
    assert_eq!(
        decode(&bytes).unwrap(),
        Message::Relation(Relation {
            id: 16384,
            namespace: "public",
            name: "t",
            replica_identity: b'd',
            columns: vec![
                column(true, "id", 20),
                column(false, "name", 25),
                column(false, "big", 25),
                column(false, "n", 23),
            ],
        })
    );
}

#[test]
fn insert_carries_binary_values() {
    // INSERT INTO f VALUES (7, 'q').
    assert_eq!(
        decode(&hex("490000400d4e0002620000000400000007620000000171")).unwrap(),
        Message::Insert {
            relation: 16397,
            new: Tuple(vec![
                Value::Binary(&7i32.to_be_bytes()),
                Value::Binary(b"q"),
            ]),
        }
    );
}

#[test]
fn update_of_other_columns_marks_an_unchanged_toasted_value() {
    // UPDATE t SET n = 2 WHERE id = 10, `big` stored out of line.
    assert_eq!(
        decode(&hex(
            "55000040004e00046200000008000000000000000a62000000017a75620000000400000002"
        ))
        .unwrap(),
        Message::Update {
            relation: 16384,
            old: None,
            new: Tuple(vec![
                Value::Binary(&10i64.to_be_bytes()),
                Value::Binary(b"z"),
                Value::Unchanged,
                Value::Binary(&2i32.to_be_bytes()),
            ]),
        }
    );
}

#[test]
fn update_of_the_key_sends_the_old_key() {
    // UPDATE t SET id = 11 WHERE id = 10.
    let bytes = hex(
        "55000040004b00046200000008000000000000000a6e6e6e4e00046200000008000000000000000b\
         62000000017a75620000000400000002",
    );
    let message = decode(&bytes).unwrap();
    assert_eq!(
        message,
        Message::Update {
            relation: 16384,
            old: Some(OldTuple::Key(Tuple(vec![
                Value::Binary(&10i64.to_be_bytes()),
                Value::Null,
                Value::Null,
                Value::Null,
            ]))),
            new: Tuple(vec![
                Value::Binary(&11i64.to_be_bytes()),
                Value::Binary(b"z"),
                Value::Unchanged,
                Value::Binary(&2i32.to_be_bytes()),
            ]),
        }
    );
}

#[test]
fn update_and_delete_with_replica_identity_full_send_the_old_row() {
    let old = || Tuple(vec![Value::Binary(&[0, 0, 0, 7]), Value::Binary(b"q")]);
    assert_eq!(
        decode(&hex(
            "550000400d4f00026200000004000000076200000001714e0002620000000400000007620000000172"
        ))
        .unwrap(),
        Message::Update {
            relation: 16397,
            old: Some(OldTuple::Full(old())),
            new: Tuple(vec![
                Value::Binary(&7i32.to_be_bytes()),
                Value::Binary(b"r"),
            ]),
        }
    );
    let bytes = hex("440000400d4f0002620000000400000007620000000172");
    let Message::Delete { relation, old } = decode(&bytes).unwrap() else {
        panic!("not a delete");
    };
    assert_eq!(relation, 16397);
    assert_eq!(
        old.tuple(),
        &Tuple(vec![
            Value::Binary(&7i32.to_be_bytes()),
            Value::Binary(b"r"),
        ])
    );
}

#[test]
fn delete_sends_the_key() {
    assert_eq!(
        decode(&hex("44000040004b0004620000000800000000000000026e6e6e")).unwrap(),
        Message::Delete {
            relation: 16384,
            old: OldTuple::Key(Tuple(vec![
                Value::Binary(&2i64.to_be_bytes()),
                Value::Null,
                Value::Null,
                Value::Null,
            ])),
        }
    );
}

#[test]
fn truncate_lists_relations_and_options() {
    assert_eq!(
        decode(&hex("54000000010000004000")).unwrap(),
        Message::Truncate {
            options: 0,
            relations: vec![16384],
        }
    );
    assert_eq!(
        decode(&hex("5400000002030000400000004001")).unwrap(),
        Message::Truncate {
            options: 3,
            relations: vec![16384, 16385],
        }
    );
}

#[test]
fn logical_decoding_message() {
    // SELECT pg_logical_emit_message(true, 'pfx', 'hi').
    assert_eq!(
        decode(&hex("4d01000000000154a08870667800000000026869")).unwrap(),
        Message::Emitted {
            transactional: true,
            lsn: "0/154A088".parse().unwrap(),
            prefix: "pfx",
            content: b"hi",
        }
    );
}

#[test]
fn type_origin_and_text_values() {
    let mut bytes = vec![b'Y'];
    bytes.extend(16400u32.to_be_bytes());
    bytes.extend(b"public\0mood\0");
    assert_eq!(
        decode(&bytes).unwrap(),
        Message::Type {
            id: 16400,
            namespace: "public",
            name: "mood",
        }
    );
    let mut bytes = vec![b'O'];
    bytes.extend(0x0102u64.to_be_bytes());
    bytes.extend(b"node_a\0");
    assert_eq!(
        decode(&bytes).unwrap(),
        Message::Origin {
            commit_lsn: Lsn(0x0102),
            name: "node_a",
        }
    );
    let mut bytes = vec![b'I'];
    bytes.extend(5u32.to_be_bytes());
    bytes.extend(b"N");
    bytes.extend(2i16.to_be_bytes());
    bytes.extend(b"t");
    bytes.extend(2i32.to_be_bytes());
    bytes.extend(b"42n");
    assert_eq!(
        decode(&bytes).unwrap(),
        Message::Insert {
            relation: 5,
            new: Tuple(vec![Value::Text(b"42"), Value::Null]),
        }
    );
}

#[test]
fn malformed_messages_are_errors_naming_the_place() {
    let cases: &[(&str, &str)] = &[
        (
            "",
            "malformed pgoutput message: `?` message, at byte 0: ends early",
        ),
        (
            "5a",
            "malformed pgoutput message: `Z` message, at byte 1: unknown message type `Z`",
        ),
        (
            "4200000000015493a00003047bdc53e3d0000002",
            "malformed pgoutput message: `B` message, at byte 17: ends early",
        ),
        (
            "4200000000015493a00003047bdc53e3d0000002e000",
            "malformed pgoutput message: `B` message, at byte 21: 1 bytes left over",
        ),
        (
            "490000400d58",
            "malformed pgoutput message: `I` message, at byte 5: expected `N`, found `X`",
        ),
        (
            "490000400d4e00017a",
            "malformed pgoutput message: `I` message, at byte 8: unknown value kind `z`",
        ),
        (
            "490000400d4e000162ffffffff",
            "malformed pgoutput message: `I` message, at byte 13: negative length -1",
        ),
        (
            "490000400d4e00016200000004000000",
            "malformed pgoutput message: `I` message, at byte 13: ends early",
        ),
        (
            "520000400070756262",
            "malformed pgoutput message: `R` message, at byte 5: unterminated string",
        ),
        (
            "440000400d4e",
            "malformed pgoutput message: `D` message, at byte 6: delete part `N`",
        ),
    ];
    for (bytes, message) in cases {
        let error = decode(&hex(bytes)).unwrap_err();
        assert_eq!(&error.to_string(), message, "decoding {bytes}");
    }
}
