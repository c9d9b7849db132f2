//! `sync --every DURATION` runs until SIGTERM, and the lock beside the target file
//! stops a second writer, naming the first (issue 18 item 6).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::full_sync::create_users;
use crate::support;

#[test]
fn every_runs_until_sigterm_and_holds_the_target_against_a_second_writer() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let mut child = Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args([
            "-v",
            "--log-format",
            "json",
            "sync",
            "--mapping",
            "users",
            "--every",
            "1s",
        ])
        .env("DATA_SYNC_SOURCE", db.url())
        .env("DATA_SYNC_TARGET", &target.path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Three runs, one log line each.
    let started = Instant::now();
    let mut runs = 0;
    while runs < 3 {
        let line = received
            .recv_timeout(Duration::from_secs(30))
            .expect("a log line within 30 s");
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        if json["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("run finished"))
        {
            assert_eq!(json["outcome"], "ok", "{line}");
            runs += 1;
        }
    }
    // Three runs one second apart take two seconds and a little.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A second writer of the same file stops at once, naming the first.
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        format!(
            "error: `{}` is being written by process {} (`data-sync sync`); wait for it to finish or stop it\n",
            target.path.display(),
            child.id()
        )
    );
    // Readers are not locked out.
    let output = support::data_sync(&db, &target.path, &["status"]);
    assert!(output.status.success(), "{output:?}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let sent = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(sent.elapsed() < Duration::from_secs(30), "no exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    eprintln!("exited {took:?} after SIGTERM");
    // The promise is a second; the margin is for a loaded machine.
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(exit.code(), Some(0));
    let summaries = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    assert!(summaries.lines().count() >= 3, "{summaries}");
    assert!(
        summaries.lines().all(|line| line.starts_with("users: ")),
        "{summaries}"
    );

    // Once the first is gone, the lock is free.
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert!(output.status.success(), "{output:?}");
}
