//! `cargo xtask bench [--rows N] [--pairs K] [--peers] [--no-ceilings] [--capture]
//! [--debug]`: data-sync's full sync compared in pairs with DuckDB (with `--peers`) on
//! two tables, beside the source and sink ceilings, the plain approach, and
//! data-sync's incremental and `--prune` runs, on one throwaway PostgreSQL, every
//! run's output checked against the source. With `--capture`, also change capture
//! (`users_log`, a test mapping of `tests/mappings/` the `data-sync` binary does not
//! ship, run by this crate's build as `bench --capture-cli ARGS..`, the `data-sync`
//! command line over that one mapping): the first copy, a drain of `N` changed rows (updates and deletes)
//! against an incremental run with `--prune` over the same changes, and `follow`'s
//! latency from commit to visible in SQLite at 1,000 commits/s. Writes the tables
//! into `BENCHMARKS.md`, one section per table size. `--debug` runs the debug
//! binaries instead of building release ones: a smoke run of this code, whose
//! timings mean nothing (it writes no BENCHMARKS.md).
//!
//! A comparison runs its two contenders alternately (A B A B ..) after one unmeasured
//! warm-up run of each, and reports the median of the per-pair ratios and their
//! spread: a host whose speed drifts moves both runs of a pair alike.
//!
//! Every measurement runs in its own child process so that its peak RSS is its own:
//! the release `data-sync` binary, the release build of this crate (`bench --child
//! KIND`, for the ceilings, the plain approach and the typed table's mapping), or
//! Python with DuckDB (the whole interpreter process).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::Hasher;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use postgres::fallible_iterator::FallibleIterator;
use sync_runtime::Mapping;
use sync_runtime::value::{Array, Date, Json, Numeric, Timestamptz, Uuid};

/// The DuckDB release whose PyPI wheels (engine and both extensions) the peer uses.
const DUCKDB_VERSION: &str = "1.5.5";

/// The columns the `users` mapping reads, in its order.
const SELECT: &str =
    "SELECT \"id\", \"username\", \"email\", \"bio\", \"avatar_url\" FROM \"public\".\"users\"";

/// The second benchmark table, `public.bench_typed`: a uuid key in random physical
/// order and one column of each common type, split into two targets. The mapping
/// is compiled into this crate only (the bench runs it as `bench --child typed`),
/// not into the `data-sync` catalogue.
#[derive(Debug, Mapping)]
#[sync(name = "bench_typed", from = "public.bench_typed", key = "id")]
pub struct BenchTyped {
    /// The key, a uuid.
    #[sync(type = "uuid")]
    #[sync(to = "typed_main", primary_key)]
    #[sync(to = "typed_detail", primary_key, references = "typed_main.id")]
    pub id: Uuid,
    /// `numeric(12, 2)`.
    #[sync(type = "numeric(12, 2)")]
    #[sync(to = "typed_main")]
    pub amount: Numeric,
    /// `timestamptz`.
    #[sync(type = "timestamp with time zone")]
    #[sync(to = "typed_main")]
    pub created_at: Timestamptz,
    /// `date`.
    #[sync(type = "date")]
    #[sync(to = "typed_main")]
    pub day: Date,
    /// `boolean`.
    #[sync(type = "boolean")]
    #[sync(to = "typed_main")]
    pub active: bool,
    /// `double precision`.
    #[sync(type = "double precision")]
    #[sync(to = "typed_main")]
    pub score: f64,
    /// `jsonb`.
    #[sync(type = "jsonb")]
    #[sync(to = "typed_detail")]
    pub attributes: Json,
    /// `text[]`.
    #[sync(type = "text[]")]
    #[sync(to = "typed_detail")]
    pub tags: Array,
    /// A text column that is NULL in nine rows of ten.
    #[sync(type = "text")]
    #[sync(to = "typed_detail")]
    pub note: Option<String>,
}

/// Runs the task: `args` are what follows `cargo xtask bench`.
pub fn main(args: &[String]) -> Result<()> {
    if let Some((first, rest)) = args.split_first()
        && first == CAPTURE_CLI
    {
        let args = std::iter::once("data-sync").chain(rest.iter().map(String::as_str));
        let code = sync_cli::main_with_signals(CAPTURE_CATALOGUE, args);
        std::process::exit(i32::from(code != std::process::ExitCode::SUCCESS));
    }
    let options = Options::parse(args)?;
    if let Some(child) = &options.child {
        return run_child(child, &options);
    }
    run(&options)
}

/// The argument that runs the rest of the arguments as the `data-sync` command line
/// over [`CAPTURE_CATALOGUE`].
const CAPTURE_CLI: &str = "--capture-cli";

/// The capture mapping the bench measures: the integration tests' `users_log`
/// (`tests/mappings/users_log.yaml`), compiled in here as `cargo xtask gen` wrote it.
#[path = "../../tests/it/generated/users_log.rs"]
mod users_log;

static CAPTURE_CATALOGUE: &[sync_runtime::Registered] =
    &[sync_runtime::Registered::of::<users_log::UsersLog>()];

/// The command line.
#[derive(Debug)]
struct Options {
    rows: i64,
    /// Measured pairs of each comparison, and runs of each other line.
    runs: usize,
    peers: bool,
    ceilings: bool,
    capture: bool,
    debug: bool,
    child: Option<String>,
    source: String,
    target: PathBuf,
}

const USAGE: &str = "usage: cargo xtask bench [--rows N] [--pairs K] [--peers] [--no-ceilings] [--capture] [--debug]";

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options {
            rows: 1_000_000,
            runs: 7,
            peers: false,
            ceilings: true,
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
                "--runs" | "--pairs" => {
                    options.runs = value(arg)?
                        .parse()
                        .with_context(|| format!("`{arg}` takes a number"))?;
                }
                "--peers" => options.peers = true,
                "--no-ceilings" => options.ceilings = false,
                "--capture" => options.capture = true,
                "--debug" => options.debug = true,
                "--child" => options.child = Some(value("--child")?),
                "--source" => options.source = value("--source")?,
                "--target" => options.target = PathBuf::from(value("--target")?),
                other => bail!("unknown argument `{other}`\n\n{USAGE}"),
            }
        }
        ensure!(options.rows > 0, "`--rows` must be positive");
        ensure!(options.runs > 0, "`--pairs` must be positive");
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
    fn new(name: &str) -> Line {
        Line {
            name: name.to_owned(),
            samples: Vec::new(),
            note: String::new(),
        }
    }

    fn median(&self, value: impl Fn(&Sample) -> f64) -> Option<f64> {
        median(self.samples.iter().map(value).collect())
    }

    fn rows_per_second(&self) -> Option<f64> {
        self.median(|sample| sample.rows as f64 / sample.seconds)
    }
}

/// The median of `values` (the upper one of an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// One comparison in pairs: B's time over A's, per pair (above 1: A is faster).
struct Comparison {
    table: String,
    a: String,
    b: String,
    ratios: Vec<f64>,
}

/// What a contender needs in its fresh file before it runs.
type Prepare<'a> = Box<dyn Fn(&Path) -> Result<()> + 'a>;

/// A contender of a comparison: how to run it into a fresh file, and what its output
/// must hold.
struct Contender<'a> {
    line: Line,
    /// The file name under `target/bench`.
    file: &'static str,
    /// Creates what the run needs in the fresh file (DuckDB's target tables).
    prepare: Prepare<'a>,
    command: Box<dyn Fn(&Path) -> Command + 'a>,
    /// Whether every value must be exactly what the source holds; otherwise the
    /// columns that differ are listed in the line's note.
    exact: bool,
}

/// Runs `a` and `b` alternately, one warm-up run each, then `pairs` measured pairs;
/// checks every output against `expected`. Returns the comparison and both lines.
fn compare<'a>(
    work: &Path,
    table: &str,
    expected: &Checksum,
    pairs: usize,
    mut a: Contender<'a>,
    mut b: Contender<'a>,
) -> Result<(Comparison, Line, Line)> {
    let mut ratios = Vec::new();
    for pair in 0..=pairs {
        let mut seconds = [0.0; 2];
        for (index, contender) in [&mut a, &mut b].into_iter().enumerate() {
            let path = fresh(&work.join(format!("{}.sqlite", contender.file)))?;
            (contender.prepare)(&path)?;
            let what = if pair == 0 {
                format!("{table}: {} (warm-up)", contender.file)
            } else {
                format!("{table}: {}", contender.file)
            };
            let sample = measure((contender.command)(&path), expected.rows, &what, pair)?;
            let differing = expected.compare(&path)?;
            if contender.exact {
                ensure!(
                    differing.is_empty(),
                    "{}: wrong values in {}",
                    path.display(),
                    differing.join(", ")
                );
            } else if pair == 1 {
                contender.line.note = if differing.is_empty() {
                    "every value exact".to_owned()
                } else {
                    format!("not in the exact form: {}", differing.join("; "))
                };
            }
            seconds[index] = sample.seconds;
            if pair > 0 {
                contender.line.samples.push(sample);
            }
        }
        if pair > 0 {
            ratios.push(seconds[1] / seconds[0]);
        }
    }
    let comparison = Comparison {
        table: table.to_owned(),
        a: a.line.name.clone(),
        b: b.line.name.clone(),
        ratios,
    };
    Ok((comparison, a.line, b.line))
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
    eprintln!("generating {} rows of each table...", options.rows);
    let generating = Instant::now();
    generate(&mut client, options.rows)?;
    generate_typed(&mut client, options.rows, false)?;
    // One statement each: neither runs inside the implicit transaction of a batch.
    client.batch_execute("DROP DATABASE IF EXISTS ordered")?;
    client.batch_execute("CREATE DATABASE ordered")?;
    let ordered_url = server.url("ordered");
    let mut ordered =
        postgres::Client::connect(&ordered_url, postgres::NoTls).context("connecting")?;
    generate_typed(&mut ordered, options.rows, true)?;
    eprintln!("generated in {:.1} s", generating.elapsed().as_secs_f64());
    let users = Checksum::of_source(&mut client, &USERS_TARGETS)?;
    ensure!(
        users.rows == options.rows,
        "the table has {} rows",
        users.rows
    );
    let typed = Checksum::of_source(&mut client, &TYPED_TARGETS)?;
    ensure!(
        typed == Checksum::of_source(&mut ordered, &TYPED_TARGETS)?,
        "the two typed tables differ"
    );

    let runs = options.runs;
    let rows = options.rows;
    let target = |name: &str| work.join(format!("{name}.sqlite"));
    let mut lines = Vec::new();
    let mut comparisons = Vec::new();

    if options.ceilings {
        let ceiling_runs = runs.min(3);
        // The source ceiling: the binary COPY read to nothing.
        let mut line =
            Line::new("source ceiling: `COPY (..) TO STDOUT (FORMAT binary)` read to nothing");
        for run in 0..ceiling_runs {
            let sample = measure(
                child(&xtask, "copy", &url, Path::new("-")),
                rows,
                "copy",
                run,
            )?;
            line.samples.push(sample);
        }
        lines.push(("users", line));

        // The sink ceiling: rows already in memory, inserted with rusqlite.
        let mut line = Line::new("sink ceiling: rusqlite insert loop over rows in memory");
        line.note = "one transaction, fresh file, rollback journal; load time excluded".to_owned();
        for run in 0..ceiling_runs {
            let path = fresh(&target("sink"))?;
            let sample = measure(child(&xtask, "sink", &url, &path), rows, "sink", run)?;
            users.verify(&path)?;
            line.samples.push(sample);
        }
        lines.push(("users", line));

        // The plain approach: fetch every row, then insert per table.
        let mut line = Line::new("plain approach (Rust: `SELECT`, fetch all, insert per table)");
        line.note = "one transaction, prepared statements".to_owned();
        for run in 0..ceiling_runs {
            let path = fresh(&target("plain"))?;
            let sample = measure(child(&xtask, "plain", &url, &path), rows, "plain", run)?;
            users.verify(&path)?;
            line.samples.push(sample);
        }
        lines.push(("users", line));
    }

    let users_sql = UsersSql::of(&data_sync)?;
    let users_creates: Vec<String> = users_sql
        .targets
        .iter()
        .map(|(create, _)| create.clone())
        .collect();
    let typed_creates: Vec<String> = BenchTyped::SPEC
        .targets
        .iter()
        .map(|target| target.create.to_owned())
        .collect();
    let data_sync_users = || Contender {
        line: Line::new("**data-sync full sync**, new file"),
        file: "data-sync",
        prepare: Box::new(|_: &Path| Ok(())),
        command: Box::new(|path: &Path| data_sync_command(&data_sync, &url, path, &["--full"])),
        exact: true,
    };

    // The users table: data-sync against DuckDB, or alone.
    if let Some(python) = &python {
        let duckdb = Contender {
            line: Line::new(&format!(
                "DuckDB {DUCKDB_VERSION} (postgres + sqlite extensions, `INSERT INTO .. SELECT`)"
            )),
            file: "duckdb",
            prepare: Box::new(|path: &Path| create_targets(&users_creates, path)),
            command: Box::new(|path: &Path| {
                duckdb_command(python, &root, &work, &url, path, &USERS_DUCKDB)
            }),
            exact: false,
        };
        let (comparison, a, b) = compare(&work, "users", &users, runs, data_sync_users(), duckdb)?;
        comparisons.push(comparison);
        lines.push(("users", a));
        lines.push(("users", b));
    } else {
        let mut line = data_sync_users().line;
        for run in 0..runs {
            let path = fresh(&target("data-sync"))?;
            let sample = measure(
                data_sync_command(&data_sync, &url, &path, &["--full"]),
                rows,
                "users: data-sync",
                run,
            )?;
            users.verify(&path)?;
            line.samples.push(sample);
        }
        lines.push(("users", line));
    }
    // Over its own previous result: the tables dropped and created again in place.
    let mut again = Line::new("**data-sync full sync**, replacing the previous run's tables");
    let path = target("data-sync");
    for run in 0..runs.min(3) {
        let sample = measure(
            data_sync_command(&data_sync, &url, &path, &["--full"]),
            rows,
            "users: data-sync again",
            run,
        )?;
        users.verify(&path)?;
        again.samples.push(sample);
    }
    lines.push(("users", again));

    // The typed table, keys in random physical order: data-sync against DuckDB, and
    // against the same rows stored in key order.
    if let Some(python) = &python {
        let duckdb = Contender {
            line: Line::new(&format!(
                "DuckDB {DUCKDB_VERSION} (postgres + sqlite extensions, `INSERT INTO .. SELECT`)"
            )),
            file: "duckdb-typed",
            prepare: Box::new(|path: &Path| create_targets(&typed_creates, path)),
            command: Box::new(|path: &Path| {
                duckdb_command(python, &root, &work, &url, path, &TYPED_DUCKDB)
            }),
            exact: false,
        };
        let (comparison, a, b) = compare(
            &work,
            "bench_typed",
            &typed,
            runs,
            typed_contender(
                &xtask,
                &url,
                "data-sync-typed",
                "**data-sync full sync**, new file, keys in random order",
            ),
            duckdb,
        )?;
        comparisons.push(comparison);
        lines.push(("bench_typed", a));
        lines.push(("bench_typed", b));
    }
    let (comparison, a, b) = compare(
        &work,
        "bench_typed",
        &typed,
        runs,
        typed_contender(
            &xtask,
            &ordered_url,
            "data-sync-ordered",
            "**data-sync full sync**, new file, keys in key order",
        ),
        typed_contender(
            &xtask,
            &url,
            "data-sync-random",
            "**data-sync full sync**, new file, keys in random order",
        ),
    )?;
    comparisons.push(comparison);
    lines.push(("bench_typed (in key order)", a));
    if python.is_none() {
        lines.push(("bench_typed", b));
    }

    // Incremental sync and prune of the users table, over a full sync's result.
    let path = fresh(&target("data-sync"))?;
    measure(
        data_sync_command(&data_sync, &url, &path, &["--full"]),
        rows,
        "users: full before incremental",
        0,
    )?;
    let mut line = Line::new("**data-sync incremental sync**, 1% of rows changed");
    if !users_sql.incremental {
        line.note = "not yet implemented: the `users` mapping has no cursor".to_owned();
    } else {
        for run in 0..runs.min(3) {
            let slice = run as i64 % 50;
            let changed = client.execute(
                "UPDATE public.users SET bio = coalesce(bio, '') || ' ✎', updated_at = clock_timestamp() WHERE id % 100 = $1",
                &[&slice],
            )?;
            let expected = Checksum::of_source(&mut client, &USERS_TARGETS)?;
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
    lines.push(("users", line));
    let mut line = Line::new("**data-sync `--prune`**, 1% of rows deleted");
    for run in 0..runs.min(3) {
        let slice = 50 + run as i64 % 50;
        let deleted = client.execute("DELETE FROM public.users WHERE id % 100 = $1", &[&slice])?;
        let expected = Checksum::of_source(&mut client, &USERS_TARGETS)?;
        let sample = measure(
            data_sync_command(&data_sync, &url, &path, &["--prune"]),
            deleted as i64,
            "prune",
            run,
        )?;
        expected.verify(&path)?;
        line.samples.push(sample);
    }
    lines.push(("users", line));

    if options.capture {
        for line in capture_lines(options, &data_sync, &xtask, &url, &mut client, &work)? {
            lines.push(("users", line));
        }
    }

    let machine = Machine::describe(&mut client, python.as_deref())?;
    let section = render(options, &machine, &lines, &comparisons);
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
    xtask: &Path,
    url: &str,
    client: &mut postgres::Client,
    work: &Path,
) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    let capture = fresh(&work.join("capture.sqlite"))?;
    let incremental = fresh(&work.join("capture-incremental.sqlite"))?;
    let expected = Checksum::of_source(client, &USERS_TARGETS)?;
    let expected_live = Checksum::of_source(client, &LIVE_TARGETS)?;

    let mut line = Line::new("**data-sync change capture**, first copy (slot, snapshot, copy)");
    let sample = measure(
        capture_command(xtask, url, &capture),
        expected.rows,
        "capture first copy",
        0,
    )?;
    expected_live.verify(&capture)?;
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
    let expected = Checksum::of_source(client, &USERS_TARGETS)?;
    let expected_live = Checksum::of_source(client, &LIVE_TARGETS)?;

    let mut line = Line::new(&format!(
        "**data-sync change capture**, drain of {changed} changed rows (90% updates, 10% deletes)"
    ));
    line.note =
        format!("rows/s are changes/s; {CHANGES_PER_TRANSACTION} changes per source transaction");
    let sample = measure(
        capture_command(xtask, url, &capture),
        changed,
        "capture drain",
        0,
    )?;
    expected_live.verify(&capture)?;
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

    lines.push(follow_latency(xtask, url, client, &capture, options.rows)?);
    Ok(lines)
}

/// `data-sync follow` on `target` while one writer commits one new row at a time,
/// FOLLOW_RATE commits a second for FOLLOW_SECONDS: the time from each commit to
/// its row being visible in SQLite (rows arrive in commit order, so the newest
/// visible id covers every older one).
fn follow_latency(
    xtask: &Path,
    url: &str,
    client: &mut postgres::Client,
    target: &Path,
    rows: i64,
) -> Result<Line> {
    let mut follow = Command::new(xtask)
        .args([
            "bench",
            CAPTURE_CLI,
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
    let kept = std::sync::OnceLock::new();
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
        // The rate the writer kept (a slow machine may fall behind FOLLOW_RATE).
        let _ = kept.set(count as f64 / started.elapsed().as_secs_f64());
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        watcher.join().expect("the watcher does not panic")
    })?;
    let _ = Command::new("kill")
        .args(["-TERM", &follow.id().to_string()])
        .status();
    let status = follow.wait()?;
    ensure!(status.success(), "data-sync follow failed: {status}");
    Checksum::of_source(client, &LIVE_TARGETS)?.verify(target)?;
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
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {count} one-row commits ({:.0} commits/s kept); the source runs with `synchronous_commit = off`, so a commit is decodable once the WAL writer flushes it (every `wal_writer_delay`, 200 ms)",
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
        kept.get().copied().unwrap_or(0.0)
    );
    eprintln!("  follow: {}", line.note);
    Ok(line)
}

/// data-sync's full sync of the typed table, from `url`, into a fresh file.
fn typed_contender<'a>(
    xtask: &'a Path,
    url: &'a str,
    file: &'static str,
    name: &str,
) -> Contender<'a> {
    Contender {
        line: Line::new(name),
        file,
        prepare: Box::new(|_: &Path| Ok(())),
        command: Box::new(move |path: &Path| child(xtask, "typed", url, path)),
        exact: true,
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
    finish_table(
        client,
        &[
            "ALTER TABLE public.users ADD PRIMARY KEY (id)",
            "CREATE INDEX users_updated_at_id ON public.users (updated_at, id)",
            "VACUUM (ANALYZE, FREEZE) public.users",
            "CHECKPOINT",
        ],
    )
}

/// Creates and fills `public.bench_typed` with `rows` rows, deterministically: the
/// same rows whether `in_key_order` or not, stored in key order or in the random
/// order of their uuids.
fn generate_typed(client: &mut postgres::Client, rows: i64, in_key_order: bool) -> Result<()> {
    client.batch_execute(
        "DROP TABLE IF EXISTS public.bench_typed;
         CREATE TABLE public.bench_typed (
             id uuid NOT NULL,
             amount numeric(12, 2) NOT NULL,
             created_at timestamptz NOT NULL,
             day date NOT NULL,
             attributes jsonb NOT NULL,
             active boolean NOT NULL,
             tags text[] NOT NULL,
             score double precision NOT NULL,
             note text
         )",
    )?;
    let order = if in_key_order { "ORDER BY 1" } else { "" };
    client.execute(
        &format!(
            "INSERT INTO public.bench_typed
             SELECT md5('typed ' || g)::uuid,
                    (((g * 7919) % 10000000000) / 100.0)::numeric(12, 2),
                    timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second'
                        + (g % 1000000) * interval '1 microsecond',
                    date '2000-01-01' + (g % 9000)::int,
                    jsonb_build_object('kind', CASE g % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'b' ELSE 'c' END,
                                       'n', g % 1000, 'flags', jsonb_build_array(g % 2 = 0, g % 5)),
                    g % 3 = 0,
                    ARRAY['t' || (g % 10), 'tag ' || (g % 97)]
                        || CASE WHEN g % 4 = 0 THEN ARRAY['quoted \"x\"'] ELSE ARRAY[]::text[] END,
                    g * 0.318309886183791::float8 / 7,
                    CASE WHEN g % 10 = 0 THEN 'note ' || g || ' – ünïcode' END
             FROM generate_series(1::bigint, $1::bigint) AS g {order}"
        ),
        &[&rows],
    )?;
    finish_table(
        client,
        &[
            "ALTER TABLE public.bench_typed ADD PRIMARY KEY (id)",
            "VACUUM (ANALYZE, FREEZE) public.bench_typed",
            "CHECKPOINT",
        ],
    )
}

/// Runs `statements` one at a time: VACUUM cannot run in the implicit transaction of
/// a multi-statement query.
fn finish_table(client: &mut postgres::Client, statements: &[&str]) -> Result<()> {
    for statement in statements {
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

/// One target table of a benchmark table, for the output check: its columns, and
/// the source query that gives what they must hold, in the same order.
struct TargetCheck {
    table: &'static str,
    columns: &'static [&'static str],
    /// Selects, in key order, one column per target column, already in the form
    /// data-sync writes: integers, doubles, booleans (as integers) or text.
    source: &'static str,
}

const USERS_TARGETS: [TargetCheck; 2] = [
    TargetCheck {
        table: "user_main",
        columns: &["id", "username", "email"],
        source: "SELECT id, username, email FROM public.users ORDER BY id",
    },
    TargetCheck {
        table: "user_profile",
        columns: &["id", "bio", "avatar_url"],
        source: "SELECT id, bio, avatar_url FROM public.users ORDER BY id",
    },
];

const TYPED_TARGETS: [TargetCheck; 2] = [
    TargetCheck {
        table: "typed_main",
        columns: &["id", "amount", "created_at", "day", "active", "score"],
        source: "SELECT id::text, amount::text,
                        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                        to_char(day, 'YYYY-MM-DD'), active, score
                 FROM public.bench_typed ORDER BY id",
    },
    TargetCheck {
        table: "typed_detail",
        columns: &["id", "attributes", "tags", "note"],
        source: "SELECT id::text, attributes::text, to_json(tags)::text, note
                 FROM public.bench_typed ORDER BY id",
    },
];

/// The `users_log` mapping's targets (change capture): the same columns as `users`'.
const LIVE_TARGETS: [TargetCheck; 2] = [
    TargetCheck {
        table: "live_user",
        columns: &["id", "username", "email"],
        source: "SELECT id, username, email FROM public.users ORDER BY id",
    },
    TargetCheck {
        table: "live_user_profile",
        columns: &["id", "bio", "avatar_url"],
        source: "SELECT id, bio, avatar_url FROM public.users ORDER BY id",
    },
];

/// DuckDB's copy of the users table.
const USERS_DUCKDB: [&str; 2] = [
    "INSERT INTO lite.user_main SELECT \"id\", \"username\", \"email\" FROM pg.public.users",
    "INSERT INTO lite.user_profile SELECT \"id\", \"bio\", \"avatar_url\" FROM pg.public.users",
];

/// DuckDB's copy of the typed table: the columns as they are, no casts.
const TYPED_DUCKDB: [&str; 2] = [
    "INSERT INTO lite.typed_main SELECT \"id\", \"amount\", \"created_at\", \"day\", \"active\", \"score\" FROM pg.public.bench_typed",
    "INSERT INTO lite.typed_detail SELECT \"id\", \"attributes\", \"tags\", \"note\" FROM pg.public.bench_typed",
];

/// Row count and a hash of every column of each target: what the source says they
/// must hold, compared with what a run wrote.
#[derive(Debug, PartialEq, Eq)]
struct Checksum {
    rows: i64,
    targets: Vec<TargetSum>,
}

#[derive(Debug, PartialEq, Eq)]
struct TargetSum {
    table: &'static str,
    columns: &'static [&'static str],
    rows: i64,
    /// One hash per column, of its values in key order.
    hashes: Vec<u64>,
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
    fn of_source(client: &mut postgres::Client, targets: &[TargetCheck]) -> Result<Checksum> {
        use postgres::types::Type;
        use rusqlite::types::ValueRef;
        let mut sums = Vec::new();
        for target in targets {
            let mut hashers = vec![std::hash::DefaultHasher::new(); target.columns.len()];
            let mut rows = 0;
            let mut iterator = client.query_raw(target.source, std::iter::empty::<i32>())?;
            while let Some(row) = iterator.next()? {
                for (index, hasher) in hashers.iter_mut().enumerate() {
                    let value = match *row.columns()[index].type_() {
                        Type::INT8 => row
                            .get::<_, Option<i64>>(index)
                            .map_or(ValueRef::Null, ValueRef::Integer),
                        Type::BOOL => row
                            .get::<_, Option<bool>>(index)
                            .map_or(ValueRef::Null, |flag| ValueRef::Integer(i64::from(flag))),
                        Type::FLOAT8 => row
                            .get::<_, Option<f64>>(index)
                            .map_or(ValueRef::Null, ValueRef::Real),
                        _ => text(row.get::<_, Option<&str>>(index)),
                    };
                    feed(hasher, value);
                }
                rows += 1;
            }
            sums.push(TargetSum {
                table: target.table,
                columns: target.columns,
                rows,
                hashes: hashers.iter().map(Hasher::finish).collect(),
            });
        }
        Ok(Checksum {
            rows: sums.first().map_or(0, |sum| sum.rows),
            targets: sums,
        })
    }

    /// Fails unless the targets in `path` have the source's row count; returns the
    /// columns whose values differ from the source's (with the first row's value and
    /// its SQLite type), empty when every value is exact.
    fn compare(&self, path: &Path) -> Result<Vec<String>> {
        let connection = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut differing = Vec::new();
        for expected in &self.targets {
            let quoted: Vec<String> = expected
                .columns
                .iter()
                .map(|column| format!("\"{column}\""))
                .collect();
            let mut statement = connection.prepare(&format!(
                "SELECT {} FROM \"{}\" ORDER BY \"id\"",
                quoted.join(", "),
                expected.table
            ))?;
            let mut rows = statement.query([])?;
            let mut hashers = vec![std::hash::DefaultHasher::new(); expected.columns.len()];
            let mut count = 0;
            while let Some(row) = rows.next()? {
                for (index, hasher) in hashers.iter_mut().enumerate() {
                    feed(hasher, row.get_ref(index)?);
                }
                count += 1;
            }
            ensure!(
                count == expected.rows,
                "{}: `{}` has {count} rows, the source {}",
                path.display(),
                expected.table,
                expected.rows
            );
            for (index, hasher) in hashers.iter().enumerate() {
                if hasher.finish() != expected.hashes[index] {
                    let column = &quoted[index];
                    let sample: String = connection.query_row(
                        &format!(
                            "SELECT typeof({column}) || ' ' || quote({column}) FROM \"{}\" ORDER BY \"id\" LIMIT 1",
                            expected.table
                        ),
                        [],
                        |row| row.get(0),
                    )?;
                    differing.push(format!(
                        "`{}.{}` (first row: {sample})",
                        expected.table, expected.columns[index]
                    ));
                }
            }
        }
        Ok(differing)
    }

    /// Fails unless the targets in `path` hold exactly what the source does.
    fn verify(&self, path: &Path) -> Result<()> {
        let differing = self.compare(path)?;
        ensure!(
            differing.is_empty(),
            "{}: wrong values in {}",
            path.display(),
            differing.join(", ")
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

/// The target tables, created as data-sync creates them (for DuckDB, which writes
/// into existing tables).
fn create_targets(creates: &[String], path: &Path) -> Result<()> {
    let connection = rusqlite::Connection::open(path)?;
    for create in creates {
        connection.execute_batch(create)?;
    }
    Ok(())
}

/// DuckDB's copy: `statements` in one transaction, from `url` into `target`.
fn duckdb_command(
    python: &Path,
    root: &Path,
    work: &Path,
    url: &str,
    target: &Path,
    statements: &[&str],
) -> Command {
    let mut command = Command::new(python);
    command
        .arg(root.join("xtask/peers/duckdb_sync.py"))
        .arg(url)
        .arg(target)
        .arg(work.join("venv"))
        .args(statements);
    command
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

/// `sync` of the capture mapping `users_log` into `target`, by this crate's build.
fn capture_command(xtask: &Path, url: &str, target: &Path) -> Command {
    let mut command = Command::new(xtask);
    command
        .args(["bench", CAPTURE_CLI])
        .args(["sync", "--mapping", "users_log", "--json"])
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
    if kind == "typed" || kind == "typed-unordered" {
        // The typed table's full sync, as `data-sync sync --full` runs a mapping;
        // `typed-unordered` skips the key check, and with it the read in key order,
        // to measure what that order buys.
        let source = sync_runtime::SourceConfig::parse(&options.source)?;
        sync_runtime::SyncJob::new(source, &options.target)
            .full(true)
            .assume_unique_key(kind == "typed-unordered")
            .run::<BenchTyped>()?;
        return Ok(());
    }
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
fn render(
    options: &Options,
    machine: &Machine,
    lines: &[(&str, Line)],
    comparisons: &[Comparison],
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "{}\n", heading(options.rows));
    let _ = writeln!(
        text,
        "Measured in one run of `cargo xtask bench --rows {} --pairs {}{}{}{}`.\n",
        options.rows,
        options.runs,
        if options.peers { " --peers" } else { "" },
        if options.ceilings {
            ""
        } else {
            " --no-ceilings"
        },
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
    if !comparisons.is_empty() {
        let _ = writeln!(
            text,
            "Compared in pairs (A then B, {} pairs after one warm-up run of each); ratio: B's time over A's, per pair.\n",
            options.runs
        );
        let _ = writeln!(
            text,
            "| table | A | B | median ratio | min | max | A faster in |"
        );
        let _ = writeln!(text, "|---|---|---|---:|---:|---:|---:|");
        for comparison in comparisons {
            let ratios = &comparison.ratios;
            let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let wins = ratios.iter().filter(|ratio| **ratio > 1.0).count();
            let _ = writeln!(
                text,
                "| {} | {} | {} | **{:.2}x** | {:.2}x | {:.2}x | {wins} of {} |",
                comparison.table,
                comparison.a,
                comparison.b,
                median(ratios.clone()).unwrap_or_default(),
                min,
                max,
                ratios.len()
            );
        }
        let _ = writeln!(text);
    }
    let _ = writeln!(
        text,
        "| table | measurement | rows | median s | rows/s | peak RSS | runs (s) | note |"
    );
    let _ = writeln!(text, "|---|---|---:|---:|---:|---:|---|---|");
    for (table, line) in lines {
        let Some(rows_per_second) = line.rows_per_second() else {
            let _ = writeln!(
                text,
                "| {table} | {} | - | - | - | - | - | {} |",
                line.name, line.note
            );
            continue;
        };
        let seconds = line.median(|sample| sample.seconds).unwrap_or_default();
        let rss = line
            .median(|sample| sample.peak_rss_kib.unwrap_or(0) as f64)
            .map_or_else(|| "-".to_owned(), mib);
        let runs: Vec<String> = line
            .samples
            .iter()
            .map(|sample| format!("{:.2}", sample.seconds))
            .collect();
        let _ = writeln!(
            text,
            "| {table} | {} | {} | {:.2} | {:.0} | {} | {} | {} |",
            line.name,
            line.samples[0].rows,
            seconds,
            rows_per_second,
            rss,
            runs.join(" / "),
            line.note
        );
    }
    let _ = writeln!(
        text,
        "\nEvery run's SQLite file was checked against PostgreSQL (row counts and a hash of every column of every target, in key order); data-sync's must match exactly, a peer's columns that differ are named in its note. Peak RSS is the child process's `ru_maxrss`: DuckDB's is its whole Python process; the ceilings and the plain approach hold their rows in memory (the source ceiling holds none). The ceilings and the plain approach run at most 3 times, the replacing, incremental and `--prune` runs 3 times."
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

Written by `cargo xtask bench`; rerun with `cargo xtask bench --rows 1000000 --pairs 7 --peers`
(and `--rows 10000000` for memory and `--prune`). Two tables, generated deterministically
with `generate_series`:

- `public.users` (id bigint in key order, username/email text, ~40% NULL `bio` of up to
  300 characters of multi-byte text, avatar_url, and columns not read); the `users`
  mapping splits it into `user_main(id, username, email)` and
  `user_profile(id, bio, avatar_url)`.
- `public.bench_typed` (uuid key in random physical order, numeric(12,2), timestamptz,
  date, jsonb, boolean, text[], double precision, a text column NULL in 9 rows of 10),
  split into `typed_main(id, amount, created_at, day, active, score)` and
  `typed_detail(id, attributes, tags, note)` by a mapping compiled into the bench
  only (`xtask/src/bench.rs`, run as `xtask bench --child typed`), not the shipped
  catalogue; the same rows stored in key order, in a second database, measure what
  the random order costs.

";
