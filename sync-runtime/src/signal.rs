//! SIGINT and SIGTERM: stop the run at the next batch, roll back the batch in
//! flight, record `interrupted`, exit with 128 + the signal number.
//!
//! [`install`] (called by the `data-sync` binary) starts a thread that waits for the
//! signals (signal-hook's self-pipe: the handler itself only writes a byte). On the
//! first signal it sets a flag, which the writer checks before committing a batch
//! and the reader between row batches, and cancels the running source query
//! (`CancelToken`), so that a reader blocked on a slow or huge `COPY` wakes up. The
//! run then fails with [`Error::Interrupted`], which rolls back what it had not
//! committed. Should the process not have exited a second after the signal (a
//! connect in progress, a long SQLite statement), it exits then; a second signal
//! exits at once. Both are as safe as a kill: SQLite's journal rolls back the open
//! transaction. See `docs/sync.md`.

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::SourceConfig;
use crate::error::{Error, Result};
use crate::spec::MappingSpec;

/// The first signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// How long after a signal the process may still run.
const HARD_STOP: Duration = Duration::from_secs(1);

/// The cancels of the source queries running now, by registration id.
type Cancel = Box<dyn Fn() + Send>;
static CANCELS: Mutex<Vec<(u64, Cancel)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Handles SIGINT and SIGTERM from now on, as the module documentation describes.
///
/// # Errors
///
/// When the handlers or the thread cannot be set up.
pub(crate) fn install() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};

    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("data-sync-signals".to_owned())
        .spawn(move || {
            for signal in signals.forever() {
                if let Err(first) =
                    RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
                {
                    std::process::exit(128 + first);
                }
                tracing::warn!(
                    signal = name(signal),
                    "interrupted: rolling back the batch in flight"
                );
                std::thread::spawn(move || stop(signal));
            }
        })?;
    Ok(())
}

/// Cancels the running source queries until the process exits, which it does
/// itself [`HARD_STOP`] after the signal at the latest.
fn stop(signal: i32) {
    let deadline = Instant::now() + HARD_STOP;
    while Instant::now() < deadline {
        // A query started after a cancel is cancelled by the next one.
        if let Ok(cancels) = CANCELS.lock() {
            for (_, cancel) in cancels.iter() {
                cancel();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::process::exit(128 + signal);
}

/// The signal received, if any.
pub(crate) fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::Relaxed) {
        0 => None,
        signal => Some(signal),
    }
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

fn interrupted(spec: &MappingSpec, signal: i32) -> Error {
    Error::Interrupted {
        mapping: spec.name.to_owned(),
        signal: name(signal),
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

/// What `_data_sync_state.last_outcome` records for a failed run: `interrupted`, or
/// the error's message.
pub(crate) fn outcome(error: &Error) -> String {
    match error {
        Error::Interrupted { .. } => "interrupted".to_owned(),
        error => error.to_string(),
    }
}

/// The process exit code for a failed command: 128 + the signal number for
/// [`Error::Interrupted`] (130 for SIGINT, 143 for SIGTERM), else 1.
pub(crate) fn exit_code(error: &Error) -> ExitCode {
    match error {
        Error::Interrupted { signal, .. } => ExitCode::from(match *signal {
            "SIGINT" => 130,
            _ => 143,
        }),
        _ => ExitCode::FAILURE,
    }
}

fn name(signal: i32) -> &'static str {
    if signal == signal_hook::consts::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

/// Cancels the running query of `client` on a signal, until dropped.
pub(crate) struct CancelOnSignal {
    id: u64,
}

/// Registers `client`'s cancel token, so that a signal cancels its running query.
pub(crate) fn cancel_on_signal(source: &SourceConfig, client: &postgres::Client) -> CancelOnSignal {
    let token = client.cancel_token();
    let source = source.clone();
    register(Box::new(move || source.cancel(&token)))
}

/// [`cancel_on_signal`] for the reader connection of a full sync.
pub(crate) fn cancel_reader_on_signal(
    source: &SourceConfig,
    client: &crate::source::reader::ReaderClient,
) -> CancelOnSignal {
    let token = client.client.cancel_token();
    let source = source.clone();
    register(Box::new(move || source.cancel_reader(&token)))
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
