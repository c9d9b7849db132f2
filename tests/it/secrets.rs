//! A password never reaches any output: not logs at any level, errors, `--json`
//! output or `Debug`, whichever way it was given and however the run ends.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::OnceLock;

use testkit::PgServer;

const USER: &str = "sync_secret_user";
const PASSWORD: &str = "Pw-9f3a-Sup3rSecret";

/// A cluster where `USER` must give `PASSWORD`, with a small `users` table.
fn server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = PgServer::start().expect("cluster starts");
        server.require_password(USER, PASSWORD).expect("password required");
        let mut client = postgres::Client::connect(&server.url("postgres"), postgres::NoTls).unwrap();
        client
            .batch_execute(
                "CREATE TABLE public.users (id bigint PRIMARY KEY, username text NOT NULL, email text NOT NULL, bio text, avatar_url text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
                 INSERT INTO public.users VALUES (1, 'a', 'a@x', NULL, NULL);",
            )
            .unwrap();
        server
    })
}

fn port() -> String {
    let url = server().url("postgres");
    url.rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

/// Runs `data-sync sync --json` at `RUST_LOG=trace` with `source` and extra
/// environment; returns whether it succeeded and everything it printed.
fn run(source: &str, env: &[(&str, &str)]) -> (bool, String) {
    let target = crate::support::target_file();
    let mut command = Command::new(env!("CARGO_BIN_EXE_data-sync"));
    command
        .args(["sync", "--mapping", "users", "--json"])
        .env("DATA_SYNC_SOURCE", source)
        .env("DATA_SYNC_TARGET", &target.path)
        .env("RUST_LOG", "trace")
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE")
        .env("HOME", "/nonexistent");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !printed.contains(PASSWORD),
        "the password leaked:\n{printed}"
    );
    assert!(
        !printed.contains("Sup3rSecret"),
        "part of the password leaked:\n{printed}"
    );
    (output.status.success(), printed)
}

fn url(password: &str, database: &str) -> String {
    format!(
        "postgresql://{USER}:{password}@127.0.0.1:{}/{database}",
        port()
    )
}

#[test]
fn password_in_the_url() {
    let (ok, printed) = run(&url(PASSWORD, "postgres"), &[]);
    assert!(ok, "{printed}");
    assert!(printed.contains("\"rows_read\": 1"), "{printed}");
}

#[test]
fn password_in_pgpassword() {
    let source = format!("host=127.0.0.1 port={} user={USER} dbname=postgres", port());
    let (ok, printed) = run(&source, &[("PGPASSWORD", PASSWORD)]);
    assert!(ok, "{printed}");
}

#[test]
fn password_in_pgpass() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    std::fs::write(&file, format!("127.0.0.1:{}:*:{USER}:{PASSWORD}\n", port())).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let source = format!("host=127.0.0.1 port={} user={USER} dbname=postgres", port());
    let (ok, printed) = run(&source, &[("PGPASSFILE", file.to_str().unwrap())]);
    assert!(ok, "{printed}");
}

#[test]
fn wrong_password() {
    let (ok, printed) = run(&url("Wrong-Sup3rSecret-x", "postgres"), &[]);
    assert!(!ok);
    assert!(
        printed.contains(&format!(
            "error: cannot connect to the source 127.0.0.1:{}/postgres: ",
            port()
        )),
        "{printed}"
    );
    assert!(
        printed.contains("password authentication failed"),
        "{printed}"
    );
}

#[test]
fn wrong_database() {
    let (ok, printed) = run(&url(PASSWORD, "no_such_db"), &[]);
    assert!(!ok);
    assert!(
        printed.contains("database \"no_such_db\" does not exist"),
        "{printed}"
    );
}

#[test]
fn unreachable_host() {
    let source = format!("postgresql://{USER}:{PASSWORD}@127.0.0.1:1/postgres?connect_timeout=2");
    let (ok, printed) = run(&source, &[]);
    assert!(!ok);
    assert!(
        printed.contains("error: cannot connect to the source 127.0.0.1:1/postgres: "),
        "{printed}"
    );
}

#[test]
fn debug_of_the_configuration_hides_it() {
    let config = sync_runtime::SourceConfig::parse(&url(PASSWORD, "postgres")).unwrap();
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
}

#[test]
fn password_in_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    // No password anywhere else: the file alone must log in.
    let source = format!("host=127.0.0.1 port={} user={USER} dbname=postgres", port());
    let (ok, printed) = run(
        &source,
        &[("DATA_SYNC_PASSWORD_FILE", file.to_str().unwrap())],
    );
    assert!(ok, "{printed}");
    assert!(printed.contains("\"rows_read\": 1"), "{printed}");

    // `--password-file` wins over a wrong password in the URL.
    let target = crate::support::target_file();
    let output = Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(["sync", "--mapping", "users", "--json", "--password-file"])
        .arg(&file)
        .env("DATA_SYNC_SOURCE", url("Wrong-Sup3rSecret-x", "postgres"))
        .env("DATA_SYNC_TARGET", &target.path)
        .env("RUST_LOG", "trace")
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    assert!(
        !printed.contains("Sup3rSecret"),
        "the password leaked:\n{printed}"
    );

    // A wrong password in the file fails without showing it.
    std::fs::write(&file, "Wrong-Sup3rSecret-y\n").unwrap();
    let (ok, printed) = run(
        &source,
        &[("DATA_SYNC_PASSWORD_FILE", file.to_str().unwrap())],
    );
    assert!(!ok);
    assert!(
        printed.contains("password authentication failed"),
        "{printed}"
    );
}
