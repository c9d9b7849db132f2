//! The full sync's `INSERT` statements, binding text and blobs without SQLite
//! copying them.
//!
//! rusqlite binds every text and blob as `SQLITE_TRANSIENT`: SQLite allocates and
//! copies each value before the statement runs, and the value is copied once more
//! into the row's record. A full sync binds straight from the bytes of the COPY
//! batch, which outlive the statement's execution, so the first copy buys nothing;
//! here they are bound as `SQLITE_STATIC` (no copy). This is the one module of the
//! crate allowed `unsafe` code: the rest of the engine goes through rusqlite's safe
//! API. BENCHMARKS.md records what it gains.
//!
//! The soundness argument is in the types: a value bound without a copy borrows
//! for the lifetime `'v` of the [`Bindings`] of one execution, and SQLite reads
//! bound values only while the statement runs (`sqlite3_step`). A pointer left
//! bound after the [`Bindings`] are dropped may dangle, but is never read: before
//! each step, every parameter not bound by this execution's [`Bindings`] is set to
//! NULL (see [`Bindings::execute`]). That replaces `sqlite3_clear_bindings` after
//! every execution, which cost about 1% of a full sync's instructions for
//! parameters that the next execution binds again anyway.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use rusqlite::Connection;
use rusqlite::ffi;
use rusqlite::types::{ToSqlOutput, ValueRef};

/// A prepared statement of one connection, bound through [`Bindings`].
pub(crate) struct Statement<'c> {
    /// Borrowed so that the statement cannot outlive the connection.
    connection: &'c Connection,
    raw: NonNull<ffi::sqlite3_stmt>,
    /// Per parameter, the execution that last bound it.
    bound: Vec<u64>,
    /// The number of the current execution (of the live [`Bindings`]); starts at 1,
    /// so that no parameter counts as bound before its first binding.
    execution: u64,
}

impl<'c> Statement<'c> {
    /// Prepares `sql`, one statement.
    ///
    /// # Errors
    ///
    /// SQLite's error for SQL it cannot prepare.
    pub(crate) fn prepare(connection: &'c Connection, sql: &str) -> rusqlite::Result<Self> {
        let length = c_int::try_from(sql.len()).map_err(|_| {
            rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_TOOBIG), None)
        })?;
        let mut raw = ptr::null_mut();
        // SAFETY: the connection's handle is valid while `connection` is borrowed, and
        // this thread has the connection (`Connection` is not `Sync`); `sql` is valid
        // for `length` bytes during the call, which copies what it keeps; `raw` is a
        // valid place for the statement.
        let code = unsafe {
            ffi::sqlite3_prepare_v3(
                connection.handle(),
                sql.as_ptr().cast::<c_char>(),
                length,
                ffi::SQLITE_PREPARE_PERSISTENT as _,
                &mut raw,
                ptr::null_mut(),
            )
        };
        if code != ffi::SQLITE_OK {
            return Err(error(connection, code));
        }
        let raw = NonNull::new(raw).ok_or_else(|| {
            rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_MISUSE),
                Some("no statement in the SQL text".to_owned()),
            )
        })?;
        // SAFETY: `raw` is the statement just prepared on this thread's connection.
        let count = unsafe { ffi::sqlite3_bind_parameter_count(raw.as_ptr()) };
        Ok(Statement {
            connection,
            raw,
            bound: vec![0; usize::try_from(count).unwrap_or(0)],
            execution: 1,
        })
    }

    /// Starts binding the parameters of one execution; values bound without a copy
    /// must live for `'v`.
    pub(crate) fn bindings<'v>(&mut self) -> Bindings<'_, 'c, 'v> {
        Bindings {
            statement: self,
            values: PhantomData,
        }
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `sqlite3_prepare_v3` on this connection, which is
        // still open (borrowed for `'c`), and is finalized only here, once.
        unsafe {
            ffi::sqlite3_finalize(self.raw.as_ptr());
        }
    }
}

/// The parameters of one execution of a [`Statement`]. Values bound with
/// [`Bindings::borrow`] live for `'v`; dropping the bindings resets the statement,
/// and the pointers left bound are never read: the next execution binds every
/// parameter again, or NULL, before it runs.
pub(crate) struct Bindings<'s, 'c, 'v> {
    statement: &'s mut Statement<'c>,
    values: PhantomData<&'v [u8]>,
}

/// A text or blob of no bytes: bound from here, since a slice of no bytes may
/// point nowhere.
static EMPTY: [u8; 1] = [0];

impl<'v> Bindings<'_, '_, 'v> {
    /// Binds `value` as parameter `parameter` (1-based) without copying text and
    /// blobs: SQLite reads them from `value` when the statement runs.
    ///
    /// # Errors
    ///
    /// SQLite's error (a parameter out of range, a value over its limits).
    pub(crate) fn borrow(&mut self, parameter: usize, value: ValueRef<'v>) -> rusqlite::Result<()> {
        self.bind(parameter, value, ffi::SQLITE_STATIC())
    }

    /// Binds `value` as parameter `parameter` (1-based), copying text and blobs.
    ///
    /// # Errors
    ///
    /// As [`Bindings::borrow`].
    pub(crate) fn copy(&mut self, parameter: usize, value: ValueRef<'_>) -> rusqlite::Result<()> {
        self.bind(parameter, value, ffi::SQLITE_TRANSIENT())
    }

    /// Binds `value` with `destructor`: `SQLITE_STATIC` only for a value that lives
    /// for `'v`.
    fn bind(
        &mut self,
        parameter: usize,
        value: ValueRef<'_>,
        destructor: ffi::sqlite3_destructor_type,
    ) -> rusqlite::Result<()> {
        let raw = self.statement.raw.as_ptr();
        let index = c_int::try_from(parameter).unwrap_or(c_int::MAX);
        let bytes = |bytes: &[u8]| {
            let pointer = if bytes.is_empty() {
                EMPTY.as_ptr()
            } else {
                bytes.as_ptr()
            };
            (pointer, bytes.len() as ffi::sqlite3_uint64)
        };
        // SAFETY: `raw` is a live statement of this thread's connection (see
        // `Statement`). A text or blob is read by SQLite during the call when
        // `destructor` is `SQLITE_TRANSIENT` (a copy), and later, while the
        // statement runs, when it is `SQLITE_STATIC`: `borrow` passes that only for a
        // `ValueRef<'v>`, and `'v` outlives these bindings, whose `drop` clears every
        // parameter before the borrow of the value ends. `EMPTY` is static.
        let code = unsafe {
            match value {
                ValueRef::Null => ffi::sqlite3_bind_null(raw, index),
                ValueRef::Integer(integer) => ffi::sqlite3_bind_int64(raw, index, integer),
                ValueRef::Real(real) => ffi::sqlite3_bind_double(raw, index, real),
                ValueRef::Text(text) => {
                    let (pointer, length) = bytes(text);
                    ffi::sqlite3_bind_text64(
                        raw,
                        index,
                        pointer.cast::<c_char>(),
                        length,
                        destructor,
                        ffi::SQLITE_UTF8 as _,
                    )
                }
                ValueRef::Blob(blob) => {
                    let (pointer, length) = bytes(blob);
                    ffi::sqlite3_bind_blob64(
                        raw,
                        index,
                        pointer.cast::<c_void>(),
                        length,
                        destructor,
                    )
                }
            }
        };
        if code == ffi::SQLITE_OK
            && let Some(bound) = parameter
                .checked_sub(1)
                .and_then(|slot| self.statement.bound.get_mut(slot))
        {
            *bound = self.statement.execution;
        }
        self.check(code)
    }

    /// Runs the statement once with the parameters bound; returns the rows changed.
    ///
    /// # Errors
    ///
    /// SQLite's error for the statement (a constraint, a full disk, ...).
    pub(crate) fn execute(self) -> rusqlite::Result<usize> {
        let raw = self.statement.raw.as_ptr();
        let execution = self.statement.execution;
        for (slot, bound) in self.statement.bound.iter_mut().enumerate() {
            if *bound != execution {
                // A parameter this execution did not bind may still hold a pointer
                // bound by an earlier one: NULL it, as `sqlite3_clear_bindings` would.
                // SAFETY: `raw` is a live statement of this thread's connection, and
                // `slot + 1` one of its parameters (`bound` has one slot for each).
                let code = unsafe { ffi::sqlite3_bind_null(raw, (slot + 1) as c_int) };
                if code != ffi::SQLITE_OK {
                    return Err(error(self.statement.connection, code));
                }
                *bound = execution;
            }
        }
        // SAFETY: `raw` is a live statement of this thread's connection. Every
        // parameter was bound by these bindings (NULL where not, just above), so
        // every text and blob bound without a copy lives for `'v`, which outlives
        // `self`, and the statement is reset (in `drop`) before `self` ends.
        let code = unsafe { ffi::sqlite3_step(raw) };
        match code {
            ffi::SQLITE_DONE => Ok(self.statement.connection.changes() as usize),
            ffi::SQLITE_ROW => Err(rusqlite::Error::ExecuteReturnedResults),
            code => Err(error(self.statement.connection, code)),
        }
    }

    fn check(&self, code: c_int) -> rusqlite::Result<()> {
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(self.statement.connection, code))
        }
    }
}

impl<'v> crate::__private::Bind<'v> for Bindings<'_, '_, 'v> {
    #[inline]
    fn bind_borrowed(&mut self, parameter: usize, value: ValueRef<'v>) -> rusqlite::Result<()> {
        self.borrow(parameter, value)
    }

    #[inline]
    fn bind_copied(&mut self, parameter: usize, value: ToSqlOutput<'_>) -> rusqlite::Result<()> {
        match value {
            ToSqlOutput::Borrowed(value) => self.copy(parameter, value),
            ToSqlOutput::Owned(value) => self.copy(parameter, ValueRef::from(&value)),
            other => Err(rusqlite::Error::ToSqlConversionFailure(
                format!("unsupported value {other:?}").into(),
            )),
        }
    }
}

impl Drop for Bindings<'_, '_, '_> {
    fn drop(&mut self) {
        let raw = self.statement.raw.as_ptr();
        // SAFETY: `raw` is a live statement of this thread's connection. Resetting
        // ends the execution (its error, if any, was returned by `execute`), so
        // SQLite reads no bound value until the next step, and `execute` binds
        // every parameter again (or NULL) before that step.
        unsafe {
            ffi::sqlite3_reset(raw);
        }
        // The next bindings' values count as bound only once bound again.
        self.statement.execution += 1;
    }
}

/// The error SQLite reports for `code` on `connection`, as rusqlite reports it.
fn error(connection: &Connection, code: c_int) -> rusqlite::Error {
    // SAFETY: the handle is valid while `connection` is borrowed; `sqlite3_errmsg`
    // returns a NUL-terminated string valid until the next call on the connection,
    // copied here before any.
    let message = unsafe {
        let message = ffi::sqlite3_errmsg(connection.handle());
        (!message.is_null()).then(|| CStr::from_ptr(message).to_string_lossy().into_owned())
    };
    // The extended code names the constraint, where `code` may be the primary one.
    // SAFETY: as above.
    let extended = unsafe { ffi::sqlite3_extended_errcode(connection.handle()) };
    let code = if extended & 0xff == code & 0xff {
        extended
    } else {
        code
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b BLOB) STRICT")
            .unwrap();
        connection
    }

    fn rows(connection: &Connection) -> Vec<(i64, Option<String>, Option<Vec<u8>>)> {
        let mut statement = connection
            .prepare("SELECT id, a, b FROM t ORDER BY id")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn borrowed_values_are_stored_exactly_and_unbound_after_each_execution() {
        let connection = table();
        let mut statement =
            Statement::prepare(&connection, "INSERT INTO t VALUES (?1, ?2, ?3)").unwrap();
        for (id, text, blob) in [(1, "Grüße \u{0}x", &b"\x00\x01"[..]), (2, "", &b""[..])] {
            let buffer = (text.as_bytes().to_vec(), blob.to_vec());
            let mut bindings = statement.bindings();
            bindings.copy(1, ValueRef::Integer(id)).unwrap();
            bindings.borrow(2, ValueRef::Text(&buffer.0)).unwrap();
            bindings.borrow(3, ValueRef::Blob(&buffer.1)).unwrap();
            assert_eq!(bindings.execute().unwrap(), 1);
        }
        // Nothing bound: every parameter is NULL, the id comes from the rowid.
        assert_eq!(statement.bindings().execute().unwrap(), 1);
        // Only the text bound, after a failed execution that bound a blob: the blob
        // (its buffer gone) is NULL, not the earlier value.
        {
            let blob = b"gone".to_vec();
            let mut bindings = statement.bindings();
            bindings.copy(1, ValueRef::Integer(3)).unwrap();
            bindings.borrow(3, ValueRef::Blob(&blob)).unwrap();
            assert!(bindings.execute().is_err());
        }
        let text = b"only".to_vec();
        let mut bindings = statement.bindings();
        bindings.borrow(2, ValueRef::Text(&text)).unwrap();
        assert_eq!(bindings.execute().unwrap(), 1);
        assert_eq!(
            rows(&connection),
            vec![
                (1, Some("Grüße \u{0}x".to_owned()), Some(vec![0, 1])),
                (2, Some(String::new()), Some(Vec::new())),
                (3, None, None),
                (4, Some("only".to_owned()), None),
            ]
        );
    }

    #[test]
    fn errors_carry_the_extended_code_and_message() {
        let connection = table();
        let mut statement =
            Statement::prepare(&connection, "INSERT INTO t (id) VALUES (?1)").unwrap();
        let mut insert = |id| {
            let mut bindings = statement.bindings();
            bindings.copy(1, ValueRef::Integer(id)).unwrap();
            bindings.execute()
        };
        assert_eq!(insert(7).unwrap(), 1);
        let error = insert(7).unwrap_err();
        assert_eq!(
            error.sqlite_error().map(|error| error.extended_code),
            Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
        );
        assert_eq!(error.to_string(), "UNIQUE constraint failed: t.id");
        assert_eq!(rows(&connection), vec![(7, None, None)]);
        let error = Statement::prepare(&connection, "INSERT INTO missing VALUES (1)")
            .err()
            .expect("no such table");
        assert_eq!(error.to_string(), "no such table: missing");
    }
}
