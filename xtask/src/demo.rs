//! `cargo xtask demo`: the main job end to end on a throwaway PostgreSQL.
//!
//! Starts a cluster, creates the reference `users` table with a few thousand
//! realistic rows, runs `data-sync sync` into `demo.sqlite`, prints the first rows of
//! both targets and the summary, and stops the cluster.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Rows the demo table gets.
const ROWS: i64 = 5_000;

/// Runs the demo, writing `demo.sqlite` in the current directory.
pub fn run() -> Result<()> {
    let target = Path::new("demo.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("demo.sqlite{suffix}");
        if Path::new(&path).exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {path}"))?;
        }
    }

    eprintln!("starting a throwaway PostgreSQL cluster...");
    let server = testkit::PgServer::start().context("starting PostgreSQL")?;
    let url = server.url("postgres");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).context("connecting")?;
    client
        .batch_execute(CREATE_USERS)
        .context("creating the users table")?;
    client
        .execute(INSERT_USERS, &[&ROWS])
        .context("filling the users table")?;
    eprintln!("created public.users with {ROWS} rows");

    eprintln!("running: data-sync sync --mapping users --target demo.sqlite");
    let status = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "--package",
            "data-sync",
            "--",
            "sync",
            "--mapping",
            "users",
        ])
        .env("DATA_SYNC_SOURCE", &url)
        .env("DATA_SYNC_TARGET", target)
        .status()
        .context("running data-sync")?;
    if !status.success() {
        bail!("data-sync sync failed ({status})");
    }

    let connection = rusqlite::Connection::open(target).context("opening demo.sqlite")?;
    print_rows(
        &connection,
        "user_main",
        "SELECT id, username, email FROM user_main ORDER BY id LIMIT 5",
    )?;
    print_rows(
        &connection,
        "user_profile",
        "SELECT id, bio, avatar_url FROM user_profile ORDER BY id LIMIT 5",
    )?;
    drop(server);
    eprintln!("\nstopped the cluster; the targets stay in demo.sqlite");
    eprintln!(
        "next: sync a table of your own, `cargo xtask new orders --table public.orders` \
         (docs/first-mapping.md)"
    );
    Ok(())
}

fn print_rows(connection: &rusqlite::Connection, table: &str, query: &str) -> Result<()> {
    let count: i64 =
        connection.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |row| {
            row.get(0)
        })?;
    println!("\n{table} ({count} rows), first rows:");
    let mut statement = connection.prepare(query)?;
    let names: Vec<String> = statement.column_names().map(str::to_owned).collect();
    println!("  {}", names.join(" | "));
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let values: Vec<String> = (0..names.len())
            .map(|index| match row.get_ref(index) {
                Ok(rusqlite::types::ValueRef::Null) => "NULL".to_owned(),
                Ok(rusqlite::types::ValueRef::Integer(value)) => value.to_string(),
                Ok(rusqlite::types::ValueRef::Real(value)) => value.to_string(),
                Ok(rusqlite::types::ValueRef::Text(text)) => {
                    String::from_utf8_lossy(text).into_owned()
                }
                Ok(rusqlite::types::ValueRef::Blob(blob)) => format!("<{} bytes>", blob.len()),
                Err(error) => format!("<{error}>"),
            })
            .collect();
        println!("  {}", values.join(" | "));
    }
    Ok(())
}

const CREATE_USERS: &str = testkit::reference::USERS_DDL;

/// Deterministic, realistic-looking rows: about 40% of bios NULL, some multi-byte.
const INSERT_USERS: &str = "
INSERT INTO public.users (id, username, email, bio, avatar_url, created_at, updated_at)
SELECT g,
       (ARRAY['ana', 'bjørn', 'chloé', 'dmitri', 'eun-ji', 'farah', 'gus'])[1 + g % 7] || '_' || g,
       'user' || g || '@example.org',
       CASE WHEN g % 5 < 2 THEN NULL
            ELSE (ARRAY['Loves hiking and tea.', 'Rust, Postgres, SQLite. 🦀',
                        'Café owner in Zürich.', 'Photographer — 写真家.'])[1 + g % 4] END,
       CASE WHEN g % 3 = 0 THEN NULL ELSE 'https://avatars.example.org/' || g || '.png' END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '17 minutes',
       timestamptz '2024-06-01 00:00:00+00' + g * interval '3 minutes'
FROM generate_series(1::bigint, $1::bigint) AS g";
