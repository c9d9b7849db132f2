//! The PostgreSQL side: connection settings (URL or key=value, `PG*` variables,
//! `.pgpass`), one `REPEATABLE READ READ ONLY` snapshot per run, and the reader of
//! `COPY .. TO STDOUT (FORMAT binary)` that hands each row to the generated decoder.

use std::fmt;
use std::io::{self, BufRead, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use postgres::types::Type;
use postgres::{Client, Config, IsolationLevel, NoTls, Transaction};

use crate::error::{Error, Result};
use crate::value::{BoxError, Decode};

/// Where to read from: a parsed connection string completed from the standard
/// libpq environment (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`,
/// `PGPASSFILE`, `PGCONNECT_TIMEOUT`, `PGAPPNAME`) and `.pgpass`.
///
/// Its `Debug` output never shows the password.
#[derive(Clone)]
pub struct SourceConfig {
    config: Config,
}

impl SourceConfig {
    /// Parses a libpq URL (`postgresql://user@host:5432/db`) or key=value string
    /// (`host=localhost dbname=app`); what it leaves out comes from the `PG*`
    /// variables, then `.pgpass`, then libpq's defaults. An empty string uses the
    /// environment alone.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the string does not parse; the message never repeats it,
    /// since it may hold a password.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_with_env(text, &|name| std::env::var(name).ok())
    }

    fn parse_with_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let mut config = if text.trim().is_empty() {
            Config::new()
        } else {
            Config::from_str(text).map_err(|error| Error::Config {
                message: format!(
                    "cannot parse the connection string: {}",
                    redact_error(&error)
                ),
            })?
        };
        if config.get_hosts().is_empty() {
            let host = env("PGHOST").unwrap_or_else(default_host);
            for host in host.split(',') {
                config.host(host);
            }
        }
        if config.get_ports().is_empty() {
            if let Some(port) = env("PGPORT") {
                let port = port.parse::<u16>().map_err(|_| Error::Config {
                    message: format!("PGPORT `{port}` is not a port number"),
                })?;
                config.port(port);
            }
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".to_owned());
            config.user(&user);
        }
        if config.get_dbname().is_none() {
            if let Some(dbname) = env("PGDATABASE") {
                config.dbname(&dbname);
            }
        }
        if config.get_application_name().is_none() {
            config.application_name(&env("PGAPPNAME").unwrap_or_else(|| "data-sync".to_owned()));
        }
        if config.get_connect_timeout().is_none() {
            let seconds = env("PGCONNECT_TIMEOUT")
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(30);
            config.connect_timeout(Duration::from_secs(seconds));
        }
        if config.get_password().is_none() {
            if let Some(password) = env("PGPASSWORD") {
                config.password(password);
            } else if let Some(password) = pgpass_password(&config, env) {
                config.password(password);
            }
        }
        Ok(SourceConfig { config })
    }

    /// `host:port/database`, for messages: never the user's password.
    pub fn endpoint(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let database = self
            .config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or_default();
        format!("{host}:{port}/{database}")
    }

    /// Opens a connection.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] when PostgreSQL cannot be reached or refuses the login.
    pub fn connect(&self) -> Result<Client> {
        self.config.connect(NoTls).map_err(|source| Error::Connect {
            endpoint: self.endpoint(),
            source,
        })
    }
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("endpoint", &self.endpoint())
            .field("user", &self.config.get_user())
            .field(
                "password",
                &self.config.get_password().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// libpq's default: the Debian socket directory when a server listens there, else
/// localhost.
fn default_host() -> String {
    if Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql".to_owned()
    } else {
        "localhost".to_owned()
    }
}

/// A parse error of the postgres crate, which does not echo the input.
fn redact_error(error: &postgres::Error) -> String {
    error.to_string()
}

/// The password `.pgpass` (or `PGPASSFILE`) gives for this host, port, database and
/// user, as libpq reads it: the first matching line, `*` matching anything, `\:` and
/// `\\` escaped.
fn pgpass_password(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let path = match env("PGPASSFILE") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env("HOME")?).join(".pgpass"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(_)) | None => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default().to_owned();
    let database = config
        .get_dbname()
        .map_or_else(|| user.clone(), str::to_owned);
    let wanted = [
        host.as_str(),
        port.as_str(),
        database.as_str(),
        user.as_str(),
    ];
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = split_pgpass_line(line);
            if fields.len() != 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, wanted)| field == "*" || field == wanted);
            matches.then(|| fields[4].clone())
        })
}

fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        match character {
            '\\' => {
                if let Some(escaped) = characters.next() {
                    fields.last_mut().expect("non-empty").push(escaped);
                }
            }
            ':' => fields.push(String::new()),
            _ => fields.last_mut().expect("non-empty").push(character),
        }
    }
    fields
}

/// Starts the one read-only snapshot a run reads everything through.
pub(crate) fn snapshot(
    client: &mut Client,
) -> std::result::Result<Transaction<'_>, postgres::Error> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
}

/// One row of the binary COPY stream, borrowed from the reader's buffer.
pub struct SourceRow<'a> {
    types: &'a [Type],
    buffer: &'a [u8],
    fields: &'a [Option<Range<usize>>],
}

/// A field that failed to decode: its position, and why.
#[derive(Debug)]
pub struct DecodeError {
    pub(crate) field: usize,
    pub(crate) cause: BoxError,
}

impl SourceRow<'_> {
    /// Decodes field `index` as `T`.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the field when the value cannot be read as `T`.
    pub fn get<T: Decode>(&self, index: usize) -> std::result::Result<T, DecodeError> {
        T::decode(&self.types[index], self.raw(index)).map_err(|cause| DecodeError {
            field: index,
            cause,
        })
    }

    /// The raw bytes of field `index`, `None` for NULL.
    pub(crate) fn raw(&self, index: usize) -> Option<&[u8]> {
        self.fields[index].clone().map(|range| &self.buffer[range])
    }

    /// Field `index` as text for a message (a key value): numbers and text as they
    /// are, anything else as hex.
    pub(crate) fn display(&self, index: usize) -> String {
        let ty = &self.types[index];
        let Some(raw) = self.raw(index) else {
            return "NULL".to_owned();
        };
        let number = match *ty {
            Type::INT2 => <i16 as Decode>::decode(ty, Some(raw))
                .map(|v| v.to_string())
                .ok(),
            Type::INT4 => <i32 as Decode>::decode(ty, Some(raw))
                .map(|v| v.to_string())
                .ok(),
            Type::INT8 => <i64 as Decode>::decode(ty, Some(raw))
                .map(|v| v.to_string())
                .ok(),
            _ => None,
        };
        if let Some(number) = number {
            return number;
        }
        match std::str::from_utf8(raw) {
            Ok(text) if !text.chars().any(char::is_control) => format!("{text:?}"),
            _ => raw.iter().map(|byte| format!("{byte:02x}")).collect(),
        }
    }
}

const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Reads `COPY .. (FORMAT binary)` tuples from a stream into a reused buffer.
pub(crate) struct CopyReader<R> {
    reader: R,
    types: Vec<Type>,
    buffer: Vec<u8>,
    fields: Vec<Option<Range<usize>>>,
}

impl<R: BufRead> CopyReader<R> {
    /// Reads and checks the stream header.
    pub(crate) fn new(mut reader: R, types: Vec<Type>) -> io::Result<Self> {
        let mut signature = [0u8; 11];
        reader.read_exact(&mut signature)?;
        if &signature != COPY_SIGNATURE {
            return Err(invalid("not a binary COPY stream"));
        }
        let _flags = read_i32(&mut reader)?;
        let extension_length = read_i32(&mut reader)?;
        let extension_length = u64::try_from(extension_length)
            .map_err(|_| invalid("negative header extension length"))?;
        io::copy(&mut (&mut reader).take(extension_length), &mut io::sink())?;
        let fields = Vec::with_capacity(types.len());
        Ok(CopyReader {
            reader,
            types,
            buffer: Vec::with_capacity(4096),
            fields,
        })
    }

    /// The next row, or `None` at the end of the stream.
    pub(crate) fn next_row(&mut self) -> io::Result<Option<SourceRow<'_>>> {
        let count = read_i16(&mut self.reader)?;
        if count == -1 {
            return Ok(None);
        }
        if usize::try_from(count).ok() != Some(self.types.len()) {
            return Err(invalid(&format!(
                "a row has {count} fields, the query {}",
                self.types.len()
            )));
        }
        self.buffer.clear();
        self.fields.clear();
        for _ in 0..self.types.len() {
            let length = read_i32(&mut self.reader)?;
            if length < 0 {
                self.fields.push(None);
                continue;
            }
            let start = self.buffer.len();
            let length = usize::try_from(length).expect("non-negative");
            self.buffer.resize(start + length, 0);
            self.reader.read_exact(&mut self.buffer[start..])?;
            self.fields.push(Some(start..start + length));
        }
        Ok(Some(SourceRow {
            types: &self.types,
            buffer: &self.buffer,
            fields: &self.fields,
        }))
    }
}

fn read_i16(reader: &mut impl Read) -> io::Result<i16> {
    let mut bytes = [0u8; 2];
    reader.read_exact(&mut bytes)?;
    Ok(i16::from_be_bytes(bytes))
}

fn read_i32(reader: &mut impl Read) -> io::Result<i32> {
    let mut bytes = [0u8; 4];
    reader.read_exact(&mut bytes)?;
    Ok(i32::from_be_bytes(bytes))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn environment_fills_what_the_string_leaves_out() {
        let config = SourceConfig::parse_with_env(
            "dbname=app",
            &env(&[
                ("PGHOST", "db.internal"),
                ("PGPORT", "6543"),
                ("PGUSER", "sync"),
            ]),
        )
        .unwrap();
        assert_eq!(config.endpoint(), "db.internal:6543/app");
        assert_eq!(config.config.get_user(), Some("sync"));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let config =
            SourceConfig::parse_with_env("postgresql://u:s3cr3t-pw@h/d", &env(&[])).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cr3t-pw"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        let from_env =
            SourceConfig::parse_with_env("host=h", &env(&[("PGPASSWORD", "envpw")])).unwrap();
        assert_eq!(from_env.config.get_password(), Some(&b"envpw"[..]));
        assert!(!format!("{from_env:?}").contains("envpw"));
    }

    #[test]
    fn bad_string_error_does_not_echo_it() {
        let error = SourceConfig::parse_with_env("host=h password=hunter2 bogus", &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.starts_with("source configuration"), "{error}");
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let dir = std::env::temp_dir().join(format!("data-sync-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:sync:wrong\nh:5432:*:sync:pa\\:ss\n*:*:*:*:fallback\n",
        )
        .unwrap();
        let file_text: &'static str = Box::leak(file.display().to_string().into_boxed_str());
        let pairs: &'static [(&str, &str)] =
            Box::leak(vec![("PGPASSFILE", file_text), ("PGUSER", "sync")].into_boxed_slice());
        let config = SourceConfig::parse_with_env("host=h dbname=app", &env(pairs)).unwrap();
        assert_eq!(config.config.get_password(), Some(&b"pa:ss"[..]));
        let config = SourceConfig::parse_with_env("host=x dbname=app", &env(pairs)).unwrap();
        assert_eq!(config.config.get_password(), Some(&b"fallback"[..]));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reads_a_binary_copy_stream() {
        let mut stream = COPY_SIGNATURE.to_vec();
        stream.extend(0i32.to_be_bytes());
        stream.extend(0i32.to_be_bytes());
        stream.extend(2i16.to_be_bytes());
        stream.extend(8i32.to_be_bytes());
        stream.extend(42i64.to_be_bytes());
        stream.extend((-1i32).to_be_bytes());
        stream.extend((-1i16).to_be_bytes());
        let mut reader = CopyReader::new(&stream[..], vec![Type::INT8, Type::TEXT]).unwrap();
        let row = reader.next_row().unwrap().unwrap();
        assert_eq!(row.get::<i64>(0).unwrap(), 42);
        assert_eq!(row.get::<Option<String>>(1).unwrap(), None);
        assert!(row.get::<String>(1).is_err());
        assert_eq!(row.display(0), "42");
        assert!(reader.next_row().unwrap().is_none());
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let mut stream = COPY_SIGNATURE.to_vec();
        stream.extend(0i32.to_be_bytes());
        stream.extend(0i32.to_be_bytes());
        stream.extend(1i16.to_be_bytes());
        stream.extend(8i32.to_be_bytes());
        stream.extend([0, 0]);
        let mut reader = CopyReader::new(&stream[..], vec![Type::INT8]).unwrap();
        assert!(reader.next_row().is_err());
        assert!(CopyReader::new(&b"garbage-garbage-garbage"[..], vec![]).is_err());
    }
}
