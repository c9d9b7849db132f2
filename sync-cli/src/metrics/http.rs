//! The smallest HTTP/1.1 server that answers a scraper: one thread accepting one
//! connection at a time, `GET /metrics` (or `HEAD`) answered with the metrics, any
//! other path 404, any other method 405, and the connection closed after each
//! answer. A client that sends nothing is dropped after [`CLIENT_TIMEOUT`], so it
//! holds up the next scrape at most that long.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::Metrics;

/// How long a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest request head read; a longer one is answered 431.
const MAX_HEAD: usize = 16 * 1024;

/// The content type of the text format Prometheus asks for by default.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the older text format, for clients that do not ask for
/// OpenMetrics (the body is the same: the older parsers read it).
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `address` and serves `metrics` there on a thread of its own, for the rest
/// of the process; the address bound (its port, when `address` asked for port 0).
///
/// # Errors
///
/// The address does not resolve or cannot be bound.
pub(super) fn serve(address: &str, metrics: Arc<Metrics>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(address)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".to_owned())
        .spawn(move || {
            for stream in listener.incoming() {
                let result = stream.and_then(|stream| answer(stream, &metrics));
                if let Err(error) = result {
                    tracing::debug!(error = %error, "metrics request failed");
                }
            }
        })?;
    Ok(bound)
}

/// Reads one request from `stream` and answers it.
fn answer(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let plain = [("Content-Type", TEXT)];
    let Some(head) = read_head(&mut stream)? else {
        return respond(
            &mut stream,
            "431 Request Header Fields Too Large",
            &plain,
            "",
            true,
        );
    };
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let (method, target) = match request.split(' ').collect::<Vec<_>>()[..] {
        [method, target, version] if version.starts_with("HTTP/1.") => (method, target),
        _ => {
            return respond(
                &mut stream,
                "400 Bad Request",
                &plain,
                "bad request\n",
                true,
            );
        }
    };
    let with_body = match method {
        "GET" => true,
        "HEAD" => false,
        _ => {
            let allow = [("Content-Type", TEXT), ("Allow", "GET, HEAD")];
            return respond(
                &mut stream,
                "405 Method Not Allowed",
                &allow,
                "only GET and HEAD\n",
                true,
            );
        }
    };
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return respond(
            &mut stream,
            "404 Not Found",
            &plain,
            "not found: try /metrics\n",
            with_body,
        );
    }
    let openmetrics = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("accept")
                && value.contains("application/openmetrics-text")
        })
    });
    let content_type = if openmetrics { OPENMETRICS } else { TEXT };
    respond(
        &mut stream,
        "200 OK",
        &[("Content-Type", content_type)],
        &metrics.encode(),
        with_body,
    )
}

/// The request head (up to the blank line), or `None` when it is longer than
/// [`MAX_HEAD`].
fn read_head(stream: &mut TcpStream) -> io::Result<Option<String>> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            // The client closed before the end of its head: answer what came.
            break;
        }
        head.extend_from_slice(&buffer[..read]);
        // A body (none is expected) is never read: the answer closes the connection.
        if let Some(end) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            head.truncate(end + 4);
        }
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

/// Writes a whole response: the status line's code and reason, `headers`, the
/// length, and the body unless `with_body` is false (`HEAD`, which gets the length
/// of the body it would have had).
fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &str,
    with_body: bool,
) -> io::Result<()> {
    let mut response = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    if with_body {
        response.push_str(body);
    }
    stream.write_all(response.as_bytes())?;
    stream.flush()
}
