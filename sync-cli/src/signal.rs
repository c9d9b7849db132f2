//! SIGINT and SIGTERM: the command line's handlers for the engine's clean stop (see
//! `sync_runtime::interrupt`), and the exit code of an interrupted run.
//!
//! [`install`] starts a thread that waits for the signals (signal-hook's self-pipe:
//! the handler itself only writes a byte). On the first signal it asks the engine to
//! stop, which rolls back the batch in flight and records `interrupted`, and keeps
//! cancelling the running source queries. Should the process not have exited a
//! second after the signal (a connect in progress, a long SQLite statement), it exits
//! then; a second signal exits at once. Both are as safe as a kill: SQLite's journal
//! rolls back the open transaction. See `docs/sync.md`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::error::Error;

/// How long after a signal the process may still run.
const HARD_STOP: Duration = Duration::from_secs(1);

/// Handles SIGINT and SIGTERM from now on, as the module documentation describes.
///
/// # Errors
///
/// When the handlers or the thread cannot be set up.
pub(crate) fn install() -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("data-sync-signals".to_owned())
        .spawn(move || {
            let mut first = None;
            for signal in signals.forever() {
                if let Some(first) = first {
                    std::process::exit(128 + first);
                }
                first = Some(signal);
                sync_runtime::interrupt(name(signal));
                tracing::warn!(
                    signal = name(signal),
                    "interrupted: stopping (a run in progress rolls back its batch in flight)"
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
        sync_runtime::cancel_running_queries();
        std::thread::sleep(Duration::from_millis(100));
    }
    std::process::exit(128 + signal);
}

fn name(signal: i32) -> &'static str {
    if signal == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

/// The process exit code for a failed command: 128 + the signal number for an
/// interrupted run (130 for SIGINT, 143 for SIGTERM), else 1.
pub(crate) fn exit_code(error: &Error) -> ExitCode {
    match error {
        Error::Engine(sync_runtime::Error::Interrupted { signal, .. }) => {
            ExitCode::from(match *signal {
                "SIGINT" => 130,
                _ => 143,
            })
        }
        _ => ExitCode::FAILURE,
    }
}
