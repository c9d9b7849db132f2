//! Commands over several mappings (issue 18 item 3): each mapping is run whatever
//! became of the ones before, each outcome is printed, the exit code is 1 listing
//! the failures, and `--json` always prints its document.
//!
//! The command line runs over a catalogue of three mappings of this file, in a child
//! process: this test binary itself, re-run on [`child_runs_the_command_line`] with
//! the arguments in `DATA_SYNC_CHILD_ARGS`.

use std::path::Path;
use std::process::{Command, Output};

use sync_runtime::{Mapping, Registered};

use crate::support;

/// The first of three mappings, of `public.first`.
#[derive(Mapping)]
#[sync(from = "public.first", key = "id")]
pub struct First {
    #[sync(to = "first_copy", primary_key)]
    pub id: i64,
}

/// The second, of `public.second`: the table the tests leave out.
#[derive(Mapping)]
#[sync(from = "public.second", key = "id")]
pub struct Second {
    #[sync(to = "second_copy", primary_key)]
    pub id: i64,
}

/// The third, of `public.third`.
#[derive(Mapping)]
#[sync(from = "public.third", key = "id")]
pub struct Third {
    #[sync(to = "third_copy", primary_key)]
    pub id: i64,
}

static CATALOGUE: &[Registered] = &[
    Registered::of::<First>(),
    Registered::of::<Second>(),
    Registered::of::<Third>(),
];

const CHILD_ARGS: &str = "DATA_SYNC_CHILD_ARGS";
/// Which catalogue the child runs: [`CATALOGUE`] unset, the test mappings of
/// `tests/mappings/` (`generated::CATALOGUE`) for `test_mappings`.
const CHILD_CATALOGUE: &str = "DATA_SYNC_CHILD_CATALOGUE";

/// The command line over [`CATALOGUE`] (or the one `DATA_SYNC_CHILD_CATALOGUE`
/// names) when this binary runs as the child (the arguments separated by newlines);
/// a no-op in the ordinary test run, where it checks that the catalogue names three
/// mappings.
#[test]
fn child_runs_the_command_line() {
    let Ok(args) = std::env::var(CHILD_ARGS) else {
        let names: Vec<&str> = CATALOGUE.iter().map(|mapping| mapping.spec.name).collect();
        assert_eq!(names, ["first", "second", "third"]);
        return;
    };
    let catalogue = match std::env::var(CHILD_CATALOGUE).as_deref() {
        Ok("test_mappings") => crate::generated::CATALOGUE,
        _ => CATALOGUE,
    };
    let args = std::iter::once("data-sync").chain(args.lines());
    let code = sync_cli::main_with_signals(catalogue, args);
    let code = (0..=u8::MAX)
        .find(|number| std::process::ExitCode::from(*number) == code)
        .expect("an exit code");
    std::process::exit(i32::from(code));
}

/// The command line over [`CATALOGUE`] with `args`, in a child process.
fn data_sync(db: &support::TestDb, target: &Path, args: &[&str]) -> Output {
    let mut command = child(args);
    command.env("DATA_SYNC_SOURCE", db.url());
    command.env("DATA_SYNC_TARGET", target);
    run(command)
}

/// The `data-sync` command line over the test mappings of `tests/mappings/` (not
/// shipped in the binary) with `args`, in a child process.
pub(crate) fn data_sync_test_mappings(
    db: &support::TestDb,
    target: &Path,
    args: &[&str],
) -> Output {
    run(test_mappings_command(&db.url(), target, args))
}

/// The `data-sync` command line over the test mappings with `args`, source `url`
/// and target `target`, as a child process to start. Its stdout begins with the
/// test harness's line, which [`harness_free`] removes.
pub(crate) fn test_mappings_command(url: &str, target: &Path, args: &[&str]) -> Command {
    let mut command = child(args);
    command.env("DATA_SYNC_SOURCE", url);
    command.env("DATA_SYNC_TARGET", target);
    command.env(CHILD_CATALOGUE, "test_mappings");
    command
}

/// The test harness's first line on a child's stdout.
const HEADER: &[u8] = b"\nrunning 1 test\n";

/// A child's stdout without the test harness's first line.
pub(crate) fn harness_free(stdout: &[u8]) -> &[u8] {
    stdout.strip_prefix(HEADER).unwrap_or(stdout)
}

/// The child running the command line with `args`, source and target unset.
fn child(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args([
            "outcomes::child_runs_the_command_line",
            "--exact",
            "--nocapture",
            "--quiet",
            "--test-threads=1",
        ])
        .env(CHILD_ARGS, args.join("\n"))
        .env_remove(CHILD_CATALOGUE)
        .env_remove("DATA_SYNC_SOURCE")
        .env_remove("DATA_SYNC_TARGET")
        .env_remove("RUST_LOG");
    command
}

/// The output of `command`, without the test harness's first line.
fn run(mut command: Command) -> Output {
    let mut output = command.output().expect("the test binary runs");
    output.stdout = harness_free(&output.stdout).to_vec();
    output
}

/// A database with `public.first` and `public.third` (two rows each) but no
/// `public.second`.
fn middle_table_missing() -> support::TestDb {
    let db = support::source_db();
    db.client()
        .batch_execute(
            "CREATE TABLE public.first (id bigint PRIMARY KEY);
             CREATE TABLE public.third (id bigint PRIMARY KEY);
             INSERT INTO public.first VALUES (1), (2);
             INSERT INTO public.third VALUES (3), (4);",
        )
        .unwrap();
    db
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ids(target: &Path, table: &str) -> Vec<i64> {
    support::sqlite_rows(target, &format!("SELECT id FROM \"{table}\" ORDER BY id"))
        .into_iter()
        .map(|row| match row[0] {
            rusqlite::types::Value::Integer(id) => id,
            ref other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn sync_runs_every_mapping_and_lists_the_one_that_failed() {
    let db = middle_table_missing();
    let target = support::target_file();
    let output = data_sync(&db, &target.path, &["sync"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(ids(&target.path, "first_copy"), [1, 2]);
    assert_eq!(ids(&target.path, "third_copy"), [3, 4]);

    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("first: full sync, 2 rows read (first_copy 2) in "),
        "{stdout}"
    );
    assert!(lines[1].starts_with("second: failed: "), "{stdout}");
    assert!(lines[1].contains("public.second"), "{stdout}");
    // The failed query names the server and database it was sent to.
    let endpoint = sync_runtime::SourceConfig::parse(&db.url())
        .unwrap()
        .endpoint();
    assert!(
        lines[1].ends_with(&format!("(source `{endpoint}`)")),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("third: full sync, 2 rows read (third_copy 2) in "),
        "{stdout}"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("error: 1 of 3 mappings failed: `second`: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn sync_json_has_an_entry_per_mapping_with_its_outcome() {
    let db = middle_table_missing();
    let target = support::target_file();
    let output = data_sync(&db, &target.path, &["sync", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let entries = json["mappings"].as_array().unwrap();
    let outcomes: Vec<(&str, &str)> = entries
        .iter()
        .map(|entry| {
            (
                entry["mapping"].as_str().unwrap(),
                entry["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("first", "ok"), ("second", "error"), ("third", "ok")]
    );
    assert_eq!(entries[0]["rows_read"], 2);
    assert_eq!(entries[1]["error"]["kind"], "source");
    assert_eq!(json["error"]["mapping"], "second");
    assert_eq!(json["error"]["kind"], "source");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("1 of 3 mappings failed: `second`: "),
        "{}",
        json["error"]
    );
}

#[test]
fn verify_and_check_go_on_past_a_failed_mapping() {
    let db = middle_table_missing();
    let target = support::target_file();
    let output = data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "first", "--mapping", "third"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    let output = data_sync(&db, &target.path, &["verify"]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("first: `first_copy` equals the source: 2 rows"),
        "{stdout}"
    );
    assert!(stdout.contains("second: failed: "), "{stdout}");
    assert!(
        stdout.contains("third: `third_copy` equals the source: 2 rows"),
        "{stdout}"
    );
    assert!(
        text(&output.stderr).starts_with("error: 1 of 3 mappings failed: `second`: "),
        "{}",
        text(&output.stderr)
    );

    // check reports the missing source table as a difference of `second`; its
    // target table, never created, is no difference: the next sync creates it.
    let output = data_sync(&db, &target.path, &["check"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stdout),
        "first: ok\n\
         second: 1 difference (the next sync creates `second_copy`)\n\
         \x20 source `public.second`: table `public.second` does not exist\n\
         third: ok\n"
    );
}

#[test]
fn check_before_the_first_sync_says_what_the_sync_creates() {
    let db = middle_table_missing();
    db.client()
        .batch_execute("CREATE TABLE public.second (id bigint PRIMARY KEY)")
        .unwrap();
    let target = support::target_file();
    let output = data_sync(&db, &target.path, &["check", "--mapping", "first"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "first: ok (the next sync creates `first_copy`)\n"
    );
    let output = data_sync(&db, &target.path, &["check", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(
        json["mappings"][2],
        serde_json::json!({
            "mapping": "third",
            "outcome": "ok",
            "differences": [],
            "to_create": ["third_copy"],
        })
    );
    assert!(!target.path.exists(), "check creates no target file");
}

#[test]
fn json_is_printed_for_an_unknown_mapping_and_a_missing_target() {
    let db = middle_table_missing();
    let target = support::target_file();
    for command in ["sync", "check", "verify", "explain"] {
        let output = data_sync(
            &db,
            &target.path,
            &[command, "--mapping", "fourth", "--json"],
        );
        assert_eq!(output.status.code(), Some(1), "{command}");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{command}: {error}: {}", text(&output.stdout)));
        assert_eq!(json["ok"], false, "{command}");
        assert_eq!(json["mappings"], serde_json::json!([]), "{command}");
        assert_eq!(json["error"]["kind"], "unknown_mapping", "{command}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains("`cargo xtask gen`"), "{message}");
    }
    let mut command = child(&["sync", "--json"]);
    command.env("DATA_SYNC_SOURCE", db.url());
    let output = run(command);
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "config");
    assert_eq!(
        json["error"]["message"],
        "no target file: pass `--target PATH` or set `DATA_SYNC_TARGET`"
    );
}
