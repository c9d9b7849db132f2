//! The reader connection of a full sync (issue 7): a `tokio-postgres` client on its
//! own current-thread runtime, so that the binary COPY stream is read in a few
//! `block_on` calls rather than one per row, as the synchronous `postgres` client
//! does (its `CopyOutReader` enters the runtime for every COPY message, and a message
//! is a row).
//!
//! It behaves as a `postgres::Client`: the same `Config` and TLS connector (see
//! [`SourceConfig::connect_reader`](crate::config::SourceConfig::connect_reader)),
//! the connection driven inside each `block_on` with its error, if it fails, being
//! the one returned (as the `postgres` crate does), and the same snapshot settings
//! as [`super::snapshot`].

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{self, BufRead, Read};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::Stream;
use tokio::runtime::Runtime;
use tokio_postgres::{CopyOutStream, Error, IsolationLevel, Transaction};

use crate::source::config::SourceConfig;

/// A connection's I/O task: it reads the socket and hands messages to the client.
type ConnectionTask = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// COPY data taken from the connection per `block_on`: a few hundred rows of the
/// reference table, little memory.
const FILL_BYTES: usize = 256 * 1024;

/// A source connection for a full sync's reader thread.
pub(crate) struct ReaderClient {
    /// Runs the connection's task and the client's futures.
    pub(crate) driver: Driver,
    /// Queries; they make progress only inside [`Driver::block_on`].
    pub(crate) client: tokio_postgres::Client,
    /// The `statement_timeout` of [`snapshot`], whole milliseconds.
    pub(crate) statement_timeout: Option<u64>,
}

impl ReaderClient {
    pub(crate) fn new(
        runtime: Runtime,
        client: tokio_postgres::Client,
        connection: ConnectionTask,
        source: &SourceConfig,
    ) -> ReaderClient {
        ReaderClient {
            driver: Driver {
                runtime,
                connection,
                closed: false,
                read_timeout: source.read_timeout(),
            },
            client,
            statement_timeout: source.statement_timeout(),
        }
    }
}

/// The runtime and the connection's task of a [`ReaderClient`].
pub(crate) struct Driver {
    runtime: Runtime,
    connection: ConnectionTask,
    /// Whether the connection's task has ended (it is not polled again).
    closed: bool,
    /// How long a `block_on` may wait with nothing from the server (see
    /// [`SourceConfig::with_read_timeout`]).
    read_timeout: Duration,
}

/// The error of a wait that reached the read timeout: the driver's own timeout
/// error, as the `postgres` crate makes it for its timeouts (see
/// [`is_read_timeout`]).
fn read_timeout_error() -> Error {
    Error::__private_api_timeout()
}

/// Whether `error` is a wait that reached the read timeout.
pub(crate) fn is_read_timeout(error: &Error) -> bool {
    error.as_db_error().is_none() && error.to_string() == read_timeout_error().to_string()
}

impl Driver {
    /// Runs `future` to completion, driving the connection meanwhile; a connection
    /// that fails first returns its error, and a server that sends nothing for the
    /// read timeout a timeout error.
    pub(crate) fn block_on<F: Future>(&mut self, future: F) -> Result<F::Output, Error> {
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
    pub(crate) fn run<T>(
        &mut self,
        future: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
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

/// [`super::snapshot`] on the reader's connection: the same transaction and
/// settings.
pub(crate) async fn snapshot<'c>(
    client: &'c mut tokio_postgres::Client,
    statement_timeout: Option<u64>,
    filter: &[(&str, String)],
) -> Result<Transaction<'c>, Error> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    transaction
        .batch_execute(&super::snapshot_settings(statement_timeout))
        .await?;
    let encoding: String = transaction
        .query_one("SELECT current_setting('server_encoding')", &[])
        .await?
        .get(0);
    if encoding == "SQL_ASCII" {
        transaction
            .batch_execute("SET LOCAL client_encoding = 'SQL_ASCII'")
            .await?;
    }
    if !filter.is_empty() {
        let (names, values) = super::filter_parameters(filter);
        transaction
            .execute(super::BIND_FILTER, &[&names, &values])
            .await?;
    }
    Ok(transaction)
}

/// The rows of a `COPY .. TO STDOUT` as a byte stream, taken from the connection in
/// chunks of many messages (see [`Driver::fill`]); errors are `io::Error`s wrapping
/// the `postgres::Error`, as `postgres::CopyOutReader` gives them.
pub(crate) struct CopyStream<'a> {
    driver: &'a mut Driver,
    stream: Pin<Box<CopyOutStream>>,
    queue: VecDeque<Bytes>,
    ended: bool,
}

impl<'a> CopyStream<'a> {
    pub(crate) fn new(driver: &'a mut Driver, stream: CopyOutStream) -> CopyStream<'a> {
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
