//! A URL whose password holds an unencoded `@`, `/` or `:` never leaks any part of
//! it; a host name that does not resolve is not retried; an unknown URL parameter
//! is named.

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::PgServer;

/// A password in the shape the adversarial trial used, each part distinctive.
const PASSWORD: &str = "p@ss:5432/w:rd%S3cr3tZq9";
/// Fragments of it that must never appear in any output.
const FRAGMENTS: [&str; 5] = ["p@ss", "ss:5432", "w:rd", "S3cr3tZq9", "5432/w"];

fn port() -> String {
    let url = PgServer::shared().url("postgres");
    url.rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

/// Runs `data-sync ARGS` at `RUST_LOG=trace` with `source`; returns the exit code,
/// everything printed, and how long it took. Fails the test if any fragment of the
/// password was printed.
fn run(source: &str, args: &[&str]) -> (Option<i32>, String, Duration) {
    let target = crate::support::target_file();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(args)
        .env("DATA_SYNC_SOURCE", source)
        .env("DATA_SYNC_TARGET", &target.path)
        .env("RUST_LOG", "trace")
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let took = started.elapsed();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for fragment in FRAGMENTS {
        assert!(
            !printed.contains(fragment),
            "`{fragment}` leaked:\n{printed}"
        );
    }
    (output.status.code(), printed, took)
}

#[test]
fn unencoded_characters_in_the_url_password_never_leak() {
    let sources = [
        format!(
            "postgresql://sync_url_user:{PASSWORD}@127.0.0.1:{}/postgres",
            port()
        ),
        format!(
            "postgresql://sync_url_user:{PASSWORD}@127.0.0.1:{}/postgres?connect_timeout=2",
            port()
        ),
        format!("postgres://sync_url_user:{PASSWORD}@localhost/postgres"),
    ];
    for source in &sources {
        for args in [
            &[
                "sync",
                "--mapping",
                "users",
                "--json",
                "--retries",
                "1",
                "--retry-delay",
                "10ms",
            ][..],
            &["sync", "--mapping", "users"][..],
            &["check", "--mapping", "users", "--json"][..],
            &["verify", "--mapping", "users", "--json"][..],
        ] {
            let (code, printed, _) = run(source, args);
            assert_eq!(code, Some(1), "{printed}");
            assert!(
                printed.contains(
                    "error: source configuration: the connection URL has an unencoded `@` or `/` in its user name or password"
                ),
                "{printed}"
            );
        }
    }
}

#[test]
fn a_host_that_does_not_resolve_is_not_retried() {
    let source =
        format!("postgresql://sync_url_user:{PASSWORD_ENCODED}@no-such-host.invalid:5432/postgres");
    let (code, printed, took) = run(
        &source,
        &[
            "sync",
            "--mapping",
            "users",
            "--json",
            "--retries",
            "3",
            "--retry-delay",
            "5s",
        ],
    );
    assert_eq!(code, Some(1), "{printed}");
    assert!(!printed.contains("retrying"), "{printed}");
    assert!(took < Duration::from_secs(5), "{took:?}: {printed}");
    assert!(
        printed
            .contains("error: cannot connect to the source no-such-host.invalid:5432/postgres: "),
        "{printed}"
    );
    assert!(printed.contains("\"kind\": \"connect\""), "{printed}");
}

/// [`PASSWORD`], percent-encoded as it should be.
const PASSWORD_ENCODED: &str = "p%40ss%3A5432%2Fw%3Ard%25S3cr3tZq9";

#[test]
fn an_unknown_url_parameter_is_named() {
    let source = format!(
        "postgresql://sync_url_user:{PASSWORD_ENCODED}@127.0.0.1:{}/postgres?sslmode=disable&bogus_option=S3cr3tZq9",
        port()
    );
    let (code, printed, _) = run(&source, &["sync", "--mapping", "users", "--json"]);
    assert_eq!(code, Some(1), "{printed}");
    // `--json` prints its document for an error before any mapping ran too.
    let message = "source configuration: cannot parse the connection string: invalid connection string: unknown option `bogus_option`";
    let (json, line) = printed.split_at(printed.find("\nerror: ").expect("an error line") + 1);
    assert_eq!(line, format!("error: {message}\n"));
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "version": 1,
            "ok": false,
            "mappings": [],
            "error": { "kind": "config", "message": message },
        })
    );
}
