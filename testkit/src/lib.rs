//! A throwaway PostgreSQL server for data-sync's tests, benchmarks and demo.
//!
//! Like `#[sqlx::test]`: every test gets its own database on one server per test
//! process. The server is `DATA_SYNC_TEST_URL` when set, otherwise a cluster this
//! crate initializes in a temporary directory and removes again when the process
//! exits, however it exits.
//!
//! ```no_run
//! # use sync_testkit as testkit;
//! let db = testkit::PgServer::shared().create_database();
//! let mut client = db.client();
//! client.batch_execute("CREATE TABLE users (id bigint PRIMARY KEY)").unwrap();
//! ```

#![warn(missing_docs)]

mod cluster;
mod error;
pub mod reference;
mod url;

#[cfg(test)]
mod tests;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sync_sql::ident::quote;

use crate::cluster::Cluster;
pub use crate::error::Error;

/// The environment variable naming an existing server to test against.
const TEST_URL_VARIABLE: &str = "DATA_SYNC_TEST_URL";

/// A running PostgreSQL server that tests can create databases on.
pub struct PgServer {
    kind: Kind,
}

enum Kind {
    /// A server given by `DATA_SYNC_TEST_URL`; `url` names its maintenance database.
    External { url: String },
    /// A throwaway cluster this process started.
    Throwaway(Cluster),
}

impl PgServer {
    /// The server shared by every test of this process.
    ///
    /// That is the server at `DATA_SYNC_TEST_URL` when it is set (a libpq URL of a
    /// server where the user may `CREATE DATABASE`), otherwise a throwaway cluster
    /// started on first use and stopped, its directory removed, when the process
    /// exits (even when it is killed).
    ///
    /// # Panics
    ///
    /// Panics when the throwaway cluster cannot be started, for instance because
    /// no PostgreSQL server binaries are installed (Debian package `postgresql`).
    pub fn shared() -> &'static PgServer {
        static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| match std::env::var(TEST_URL_VARIABLE) {
            Ok(url) if !url.trim().is_empty() => Ok(PgServer {
                kind: Kind::External { url },
            }),
            _ => PgServer::start().map_err(|error| error.to_string()),
        });
        match shared {
            Ok(server) => server,
            Err(message) => panic!("cannot start the test PostgreSQL server: {message}"),
        }
    }

    /// Starts a new throwaway cluster.
    ///
    /// The cluster lives in a fresh directory under [`std::env::temp_dir`], listens on
    /// a free port of 127.0.0.1 and trusts every local connection. It is stopped and
    /// its directory removed when the `PgServer` is dropped, and also when the process
    /// exits without dropping it, even by `SIGKILL`. When the process runs as root,
    /// the server runs as the `postgres` user (else `nobody`).
    ///
    /// # Errors
    ///
    /// Fails when no server binaries are found, or when `initdb` or the server fail;
    /// the error then holds the tail of their log.
    pub fn start() -> Result<PgServer, Error> {
        Ok(PgServer {
            kind: Kind::Throwaway(Cluster::start(false)?),
        })
    }

    /// Starts a new throwaway cluster that also accepts TLS, with a server
    /// certificate for `localhost` and `127.0.0.1` signed by a throwaway CA whose
    /// certificate [`PgServer::root_certificate`] gives. Needs the `openssl` command.
    ///
    /// # Errors
    ///
    /// As [`PgServer::start`], and when the certificates cannot be made.
    pub fn start_with_tls() -> Result<PgServer, Error> {
        Ok(PgServer {
            kind: Kind::Throwaway(Cluster::start(true)?),
        })
    }

    /// The CA certificate of a cluster from [`PgServer::start_with_tls`].
    pub fn root_certificate(&self) -> Option<std::path::PathBuf> {
        match &self.kind {
            Kind::Throwaway(cluster) => cluster.root_certificate(),
            Kind::External { .. } => None,
        }
    }

    /// A connection string (libpq URL) for database `database` on this server.
    ///
    /// A throwaway cluster gives `postgresql://postgres@127.0.0.1:PORT/DATABASE`; no
    /// password is involved.
    pub fn url(&self, database: &str) -> String {
        match &self.kind {
            Kind::External { url } => url::with_database(url, database),
            Kind::Throwaway(cluster) => format!(
                "postgresql://postgres@127.0.0.1:{}/{}",
                cluster.port(),
                url::percent_encode(database)
            ),
        }
    }

    /// Creates a fresh, uniquely named, empty database (UTF8, `C` collation).
    ///
    /// The database is dropped again when the returned [`TestDb`] is dropped.
    ///
    /// # Panics
    ///
    /// Panics when the server cannot be reached or refuses to create the database.
    pub fn create_database(&self) -> TestDb {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static PROCESS_TAG: OnceLock<u32> = OnceLock::new();
        // The pid tells concurrent test binaries apart; the random tag tells apart
        // processes on different machines that share one DATA_SYNC_TEST_URL server.
        let tag =
            PROCESS_TAG.get_or_init(|| RandomState::new().hash_one(std::process::id()) as u32);
        let name = format!(
            "data_sync_test_{}_{tag:08x}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin_url = self.admin_url();
        let mut client = connect(&admin_url).unwrap_or_else(|error| {
            panic!(
                "cannot connect to the test PostgreSQL server at {}: {error}",
                url::redact(&admin_url)
            )
        });
        client
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
                quote(&name)
            ))
            .unwrap_or_else(|error| panic!("cannot create test database `{name}`: {error}"));
        TestDb {
            url: self.url(&name),
            name,
            admin_url,
        }
    }

    /// Stops the server and starts it again in place: same port, same data.
    ///
    /// Open connections are closed by the server (fast shutdown); new ones can be
    /// made when this returns. Meant for tests that restart PostgreSQL in the
    /// middle of a sync.
    ///
    /// # Errors
    ///
    /// Fails for a server given by `DATA_SYNC_TEST_URL` ([`Error::NotThrowaway`]), and
    /// when the server does not come back.
    pub fn restart(&self) -> Result<(), Error> {
        match &self.kind {
            Kind::External { .. } => Err(Error::NotThrowaway),
            Kind::Throwaway(cluster) => cluster.restart(),
        }
    }

    /// Creates login role `user` with `password` and makes this throwaway cluster
    /// demand that password (SCRAM) from it over TCP, while every other role stays
    /// trusted. For tests of password handling.
    ///
    /// # Errors
    ///
    /// [`Error::NotThrowaway`] for a server given by `DATA_SYNC_TEST_URL`; I/O errors
    /// writing `pg_hba.conf`.
    pub fn require_password(&self, user: &str, password: &str) -> Result<(), Error> {
        let Kind::Throwaway(cluster) = &self.kind else {
            return Err(Error::NotThrowaway);
        };
        let hba = cluster.dir().join("data").join("pg_hba.conf");
        let current = std::fs::read_to_string(&hba)
            .map_err(|error| Error::io("cannot read pg_hba.conf", error))?;
        let line = format!("host all {} 127.0.0.1/32 scram-sha-256\n", quote(user));
        if !current.contains(&line) {
            std::fs::write(&hba, format!("{line}{current}"))
                .map_err(|error| Error::io("cannot write pg_hba.conf", error))?;
        }
        let mut client = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .map_err(|error| Error::io("cannot connect", std::io::Error::other(error)))?;
        // A role name and password cannot be bound in DDL: quote them.
        let literal = format!("'{}'", password.replace('\'', "''"));
        client
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN SUPERUSER PASSWORD {literal}; SELECT pg_reload_conf();",
                role = quote(user)
            ))
            .map_err(|error| Error::io("cannot create the role", std::io::Error::other(error)))?;
        Ok(())
    }

    /// The URL of the database to connect to for `CREATE DATABASE`.
    fn admin_url(&self) -> String {
        match &self.kind {
            Kind::External { url } => url.clone(),
            Kind::Throwaway(_) => self.url("postgres"),
        }
    }
}

impl fmt::Debug for PgServer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::External { url } => formatter
                .debug_struct("PgServer")
                .field("url", &url::redact(url))
                .finish(),
            Kind::Throwaway(cluster) => formatter
                .debug_struct("PgServer")
                .field("port", &cluster.port())
                .finish_non_exhaustive(),
        }
    }
}

/// One test's own database, dropped (`DROP DATABASE ... WITH (FORCE)`) when this
/// handle is dropped.
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDb {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection string (libpq URL) for the database.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A new connection to the database, without TLS.
    ///
    /// # Panics
    ///
    /// Panics when the connection fails.
    pub fn client(&self) -> postgres::Client {
        connect(&self.url).unwrap_or_else(|error| {
            panic!(
                "cannot connect to test database `{}` at {}: {error}",
                self.name,
                url::redact(&self.url)
            )
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Errors are ignored: the server may be gone already, and a leftover
        // database on a throwaway cluster goes with the cluster.
        if let Ok(mut client) = connect(&self.admin_url) {
            // A replication slot of the database (change capture's) keeps it from
            // being dropped; its session goes first, then the slot.
            let _ = client.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            );
            let _ = client.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                 WHERE database = $1 AND NOT active",
                &[&self.name],
            );
            let name = quote(&self.name);

            if client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .is_err()
            {
                // PostgreSQL before 13 has no FORCE.
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"));
            }
        }
    }
}

impl fmt::Debug for TestDb {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TestDb")
            .field("name", &self.name)
            .field("url", &url::redact(&self.url))
            .finish_non_exhaustive()
    }
}

fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.connect(postgres::NoTls)
}
