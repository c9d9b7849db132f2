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

/// `error`, after printing it in an envelope without mappings when `json`: for an
/// error before a command starts its work on the mappings.
pub(crate) fn early_error(json: bool, error: Error) -> Error {
    if json {
        // The error is the one to report, whatever becomes of the document.
        let _ = print_json(&[(); 0], Some((None, &error)));
    }
    error
}

/// What became of one mapping of a command over several: done (with its result),
/// failed, or skipped (not tried, after an interrupt).
pub(crate) enum Outcome<T> {
    /// The command did its work on the mapping.
    Done(T),
    /// The mapping failed; the command went on with the next one.
    Failed(Error),
    /// The mapping was not tried.
    Skipped,
}

/// The outcomes of a command over several mappings, in the order it took them.
pub(crate) struct Outcomes<T> {
    /// How many mappings the command works on.
    total: usize,
    entries: Vec<(&'static str, Outcome<T>)>,
}

impl<T: Serialize> Outcomes<T> {
    /// No outcome yet, of `total` mappings.
    pub(crate) fn new(total: usize) -> Self {
        Self {
            total,
            entries: Vec::new(),
        }
    }

    /// Records the outcome of `mapping`.
    pub(crate) fn push(&mut self, mapping: &'static str, outcome: Outcome<T>) {
        self.entries.push((mapping, outcome));
    }

    /// Whether the last mapping was stopped by SIGINT or SIGTERM: the rest are then
    /// skipped.
    pub(crate) fn interrupted(&self) -> bool {
        matches!(
            self.entries.last(),
            Some((_, Outcome::Failed(error))) if error.kind() == "interrupted"
        )
    }

    /// The results of the mappings done, in order.
    pub(crate) fn done(&self) -> impl Iterator<Item = &T> {
        self.entries
            .iter()
            .filter_map(|(_, outcome)| match outcome {
                Outcome::Done(result) => Some(result),
                _ => None,
            })
    }

    /// Prints the text line of the last outcome unless it is done (the command
    /// prints those its way): `orders: failed: ...` or `orders: skipped ...`, when
    /// the command works on several mappings (with one, the `error:` line says it
    /// all).
    pub(crate) fn print_last(&self) -> Result<()> {
        if self.total < 2 {
            return Ok(());
        }
        match self.entries.last() {
            Some((mapping, Outcome::Failed(error))) => outln!("{mapping}: failed: {error}"),
            Some((mapping, Outcome::Skipped)) => {
                outln!("{mapping}: skipped (not tried after the interrupt)")
            }
            _ => Ok(()),
        }
    }

    /// Prints every outcome as text, in order: `done` prints a result.
    pub(crate) fn print_text(&self, done: impl Fn(&T) -> Result<()>) -> Result<()> {
        for (mapping, outcome) in &self.entries {
            match outcome {
                Outcome::Done(result) => done(result)?,
                Outcome::Failed(error) if self.total > 1 => outln!("{mapping}: failed: {error}")?,
                Outcome::Failed(_) => {}
                Outcome::Skipped => outln!("{mapping}: skipped (not tried after the interrupt)")?,
            }
        }
        Ok(())
    }

    /// The command's result, after printing the `--json` envelope when `json`:
    /// `otherwise` (what the results found) when no mapping failed; else the interrupt when there was one, the mapping's
    /// error when the command worked on one mapping, and otherwise [`Error::Failed`]
    /// listing every failure. The envelope has one entry per mapping with its
    /// `outcome` (`ok`; `error`, with the mapping's `error`; or `skipped`).
    pub(crate) fn finish(self, json: bool, otherwise: Result<()>) -> Result<()> {
        let entries: Vec<serde_json::Value> = self
            .entries
            .iter()
            .map(|(mapping, outcome)| match outcome {
                Outcome::Done(result) => {
                    let mut value = serde_json::to_value(result).unwrap_or_default();
                    if let Some(object) = value.as_object_mut() {
                        object.insert("outcome".to_owned(), "ok".into());
                    }
                    value
                }
                Outcome::Failed(error) => serde_json::json!({
                    "mapping": mapping,
                    "outcome": "error",
                    "error": { "kind": error.kind(), "message": error.to_string() },
                }),
                Outcome::Skipped => serde_json::json!({ "mapping": mapping, "outcome": "skipped" }),
            })
            .collect();
        let total = self.total;
        let mut failures = Vec::new();
        let mut interrupt = None;
        for (mapping, outcome) in self.entries {
            match outcome {
                Outcome::Failed(error) if error.kind() == "interrupted" => {
                    interrupt = Some((mapping, error));
                }
                Outcome::Failed(error) => failures.push((mapping, error)),
                Outcome::Done(_) | Outcome::Skipped => {}
            }
        }
        let result = if let Some(interrupt) = interrupt {
            Err(interrupt)
        } else if failures.len() == 1 && total == 1 {
            Err(failures.pop().expect("one failure"))
        } else if failures.is_empty() {
            otherwise.map_err(|error| ("", error))
        } else {
            let mapping = (failures.len() == 1).then(|| failures[0].0);
            let failures = failures
                .into_iter()
                .map(|(mapping, error)| (mapping.to_owned(), error))
                .collect();
            Err((mapping.unwrap_or(""), Error::Failed { total, failures }))
        };
        let printed = if json {
            print_json(
                &entries,
                result
                    .as_ref()
                    .err()
                    .map(|(mapping, error)| ((!mapping.is_empty()).then_some(*mapping), error)),
            )
        } else {
            Ok(())
        };
        // A failed command's error is the one to report, whatever became of the
        // document.
        result.map_err(|(_, error)| error)?;
        printed
    }
}
