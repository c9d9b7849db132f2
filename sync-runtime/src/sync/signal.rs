//! Stopping runs on SIGINT or SIGTERM: stop the run at the next batch, roll back the
//! batch in flight, record `interrupted`.
//!
//! The engine installs no signal handler: a program that handles the signals (the
//! `data-sync` command line does) calls [`interrupt`] on the first one. That sets a
//! flag, which the writer checks before committing a batch and the reader between
//! row batches, and [`cancel_running_queries`] cancels the running source queries
//! (`CancelToken`), so that a reader blocked on a slow or huge `COPY` wakes up. The
//! run then fails with [`Error::Interrupted`], which rolls back what it had not
//! committed. See `docs/sync.md`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::source::client::Client;
use crate::source::config::SourceConfig;
use crate::spec::MappingSpec;

/// The name of the first signal received (`SIGINT` or `SIGTERM`).
static RECEIVED: OnceLock<&'static str> = OnceLock::new();

/// The cancels of the source queries running now, by registration id.
type Cancel = Box<dyn Fn() + Send>;
static CANCELS: Mutex<Vec<(u64, Cancel)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Asks every run of this process to stop, for the signal named `signal` (`SIGINT`
/// or `SIGTERM`): runs fail with [`Error::Interrupted`] at their next batch, having
/// rolled back the batch in flight. Call [`cancel_running_queries`] as well, so that
/// a reader waiting on the source wakes up. Returns `false` when a signal was already
/// received (and keeps the first).
pub fn interrupt(signal: &'static str) -> bool {
    RECEIVED.set(signal).is_ok()
}

/// Cancels the source queries runs are running now; best effort. A query started
/// after a cancel is not cancelled: call it again until the process exits.
pub fn cancel_running_queries() {
    if let Ok(cancels) = CANCELS.lock() {
        for (_, cancel) in cancels.iter() {
            cancel();
        }
    }
}

/// The signal [`interrupt`] was called with, if it was: for a caller that waits
/// between runs and should stop waiting.
pub fn signal_received() -> Option<&'static str> {
    received()
}

/// The signal received, if any.
pub(crate) fn received() -> Option<&'static str> {
    RECEIVED.get().copied()
}

/// [`Error::Interrupted`] once a signal was received.
///
/// # Errors
///
/// [`Error::Interrupted`].
pub(crate) fn check(spec: &MappingSpec) -> Result<()> {
    match received() {
        None => Ok(()),
        Some(signal) => Err(interrupted(spec, signal)),
    }
}

fn interrupted(spec: &MappingSpec, signal: &'static str) -> Error {
    Error::Interrupted {
        mapping: spec.name.to_owned(),
        signal,
    }
}

/// Sleeps `duration`, or less when a signal comes.
///
/// # Errors
///
/// [`Error::Interrupted`] when a signal came.
pub(crate) fn sleep(spec: &MappingSpec, duration: Duration) -> Result<()> {
    let deadline = Instant::now() + duration;
    loop {
        check(spec)?;
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// A run's result, with any error of a run a signal stopped (a cancelled query, a
/// closed queue) replaced by [`Error::Interrupted`].
pub(crate) fn classify<T>(spec: &MappingSpec, result: Result<T>) -> Result<T> {
    match (result, received()) {
        (Err(Error::Interrupted { mapping, signal }), _) => {
            Err(Error::Interrupted { mapping, signal })
        }
        (Err(_), Some(signal)) => Err(interrupted(spec, signal)),
        (result, _) => result,
    }
}

/// Cancels the running query of `client` on a signal, until dropped.
pub(crate) struct CancelOnSignal {
    id: u64,
}

/// Registers `client`'s cancel token, so that a signal cancels its running query.
pub(crate) fn cancel_on_signal(source: &SourceConfig, client: &Client) -> CancelOnSignal {
    let token = client.cancel_token();
    let source = source.clone();
    register(Box::new(move || source.cancel(&token)))
}

fn register(cancel: Cancel) -> CancelOnSignal {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut cancels) = CANCELS.lock() {
        cancels.push((id, cancel));
    }
    CancelOnSignal { id }
}

impl Drop for CancelOnSignal {
    fn drop(&mut self) {
        if let Ok(mut cancels) = CANCELS.lock() {
            cancels.retain(|(id, _)| *id != self.id);
        }
    }
}
