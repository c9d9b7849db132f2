//! Change capture under faults: a randomized workload of small source transactions
//! while runs of the real `data-sync sync` are killed with SIGKILL at random
//! instants and the server restarts once; afterwards the targets equal the source
//! exactly and `verify` agrees. The seed is printed; `DATA_SYNC_CAPTURE_SEED=N`
//! replays it.

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testkit::{PgServer, TestDb};

use crate::capture::{BIG_TEXT, assert_same_users};
use crate::outcomes::{data_sync_test_mappings, test_mappings_command};

/// A small, seedable generator (xorshift64*): the workload and the kill instants
/// come from one seed.
pub(crate) struct Random(pub(crate) u64);

impl Random {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

pub(crate) fn seed() -> u64 {
    let seed = std::env::var("DATA_SYNC_CAPTURE_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("capture workload seed: {seed} (replay with DATA_SYNC_CAPTURE_SEED={seed})");
    seed
}

/// One random source transaction; `next_id` hands out new keys.
fn transaction(random: &mut Random, next_id: &mut i64, truncate: bool) -> String {
    if truncate {
        let id = *next_id;
        *next_id += 2;
        return format!(
            "TRUNCATE public.users;
             INSERT INTO public.users (id, username, email, bio) VALUES
                 ({id}, 'after truncate', 'a@example.com', big_text({id})),
                 ({}, 'after truncate 2', 'b@example.com', NULL);",
            id + 1
        );
    }
    let existing = |random: &mut Random, next_id: i64| 1 + random.below(next_id as u64) as i64;
    let mut statements = Vec::new();
    let count = 1 + random.below(3);
    for _ in 0..count {
        let statement = match random.below(9) {
            0 | 1 => {
                let id = *next_id;
                *next_id += 1;
                let bio = if random.below(3) == 0 {
                    format!("big_text({id})")
                } else {
                    format!("'bio {id}'")
                };
                format!(
                    "INSERT INTO public.users (id, username, email, bio) \
                     VALUES ({id}, 'u{id}', 'u{id}@example.com', {bio})"
                )
            }
            // An update that moves no cursor: `updated_at` stays.
            2 => format!(
                "UPDATE public.users SET username = username || '+' WHERE id = {}",
                existing(random, *next_id)
            ),
            // Another column of rows holding an out-of-line `bio`.
            3 => format!(
                "UPDATE public.users SET avatar_url = 'a{}' WHERE id IN \
                 (SELECT id FROM public.users WHERE length(bio) > 10000 ORDER BY id LIMIT 2 OFFSET {})",
                random.below(1000),
                random.below(20)
            ),
            4 => format!(
                "DELETE FROM public.users WHERE id = {}",
                existing(random, *next_id)
            ),
            // A key change.
            5 => {
                let id = *next_id;
                *next_id += 1;
                format!(
                    "UPDATE public.users SET id = {id} WHERE id = {}",
                    existing(random, id)
                )
            }
            6 => format!(
                "UPDATE public.users SET deleted_at = CASE WHEN deleted_at IS NULL THEN now() END \
                 WHERE id = {}",
                existing(random, *next_id)
            ),
            7 => format!(
                "UPDATE public.users SET email = 'e{}@example.com', bio = CASE WHEN bio IS NULL \
                 THEN big_text(id) ELSE bio END WHERE id = {}",
                random.below(1000),
                existing(random, *next_id)
            ),
            _ => format!(
                "UPDATE public.users SET bio = NULL WHERE id = {}",
                existing(random, *next_id)
            ),
        };
        statements.push(statement);
    }
    let end = if random.below(8) == 0 {
        "ROLLBACK"
    } else {
        "COMMIT"
    };
    format!("BEGIN; {}; {end};", statements.join("; "))
}

/// Runs the workload until `stop`, reconnecting after the server restart; returns
/// the transactions run.
fn workload(db: &TestDb, seed: u64, first_id: i64, stop: &AtomicBool, truncate_at: u64) -> u64 {
    let mut random = Random(seed);
    let mut next_id = first_id;
    let mut client = db.client();
    let mut count = 0;
    while !stop.load(Ordering::SeqCst) {
        let sql = transaction(&mut random, &mut next_id, count == truncate_at);
        count += 1;
        if client.batch_execute(&sql).is_err() {
            // The restart: a new connection; the transaction may or may not have
            // committed, which the comparison at the end does not care about.
            let _ = client.batch_execute("ROLLBACK");
            std::thread::sleep(Duration::from_millis(50));
            if let Ok(new) = postgres::Client::connect(&db.url(), postgres::NoTls) {
                client = new;
            }
        }
        std::thread::sleep(Duration::from_millis(2 + random.below(6)));
    }
    count
}

fn spawn_sync(db: &TestDb, target: &Path) -> Child {
    test_mappings_command(
        &db.url(),
        target,
        &[
            "sync",
            "--mapping",
            "users_log",
            "--quiet",
            "--batch-size",
            "7",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("data-sync starts")
}

/// Starts runs and kills each at a random instant (or lets it finish) until `until`.
fn kill_runs(db: &TestDb, target: &Path, random: &mut Random, until: Instant) -> (u32, u32) {
    let (mut killed, mut finished) = (0, 0);
    while Instant::now() < until {
        let mut child = spawn_sync(db, target);
        let life = Duration::from_millis(random.below(600));
        std::thread::sleep(life);
        match child.try_wait().unwrap() {
            Some(_) => finished += 1,
            None => {
                child.kill().unwrap(); // SIGKILL
                killed += 1;
            }
        }
        child.wait().unwrap();
    }
    (killed, finished)
}

#[test]
fn killed_runs_and_a_server_restart_lose_and_repeat_nothing() {
    let seed = seed();
    let mut random = Random(seed);
    let server = PgServer::start().expect("a throwaway cluster starts");
    let db = server.create_database();
    {
        let mut client = db.client();
        client.batch_execute(testkit::reference::USERS_DDL).unwrap();
        client.batch_execute(BIG_TEXT).unwrap();
        client
            .batch_execute(
                "INSERT INTO public.users (id, username, email, bio)
                 SELECT i, 'user' || i, 'user' || i || '@example.com',
                        CASE WHEN i % 3 = 0 THEN big_text(i) ELSE 'bio ' || i END
                 FROM generate_series(1, 300) AS i",
            )
            .unwrap();
    }
    let target = crate::support::target_file();
    let stop = AtomicBool::new(false);
    let truncate_at = 50 + random.below(100);
    let (killed, finished, transactions) = std::thread::scope(|scope| {
        let workload_seed = random.next() | 1;
        let (db, stop) = (&db, &stop);
        let writer = scope.spawn(move || workload(db, workload_seed, 301, stop, truncate_at));
        // Writers run during the first copy too.
        let (killed_before, finished_before) = kill_runs(
            db,
            &target.path,
            &mut random,
            Instant::now() + Duration::from_secs(6),
        );
        // The server restarts once, with a run in flight.
        let mut child = spawn_sync(db, &target.path);
        std::thread::sleep(Duration::from_millis(random.below(300)));
        server.restart().expect("the server restarts");
        child.wait().unwrap();
        let (killed_after, finished_after) = kill_runs(
            db,
            &target.path,
            &mut random,
            Instant::now() + Duration::from_secs(6),
        );
        stop.store(true, Ordering::SeqCst);
        let transactions = writer.join().unwrap();
        (
            killed_before + killed_after,
            finished_before + finished_after,
            transactions,
        )
    });
    eprintln!("{transactions} source transactions, {killed} runs killed, {finished} finished");
    assert!(killed >= 5, "runs were killed ({killed})");
    assert!(transactions > truncate_at, "the TRUNCATE ran");

    // A last run, once nothing writes: it reaches the WAL position at its start.
    let mut last = None;
    for _ in 0..5 {
        let output =
            data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
        if output.status.success() {
            last = Some(output);
            break;
        }
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(last.is_some(), "a final run succeeds (seed {seed})");
    assert_same_users(&db, &target.path);
    let verify = data_sync_test_mappings(&db, &target.path, &["verify", "--mapping", "users_log"]);
    assert!(
        verify.status.success(),
        "verify agrees (seed {seed}): {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// What the targets of `users_log` hold, every column, in key order.
fn target_rows(target: &Path) -> Vec<Vec<rusqlite::types::Value>> {
    let mut rows = crate::support::sqlite_rows(
        target,
        "SELECT id, username, email FROM live_user ORDER BY id",
    );
    rows.extend(crate::support::sqlite_rows(
        target,
        "SELECT id, bio, avatar_url FROM live_user_profile ORDER BY id",
    ));
    rows
}

/// A run killed while its first copy streams leaves the target file as it was
/// (rows and stored position), and the next run copies again, into a new slot.
#[test]
fn a_kill_during_the_first_copy_leaves_the_target_as_it_was() {
    let db = crate::capture::users_source(30);
    let target = crate::support::target_file();
    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The slot dropped, the rows stay: the next run makes a first copy again.
    let output =
        data_sync_test_mappings(&db, &target.path, &["drop-slot", "--mapping", "users_log"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let before = target_rows(&target.path);
    assert_eq!(before.len(), 60);
    let mut client = db.client();
    // Enough rows that the copy streams for a while.
    client
        .batch_execute(
            "UPDATE public.users SET username = username || ' changed';
             INSERT INTO public.users (id, username, email)
             SELECT i, 'bulk ' || i, 'bulk' || i || '@example.com'
             FROM generate_series(1000, 300000) AS i",
        )
        .unwrap();
    let mut child = spawn_sync(&db, &target.path);
    let deadline = Instant::now() + Duration::from_secs(60);
    let copying = loop {
        let copying: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND state = 'active' AND query LIKE 'COPY%'",
                &[],
            )
            .unwrap()
            .get(0);
        if copying > 0 || Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            break copying > 0;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().unwrap();
    let killed = child.wait_with_output().unwrap();
    assert!(
        copying,
        "the copy was not seen running; sync said: {}",
        String::from_utf8_lossy(&killed.stderr)
    );
    assert_eq!(target_rows(&target.path), before);
    assert_eq!(crate::capture::stored_position(&target.path), None);

    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "users_log"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_same_users(&db, &target.path);
    assert_eq!(target_rows(&target.path).len(), 2 * (30 + 299_001));
    // The killed run's slot was dropped by the next one, which made its own.
    assert_eq!(crate::capture::slots(&db).len(), 1);
}
