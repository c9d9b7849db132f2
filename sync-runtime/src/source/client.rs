//! The one PostgreSQL client stack of data-sync: a `tokio-postgres` client on its own
//! current-thread runtime, behind blocking methods ([`Client`], [`Snapshot`]).
//!
//! Each method runs its future in one `block_on`, driving the connection's task
//! meanwhile; a connection that fails first returns its error (as the `postgres`
//! crate does, which is this same design made generic). The COPY stream of a full
//! sync is the reason for owning the loop: [`CopyStream`] takes many COPY messages
//! (rows) per `block_on` ([`Driver::fill`]) rather than entering the runtime once per
//! row, as `postgres::CopyOutReader` does. Rows of a query ([`Rows`]) stream in
//! PostgreSQL's binary format as they arrive, one `block_on` each; change capture
//! reads the log through this same interface (`pg_logical_slot_peek_binary_changes`)
//! since `tokio-postgres` has no replication protocol. See the README's decisions.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{self, BufRead, Read};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::Stream;
use tokio::runtime::Runtime;
use tokio_postgres::types::{BorrowToSql, ToSql};
use tokio_postgres::{
    CancelToken, CopyOutStream, Error, IsolationLevel, Row, RowStream, Statement, ToStatement,
    Transaction,
};

use crate::error::read_timeout_error;
use crate::filter::FilterSpec;

/// A connection's I/O task: it reads the socket and hands messages to the client.
type ConnectionTask = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// COPY data taken from the connection per `block_on`: a few hundred rows of the
/// reference table, little memory.
const FILL_BYTES: usize = 256 * 1024;

/// A connection to the source: a `tokio-postgres` client and the current-thread
/// runtime that drives it, behind blocking methods. Every PostgreSQL statement
/// data-sync runs goes through one of these; see the module documentation.
pub struct Client {
    /// Runs the connection's task and the client's futures.
    driver: Driver,
    /// Queries; they make progress only inside [`Driver::block_on`].
    client: tokio_postgres::Client,
    /// The `statement_timeout` of [`Client::snapshot`], whole milliseconds.
    statement_timeout: Option<u64>,
    /// A snapshot another transaction exported, which [`Client::snapshot`] imports.
    import: Option<String>,
}

impl Client {
    pub(crate) fn new(
        runtime: Runtime,
        client: tokio_postgres::Client,
        connection: ConnectionTask,
        read_timeout: Duration,
        statement_timeout: Option<u64>,
    ) -> Client {
        Client {
            driver: Driver {
                runtime,
                connection,
                closed: false,
                read_timeout,
            },
            client,
            statement_timeout,
            import: None,
        }
    }

    /// How long a wait for the server may last with nothing received
    /// (`--read-timeout`).
    pub(crate) fn read_timeout(&self) -> Duration {
        self.driver.read_timeout
    }

    /// Makes every later [`Client::snapshot`] read the snapshot `id` another
    /// transaction exported with `pg_export_snapshot()` (and keeps open), so that
    /// several readers see one state of the source; `None` for a snapshot of its own.
    pub(crate) fn import_snapshot(&mut self, id: Option<&str>) {
        self.import = id.map(str::to_owned);
    }

    /// Runs `sql`, one or more statements without parameters.
    ///
    /// # Errors
    ///
    /// The server's error, or the connection's.
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.driver.run(self.client.batch_execute(sql))
    }

    /// Prepares `sql`: its parameter and column types.
    ///
    /// # Errors
    ///
    /// The server's error, or the connection's.
    pub fn prepare(&mut self, sql: &str) -> Result<Statement, Error> {
        self.driver.run(self.client.prepare(sql))
    }

    /// Runs `sql` with `parameters` and returns every row.
    ///
    /// # Errors
    ///
    /// The server's error, or the connection's.
    pub fn query(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        self.driver.run(self.client.query(sql, parameters))
    }

    /// Runs `sql` with `parameters` and returns its one row.
    ///
    /// # Errors
    ///
    /// The server's error, the connection's, or an error when there is not exactly
    /// one row.
    pub fn query_one(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        self.driver.run(self.client.query_one(sql, parameters))
    }

    /// Runs `sql` with `parameters` and returns its row, if any.
    ///
    /// # Errors
    ///
    /// The server's error, the connection's, or an error when there is more than one
    /// row.
    pub fn query_opt(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        self.driver.run(self.client.query_opt(sql, parameters))
    }

    /// Runs `statement` (SQL text or a prepared statement) with `parameters` and
    /// streams its rows, read from the connection as they arrive (in PostgreSQL's
    /// binary format): how change capture reads a slot's changes.
    ///
    /// # Errors
    ///
    /// The server's error, or the connection's.
    pub(crate) fn query_raw<T, P, I>(
        &mut self,
        statement: &T,
        parameters: I,
    ) -> Result<Rows<'_>, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        let stream = self
            .driver
            .run(self.client.query_raw(statement, parameters))?;
        Ok(Rows {
            driver: &mut self.driver,
            stream: Box::pin(stream),
        })
    }

    /// A token that cancels the statement this connection is running, from any
    /// thread (see [`SourceConfig::cancel`](crate::SourceConfig)).
    pub(crate) fn cancel_token(&self) -> CancelToken {
        self.client.cancel_token()
    }

    /// Starts the one read-only snapshot a run reads everything through.
    ///
    /// Row-level security is off for it (as pg_dump reads): a role that a policy
    /// would filter gets an error, never a subset of the rows (see `source::guard`).
    ///
    /// The session settings that decide a text form are pinned for it, so that a
    /// server, database or role default cannot change what is written:
    /// `IntervalStyle` decides the text of an `interval` (see `value::PgText`). A
    /// `SQL_ASCII` database stores text bytes unchecked, and PostgreSQL refuses to
    /// send invalid UTF-8 to a UTF8 client without naming the row or column; such a
    /// database is read with `client_encoding = SQL_ASCII`, so the bytes arrive as
    /// stored and the decoder names the key and column of a value that is not UTF-8.
    ///
    /// `--statement-timeout` is set here too, with `SET LOCAL`: it then holds for
    /// every statement of the run, also behind a transaction-pooling proxy, where a
    /// session setting could land on another client's connection.
    ///
    /// A mapping's filter reads its values from settings (see `FilterSpec`): `filter`
    /// (setting name, value) binds them, local to the transaction, before anything
    /// is read.
    pub(crate) fn snapshot(&mut self, filter: &[(&str, String)]) -> Result<Snapshot<'_>, Error> {
        let Client {
            driver,
            client,
            statement_timeout,
            import,
        } = self;
        let transaction = driver.run(
            client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start(),
        )?;
        let mut snapshot = Snapshot {
            driver,
            transaction,
        };
        // Before any query of the transaction, as PostgreSQL requires.
        if let Some(id) = import {
            snapshot.batch_execute(&import_snapshot(id))?;
        }
        snapshot.batch_execute(&snapshot_settings(*statement_timeout))?;
        let encoding: String = snapshot
            .query_one("SELECT current_setting('server_encoding')", &[])?
            .get(0);
        if encoding == "SQL_ASCII" {
            snapshot.batch_execute("SET LOCAL client_encoding = 'SQL_ASCII'")?;
        }
        if !filter.is_empty() {
            snapshot.bind_settings(filter)?;
        }
        Ok(snapshot)
    }
}

/// A `REPEATABLE READ READ ONLY` transaction on a [`Client`]: what a run reads the
/// source through ([`Client::snapshot`]). Dropped without [`Snapshot::commit`], it
/// rolls back.
pub(crate) struct Snapshot<'a> {
    driver: &'a mut Driver,
    transaction: Transaction<'a>,
}

impl Snapshot<'_> {
    /// As [`Client::batch_execute`], in the snapshot.
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.driver.run(self.transaction.batch_execute(sql))
    }

    /// Runs `sql` with `parameters`; returns the rows it changed.
    pub(crate) fn execute(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        self.driver.run(self.transaction.execute(sql, parameters))
    }

    /// Binds `settings` (name, value) as the snapshot's own settings, in one
    /// statement with the values as parameters: how the filter's parameters and a
    /// fan-out selection's values reach the queries that read them.
    pub(crate) fn bind_settings(&mut self, settings: &[(&str, String)]) -> Result<(), Error> {
        let (names, values): (Vec<&str>, Vec<&str>) = settings
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .unzip();
        self.execute(FilterSpec::BIND, &[&names, &values])
            .map(|_| ())
    }

    /// As [`Client::prepare`], in the snapshot.
    pub(crate) fn prepare(&mut self, sql: &str) -> Result<Statement, Error> {
        self.driver.run(self.transaction.prepare(sql))
    }

    /// As [`Client::query_one`], in the snapshot.
    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        self.driver.run(self.transaction.query_one(sql, parameters))
    }

    /// As [`Client::query_opt`], in the snapshot.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        self.driver.run(self.transaction.query_opt(sql, parameters))
    }

    /// Runs the prepared `statement` with `parameters` and streams its rows, read
    /// from the connection as they arrive (in PostgreSQL's binary format).
    pub(crate) fn query_raw<T, P, I>(
        &mut self,
        statement: &T,
        parameters: I,
    ) -> Result<Rows<'_>, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        let stream = self
            .driver
            .run(self.transaction.query_raw(statement, parameters))?;
        Ok(Rows {
            driver: self.driver,
            stream: Box::pin(stream),
        })
    }

    /// Runs `COPY .. TO STDOUT` and returns its data as a byte stream.
    pub(crate) fn copy_out(&mut self, sql: &str) -> Result<CopyStream<'_>, Error> {
        let stream = self.driver.run(self.transaction.copy_out(sql))?;
        Ok(CopyStream::new(self.driver, stream))
    }

    /// Commits (ends) the snapshot.
    pub(crate) fn commit(self) -> Result<(), Error> {
        let Snapshot {
            driver,
            transaction,
        } = self;
        driver.run(transaction.commit())
    }
}

/// The rows of [`Snapshot::query_raw`], one at a time.
pub(crate) struct Rows<'a> {
    driver: &'a mut Driver,
    stream: Pin<Box<RowStream>>,
}

impl Rows<'_> {
    /// The next row, or `None` after the last.
    pub(crate) fn next(&mut self) -> Result<Option<Row>, Error> {
        let stream = &mut self.stream;
        self.driver.run(poll_fn(|cx| {
            stream.as_mut().poll_next(cx).map(Option::transpose)
        }))
    }
}

/// `SET TRANSACTION SNAPSHOT` of an exported snapshot. The identifier comes from the
/// server's `pg_export_snapshot()` (hexadecimal digits and dashes), never from a
/// user; anything else is dropped, so the statement fails rather than carrying other
/// text.
fn import_snapshot(id: &str) -> String {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    format!("SET TRANSACTION SNAPSHOT '{id}'")
}

/// The `SET LOCAL` statements of [`Client::snapshot`]. The timeout is an integer,
/// never text from the user: nothing to quote.
fn snapshot_settings(statement_timeout: Option<u64>) -> String {
    let mut settings = format!(
        "SET LOCAL IntervalStyle = 'postgres'; {}",
        super::guard::ROW_SECURITY_OFF
    );
    if let Some(milliseconds) = statement_timeout {
        settings.push_str(&format!("; SET LOCAL statement_timeout = {milliseconds}"));
    }
    settings
}

/// The runtime and the connection's task of a [`Client`].
struct Driver {
    runtime: Runtime,
    connection: ConnectionTask,
    /// Whether the connection's task has ended (it is not polled again).
    closed: bool,
    /// How long a `block_on` may wait with nothing from the server (see
    /// `SourceConfig::with_read_timeout`).
    read_timeout: Duration,
}

impl Driver {
    /// Runs `future` to completion, driving the connection meanwhile; a connection
    /// that fails first returns its error, and a server that sends nothing for the
    /// read timeout a timeout error.
    fn block_on<F: Future>(&mut self, future: F) -> Result<F::Output, Error> {
        let mut future = pin!(future);
        let Driver {
            runtime,
            connection,
            closed,
            read_timeout,
        } = self;
        runtime.block_on(async {
            let mut deadline = pin!(tokio::time::sleep(*read_timeout));
            poll_fn(|cx| {
                if let Poll::Ready(Err(error)) = poll_connection(connection, closed, cx) {
                    return Poll::Ready(Err(error));
                }
                if let Poll::Ready(output) = future.as_mut().poll(cx) {
                    return Poll::Ready(Ok(output));
                }
                deadline
                    .as_mut()
                    .poll(cx)
                    .map(|()| Err(read_timeout_error()))
            })
            .await
        })
    }

    /// [`Driver::block_on`] for a future of the client: its error or the
    /// connection's.
    fn run<T>(&mut self, future: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        self.block_on(future).and_then(|result| result)
    }

    /// Appends COPY messages of `stream` to `queue` until about [`FILL_BYTES`] are
    /// there or the stream ends, in one `block_on`; `true` when it has ended.
    fn fill(
        &mut self,
        mut stream: Pin<&mut CopyOutStream>,
        queue: &mut VecDeque<Bytes>,
    ) -> Result<bool, Error> {
        let Driver {
            runtime,
            connection,
            closed,
            read_timeout,
        } = self;
        let mut filled = 0;
        runtime.block_on(async {
            let mut deadline = pin!(tokio::time::sleep(*read_timeout));
            poll_fn(|cx| {
                loop {
                    if let Poll::Ready(Err(error)) = poll_connection(connection, closed, cx) {
                        return Poll::Ready(Err(error));
                    }
                    let mut progress = false;
                    loop {
                        match stream.as_mut().poll_next(cx) {
                            Poll::Ready(Some(Ok(bytes))) => {
                                progress = true;
                                filled += bytes.len();
                                queue.push_back(bytes);
                                if filled >= FILL_BYTES {
                                    return Poll::Ready(Ok(false));
                                }
                            }
                            Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(error)),
                            Poll::Ready(None) => return Poll::Ready(Ok(true)),
                            Poll::Pending => break,
                        }
                    }
                    // The connection may have more decoded already: poll it again while
                    // that gives rows, wait for the socket otherwise, as long as the
                    // read timeout allows.
                    if progress {
                        let now = tokio::time::Instant::now();
                        deadline.as_mut().reset(now + *read_timeout);
                    } else {
                        return deadline
                            .as_mut()
                            .poll(cx)
                            .map(|()| Err(read_timeout_error()));
                    }
                }
            })
            .await
        })
    }
}

/// Polls the connection's task unless it has ended; its error, once.
fn poll_connection(
    connection: &mut ConnectionTask,
    closed: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Error>> {
    if *closed {
        return Poll::Ready(Ok(()));
    }
    let poll = connection.as_mut().poll(cx);
    if poll.is_ready() {
        *closed = true;
    }
    poll
}

/// The rows of a `COPY .. TO STDOUT` as a byte stream, taken from the connection in
/// chunks of many messages (see [`Driver::fill`]); errors are `io::Error`s wrapping
/// the `tokio_postgres::Error`, as `postgres::CopyOutReader` gives them.
pub(crate) struct CopyStream<'a> {
    driver: &'a mut Driver,
    stream: Pin<Box<CopyOutStream>>,
    queue: VecDeque<Bytes>,
    ended: bool,
}

impl<'a> CopyStream<'a> {
    fn new(driver: &'a mut Driver, stream: CopyOutStream) -> CopyStream<'a> {
        CopyStream {
            driver,
            stream: Box::pin(stream),
            queue: VecDeque::new(),
            ended: false,
        }
    }
}

impl Read for CopyStream<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let length = available.len().min(buffer.len());
        buffer[..length].copy_from_slice(&available[..length]);
        self.consume(length);
        Ok(length)
    }
}

impl BufRead for CopyStream<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        loop {
            while self.queue.front().is_some_and(Bytes::is_empty) {
                self.queue.pop_front();
            }
            if !self.queue.is_empty() || self.ended {
                break;
            }
            self.ended = self
                .driver
                .fill(self.stream.as_mut(), &mut self.queue)
                .map_err(io::Error::other)?;
        }
        Ok(self.queue.front().map_or(&[], |bytes| &bytes[..]))
    }

    fn consume(&mut self, amount: usize) {
        if let Some(front) = self.queue.front_mut() {
            front.advance(amount);
            if front.is_empty() {
                self.queue.pop_front();
            }
        }
    }
}
