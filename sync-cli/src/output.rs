//! The one JSON document every `--json` command prints on stdout: the same
//! envelope for all of them, documented in `docs/cli.md`.

use std::io::Write;

use serde::Serialize;

use crate::error::Error;

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
pub(crate) fn print_json<T: Serialize>(mappings: &T, error: Option<(Option<&str>, &Error)>) {
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
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut stdout, &value);
    let _ = writeln!(stdout);
}
