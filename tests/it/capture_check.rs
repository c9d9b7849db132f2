//! `data-sync check` for a capture mapping: the source's capture prerequisites
//! (`REPLICATION`, the rights to create the publication, the replica identity) and
//! the target's slot (gone behind its back), each in the words of the run's error,
//! in text and `--json`.

use crate::capture::users_source;
use crate::outcomes::data_sync_test_mappings;
use crate::support;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_passes_for_a_capture_mapping_whose_prerequisites_hold() {
    let db = users_source(3);
    let target = support::target_file();
    let output = data_sync_test_mappings(&db, &target.path, &["check", "--mapping", "users_log"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "users_log: ok (the next sync creates `live_user`, `live_user_profile`)\n"
    );
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let output = data_sync_test_mappings(
        &db,
        &target.path,
        &["check", "--mapping", "users_log", "--json"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["mappings"][0],
        serde_json::json!({
            "mapping": "users_log",
            "outcome": "ok",
            "differences": [],
            "to_create": [],
        })
    );
}

#[test]
fn check_lists_every_missing_capture_prerequisite_and_a_lost_slot() {
    let db = users_source(3);
    let target = support::target_file();
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    // The slot is dropped behind the target's back, the replica identity no longer
    // sends the key, and the role checking has no REPLICATION, does not own the
    // table and may not create in the database.
    let mut client = db.client();
    let slot = crate::capture::slots(&db).remove(0);
    client
        .batch_execute(&format!(
            "SELECT pg_drop_replication_slot('{slot}');
             DROP PUBLICATION {slot};
             ALTER TABLE public.users REPLICA IDENTITY NOTHING;
             CREATE ROLE capture_checker LOGIN;
             GRANT SELECT ON public.users TO capture_checker;
             REVOKE CREATE ON DATABASE {} FROM PUBLIC;",
            db.name()
        ))
        .unwrap();
    let url = db.url().replacen("postgres@", "capture_checker@", 1);
    let output = crate::outcomes::test_mappings_command(
        &url,
        &target.path,
        &["check", "--mapping", "users_log", "--json"],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(crate::outcomes::harness_free(&output.stdout)).unwrap();
    let messages: Vec<&str> = json["mappings"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|difference| {
            assert_eq!(difference["side"], "source");
            assert_eq!(difference["table"], "public.users");
            difference["message"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        messages,
        [
            "the source role has neither `REPLICATION` nor superuser, which replication slots \
             need; run `ALTER ROLE <role> REPLICATION` as a superuser"
                .to_owned(),
            "the replica identity of `public.users` is NOTHING, so a DELETE does not send the \
             key column `id`; run `ALTER TABLE \"public\".\"users\" REPLICA IDENTITY FULL` (or \
             make the key the primary key)"
                .to_owned(),
            format!(
                "the source role cannot create the publication (permission denied for database \
                 {}); have the table's owner run `CREATE PUBLICATION <name> FOR TABLE \
                 public.users` and name it with `publication: <name>` in the mapping",
                db.name()
            ),
            format!(
                "the replication slot `{slot}` no longer exists on the source; rerun with \
                 `data-sync sync --full` to copy again"
            ),
        ]
    );
    // The same in text, on stdout and stderr as `check` prints differences.
    let output = data_sync_test_mappings(&db, &target.path, &["check", "--mapping", "users_log"]);
    assert_eq!(output.status.code(), Some(1));
    let printed = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(
        printed.contains("REPLICA IDENTITY FULL") && printed.contains("no longer exists"),
        "{printed}"
    );
    client
        .batch_execute("DROP OWNED BY capture_checker; DROP ROLE capture_checker;")
        .unwrap();
}
