//! The manners of the command line (issue 9): silence off a terminal, `-q`, `-v`,
//! `--log-format json`, the `--json` schemas, `explain`, help, `--version`, and the
//! library example.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::full_sync::create_users;
use crate::support;

/// The binary with `args` and no database (help, version, explain, list).
fn data_sync_offline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(args)
        .env_remove("DATA_SYNC_SOURCE")
        .env_remove("DATA_SYNC_TARGET")
        .env_remove("RUST_LOG")
        .output()
        .expect("data-sync runs")
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8 output")
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn parse_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", text(&output.stdout)))
}

/// A database with 5 users, synced once into `target`.
fn synced(target: &Path) -> support::TestDb {
    let db = support::source_db();
    create_users(&db, 5);
    let output = support::data_sync(&db, target, &["sync", "--mapping", "users"]);
    assert_success(&output);
    db
}

#[test]
fn a_sync_in_a_pipe_writes_nothing_on_stderr() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert_success(&output);
    assert_eq!(text(&output.stderr), "");
    assert!(text(&output.stdout).starts_with("users: full sync, 5 rows read"));
}

#[test]
fn quiet_keeps_stderr_empty_and_the_result_on_stdout() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["-q", "sync", "--mapping", "users"]);
    assert_success(&output);
    assert_eq!(text(&output.stderr), "");
    assert!(text(&output.stdout).starts_with("users: full sync, 5 rows read"));

    let output = support::data_sync(&db, &target.path, &["sync", "-q", "-v"]);
    assert_eq!(output.status.code(), Some(2), "-q and -v conflict");
}

#[test]
fn verbose_logs_each_run_once() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["-v", "sync", "--mapping", "users"]);
    assert_success(&output);
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = lines[0];
    assert!(line.contains(" INFO sync finished"), "{line}");
    for field in [
        "mapping=\"users\"",
        "mode=\"full\"",
        "rows=5",
        "targets=\"user_main=5 user_profile=5\"",
        "seconds=",
        "outcome=\"ok\"",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let output = support::data_sync(
        &db,
        &target.path,
        &["-v", "--log-format", "json", "sync", "--mapping", "users"],
    );
    assert_success(&output);
    let events: Vec<Value> = text(&output.stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect();
    let runs: Vec<&Value> = events
        .iter()
        .filter(|event| event["message"] == "sync finished")
        .collect();
    assert_eq!(runs.len(), 1, "{events:?}");
    let run = runs[0];
    assert_eq!(run["level"], "INFO");
    assert_eq!(run["mapping"], "users");
    assert_eq!(run["mode"], "full");
    assert_eq!(run["rows"], 5);
    assert_eq!(run["targets"], "user_main=5 user_profile=5");
    assert_eq!(run["outcome"], "ok");
    assert!(run["seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn an_error_is_printed_once() {
    // No `users` table: the run fails reading the source.
    let db = support::source_db();
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: reading `public.users`"),
        "{stderr}"
    );

    // With -v the run's one log line carries the outcome too.
    let output = support::data_sync(&db, &target.path, &["-v", "sync", "--mapping", "users"]);
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(stderr.contains("outcome=\"error\""), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|line| line.starts_with("error: "))
            .count(),
        1
    );
}

#[test]
fn sync_json_schema() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users", "--json"]);
    assert_success(&output);
    assert_eq!(text(&output.stderr), "");
    let json = parse_json(&output);
    assert_eq!(json["version"], 1);
    assert_eq!(json["ok"], true);
    assert_eq!(json["error"], Value::Null);
    let run = &json["mappings"][0];
    assert_eq!(run["mapping"], "users");
    assert_eq!(run["mode"], "full");
    assert_eq!(run["rows_read"], 5);
    assert!(run["seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        run["targets"],
        serde_json::json!([
            { "table": "user_main", "rows": 5, "deleted": 0 },
            { "table": "user_profile", "rows": 5, "deleted": 0 },
        ])
    );
}

#[test]
fn sync_json_reports_a_failure_too() {
    let db = support::source_db();
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let json = parse_json(&output);
    assert_eq!(json["version"], 1);
    assert_eq!(json["ok"], false);
    assert_eq!(json["mappings"][0]["mapping"], "users");
    assert_eq!(json["mappings"][0]["outcome"], "error");
    assert_eq!(json["mappings"][0]["error"]["kind"], "source");
    assert_eq!(json["mappings"].as_array().unwrap().len(), 1);
    assert_eq!(json["error"]["mapping"], "users");
    assert_eq!(json["error"]["kind"], "source");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("reading `public.users`")
    );
}

#[test]
fn status_json_schema() {
    let target = support::target_file();
    let db = synced(&target.path);
    let output = support::data_sync(&db, &target.path, &["status", "--json"]);
    assert_success(&output);
    let json = parse_json(&output);
    assert_eq!(json["version"], 1);
    let mappings = json["mappings"].as_array().unwrap();
    let never = mappings
        .iter()
        .find(|mapping| mapping["mapping"] == "contacts")
        .unwrap();
    assert_eq!(
        *never,
        serde_json::json!({ "mapping": "contacts", "synced": false })
    );
    let users = mappings
        .iter()
        .find(|mapping| mapping["mapping"] == "users")
        .unwrap();
    assert_eq!(users["synced"], true);
    assert_eq!(users["compiled_in"], true);
    assert_eq!(users["needs_full"], false);
    assert_eq!(users["mode"], "full");
    assert_eq!(users["rows"], 5);
    assert!(
        users["watermark"]["cursor"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(users["watermark"]["key"], serde_json::json!([5]));
    assert_eq!(users["last_outcome"], "ok");
    for field in ["started_at", "finished_at", "last_attempt_at"] {
        assert!(users[field].as_str().unwrap().ends_with('Z'), "{field}");
    }
}

#[test]
fn check_json_schema() {
    let target = support::target_file();
    let db = synced(&target.path);
    let output = support::data_sync(
        &db,
        &target.path,
        &["check", "--mapping", "users", "--json"],
    );
    assert_success(&output);
    let json = parse_json(&output);
    assert_eq!(
        json,
        serde_json::json!({
            "version": 1,
            "ok": true,
            "mappings": [{ "mapping": "users", "outcome": "ok", "differences": [], "to_create": [] }],
            "error": null,
        })
    );

    // A missing target table is no difference: before the first sync, check passes
    // and lists what the sync creates.
    let other = support::target_file();
    let output = support::data_sync(&db, &other.path, &["check", "--mapping", "users", "--json"]);
    assert_success(&output);
    let json = parse_json(&output);
    assert_eq!(json["ok"], true);
    assert_eq!(json["mappings"][0]["differences"], serde_json::json!([]));
    assert_eq!(
        json["mappings"][0]["to_create"],
        serde_json::json!(["user_main", "user_profile"])
    );
}

#[test]
fn list_json_schema() {
    let output = data_sync_offline(&["list", "--json"]);
    assert_success(&output);
    let json = parse_json(&output);
    assert_eq!(json["version"], 1);
    let users = json["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mapping| mapping["name"] == "users")
        .unwrap();
    assert_eq!(
        *users,
        serde_json::json!({
            "name": "users",
            "struct": "Users",
            "source": "public.users",
            "key": ["id"],
            "cursor": "updated_at",
            "soft_delete": "deleted_at",
            "targets": ["user_main", "user_profile"],
        })
    );
}

const USERS_SELECT: &str = r#"SELECT "updated_at", "deleted_at", "id", "username", "email", "bio", "avatar_url" FROM "public"."users""#;
const USERS_SELECT_AFTER: &str = r#"SELECT "updated_at", "deleted_at", "id", "username", "email", "bio", "avatar_url", "updated_at", "id" FROM "public"."users" WHERE ("updated_at", "id") > ($1, $2) ORDER BY "updated_at", "id""#;
const USER_MAIN_CREATE: &str = r#"CREATE TABLE "user_main" ("id" INTEGER NOT NULL, "username" TEXT NOT NULL, "email" TEXT NOT NULL, PRIMARY KEY ("id")) STRICT"#;
const USER_PROFILE_CREATE: &str = r#"CREATE TABLE "user_profile" ("id" INTEGER NOT NULL, "bio" TEXT, "avatar_url" TEXT, PRIMARY KEY ("id"), FOREIGN KEY ("id") REFERENCES "user_main" ("id")) STRICT"#;
const USER_MAIN_INSERT: &str =
    r#"INSERT INTO "user_main" ("id", "username", "email") VALUES (?1, ?2, ?3)"#;
const USER_MAIN_UPSERT: &str = r#"INSERT INTO "user_main" ("id", "username", "email") VALUES (?1, ?2, ?3) ON CONFLICT ("id") DO UPDATE SET "username" = excluded."username", "email" = excluded."email" WHERE "username" IS NOT excluded."username" OR "email" IS NOT excluded."email""#;

#[test]
fn explain_prints_the_sql_of_users() {
    let output = data_sync_offline(&["explain", "--mapping", "users"]);
    assert_success(&output);
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with(
        "-- mapping `users` (struct Users): public.users -> user_main, user_profile\n"
    ));
    for statement in [
        format!("COPY ({USERS_SELECT}) TO STDOUT (FORMAT binary);\n"),
        format!("{USERS_SELECT_AFTER};\n"),
        format!("{USER_MAIN_CREATE};\n"),
        format!("{USER_PROFILE_CREATE};\n"),
        format!("{USER_MAIN_INSERT};\n"),
        format!("{USER_MAIN_UPSERT};\n"),
        "DELETE FROM \"user_main\";\n".to_owned(),
        "DELETE FROM \"user_profile\" WHERE \"id\" = ?1;\n".to_owned(),
    ] {
        assert!(
            stdout.contains(&statement),
            "{statement} missing:\n{stdout}"
        );
    }
    // Parents before children.
    assert!(stdout.find(USER_MAIN_CREATE) < stdout.find(USER_PROFILE_CREATE));

    let output = data_sync_offline(&["explain", "--mapping", "users", "--json"]);
    assert_success(&output);
    let json = parse_json(&output);
    assert_eq!(json["version"], 1);
    let users = &json["mappings"][0];
    assert_eq!(users["mapping"], "users");
    assert_eq!(users["source"], "public.users");
    assert_eq!(users["select"], USERS_SELECT);
    assert_eq!(users["incremental"]["select_after"], USERS_SELECT_AFTER);
    assert_eq!(
        users["incremental"]["prune"][0]["table"], "user_main",
        "{users}"
    );
    assert_eq!(users["targets"][0]["table"], "user_main");
    assert_eq!(users["targets"][0]["create"], USER_MAIN_CREATE);
    assert_eq!(users["targets"][0]["insert"], USER_MAIN_INSERT);
    assert_eq!(users["targets"][0]["upsert"], USER_MAIN_UPSERT);
    assert_eq!(
        users["targets"][0]["delete_all"],
        "DELETE FROM \"user_main\""
    );
    assert_eq!(
        users["targets"][0]["delete_by_key"],
        "DELETE FROM \"user_main\" WHERE \"id\" = ?1"
    );
    assert_eq!(users["targets"][1]["create"], USER_PROFILE_CREATE);

    let output = data_sync_offline(&["explain", "--mapping", "nobody"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in [
        &["--help"][..],
        &["sync", "--help"],
        &["status", "--help"],
        &["check", "--help"],
        &["list", "--help"],
        &["explain", "--help"],
        &["help", "sync"],
    ] {
        let output = data_sync_offline(command);
        assert_success(&output);
        let stdout = text(&output.stdout);
        assert!(
            stdout.contains("Examples:\n  data-sync "),
            "{command:?}:\n{stdout}"
        );
    }
    // Every flag of `sync --help` has a help text with an example.
    let output = data_sync_offline(&["sync", "--help"]);
    let stdout = text(&output.stdout);
    for example in [
        "Example: --mapping users",
        "Example: --full",
        "Example: --batch-size 50000",
        "Example: --prune",
        "Example: --overlap 10m",
        "Example: --json",
        "Example: --source postgresql://",
        "Example: --target app.sqlite",
        "Example: -v",
        "Example: -q",
        "Example: --log-format json",
    ] {
        assert!(stdout.contains(example), "{example} missing:\n{stdout}");
    }
}

#[test]
fn help_opens_with_the_product_and_sets_global_options_apart() {
    let output = data_sync_offline(&["--help"]);
    assert!(
        text(&output.stdout).starts_with("data-sync: sync PostgreSQL tables into SQLite tables"),
        "{}",
        text(&output.stdout)
    );
    let output = data_sync_offline(&["sync", "--help"]);
    let stdout = text(&output.stdout);
    let (own, global) = stdout
        .split_once("\nGlobal options:\n")
        .unwrap_or_else(|| panic!("no global options heading:\n{stdout}"));
    // The options listed in a part: the lines that start with a dash.
    let listed = |part: &str, option: &str| {
        part.lines()
            .map(str::trim_start)
            .any(|line| line.starts_with(option) || line.starts_with(&format!("-v, {option}")))
    };
    for option in ["--mapping <NAME>", "--full", "--prune", "--json"] {
        assert!(listed(own, option), "{option}:\n{stdout}");
        assert!(!listed(global, option), "{option}:\n{stdout}");
    }
    for option in [
        "--source <URL>",
        "--target <PATH>",
        "--verbose",
        "--password-file",
    ] {
        assert!(listed(global, option), "{option}:\n{stdout}");
        assert!(!listed(own, option), "{option}:\n{stdout}");
    }
    // An unset variable is not shown as set to nothing.
    assert!(global.contains("[env: DATA_SYNC_TARGET]"), "{stdout}");
    assert!(!stdout.contains("[env: DATA_SYNC_TARGET="), "{stdout}");
    assert!(
        !stdout.contains("[env: DATA_SYNC_PASSWORD_FILE="),
        "{stdout}"
    );
}

#[test]
fn version_shows_the_mapping_count() {
    let output = data_sync_offline(&["--version"]);
    assert_success(&output);
    assert_eq!(
        text(&output.stdout),
        format!("data-sync {} (2 mappings)\n", env!("CARGO_PKG_VERSION"))
    );
}

/// `examples/library.rs` runs a mapping of its own through `SyncJob`.
#[test]
fn the_library_example_runs() {
    let db = support::source_db();
    create_users(&db, 2_500);
    let target = support::target_file();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["run", "--quiet", "--example", "library", "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--")
        .arg(&target.path)
        .env("DATA_SYNC_SOURCE", db.url())
        .env_remove("RUST_LOG")
        .output()
        .expect("cargo runs");
    assert_success(&output);
    assert!(
        text(&output.stdout).starts_with("contacts: 2500 rows read, 2500 written to `contact` in "),
        "{}",
        text(&output.stdout)
    );
    assert!(text(&output.stderr).contains("contacts: 2500 rows so far"));
    let rows = support::sqlite_rows(
        &target.path,
        "SELECT count(*), min(\"id\"), max(\"name\") FROM \"contact\"",
    );
    use rusqlite::types::Value::{Integer, Text};
    assert_eq!(
        rows,
        vec![vec![
            Integer(2_500),
            Integer(1),
            Text("user_999".to_owned())
        ]]
    );
}

#[test]
fn the_summary_line_shows_the_rows_prune_deleted() {
    let target = support::target_file();
    let db = synced(&target.path);
    db.client()
        .batch_execute("DELETE FROM public.users WHERE id IN (1, 2)")
        .unwrap();
    let output = support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--prune", "--overlap", "0"],
    );
    assert_success(&output);
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with(
            "users: incremental sync, 0 rows read (user_main 0 (2 deleted), user_profile 0 (2 deleted)) in "
        ),
        "{stdout}"
    );
}
