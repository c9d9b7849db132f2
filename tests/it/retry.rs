//! Connection faults: PostgreSQL restarted in the middle of a run. The run retries
//! (a full sync from scratch, an incremental one from its last committed batch)
//! and ends with the target equal to the source; an error that would only happen
//! again is not retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use sync_runtime::{MappingSpec, Overlap, Progress, RetryPolicy, SourceConfig, SyncOptions};
use testkit::{PgServer, TestDb};

use crate::support;

/// Counts attempts (`start`), and on the first batch written asks for a restart
/// and waits until it is done, so that the run's connection is gone for sure while
/// the run is in the middle of its rows.
struct RestartOnFirstBatch {
    attempts: AtomicU64,
    restart: SyncSender<()>,
    restarted: std::sync::Mutex<Receiver<()>>,
    asked: std::sync::atomic::AtomicBool,
}

impl Progress for RestartOnFirstBatch {
    fn start(&self, _mapping: &'static MappingSpec, _mode: &str) {
        self.attempts.fetch_add(1, Ordering::SeqCst);
    }

    fn advance(&self, _mapping: &'static MappingSpec, _rows: u64) {
        if !self.asked.swap(true, Ordering::SeqCst) {
            self.restart.send(()).unwrap();
            self.restarted
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(120))
                .expect("the server restarts");
        }
    }
}

/// Runs `sync` of `users` on `server` while another thread restarts the server at
/// the first batch; returns the summary and the number of attempts.
fn sync_through_a_restart(
    server: &PgServer,
    db: &TestDb,
    target: &std::path::Path,
    full: bool,
) -> (sync_runtime::Summary, u64) {
    let (restart, restart_asked) = sync_channel(1);
    let (restarted_sender, restarted) = sync_channel(1);
    let progress = Arc::new(RestartOnFirstBatch {
        attempts: AtomicU64::new(0),
        restart,
        restarted: std::sync::Mutex::new(restarted),
        asked: Default::default(),
    });
    let options = SyncOptions {
        full,
        batch_size: 1_000,
        overlap: Some(Overlap::Number(0)),
        progress: Some(progress.clone()),
        retry: RetryPolicy {
            retries: 20,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        },
        ..SyncOptions::default()
    };
    let source = SourceConfig::parse(&db.url()).unwrap();
    let summary = std::thread::scope(|scope| {
        scope.spawn(move || {
            if restart_asked.recv_timeout(Duration::from_secs(300)).is_ok() {
                server.restart().expect("the server restarts");
                restarted_sender.send(()).unwrap();
            }
        });
        sync_runtime::sync::<mappings::Users>(&source, target, &options)
    })
    .expect("the run retries through the restart");
    (summary, progress.attempts.load(Ordering::SeqCst))
}

fn own_server() -> PgServer {
    PgServer::start().expect("a throwaway cluster starts")
}

#[test]
fn a_full_sync_restarts_from_scratch_after_the_server_restarts() {
    let server = own_server();
    let db = server.create_database();
    crate::full_sync::create_users(&db, 200_000);
    let target = support::target_file();

    let (summary, attempts) = sync_through_a_restart(&server, &db, &target.path, true);
    assert!(
        attempts >= 2,
        "the restart made the run retry ({attempts} attempts)"
    );
    assert_eq!(summary.mode, "full");
    assert_eq!(
        summary.rows_read, 200_000,
        "the retry read everything again"
    );
    assert!(support::target_users(&target.path) == support::source_users(&db));
}

#[test]
fn an_incremental_sync_resumes_from_its_last_batch_after_the_server_restarts() {
    let server = own_server();
    let db = server.create_database();
    crate::full_sync::create_users(&db, 1_000);
    let target = support::target_file();
    let source = SourceConfig::parse(&db.url()).unwrap();
    sync_runtime::sync::<mappings::Users>(&source, &target.path, &SyncOptions::default()).unwrap();
    db.client()
        .execute(
            "INSERT INTO public.users (id, username, email, updated_at, deleted_at)
             SELECT g, 'later_' || g, g || '@example.org',
                    now() + interval '1 hour' + g * interval '1 millisecond',
                    CASE WHEN g % 11 = 0 THEN now() END
             FROM generate_series(1001::bigint, 200000::bigint) AS g",
            &[],
        )
        .unwrap();

    let (summary, attempts) = sync_through_a_restart(&server, &db, &target.path, false);
    assert!(
        attempts >= 2,
        "the restart made the run retry ({attempts} attempts)"
    );
    assert_eq!(summary.mode, "incremental");
    assert!(
        summary.rows_read < 199_000,
        "the retry resumed after the committed batches ({} rows read again)",
        summary.rows_read
    );
    assert!(support::target_users(&target.path) == support::source_users(&db));
}

/// Counts attempts.
#[derive(Default)]
struct Attempts(AtomicU64);

impl Progress for Attempts {
    fn start(&self, _mapping: &'static MappingSpec, _mode: &str) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn errors_that_would_happen_again_are_not_retried() {
    let db = support::source_db();
    crate::full_sync::create_users(&db, 10);
    // A column the mapping reads is gone: a schema mismatch, not a fault.
    db.client()
        .batch_execute("ALTER TABLE public.users DROP COLUMN email")
        .unwrap();
    let target = support::target_file();
    let attempts = Arc::new(Attempts::default());
    let options = SyncOptions {
        full: true,
        progress: Some(attempts.clone()),
        retry: RetryPolicy {
            retries: 5,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        },
        ..SyncOptions::default()
    };
    let source = SourceConfig::parse(&db.url()).unwrap();
    let error = sync_runtime::sync::<mappings::Users>(&source, &target.path, &options)
        .expect_err("the column is missing");
    assert!(error.to_string().contains("email"), "{error}");
    assert_eq!(attempts.0.load(Ordering::SeqCst), 1, "no retry");

    // A database that does not exist is not retried either.
    let mut url = db.url();
    url.push_str("_no_such_database");
    let source = SourceConfig::parse(&url).unwrap();
    let attempts = Arc::new(Attempts::default());
    let options = SyncOptions {
        progress: Some(attempts.clone()),
        ..options
    };
    let error = sync_runtime::sync::<mappings::Users>(&source, &target.path, &options)
        .expect_err("no such database");
    assert!(error.to_string().contains("does not exist"), "{error}");
    assert_eq!(attempts.0.load(Ordering::SeqCst), 1, "no retry");
}

#[test]
fn a_refused_connection_is_retried_as_often_as_asked() {
    let db = support::source_db();
    crate::full_sync::create_users(&db, 10);
    let target = support::target_file();
    let attempts = Arc::new(Attempts::default());
    let options = SyncOptions {
        progress: Some(attempts.clone()),
        retry: RetryPolicy {
            retries: 2,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        },
        ..SyncOptions::default()
    };
    // Nothing listens on port 1.
    let source = SourceConfig::parse("postgresql://postgres@127.0.0.1:1/postgres").unwrap();
    let error = sync_runtime::sync::<mappings::Users>(&source, &target.path, &options)
        .expect_err("nothing listens there");
    assert!(error.to_string().contains("cannot connect"), "{error}");
    assert_eq!(
        attempts.0.load(Ordering::SeqCst),
        3,
        "first attempt and 2 retries"
    );
}
