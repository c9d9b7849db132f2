//! Retrying a run after a transient source fault: a dropped connection, a server
//! that restarts or shuts down, a refused or reset socket.
//!
//! A run is retried whole, with bounded exponential backoff ([`RetryPolicy`]).
//! That is safe by construction: a full sync commits nothing until its one SQLite
//! transaction commits, so its retry starts from scratch over untouched targets; an
//! incremental sync commits its watermark with every batch, so its retry reads on
//! from the last committed batch. Errors that would only happen again (bad data,
//! schema mismatches, refused logins, a missing database, a cancelled or timed-out
//! statement) are never retried. See `docs/sync.md`.

use std::io;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::spec::MappingSpec;

/// How a run retries after a transient source fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 never retries.
    pub retries: u32,
    /// The wait before the first retry; it doubles before each next one.
    pub initial_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 retries, after 1 s, 2 s and 4 s (at most 30 s).
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry `retry` (0-based): `initial_delay * 2^retry`, capped.
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Whether `error` is a fault of the connection or the server's availability, which
/// a new attempt may not meet again.
pub(crate) fn is_transient(error: &Error) -> bool {
    match error {
        Error::Connect { source, .. } | Error::Source { source, .. } => {
            is_transient_postgres(source)
        }
        Error::SourceStream { source, .. } => is_transient_io(source),
        // A server that sent nothing for the read timeout may answer on a new
        // connection; a statement it cancelled would be cancelled again.
        Error::Timeout { source, .. } => crate::error::is_read_timeout(source),
        _ => false,
    }
}

/// SQLSTATE class 08 (connection exception), 57P01..57P03 (admin shutdown, crash
/// shutdown, cannot connect now), 53300 (too many connections); a connection the
/// server closed; a timed-out connect; any I/O error of the driver's socket.
/// Never a host name that does not resolve, 28xxx (authentication), 3D000 (no such
/// database), 57014 (cancelled: a signal or `--statement-timeout`), nor any other
/// server error.
fn is_transient_postgres(error: &tokio_postgres::Error) -> bool {
    if let Some(code) = error.code() {
        let code = code.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    if error.as_db_error().is_some() {
        return false;
    }
    if error.is_closed() || error.to_string() == "timeout waiting for server" {
        return true;
    }
    // The driver's own socket failed (reset, refused, a message cut off by a
    // close); a malformed COPY row is an error of the COPY decoder, never here. A
    // host name that does not resolve would not resolve again: not retried.
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            return !is_name_resolution(io);
        }
        cause = inner.source();
    }
    false
}

/// Whether `error` is the resolver's: the host name has no address (std reports
/// `getaddrinfo`'s errors with this text and no kind of their own).
fn is_name_resolution(error: &io::Error) -> bool {
    error
        .to_string()
        .starts_with("failed to lookup address information")
}

/// An I/O error kind of a connection that broke or could not be made, which a new
/// attempt may not meet.
fn is_connection_fault(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
            | io::ErrorKind::TimedOut
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
    )
}

/// An I/O error of the connection; not a malformed stream (`InvalidData`,
/// `UnexpectedEof` from the COPY decoder).
fn is_transient_io(error: &io::Error) -> bool {
    if let Some(postgres) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<tokio_postgres::Error>())
    {
        return is_transient_postgres(postgres);
    }
    is_connection_fault(error.kind())
}

/// Runs `attempt`, and again after each transient error, as `policy` allows; each
/// retry is logged at warn. A signal (see `signal`) ends the waiting.
pub(crate) fn run<T>(
    spec: &MappingSpec,
    policy: &RetryPolicy,
    attempt: &mut dyn FnMut() -> Result<T>,
) -> Result<T> {
    let mut retry = 0;
    loop {
        match attempt() {
            Err(error)
                if retry < policy.retries
                    && is_transient(&error)
                    && crate::sync::signal::received().is_none() =>
            {
                let delay = policy.delay(retry);
                retry += 1;
                tracing::warn!(
                    mapping = spec.name,
                    retry,
                    retries = policy.retries,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %error,
                    "transient source error; retrying"
                );
                crate::sync::signal::sleep(spec, delay)?;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_and_is_capped() {
        let policy = RetryPolicy {
            retries: 10,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(3),
        };
        let delays: Vec<u128> = (0..6)
            .map(|retry| policy.delay(retry).as_millis())
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000, 3000]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(3));
    }

    #[test]
    fn only_connection_faults_are_transient() {
        let stream = |kind| Error::SourceStream {
            mapping: "m".to_owned(),
            table: "t".to_owned(),
            source: io::Error::from(kind),
        };
        assert!(is_transient(&stream(io::ErrorKind::ConnectionReset)));
        assert!(is_transient(&stream(io::ErrorKind::BrokenPipe)));
        assert!(!is_transient(&stream(io::ErrorKind::InvalidData)));
        assert!(!is_transient(&stream(io::ErrorKind::UnexpectedEof)));
        assert!(!is_transient(&Error::NullCursor {
            mapping: "m".to_owned(),
            table: "t".to_owned(),
            column: "c".to_owned(),
            key: "1".to_owned(),
        }));
        assert!(!is_transient(&Error::Config {
            message: "bad".to_owned()
        }));
    }
}
