//! `cargo xtask bench [--rows N] [--runs K] [--peers] [--capture] [--debug]`:
//! data-sync's full and incremental sync side by side with the source and sink
//! ceilings, the plain approach and (with `--peers`) DuckDB, on one throwaway
//! PostgreSQL, medians of `K` runs, every run's output checked against the source.
//! With `--capture`, also change capture (`users_log`): the first copy, a drain of
//! `N` changed rows (updates and deletes) against an incremental run with `--prune`
//! over the same changes, and `follow`'s latency from commit to visible in SQLite at
//! 1,000 commits/s. Writes the table into `BENCHMARKS.md`, one section per table
//! size. `--debug` runs the debug binaries instead of building release ones: a smoke
//! run of this code, whose timings mean nothing (it writes no BENCHMARKS.md).
//!
//! Every measurement runs in its own child process so that its peak RSS is its own:
//! the release `data-sync` binary, the release build of this crate (`bench --child
//! KIND`, for the ceilings and the plain approach), or Python with DuckDB.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::Hasher;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use postgres::fallible_iterator::FallibleIterator;

/// The DuckDB release whose PyPI wheels (engine and both extensions) the peer uses.
const DUCKDB_VERSION: &str = "1.5.5";

/// The columns the `users` mapping reads, in its order.
const SELECT: &str =
    "SELECT \"id\", \"username\", \"email\", \"bio\", \"avatar_url\" FROM \"public\".\"users\"";

/// Runs the task: `args` are what follows `cargo xtask bench`.
pub fn main(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    if let Some(child) = &options.child {
        return run_child(child, &options);
    }
    run(&options)
}

/// The command line.
#[derive(Debug)]
struct Options {
    rows: i64,
    runs: usize,
    peers: bool,
    capture: bool,
    debug: bool,
    child: Option<String>,
    source: String,
    target: PathBuf,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options {
            rows: 1_000_000,
            runs: 3,
            peers: false,
            capture: false,
            debug: false,
            child: None,
            source: String::new(),
            target: PathBuf::new(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .cloned()
                    .with_context(|| format!("`{name}` needs a value"))
            };
            match arg.as_str() {
                "--rows" => {
                    options.rows = value("--rows")?
                        .replace(['_', ','], "")
                        .parse()
                        .context("`--rows` takes a number")?;
                }
                "--runs" => {
                    options.runs = value("--runs")?
                        .parse()
                        .context("`--runs` takes a number")?;
                }
                "--peers" => options.peers = true,
                "--capture" => options.capture = true,
                "--debug" => options.debug = true,
                "--child" => options.child = Some(value("--child")?),
                "--source" => options.source = value("--source")?,
                "--target" => options.target = PathBuf::from(value("--target")?),
                other => bail!(
                    "unknown argument `{other}`\n\nusage: cargo xtask bench [--rows N] [--runs K] [--peers] [--capture] [--debug]"
                ),
            }
        }
        ensure!(options.rows > 0, "`--rows` must be positive");
        ensure!(options.runs > 0, "`--runs` must be positive");
        Ok(options)
    }
}

/// One measured run.
#[derive(Clone, Copy, Debug)]
struct Sample {
    seconds: f64,
    peak_rss_kib: Option<u64>,
    rows: i64,
}

/// One line of the table.
struct Line {
    name: String,
    samples: Vec<Sample>,
    note: String,
}

impl Line {
    fn median(&self, value: impl Fn(&Sample) -> f64) -> Option<f64> {
        let mut values: Vec<f64> = self.samples.iter().map(value).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(values[values.len() / 2])
    }

    fn rows_per_second(&self) -> Option<f64> {
        self.median(|sample| sample.rows as f64 / sample.seconds)
    }
}

/// The whole benchmark.
fn run(options: &Options) -> Result<()> {
    let root = crate::project_root();
    let work = root.join("target/bench");
    std::fs::create_dir_all(&work)?;

    let profile = if options.debug { "debug" } else { "release" };
    eprintln!("building {profile} binaries (data-sync, xtask)...");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    build
        .current_dir(&root)
        .args(["build", "-p", "data-sync", "-p", "xtask"]);
    if !options.debug {
        build.arg("--release");
    }
    let status = build.status().context("running cargo build")?;
    ensure!(status.success(), "cargo build failed");
    let data_sync = root.join(format!("target/{profile}/data-sync"));
    let xtask = root.join(format!("target/{profile}/xtask"));

    let python = if options.peers {
        Some(duckdb_venv(&work)?)
    } else {
        None
    };

    eprintln!("starting a throwaway PostgreSQL cluster...");
    let server = testkit::PgServer::start().context("starting PostgreSQL")?;
    let url = server.url("postgres");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).context("connecting")?;
    eprintln!("generating {} rows...", options.rows);
    let generating = Instant::now();
    generate(&mut client, options.rows)?;
    eprintln!("generated in {:.1} s", generating.elapsed().as_secs_f64());
    let expected = Checksum::of_source(&mut client)?;
    ensure!(
        expected.rows == options.rows,
        "the table has {} rows",
        expected.rows
    );

    let runs = options.runs;
    let rows = options.rows;
    let target = |name: &str| work.join(format!("{name}.sqlite"));
    let mut lines = Vec::new();

    // The source ceiling: the binary COPY read to nothing.
    let mut line =
        Line::new("source ceiling: `COPY (..) TO STDOUT (FORMAT binary)` read to nothing");
    for run in 0..runs {
        let sample = measure(
            child(&xtask, "copy", &url, Path::new("-")),
            rows,
            "copy",
            run,
        )?;
        line.samples.push(sample);
    }
    lines.push(line);

    // The sink ceiling: rows already in memory, inserted with rusqlite.
    let mut line = Line::new("sink ceiling: rusqlite insert loop over rows in memory");
    line.note = "one transaction, fresh file, rollback journal; load time excluded".to_owned();
    for run in 0..runs {
        let path = fresh(&target("sink"))?;
        let sample = measure(child(&xtask, "sink", &url, &path), rows, "sink", run)?;
        expected.verify(&path)?;
        line.samples.push(sample);
    }
    lines.push(line);

    // The plain approach: fetch every row, then insert per table.
    let mut line = Line::new("plain approach (Rust: `SELECT`, fetch all, insert per table)");
    line.note = "one transaction, prepared statements".to_owned();
    for run in 0..runs {
        let path = fresh(&target("plain"))?;
        let sample = measure(child(&xtask, "plain", &url, &path), rows, "plain", run)?;
        expected.verify(&path)?;
        line.samples.push(sample);
    }
    lines.push(line);

    // data-sync full sync into a new file, then over its own previous result.
    let mut fresh_line = Line::new("**data-sync full sync**, new file");
    let mut again_line = Line::new("**data-sync full sync**, replacing the previous run's tables");
    for run in 0..runs {
        let path = fresh(&target("data-sync"))?;
        let sample = measure(
            data_sync_command(&data_sync, &url, &path, &["--full"]),
            rows,
            "full",
            run,
        )?;
        expected.verify(&path)?;
        fresh_line.samples.push(sample);
        let sample = measure(
            data_sync_command(&data_sync, &url, &path, &["--full"]),
            rows,
            "full again",
            run,
        )?;
        expected.verify(&path)?;
        again_line.samples.push(sample);
    }
    lines.push(fresh_line);
    lines.push(again_line);

    // DuckDB with its postgres and sqlite extensions.
    let mut duckdb_rows_per_second = None;
    if let Some(python) = &python {
        let mut line = Line::new(&format!(
            "DuckDB {DUCKDB_VERSION} (postgres + sqlite extensions, `INSERT INTO .. SELECT`)"
        ));
        line.note = "same STRICT tables, one transaction".to_owned();
        for run in 0..runs {
            let path = fresh(&target("duckdb"))?;
            create_targets(&UsersSql::of(&data_sync)?, &path)?;
            let mut command = Command::new(python);
            command
                .arg(root.join("xtask/peers/duckdb_sync.py"))
                .arg(&url)
                .arg(&path)
                .arg(work.join("venv"));
            let sample = measure(command, rows, "duckdb", run)?;
            expected.verify(&path)?;
            line.samples.push(sample);
        }
        duckdb_rows_per_second = line.rows_per_second();
        lines.push(line);
    }

    // Incremental sync and prune, where the engine and the mapping have them.
    let help = Command::new(&data_sync)
        .args(["sync", "--help"])
        .output()
        .context("running data-sync sync --help")?;
    let help = String::from_utf8_lossy(&help.stdout);
    let path = target("data-sync");
    let mut line = Line::new("**data-sync incremental sync**, 1% of rows changed");
    if !UsersSql::of(&data_sync)?.incremental {
        line.note = "not yet implemented: the `users` mapping has no cursor".to_owned();
    } else {
        for run in 0..runs {
            let slice = run as i64 % 50;
            let changed = client.execute(
                "UPDATE public.users SET bio = coalesce(bio, '') || ' ✎', updated_at = clock_timestamp() WHERE id % 100 = $1",
                &[&slice],
            )?;
            let expected = Checksum::of_source(&mut client)?;
            let sample = measure(
                data_sync_command(&data_sync, &url, &path, &[]),
                changed as i64,
                "incremental",
                run,
            )?;
            expected.verify(&path)?;
            line.samples.push(sample);
        }
    }
    lines.push(line);
    let mut line = Line::new("**data-sync `--prune`**, 1% of rows deleted");
    if !help.contains("--prune") {
        line.note = "not yet implemented: `data-sync sync` has no `--prune`".to_owned();
    } else {
        for run in 0..runs {
            let slice = 50 + run as i64 % 50;
            let deleted =
                client.execute("DELETE FROM public.users WHERE id % 100 = $1", &[&slice])?;
            let expected = Checksum::of_source(&mut client)?;
            let sample = measure(
                data_sync_command(&data_sync, &url, &path, &["--prune"]),
                deleted as i64,
                "prune",
                run,
            )?;
            expected.verify(&path)?;
            line.samples.push(sample);
        }
    }
    lines.push(line);

    if options.capture {
        lines.extend(capture_lines(
            options,
            &data_sync,
            &url,
            &mut client,
            &work,
        )?);
    }

    let machine = Machine::describe(&mut client, python.as_deref())?;
    let section = render(options, &machine, &lines, duckdb_rows_per_second);
    println!("{section}");
    if options.debug {
        eprintln!("a --debug run: BENCHMARKS.md left as it was");
        return Ok(());
    }
    write_section(&root.join("BENCHMARKS.md"), options.rows, &section)?;
    eprintln!("wrote BENCHMARKS.md");
    Ok(())
}

/// Rows per source transaction of the capture benchmark's changes.
const CHANGES_PER_TRANSACTION: i64 = 10_000;

/// Commits per second of the `follow` latency measurement, and for how long.
const FOLLOW_RATE: u64 = 1_000;
const FOLLOW_SECONDS: u64 = 10;

/// Change capture (`users_log`): its first copy; a drain of `options.rows` changed
/// rows against an incremental run (`users`, `--prune`) over the same changes; and
/// `follow`'s latency. Every result is checked against the source.
fn capture_lines(
    options: &Options,
    data_sync: &Path,
    url: &str,
    client: &mut postgres::Client,
    work: &Path,
) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    let capture = fresh(&work.join("capture.sqlite"))?;
    let incremental = fresh(&work.join("capture-incremental.sqlite"))?;
    let live = Tables::LIVE;
    let expected = Checksum::of_source(client)?;

    let mut line = Line::new("**data-sync change capture**, first copy (slot, snapshot, copy)");
    let sample = measure(
        sync_command(data_sync, "users_log", url, &capture, &[]),
        expected.rows,
        "capture first copy",
        0,
    )?;
    expected.verify_tables(&capture, live)?;
    line.samples.push(sample);
    lines.push(line);
    let status = sync_command(data_sync, "users", url, &incremental, &["--full"])
        .stdout(Stdio::null())
        .status()?;
    ensure!(
        status.success(),
        "the full sync before the incremental run failed"
    );

    // The changes: every row of `options.rows` ids, in transactions of
    // CHANGES_PER_TRANSACTION ids: nine in ten updated, one in ten deleted.
    eprintln!("changing {} rows...", options.rows);
    let mut changed = 0;
    let mut low = 1;
    while low <= options.rows {
        let high = low + CHANGES_PER_TRANSACTION;
        let mut transaction = client.transaction()?;
        changed += transaction.execute(
            "UPDATE public.users SET username = username || '+', updated_at = clock_timestamp()
             WHERE id >= $1 AND id < $2 AND id % 10 <> 0",
            &[&low, &high],
        )?;
        changed += transaction.execute(
            "DELETE FROM public.users WHERE id >= $1 AND id < $2 AND id % 10 = 0",
            &[&low, &high],
        )?;
        transaction.commit()?;
        low = high;
    }
    let changed = i64::try_from(changed)?;
    let expected = Checksum::of_source(client)?;

    let mut line = Line::new(&format!(
        "**data-sync change capture**, drain of {changed} changed rows (90% updates, 10% deletes)"
    ));
    line.note =
        format!("rows/s are changes/s; {CHANGES_PER_TRANSACTION} changes per source transaction");
    let sample = measure(
        sync_command(data_sync, "users_log", url, &capture, &[]),
        changed,
        "capture drain",
        0,
    )?;
    expected.verify_tables(&capture, live)?;
    line.samples.push(sample);
    lines.push(line);

    let mut line = Line::new("data-sync incremental sync with `--prune`, the same changes");
    line.note = "updates by the cursor, deletes by `--prune`".to_owned();
    let sample = measure(
        sync_command(data_sync, "users", url, &incremental, &["--prune"]),
        changed,
        "incremental over the same changes",
        0,
    )?;
    expected.verify(&incremental)?;
    line.samples.push(sample);
    lines.push(line);

    lines.push(follow_latency(
        data_sync,
        url,
        client,
        &capture,
        options.rows,
    )?);
    Ok(lines)
}

/// `data-sync follow` on `target` while one writer commits one new row at a time,
/// FOLLOW_RATE commits a second for FOLLOW_SECONDS: the time from each commit to
/// its row being visible in SQLite (rows arrive in commit order, so the newest
/// visible id covers every older one).
fn follow_latency(
    data_sync: &Path,
    url: &str,
    client: &mut postgres::Client,
    target: &Path,
    rows: i64,
) -> Result<Line> {
    let mut follow = Command::new(data_sync)
        .args([
            "follow",
            "--mapping",
            "users_log",
            "--source",
            url,
            "--target",
        ])
        .arg(target)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting data-sync follow")?;
    // Until it holds the slot: the first poll has run.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let base = rows + 1_000_000;
    let count = FOLLOW_RATE * FOLLOW_SECONDS;
    let committed: Vec<std::sync::OnceLock<Instant>> =
        (0..count).map(|_| std::sync::OnceLock::new()).collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    let latencies = std::thread::scope(|scope| -> Result<Vec<f64>> {
        let watcher = scope.spawn(|| -> Result<Vec<f64>> {
            let connection = rusqlite::Connection::open_with_flags(
                target,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            let mut statement =
                connection.prepare("SELECT max(\"id\") FROM \"live_user\" WHERE \"id\" >= ?1")?;
            let mut latencies = Vec::with_capacity(committed.len());
            let mut seen = 0u64;
            let deadline = Instant::now() + std::time::Duration::from_secs(FOLLOW_SECONDS + 30);
            while seen < count && Instant::now() < deadline {
                let newest: Option<i64> = statement.query_row([base], |row| row.get(0))?;
                let now = Instant::now();
                if let Some(newest) = newest {
                    let visible = u64::try_from(newest - base + 1)?;
                    while seen < visible.min(count) {
                        let at = committed[seen as usize].get().copied().unwrap_or(now);
                        latencies.push(now.duration_since(at).as_secs_f64() * 1000.0);
                        seen += 1;
                    }
                }
                if done.load(std::sync::atomic::Ordering::SeqCst) && seen == count {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(latencies)
        });
        let started = Instant::now();
        for index in 0..count {
            let due = started + std::time::Duration::from_micros(index * 1_000_000 / FOLLOW_RATE);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let id = base + i64::try_from(index)?;
            client.execute(
                "INSERT INTO public.users (id, username, email, created_at, updated_at, balance, settings, external_id)
                 VALUES ($1, 'follow', 'follow@example.org', now(), now(), 0, '{}', gen_random_uuid())",
                &[&id],
            )?;
            let _ = committed[index as usize].set(Instant::now());
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        watcher.join().expect("the watcher does not panic")
    })?;
    let _ = Command::new("kill")
        .args(["-TERM", &follow.id().to_string()])
        .status();
    let status = follow.wait()?;
    ensure!(status.success(), "data-sync follow failed: {status}");
    let expected = Checksum::of_source(client)?;
    expected.verify_tables(target, Tables::LIVE)?;
    let mut line = Line::new(&format!(
        "**data-sync follow**, commit to visible in SQLite at {FOLLOW_RATE} commits/s"
    ));
    let mut sorted = latencies;
    sorted.sort_by(f64::total_cmp);
    ensure!(
        sorted.len() == usize::try_from(count)?,
        "{} of {count} commits arrived",
        sorted.len()
    );
    let percentile = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    line.note = format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {count} one-row commits",
        percentile(0.50),
        percentile(0.99),
        percentile(1.0)
    );
    eprintln!("  follow: {}", line.note);
    Ok(line)
}

impl Line {
    fn new(name: &str) -> Line {
        Line {
            name: name.to_owned(),
            samples: Vec::new(),
            note: String::new(),
        }
    }
}

/// Creates and fills `public.users` with `rows` rows, deterministically.
fn generate(client: &mut postgres::Client, rows: i64) -> Result<()> {
    client.batch_execute(
        "DROP TABLE IF EXISTS public.users;
         CREATE TABLE public.users (
             id bigint NOT NULL,
             username text NOT NULL,
             email text NOT NULL,
             bio text,
             avatar_url text,
             created_at timestamptz NOT NULL,
             updated_at timestamptz NOT NULL,
             deleted_at timestamptz,
             balance numeric(12, 2) NOT NULL,
             settings jsonb NOT NULL,
             external_id uuid NOT NULL
         )",
    )?;
    client.execute(
        "INSERT INTO public.users
         SELECT g,
                'user_' || g,
                'user' || g || '@example.org',
                CASE WHEN g % 5 IN (0, 3) THEN NULL
                     ELSE left(repeat('Grüße aus Köln, naïve café № ' || g || ' — ', 1 + (g % 11)::int),
                               1 + ((g * 7919) % 300)::int) END,
                CASE WHEN g % 10 = 0 THEN NULL
                     ELSE 'https://img.example.org/avatars/' || g || '.png' END,
                timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second',
                timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
                NULL,
                (g % 1000000) / 100.0,
                jsonb_build_object('theme', CASE WHEN g % 2 = 0 THEN 'dark' ELSE 'light' END,
                                   'logins', g % 1000, 'tags', jsonb_build_array('a', g % 7)),
                md5(g::text)::uuid
         FROM generate_series(1::bigint, $1::bigint) AS g",
        &[&rows],
    )?;
    // One statement at a time: VACUUM cannot run in the implicit transaction of a
    // multi-statement query.
    for statement in [
        "ALTER TABLE public.users ADD PRIMARY KEY (id)",
        "CREATE INDEX users_updated_at_id ON public.users (updated_at, id)",
        "VACUUM (ANALYZE, FREEZE) public.users",
        "CHECKPOINT",
    ] {
        client
            .batch_execute(statement)
            .with_context(|| format!("running `{statement}`"))?;
    }
    Ok(())
}

fn text(value: Option<&str>) -> rusqlite::types::ValueRef<'_> {
    value.map_or(rusqlite::types::ValueRef::Null, |text| {
        rusqlite::types::ValueRef::Text(text.as_bytes())
    })
}

/// Row counts and content hashes of both targets: what the source says they must
/// hold, compared with what a run wrote.
#[derive(Debug, PartialEq, Eq)]
struct Checksum {
    rows: i64,
    main: u64,
    profile: u64,
}

/// The two target tables of a mapping over `public.users`.
#[derive(Clone, Copy, Debug)]
struct Tables {
    main: &'static str,
    profile: &'static str,
}

impl Tables {
    /// The `users` mapping's.
    const USERS: Tables = Tables {
        main: "user_main",
        profile: "user_profile",
    };
    /// The `users_log` mapping's (change capture).
    const LIVE: Tables = Tables {
        main: "live_user",
        profile: "live_user_profile",
    };
}

/// Hashes one value with a tag, so that NULL, an integer and a text never collide.
fn feed(hasher: &mut impl Hasher, value: rusqlite::types::ValueRef<'_>) {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => hasher.write_u8(0),
        ValueRef::Integer(integer) => {
            hasher.write_u8(1);
            hasher.write_i64(integer);
        }
        ValueRef::Text(text) => {
            hasher.write_u8(2);
            hasher.write_usize(text.len());
            hasher.write(text);
        }
        ValueRef::Real(real) => {
            hasher.write_u8(3);
            hasher.write_u64(real.to_bits());
        }
        ValueRef::Blob(blob) => {
            hasher.write_u8(4);
            hasher.write_usize(blob.len());
            hasher.write(blob);
        }
    }
}

impl Checksum {
    /// What the targets must hold: the source read in key order.
    fn of_source(client: &mut postgres::Client) -> Result<Checksum> {
        use rusqlite::types::ValueRef;
        let mut main = std::hash::DefaultHasher::new();
        let mut profile = std::hash::DefaultHasher::new();
        let mut rows = 0;
        let mut iterator = client.query_raw(
            &format!("{SELECT} ORDER BY \"id\""),
            std::iter::empty::<i32>(),
        )?;
        while let Some(row) = iterator.next()? {
            let id: i64 = row.get(0);
            let username: &str = row.get(1);
            let email: &str = row.get(2);
            let bio: Option<&str> = row.get(3);
            let avatar_url: Option<&str> = row.get(4);
            feed(&mut main, ValueRef::Integer(id));
            feed(&mut main, ValueRef::Text(username.as_bytes()));
            feed(&mut main, ValueRef::Text(email.as_bytes()));
            feed(&mut profile, ValueRef::Integer(id));
            feed(&mut profile, text(bio));
            feed(&mut profile, text(avatar_url));
            rows += 1;
        }
        Ok(Checksum {
            rows,
            main: main.finish(),
            profile: profile.finish(),
        })
    }

    /// What the tables `tables` in `path` hold.
    fn of_tables(path: &Path, tables: Tables) -> Result<Checksum> {
        let connection = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let hash = |sql: &str| -> Result<(i64, u64)> {
            let mut statement = connection.prepare(sql)?;
            let mut rows = statement.query([])?;
            let mut hasher = std::hash::DefaultHasher::new();
            let mut count = 0;
            while let Some(row) = rows.next()? {
                for index in 0..3 {
                    feed(&mut hasher, row.get_ref(index)?);
                }
                count += 1;
            }
            Ok((count, hasher.finish()))
        };
        let (rows, main) = hash(&format!(
            "SELECT \"id\", \"username\", \"email\" FROM \"{}\" ORDER BY \"id\"",
            tables.main
        ))?;
        let (profile_rows, profile) = hash(&format!(
            "SELECT \"id\", \"bio\", \"avatar_url\" FROM \"{}\" ORDER BY \"id\"",
            tables.profile
        ))?;
        ensure!(
            rows == profile_rows,
            "{}: {} has {rows} rows, {} {profile_rows}",
            path.display(),
            tables.main,
            tables.profile
        );
        Ok(Checksum {
            rows,
            main,
            profile,
        })
    }

    /// Fails unless the targets in `path` hold exactly what the source does.
    fn verify(&self, path: &Path) -> Result<()> {
        self.verify_tables(path, Tables::USERS)
    }

    /// [`Checksum::verify`] for the tables `tables`.
    fn verify_tables(&self, path: &Path, tables: Tables) -> Result<()> {
        let actual = Checksum::of_tables(path, tables)?;
        ensure!(
            actual == *self,
            "{}: wrong result: expected {self:?}, found {actual:?}",
            path.display()
        );
        Ok(())
    }
}

/// `path`, with any file of that name (and its journals) removed.
fn fresh(path: &Path) -> Result<PathBuf> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(error)
                    .with_context(|| format!("removing {}", Path::new(&name).display()));
            }
            _ => {}
        }
    }
    Ok(path.to_owned())
}

/// What the bench needs of the `users` mapping's generated SQL, read from
/// `data-sync explain --json` so that this crate does not depend on the mapping
/// catalogue (`cargo xtask gen` must build even when generated code is stale).
struct UsersSql {
    /// `(CREATE TABLE, INSERT)` of `user_main` and of `user_profile`.
    targets: [(String, String); 2],
    /// Whether the mapping syncs incrementally.
    incremental: bool,
}

impl UsersSql {
    fn of(data_sync: &Path) -> Result<UsersSql> {
        let output = Command::new(data_sync)
            .args(["explain", "--mapping", "users", "--json"])
            .output()
            .context("running data-sync explain")?;
        ensure!(
            output.status.success(),
            "data-sync explain --mapping users failed"
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let mapping = &json["mappings"][0];
        let target = |index: usize| -> Result<(String, String)> {
            let target = &mapping["targets"][index];
            let text = |key: &str| {
                target[key]
                    .as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("explain --json has no targets[{index}].{key}"))
            };
            Ok((text("create")?, text("insert")?))
        };
        Ok(UsersSql {
            targets: [target(0)?, target(1)?],
            incremental: !mapping["incremental"].is_null(),
        })
    }
}

/// The two target tables, created as data-sync creates them.
fn create_targets(sql: &UsersSql, path: &Path) -> Result<()> {
    let connection = rusqlite::Connection::open(path)?;
    for (create, _) in &sql.targets {
        connection.execute_batch(create)?;
    }
    Ok(())
}

fn data_sync_command(binary: &Path, url: &str, target: &Path, flags: &[&str]) -> Command {
    sync_command(binary, "users", url, target, flags)
}

fn sync_command(binary: &Path, mapping: &str, url: &str, target: &Path, flags: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["sync", "--mapping", mapping, "--json"])
        .args(flags)
        .arg("--source")
        .arg(url)
        .arg("--target")
        .arg(target);
    command
}

fn child(xtask: &Path, kind: &str, url: &str, target: &Path) -> Command {
    let mut command = Command::new(xtask);
    command
        .args(["bench", "--child", kind, "--source", url, "--target"])
        .arg(target);
    command
}

/// Runs `command` to its end and returns its time and peak RSS. A child that prints
/// `seconds=S` on stdout has timed itself (to leave out its setup).
fn measure(mut command: Command, rows: i64, what: &str, run: usize) -> Result<Sample> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let mut stderr_pipe = child.stderr.take().expect("piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)?;
    let mut status = 0;
    // SAFETY: `usage` is plain data that wait4 fills in; the pid is our own child,
    // which nothing else waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = libc::pid_t::try_from(child.id()).context("pid")?;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed().as_secs_f64();
    ensure!(waited == pid, "wait4: {}", std::io::Error::last_os_error());
    let stderr = stderr.join().unwrap_or_default();
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what} (run {}) failed: {command:?}\n{stdout}\n{stderr}",
        run + 1
    );
    let seconds = stdout
        .lines()
        .find_map(|line| line.strip_prefix("seconds="))
        .map(str::parse::<f64>)
        .transpose()?
        .unwrap_or(elapsed);
    // Linux reports ru_maxrss in KiB.
    let peak_rss_kib = u64::try_from(usage.ru_maxrss).ok();
    let sample = Sample {
        seconds,
        peak_rss_kib,
        rows,
    };
    eprintln!(
        "  {what} run {}: {:.3} s, {:.0} rows/s, peak RSS {:.1} MiB",
        run + 1,
        seconds,
        rows as f64 / seconds,
        peak_rss_kib.unwrap_or(0) as f64 / 1024.0
    );
    Ok(sample)
}

/// The release build of this crate, run by [`run`] for the Rust measurements.
fn run_child(kind: &str, options: &Options) -> Result<()> {
    // The data-sync binary of the same build (release, or debug for `--debug`).
    let binaries = std::env::current_exe()?
        .parent()
        .context("the xtask binary has a directory")?
        .to_owned();
    let sql = UsersSql::of(&binaries.join("data-sync"))?;
    let mut client = postgres::Client::connect(&options.source, postgres::NoTls)?;
    match kind {
        "copy" => {
            let started = Instant::now();
            let mut transaction = client.transaction()?;
            let mut reader =
                transaction.copy_out(&format!("COPY ({SELECT}) TO STDOUT (FORMAT binary)"))?;
            let mut buffer = vec![0u8; 256 * 1024];
            let mut bytes = 0u64;
            loop {
                let read = reader.read(&mut buffer)?;
                if read == 0 {
                    break;
                }
                bytes += read as u64;
            }
            drop(reader);
            transaction.commit()?;
            println!("bytes={bytes}");
            println!("seconds={}", started.elapsed().as_secs_f64());
        }
        "sink" => {
            let rows = fetch_all(&mut client)?;
            let mut connection = rusqlite::Connection::open(&options.target)?;
            connection.pragma_update(None, "foreign_keys", "on")?;
            let started = Instant::now();
            insert_all(&sql, &mut connection, &rows)?;
            println!("seconds={}", started.elapsed().as_secs_f64());
        }
        "plain" => {
            let rows = fetch_all(&mut client)?;
            let mut connection = rusqlite::Connection::open(&options.target)?;
            connection.pragma_update(None, "foreign_keys", "on")?;
            insert_all(&sql, &mut connection, &rows)?;
        }
        other => bail!("unknown child `{other}`"),
    }
    Ok(())
}

/// A source row, owned.
type Row = (i64, String, String, Option<String>, Option<String>);

/// Every source row, in memory: what the plain approach does.
fn fetch_all(client: &mut postgres::Client) -> Result<Vec<Row>> {
    Ok(client
        .query(SELECT, &[])?
        .into_iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
        .collect())
}

/// Creates both targets and inserts `rows`, table by table, in one transaction.
fn insert_all(sql: &UsersSql, connection: &mut rusqlite::Connection, rows: &[Row]) -> Result<()> {
    let [main, profile] = &sql.targets;
    let transaction = connection.transaction()?;
    transaction.execute_batch(&main.0)?;
    transaction.execute_batch(&profile.0)?;
    {
        let mut statement = transaction.prepare_cached(&main.1)?;
        for (id, username, email, _, _) in rows {
            statement.execute(rusqlite::params![id, username, email])?;
        }
        let mut statement = transaction.prepare_cached(&profile.1)?;
        for (id, _, _, bio, avatar_url) in rows {
            statement.execute(rusqlite::params![id, bio, avatar_url])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

/// A venv under `work` with DuckDB and both extension wheels; returns its python.
fn duckdb_venv(work: &Path) -> Result<PathBuf> {
    let venv = work.join("venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args([
            "-c",
            &format!("import duckdb, sys; sys.exit(duckdb.__version__ != '{DUCKDB_VERSION}')"),
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !ready {
        eprintln!(
            "installing DuckDB {DUCKDB_VERSION} into {}...",
            venv.display()
        );
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("running python3 -m venv")?;
        ensure!(status.success(), "python3 -m venv failed");
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .arg(format!("duckdb=={DUCKDB_VERSION}"))
            .arg(format!(
                "duckdb-extension-postgres-scanner=={DUCKDB_VERSION}"
            ))
            .arg(format!("duckdb-extension-sqlite-scanner=={DUCKDB_VERSION}"))
            .status()
            .context("running pip")?;
        ensure!(status.success(), "pip install failed");
    }
    Ok(python)
}

/// What the numbers were measured on.
struct Machine {
    cores: usize,
    memory: String,
    cpu: String,
    postgres: String,
    rustc: String,
    sqlite: String,
    duckdb: Option<String>,
}

impl Machine {
    fn describe(client: &mut postgres::Client, python: Option<&Path>) -> Result<Machine> {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches(" kB").parse::<f64>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
            );
        let postgres: String = client.query_one("SHOW server_version", &[])?.get(0);
        let rustc = Command::new("rustc")
            .arg("--version")
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let duckdb = python.map(|_| DUCKDB_VERSION.to_owned());
        Ok(Machine {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory,
            cpu,
            postgres: format!("PostgreSQL {postgres}"),
            rustc,
            sqlite: format!("SQLite {} (rusqlite, bundled)", rusqlite::version()),
            duckdb,
        })
    }
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

/// The section of BENCHMARKS.md for one table size.
fn render(options: &Options, machine: &Machine, lines: &[Line], duckdb: Option<f64>) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "{}\n", heading(options.rows));
    let _ = writeln!(
        text,
        "Medians of {} runs, measured in one run of `cargo xtask bench --rows {} --runs {}{}{}`.\n",
        options.runs,
        options.rows,
        options.runs,
        if options.peers { " --peers" } else { "" },
        if options.capture { " --capture" } else { "" }
    );
    let _ = writeln!(
        text,
        "Machine: {} cores ({}), {} RAM; {}; {}; {}{}.\n",
        machine.cores,
        machine.cpu,
        machine.memory,
        machine.postgres,
        machine.sqlite,
        machine.rustc,
        machine
            .duckdb
            .as_ref()
            .map(|version| format!("; DuckDB {version} (PyPI)"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        text,
        "| measurement | rows | seconds | rows/s | vs DuckDB | peak RSS | runs (s) | note |"
    );
    let _ = writeln!(text, "|---|---:|---:|---:|---:|---:|---|---|");
    for line in lines {
        let Some(rows_per_second) = line.rows_per_second() else {
            let _ = writeln!(
                text,
                "| {} | - | - | - | - | - | - | {} |",
                line.name, line.note
            );
            continue;
        };
        let seconds = line.median(|sample| sample.seconds).unwrap_or_default();
        let rss = line
            .median(|sample| sample.peak_rss_kib.unwrap_or(0) as f64)
            .map_or_else(|| "-".to_owned(), mib);
        let versus = duckdb.map_or_else(
            || "-".to_owned(),
            |duckdb| format!("{:.2}x", rows_per_second / duckdb),
        );
        let runs: Vec<String> = line
            .samples
            .iter()
            .map(|sample| format!("{:.2}", sample.seconds))
            .collect();
        let _ = writeln!(
            text,
            "| {} | {} | {:.2} | {:.0} | {} | {} | {} | {} |",
            line.name,
            line.samples[0].rows,
            seconds,
            rows_per_second,
            versus,
            rss,
            runs.join(" / "),
            line.note
        );
    }
    let _ = writeln!(
        text,
        "\nEvery run's SQLite file was checked against PostgreSQL (row counts and a hash of every value of both tables, in key order). Peak RSS is the child process's `ru_maxrss` (for the ceilings and the plain approach it includes holding their rows in memory; the source ceiling holds none)."
    );
    text
}

fn heading(rows: i64) -> String {
    let digits = rows.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("## {grouped} rows")
}

/// Replaces (or adds) the section for `rows` in BENCHMARKS.md, keeping the others.
fn write_section(path: &Path, rows: i64, section: &str) -> Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let mut preamble = String::new();
    let mut sections: BTreeMap<i64, String> = BTreeMap::new();
    let mut current: Option<(i64, String)> = None;
    for line in existing.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            if let Some((key, text)) = current.take() {
                sections.insert(key, text);
            }
            let size = title
                .trim_end_matches(" rows")
                .replace(',', "")
                .parse::<i64>()
                .unwrap_or(i64::MAX);
            current = Some((size, String::new()));
        }
        match &mut current {
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {
                preamble.push_str(line);
                preamble.push('\n');
            }
        }
    }
    if let Some((key, text)) = current.take() {
        sections.insert(key, text);
    }
    sections.insert(rows, format!("{}\n", section.trim_end()));
    if preamble.trim().is_empty() {
        preamble = PREAMBLE.to_owned();
    }
    let mut text = preamble;
    for section in sections.values() {
        text.push_str(section);
        text.push('\n');
    }
    std::fs::write(path, format!("{}\n", text.trim_end()))
        .with_context(|| format!("writing {}", path.display()))
}

const PREAMBLE: &str = "# Benchmarks

Written by `cargo xtask bench`; rerun with `cargo xtask bench --rows 1000000 --runs 3 --peers`
(and `--rows 10000000` for the memory check). The reference table is `public.users`
(id bigint, username/email text, ~40% NULL `bio` of up to 300 characters of multi-byte
text, avatar_url, created_at/updated_at timestamptz, numeric, jsonb, uuid), generated
deterministically with `generate_series`; the `users` mapping splits it into
`user_main(id, username, email)` and `user_profile(id, bio, avatar_url)`.

";
