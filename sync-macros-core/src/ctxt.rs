//! Error collection for one pass over a mapping (serde_derive's `Ctxt`).

use std::cell::RefCell;
use std::fmt;

use crate::model::Origin;

/// One user-facing mistake in a mapping, with where it was written.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// Where the mistake is: a span in Rust source or a position in a YAML file.
    pub origin: Origin,
    /// Lowercase, no final period, the user's spelling in backticks.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Yaml(position) => write!(f, "{position}: {}", self.message),
            Origin::Span(_) | Origin::Unknown => f.write_str(&self.message),
        }
    }
}

/// Collects every error of a pass so that one compile (or one `xtask gen`) shows all
/// of them. Dropping a `Ctxt` without calling [`Ctxt::check`] is a bug and panics.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Option<Vec<Diagnostic>>>,
    /// How many of the errors leave the rest of the input read as written (an
    /// attribute that is no attribute, skipped): they need not hide the others.
    recoverable: std::cell::Cell<usize>,
}

impl Ctxt {
    /// A context with no errors yet.
    pub fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
            recoverable: std::cell::Cell::new(0),
        }
    }

    /// Records an error at `origin`.
    pub fn error(&self, origin: &Origin, message: impl fmt::Display) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("Ctxt::error after Ctxt::check")
            .push(Diagnostic {
                origin: origin.clone(),
                message: message.to_string(),
            });
    }

    /// Whether any error was recorded so far.
    /// Records an error after which the input was read on as written, so the
    /// semantic rules may still run (see [`Ctxt::has_unrecoverable_errors`]).
    pub fn recoverable_error(&self, origin: &Origin, message: impl fmt::Display) {
        self.error(origin, message);
        self.recoverable.set(self.recoverable.get() + 1);
    }

    /// Whether an error other than a [`Ctxt::recoverable_error`] was recorded.
    pub fn has_unrecoverable_errors(&self) -> bool {
        self.error_count() > self.recoverable.get()
    }

    pub fn has_errors(&self) -> bool {
        self.errors
            .borrow()
            .as_ref()
            .is_some_and(|errors| !errors.is_empty())
    }

    /// How many errors were recorded so far.
    pub fn error_count(&self) -> usize {
        self.errors.borrow().as_ref().map_or(0, Vec::len)
    }

    /// Consumes the context, returning every recorded error.
    pub fn check(self) -> Result<(), Vec<Diagnostic>> {
        let errors = self
            .errors
            .borrow_mut()
            .take()
            .expect("Ctxt::check called twice");
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("forgot to call Ctxt::check");
        }
    }
}
