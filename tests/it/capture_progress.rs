//! Progress of capture runs: `sync` and `follow` of a `capture: log` mapping report
//! rows copied and changes applied through the same [`Progress`] observer a full
//! sync reports to.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sync_runtime::{Error, MappingSpec, Progress, RetryPolicy, SourceConfig, Summary, SyncOptions};

use crate::capture::{stored_position, users_source};
use crate::support;

/// Every event, as text: `start capture`, `estimate 20`, `advance 20`, `finish ok`.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn push(&self, event: String) {
        self.0.lock().unwrap().push(event);
    }

    /// The last `advance`, if any.
    fn last_advance(&self) -> Option<u64> {
        self.events()
            .iter()
            .rev()
            .find_map(|event| event.strip_prefix("advance ")?.parse().ok())
    }
}

impl Progress for Recorder {
    fn start(&self, mapping: &'static MappingSpec, mode: &str) {
        assert_eq!(mapping.name, "users_log");
        self.push(format!("start {mode}"));
    }

    fn estimate(&self, _mapping: &'static MappingSpec, rows: u64) {
        self.push(format!("estimate {rows}"));
    }

    fn advance(&self, _mapping: &'static MappingSpec, rows: u64) {
        self.push(format!("advance {rows}"));
    }

    fn finish(&self, _mapping: &'static MappingSpec, outcome: Result<&Summary, &Error>) {
        self.push(match outcome {
            Ok(summary) => format!("finish ok {}", summary.rows_read),
            Err(_) => "finish error".to_owned(),
        });
    }
}

fn options(recorder: &Arc<Recorder>) -> SyncOptions {
    SyncOptions {
        progress: Some(recorder.clone()),
        ..SyncOptions::default()
    }
}

#[test]
fn capture_runs_report_rows_copied_and_changes_applied() {
    let db = users_source(20);
    db.client().batch_execute("ANALYZE public.users").unwrap();
    let target = support::target_file();
    let source = SourceConfig::parse(&db.url()).unwrap();

    // The first copy: PostgreSQL's estimate, then the rows copied.
    let recorder = Arc::new(Recorder::default());
    sync_runtime::sync::<crate::generated::UsersLog>(&source, &target.path, &options(&recorder))
        .unwrap();
    let events = recorder.events();
    assert_eq!(events.first().map(String::as_str), Some("start capture"));
    assert!(events.contains(&"estimate 20".to_owned()), "{events:?}");
    assert_eq!(recorder.last_advance(), Some(20), "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("finish ok 20"));

    // A drain: the changes applied.
    db.client()
        .batch_execute(
            "UPDATE public.users SET username = 'changed' WHERE id <= 5;
             DELETE FROM public.users WHERE id > 18",
        )
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    sync_runtime::sync::<crate::generated::UsersLog>(&source, &target.path, &options(&recorder))
        .unwrap();
    let events = recorder.events();
    assert_eq!(
        events,
        ["start capture", "advance 7", "finish ok 7"],
        "{events:?}"
    );

    // `follow`: the changes as they are applied, counted from its start; it ends
    // here with an error (its connection terminated, no retries), reported too.
    let recorder = Arc::new(Recorder::default());
    let follow_options = SyncOptions {
        retry: RetryPolicy {
            retries: 0,
            ..RetryPolicy::default()
        },
        ..options(&recorder)
    };
    let result = std::thread::scope(|scope| {
        let follow = scope.spawn(|| {
            sync_runtime::follow::<crate::generated::UsersLog>(
                &source,
                &target.path,
                &follow_options,
            )
        });
        let mut client = db.client();
        client
            .batch_execute(
                "INSERT INTO public.users (id, username, email) VALUES (101, 'a', 'a@example.com');
                 INSERT INTO public.users (id, username, email) VALUES (102, 'b', 'b@example.com');
                 UPDATE public.users SET email = 'c@example.com' WHERE id = 1",
            )
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while recorder.last_advance() != Some(3) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        client
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .unwrap();
        follow.join().unwrap()
    });
    assert!(result.is_err(), "{result:?}");
    let events = recorder.events();
    assert_eq!(events.first().map(String::as_str), Some("start follow"));
    assert_eq!(recorder.last_advance(), Some(3), "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("finish error"));
    assert!(stored_position(&target.path).is_some());
    crate::capture::assert_same_users(&db, &target.path);
}
