use std::io;

/// An error starting, restarting or talking to a [`PgServer`](crate::PgServer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No PostgreSQL server binaries (`initdb`, `postgres`) were found.
    #[error(
        "no PostgreSQL server binaries found (looked at `pg_config --bindir`, \
         /usr/lib/postgresql/*/bin and `initdb` on PATH): install them (Debian: \
         `apt-get install postgresql`), or set DATA_SYNC_TEST_URL to the URL of a server \
         where the user may CREATE DATABASE"
    )]
    BinariesNotFound,
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The throwaway cluster failed to initialize, start or restart.
    #[error("{message}\n--- last lines of {log} ---\n{tail}")]
    Server {
        /// What went wrong.
        message: String,
        /// The log the tail comes from (removed with the cluster).
        log: String,
        /// The last lines of that log.
        tail: String,
    },
    /// `restart` was called on a server given by `DATA_SYNC_TEST_URL`.
    #[error(
        "cannot restart the server given by DATA_SYNC_TEST_URL: only a throwaway cluster can be restarted"
    )]
    NotThrowaway,
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
