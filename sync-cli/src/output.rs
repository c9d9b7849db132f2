//! What the commands print on stdout: text lines ([`outln!`]) or the one JSON
//! document every `--json` command prints, the same envelope for all of them,
//! documented in `docs/cli.md`. A write that fails (a full disk, a closed pipe) is an
//! [`Error::Stdout`], never a panic.

use std::io::Write;

use serde::Serialize;

use crate::error::{Error, Result};

/// Writes `text` on stdout and flushes it.
///
/// # Errors
///
/// [`Error::Stdout`] when stdout refuses it.
pub(crate) fn write_stdout(text: std::fmt::Arguments<'_>) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(text)
        .and_then(|()| stdout.flush())
        .map_err(Error::Stdout)
}

/// `println!` for results: a line on stdout, or the [`Error::Stdout`] that kept it
/// from being written.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// The `version` field of every `--json` output; it changes only when a field is
/// removed or changes meaning (fields may be added within a version).
pub(crate) const JSON_VERSION: u32 = 1;

/// `{"version": 1, "ok": .., "mappings": [..], "error": ..}`: `mappings` holds one
/// entry per mapping the command worked on, `error` is `null` or what stopped or
/// failed the command (with the mapping it was working on, if any).
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    version: u32,
    ok: bool,
    mappings: &'a T,
    error: Option<ErrorJson<'a>>,
}

/// The `error` of the envelope.
#[derive(Serialize)]
struct ErrorJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    mapping: Option<&'a str>,
    kind: &'static str,
    message: String,
}

/// Prints the envelope with `mappings` and, for a failed command, its `error` and the
/// mapping it stopped at.
///
/// # Errors
///
/// [`Error::Stdout`] when stdout refuses it.
pub(crate) fn print_json<T: Serialize>(
    mappings: &T,
    error: Option<(Option<&str>, &Error)>,
) -> Result<()> {
    let envelope = Envelope {
        version: JSON_VERSION,
        ok: error.is_none(),
        mappings,
        error: error.map(|(mapping, error)| ErrorJson {
            mapping,
            kind: error.kind(),
            message: error.to_string(),
        }),
    };
    // Through a `Value`, whose objects keep their keys sorted: every document lists
    // its keys in alphabetical order, as `docs/cli.md` says.
    let value = serde_json::to_value(&envelope).unwrap_or_default();
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    write_stdout(format_args!("{text}\n"))
}
