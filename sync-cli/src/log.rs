//! The command line's log: `tracing` events on stderr, filtered by `-v`/`-q` or
//! `RUST_LOG`, as text or JSON lines, drawn around the progress bar.

use std::io::{self, IsTerminal, Write};

use indicatif::MultiProgress;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
}

/// The level `-v`/`-q` ask for: `warn` by default, `info`, `debug`, `trace` for one
/// to three `-v`, `error` for `-q`.
fn level(verbose: u8, quiet: bool) -> &'static str {
    if quiet {
        return "error";
    }
    match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// Installs the log. `-v`/`-q` win over `RUST_LOG`; without either, `RUST_LOG`
/// applies when set, else `warn`.
pub(crate) fn init(verbose: u8, quiet: bool, format: LogFormat, bars: MultiProgress) {
    let filter = if verbose > 0 || quiet {
        EnvFilter::new(level(verbose, quiet))
    } else {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level(0, false)))
    };
    let writer = Stderr { bars };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(io::stderr().is_terminal())
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// Stderr, written with the progress bar lifted off the screen meanwhile.
#[derive(Clone)]
struct Stderr {
    bars: MultiProgress,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Write for Stderr {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        // The formatter writes each event whole, so one suspension covers a line.
        self.bars.suspend(|| io::stderr().write(buffer))
    }

    fn write_all(&mut self, buffer: &[u8]) -> io::Result<()> {
        self.bars.suspend(|| io::stderr().write_all(buffer))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
