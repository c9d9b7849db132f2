//! A frozen source (its backend stopped with `kill -STOP`) is waited on no longer
//! than the read timeout: without retries the run fails, names the wait, and leaves
//! the target as it was. (With retries, the next attempt reads on a new connection.)

use std::process::Command;
use std::time::{Duration, Instant};

use crate::full_sync::create_users;
use crate::support;

/// Sends `SIGCONT` to a stopped backend when dropped, so that a failing test never
/// leaves the shared cluster with a frozen process.
struct Stopped(String);

impl Stopped {
    fn new(pid: i32) -> Self {
        let pid = pid.to_string();
        let status = Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        assert!(status.success(), "kill -STOP {pid}");
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

/// The run's process, killed and reaped when dropped (a failing test leaves none).
struct Run(std::process::Child);

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_frozen_backend_is_bounded_by_the_read_timeout() {
    frozen_backend(&["--full"]);
}

#[test]
fn a_frozen_backend_is_bounded_by_the_read_timeout_in_an_incremental_run() {
    frozen_backend(&[]);
}

/// A run with `args` whose backend is stopped while it waits for a lock fails
/// within the read timeout, and leaves the target as it was.
fn frozen_backend(args: &[&str]) {
    let db = support::source_db();
    create_users(&db, 1_000);
    let target = support::target_file();
    support::sync::<mappings::Users>(&db, &target.path).unwrap();
    let before = support::target_users(&target.path);

    // The run's backend waits for this lock, which makes it easy to find; once it
    // is stopped, the lock is released and the backend never answers again.
    let mut locker = db.client();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let started = Instant::now();
    let mut run = Run(support::spawn_users_sync(
        &db,
        &target.path,
        &[args, &["--read-timeout", "3s", "--retries", "0"]].concat(),
    ));
    let child = &mut run.0;
    let mut watcher = db.client();
    let mut backend = None;
    while backend.is_none() && started.elapsed() < Duration::from_secs(30) {
        backend = watcher
            .query_opt(
                "SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'data-sync'
                   AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .map(|row| row.get::<_, i32>(0));
        if backend.is_none() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the run ended before it waited for the lock"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let backend = backend.expect("the run's backend waits for the lock");
    let stopped = Stopped::new(backend);
    lock.commit().unwrap();

    let mut status = None;
    while status.is_none() && started.elapsed() < Duration::from_secs(60) {
        status = child.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    drop(stopped);
    assert!(
        status.is_some(),
        "the run still waited on the frozen source after {took:?}"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    eprintln!("the run ended {took:?} after it started: {stderr}");
    assert_eq!(status.unwrap().code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        stderr.contains(
            "error: reading `public.users` for mapping `users`: the source sent nothing for 3s"
        ),
        "{stderr}"
    );
    assert_eq!(support::target_users(&target.path), before);
}
