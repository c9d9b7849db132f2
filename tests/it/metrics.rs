//! `--metrics ADDR` serves the counters and gauges of `sync --every` over HTTP
//! (issue 18 item 7), read here by a plain TCP client.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::full_sync::create_users;
use crate::support::{self, Logged};

/// Each of `expected` (a series and its value) is the one sample of `body` so named.
fn assert_samples(body: &str, expected: &[(&str, f64)]) {
    for &(series, value) in expected {
        assert_eq!(sample(body, series), value, "{series} in:\n{body}");
    }
}

/// The value of the one sample of `body` named `series` (name and labels, exactly as
/// printed).
fn sample(body: &str, series: &str) -> f64 {
    let values: Vec<&str> = body
        .lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .collect();
    assert_eq!(values.len(), 1, "one sample `{series}` in:\n{body}");
    values[0].parse().unwrap()
}

#[test]
fn every_serves_rows_runs_and_times_of_its_runs() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let mut sync = Logged::spawn(
        &db,
        &target.path,
        &[
            "sync",
            "--mapping",
            "users",
            "--every",
            "3s",
            "--overlap",
            "0",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let serving = sync.until("serving metrics at");
    let address = serving["address"].as_str().unwrap().to_owned();
    assert_eq!(
        serving["message"],
        format!("serving metrics at http://{address}/metrics")
    );
    sync.until("run finished");
    // Between the runs: three new users, one soft-deleted.
    db.client()
        .batch_execute(
            "INSERT INTO public.users (id, username, email) VALUES (6, 'six', ''), (7, 'seven', ''), (8, 'eight', '');
             UPDATE public.users SET deleted_at = now(), updated_at = now() WHERE id = 2",
        )
        .unwrap();
    sync.until("run finished");
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();

    let (status, headers, body) = support::http_get(&address, "/metrics", &[]);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        headers,
        [
            "Content-Type: text/plain; version=0.0.4; charset=utf-8".to_owned(),
            format!("Content-Length: {}", body.len()),
            "Connection: close".to_owned(),
        ]
    );
    // The counters over both runs: a full run of 5 rows, an incremental one of 4.
    let exact = [
        (r#"data_sync_rows_read_total{mapping="users"}"#, 9.0),
        (
            r#"data_sync_rows_written_total{mapping="users",table="user_main"}"#,
            8.0,
        ),
        (
            r#"data_sync_rows_written_total{mapping="users",table="user_profile"}"#,
            8.0,
        ),
        (
            r#"data_sync_rows_deleted_total{mapping="users",table="user_main"}"#,
            1.0,
        ),
        (
            r#"data_sync_rows_deleted_total{mapping="users",table="user_profile"}"#,
            1.0,
        ),
        (r#"data_sync_runs_total{mapping="users",outcome="ok"}"#, 2.0),
    ];
    assert_samples(&body, &exact);
    // No run failed or was skipped, and a metric without samples (capture's) is
    // left out.
    assert!(!body.contains(r#"outcome="error""#), "{body}");
    assert!(!body.contains("data_sync_capture_behind_bytes"), "{body}");
    for (name, help) in [
        ("data_sync_rows_read", "counter"),
        ("data_sync_runs", "counter"),
        ("data_sync_last_success_timestamp_seconds", "gauge"),
        ("data_sync_watermark_age_seconds", "gauge"),
    ] {
        assert!(
            body.contains(&format!("\n# TYPE {name} {help}\n")),
            "{name} {help} in:\n{body}"
        );
    }
    // The times: the last success was the second run's end, moments ago, and took
    // a moment; the newest row synced is about as old (bounds wide enough for a
    // loaded machine).
    let success = sample(
        &body,
        r#"data_sync_last_success_timestamp_seconds{mapping="users"}"#,
    );
    assert!(
        before - 5.0 < success && success <= before,
        "{success} vs {before}"
    );
    let duration = sample(
        &body,
        r#"data_sync_last_run_duration_seconds{mapping="users"}"#,
    );
    assert!(0.0 < duration && duration < 60.0, "{duration}");
    let age = sample(&body, r#"data_sync_watermark_age_seconds{mapping="users"}"#);
    assert!((0.0..120.0).contains(&age), "{age}");
    assert!(body.ends_with("# EOF\n"), "{body}");

    // Prometheus asks for OpenMetrics, and gets the same text under its name.
    let (status, headers, openmetrics) = support::http_get(
        &address,
        "/metrics",
        &["Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"],
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        headers[0],
        "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(openmetrics, body);
    // Any other path is not found.
    let (status, _, body) = support::http_get(&address, "/", &[]);
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert_eq!(body, "not found: try /metrics\n");

    let (exit, _) = sync.terminate();
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn an_address_that_cannot_be_served_stops_before_any_run() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = support::data_sync(
        &db,
        &target.path,
        &["sync", "--every", "1s", "--metrics", &address],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: cannot serve metrics at `{address}`: Address already in use (os error 98); pass a free local address such as `--metrics 127.0.0.1:9187`\n"
        )
    );
    assert!(output.stdout.is_empty());
    assert!(!target.path.exists(), "no run began");

    // Without `--every` a sync ends at once: nothing to serve.
    let output = support::data_sync(&db, &target.path, &["sync", "--metrics", "127.0.0.1:0"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "error: the following required arguments were not provided:\n  --every <DURATION>\n"
        ),
        "{stderr}"
    );
}

#[test]
fn follow_serves_the_changes_it_applies_and_how_far_behind_it_was() {
    let db = crate::capture::users_source(10);
    let target = support::target_file();
    let mut follow = Logged::start(crate::outcomes::test_mappings_command(
        &db.url(),
        &target.path,
        &[
            "-v",
            "--log-format",
            "json",
            "follow",
            "--mapping",
            "users_log",
            "--metrics",
            "127.0.0.1:0",
        ],
    ));
    let address = follow.until("serving metrics at")["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let metrics = || support::http_get(&address, "/metrics", &[]).2;
    let read = r#"data_sync_rows_read_total{mapping="users_log"}"#;
    // Minutes, for a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(180);
    while !metrics().contains(read) {
        assert!(Instant::now() < deadline, "no first copy within 180 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Two inserts and a delete, in one source transaction.
    db.client()
        .batch_execute(
            "BEGIN;
             INSERT INTO public.users (id, username, email) VALUES (11, 'a', ''), (12, 'b', '');
             DELETE FROM public.users WHERE id = 3;
             COMMIT",
        )
        .unwrap();
    let mut body = metrics();
    while sample(&body, read) != 13.0 {
        assert!(
            Instant::now() < deadline,
            "the changes within 180 s:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
        body = metrics();
    }
    let exact = [
        (
            r#"data_sync_rows_written_total{mapping="users_log",table="live_user"}"#,
            12.0,
        ),
        (
            r#"data_sync_rows_written_total{mapping="users_log",table="live_user_profile"}"#,
            12.0,
        ),
        (
            r#"data_sync_rows_deleted_total{mapping="users_log",table="live_user"}"#,
            1.0,
        ),
        (
            r#"data_sync_rows_deleted_total{mapping="users_log",table="live_user_profile"}"#,
            1.0,
        ),
    ];
    assert_samples(&body, &exact);
    // One `ok` per round (every 100 ms), a gauge of the lag that each round sets.
    let rounds = sample(
        &body,
        r#"data_sync_runs_total{mapping="users_log",outcome="ok"}"#,
    );
    assert!(rounds >= 2.0, "{body}");
    let behind = sample(
        &body,
        r#"data_sync_capture_behind_bytes{mapping="users_log"}"#,
    );
    assert!(behind >= 0.0, "{body}");

    let (exit, _) = follow.terminate();
    assert_eq!(exit.code(), Some(0));
}
