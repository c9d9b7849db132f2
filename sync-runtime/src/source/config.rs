//! Where to read from: a connection string (libpq URL or key=value) completed from
//! the standard `PG*` variables and `.pgpass`, a password file, and TLS settings
//! (`sslmode`, `sslrootcert`) with the libpq meanings.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{CancelToken, Config, NoTls, Socket};

use crate::error::{Error, Result};
use crate::source::client::Client;
use crate::source::tls::Unverified;

/// A TLS setup error as the error the user sees.
fn tls_error(error: openssl::error::ErrorStack) -> Error {
    Error::Config {
        message: format!("TLS setup: {error}"),
    }
}

/// Where to read from: a parsed connection string completed from the standard
/// libpq environment (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`,
/// `PGPASSFILE`, `PGCONNECT_TIMEOUT`, `PGAPPNAME`) and `.pgpass`.
///
/// Its `Debug` output never shows the password.
#[derive(Clone)]
pub struct SourceConfig {
    config: Config,
    tls: Tls,
    /// `statement_timeout` of the run's snapshot transaction, whole milliseconds.
    statement_timeout: Option<u64>,
    /// How long the source may send nothing while the run waits for it.
    read_timeout: Duration,
    /// The connections runs gave back for the next runs (shared by the clones);
    /// `None`: every run connects anew (see [`SourceConfig::reusing_connections`]).
    idle: Option<Arc<Mutex<Vec<Client>>>>,
}

/// The read timeout unless `--read-timeout` says otherwise: longer than any query of
/// a run should take to send its first row, short of a stalled run going unnoticed.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// TCP keepalives unless the connection string sets them (`keepalives_idle`,
/// `keepalives_interval`, `keepalives_retries`): a peer that is gone is noticed
/// within about a minute, not the two hours of the system default.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVES_RETRIES: u32 = 3;

/// libpq's `sslmode`, all five of them (the postgres crate knows only three).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate (the default).
    Prefer,
    /// Always TLS, without checking the server's certificate.
    Require,
    /// Always TLS, with a certificate signed by the root certificate.
    VerifyCa,
    /// [`SslMode::VerifyCa`], and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// What the driver does at connect: it knows only disable, prefer and require;
    /// data-sync's own TLS connector does the certificate checks of the verify modes.
    fn for_driver(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

impl FromStr for SslMode {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "disable" => Ok(SslMode::Disable),
            "allow" | "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(Error::Config {
                message: format!(
                    "sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
                ),
            }),
        }
    }
}

/// The TLS settings taken out of the connection string and the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tls {
    mode: SslMode,
    /// `sslrootcert`: a PEM file of trusted roots, or `system` for the system store.
    root_certificate: Option<PathBuf>,
}

/// The connection parameters this module handles itself rather than the postgres
/// crate: libpq's TLS keys the crate does not know.
const TLS_KEYS: [&str; 2] = ["sslmode", "sslrootcert"];

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
        check_url_credentials(text)?;
        let (text, tls_parameters) = take_parameters(text, &TLS_KEYS)?;
        let tls_parameter = |key: &str| {
            tls_parameters
                .iter()
                .rev()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        };
        let tls = Tls {
            mode: tls_parameter("sslmode")
                .or_else(|| env("PGSSLMODE"))
                .map_or(Ok(SslMode::Prefer), |mode| mode.parse())?,
            root_certificate: tls_parameter("sslrootcert")
                .or_else(|| env("PGSSLROOTCERT"))
                .map(PathBuf::from)
                .or_else(|| {
                    let default = PathBuf::from(env("HOME")?).join(".postgresql/root.crt");
                    default.exists().then_some(default)
                }),
        };
        let mut config = if text.trim().is_empty() {
            Config::new()
        } else {
            Config::from_str(&text).map_err(|error| Error::Config {
                message: format!(
                    "cannot parse the connection string: {}",
                    redact_error(&error, &text)
                ),
            })?
        };
        if config.get_hosts().is_empty() {
            let host = env("PGHOST").unwrap_or_else(default_host);
            for host in host.split(',') {
                config.host(host);
            }
        }
        if config.get_ports().is_empty()
            && let Some(port) = env("PGPORT")
        {
            let port = port.parse::<u16>().map_err(|_| Error::Config {
                message: format!("PGPORT `{port}` is not a port number"),
            })?;
            config.port(port);
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".to_owned());
            config.user(&user);
        }
        if config.get_dbname().is_none()
            && let Some(dbname) = env("PGDATABASE")
        {
            config.dbname(&dbname);
        }
        if config.get_application_name().is_none() {
            config.application_name(env("PGAPPNAME").unwrap_or_else(|| "data-sync".to_owned()));
        }
        if config.get_connect_timeout().is_none() {
            let seconds = env("PGCONNECT_TIMEOUT")
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(30);
            config.connect_timeout(Duration::from_secs(seconds));
        }
        // The driver's own default idle time is the system's two hours.
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(KEEPALIVES_IDLE);
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(KEEPALIVES_INTERVAL);
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(KEEPALIVES_RETRIES);
        }
        if config.get_password().is_none() {
            if let Some(password) = env("PGPASSWORD") {
                config.password(password);
            } else if let Some(password) = pgpass_password(&config, env) {
                config.password(password);
            }
        }
        Ok(SourceConfig {
            config,
            tls,
            statement_timeout: None,
            read_timeout: DEFAULT_READ_TIMEOUT,
            idle: None,
        })
    }

    /// Reads the password from the first line of `path`, overriding any other source
    /// of it (`--password-file`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read; [`Error::Config`] when it is empty.
    pub fn with_password_file(mut self, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            return Err(Error::Config {
                message: format!("password file {} is empty", path.display()),
            });
        }
        self.config.password(password);
        Ok(self)
    }

    /// Gives up connecting after `timeout` (`--connect-timeout`; default: libpq's
    /// `connect_timeout` from the string or `PGCONNECT_TIMEOUT`, else 30 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout(timeout);
        self
    }

    /// Has PostgreSQL cancel any statement of a run that takes longer than `timeout`
    /// (`--statement-timeout`; whole milliseconds, 0 for none; default: the server's
    /// `statement_timeout`). It is set with `SET LOCAL` inside the run's snapshot
    /// transaction, which also holds behind a transaction-pooling proxy. A run
    /// stopped so is not retried.
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Gives up on the source when it sends nothing for `timeout` while a run waits
    /// for it (`--read-timeout`; default [`DEFAULT_READ_TIMEOUT`]): a server whose
    /// backend is stopped, a network that drops packets without a reset. Unlike the
    /// statement timeout it is measured here, so it holds when the server cannot act.
    /// A run stopped so is retried, on a new connection, like a dropped one.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Keeps the connections of successful runs open for the next runs of this
    /// configuration and its clones, as `data-sync sync --every` does: a run takes
    /// an idle connection rather than connecting, and gives it back when it
    /// succeeds. A run that fails closes its connection, so the next one (or the
    /// retry) connects anew; a connection the server closed while idle fails the
    /// run's first query, which is retried on a new one like any dropped connection.
    pub fn reusing_connections(mut self) -> Self {
        self.idle = Some(Arc::default());
        self
    }

    /// An idle connection [`SourceConfig::reusing_connections`] kept, or else a new
    /// one ([`SourceConfig::connect`]).
    pub(crate) fn take_connection(&self) -> Result<Client> {
        let idle = self.idle.as_ref().and_then(|idle| idle.lock().ok()?.pop());
        match idle {
            Some(client) => Ok(client),
            None => self.connect(),
        }
    }

    /// Gives back `client`, outside any transaction, after a successful use: kept
    /// for the next run when reusing connections, closed otherwise.
    pub(crate) fn give_back(&self, client: Client) {
        if let Some(idle) = &self.idle
            && let Ok(mut idle) = idle.lock()
        {
            idle.push(client);
        }
    }

    /// The read timeout in force (see [`SourceConfig::with_read_timeout`]).
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// The `sslmode` in force.
    pub fn ssl_mode(&self) -> SslMode {
        self.tls.mode
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

    /// Opens a connection: the one client stack of data-sync (see [`Client`]), with
    /// these settings, TLS as `sslmode` asks, the read timeout on every wait, and
    /// the statement timeout on every snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] when PostgreSQL cannot be reached or refuses the login;
    /// [`Error::Config`] when the TLS settings cannot be used; [`Error::Runtime`]
    /// when the connection's runtime cannot start.
    pub fn connect(&self) -> Result<Client> {
        let runtime = runtime().map_err(|source| Error::Runtime { source })?;
        let mut config = self.config.clone();
        config.ssl_mode(self.tls.mode.for_driver());
        match self.tls.mode {
            SslMode::Disable => self.connect_with(runtime, &config, NoTls),
            SslMode::Prefer | SslMode::Require => {
                let connector = Unverified::new().map_err(tls_error)?;
                self.connect_with(runtime, &config, connector)
            }
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let connector = self.tls_connector()?;
                self.connect_with(runtime, &config, connector)
            }
        }
    }

    /// Connects with `config` through `tls` (the connector `sslmode` chose) and
    /// hands the connection to a [`Client`] on `runtime`.
    fn connect_with<T>(
        &self,
        runtime: tokio::runtime::Runtime,
        config: &Config,
        tls: T,
    ) -> Result<Client>
    where
        T: MakeTlsConnect<Socket> + 'static,
        T::Stream: Send,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let (client, connection) =
            runtime
                .block_on(config.connect(tls))
                .map_err(|source| Error::Connect {
                    endpoint: self.endpoint(),
                    source,
                })?;
        Ok(Client::new(
            runtime,
            client,
            Box::pin(connection),
            self.read_timeout,
            self.statement_timeout,
        ))
    }

    /// Asks the server to cancel the statement `token`'s connection is running, if
    /// any; best effort (a failure is logged at debug).
    pub(crate) fn cancel(&self, token: &CancelToken) {
        let cancelled = match (runtime(), self.tls.mode) {
            (Err(error), _) => {
                tracing::debug!(error = %error, "cannot cancel the source query");
                return;
            }
            (Ok(runtime), SslMode::Disable) => runtime.block_on(token.cancel_query(NoTls)),
            (Ok(runtime), SslMode::Prefer | SslMode::Require) => match Unverified::new() {
                Ok(connector) => runtime.block_on(token.cancel_query(connector)),
                Err(error) => {
                    tracing::debug!(error = %error, "cannot cancel the source query");
                    return;
                }
            },
            (Ok(runtime), SslMode::VerifyCa | SslMode::VerifyFull) => match self.tls_connector() {
                Ok(connector) => runtime.block_on(token.cancel_query(connector)),
                Err(error) => {
                    tracing::debug!(error = %error, "cannot cancel the source query");
                    return;
                }
            },
        };
        if let Err(error) = cancelled {
            tracing::debug!(error = %crate::error::describe_postgres(&error), "cannot cancel the source query");
        }
    }

    /// An OpenSSL connector that checks the server's certificate as `sslmode`
    /// (`verify-ca` or `verify-full`) asks; the other modes check none, and connect
    /// through [`Unverified`].
    fn tls_connector(&self) -> Result<postgres_openssl::MakeTlsConnector> {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};

        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(tls_error)?;
        let verify = matches!(self.tls.mode, SslMode::VerifyCa | SslMode::VerifyFull);
        if verify {
            builder.set_verify(SslVerifyMode::PEER);
            match &self.tls.root_certificate {
                Some(path) if path.as_os_str() == "system" => {
                    builder.set_default_verify_paths().map_err(tls_error)?;
                }
                Some(path) => builder.set_ca_file(path).map_err(|error| Error::Config {
                    message: format!("sslrootcert {}: {error}", path.display()),
                })?,
                None => {
                    return Err(Error::Config {
                        message: "sslmode verify-ca and verify-full need a root certificate: \
                                  set sslrootcert (a PEM file, or `system`) or PGSSLROOTCERT, \
                                  or put it in ~/.postgresql/root.crt"
                            .to_owned(),
                    });
                }
            }
        } else {
            builder.set_verify(SslVerifyMode::NONE);
        }
        let mut connector = postgres_openssl::MakeTlsConnector::new(builder.build());
        let check_host = self.tls.mode == SslMode::VerifyFull;
        connector.set_callback(move |configuration, _| {
            configuration.set_verify_hostname(check_host);
            Ok(())
        });
        Ok(connector)
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
            .field("sslmode", &self.tls.mode)
            .field("reusing_connections", &self.idle.is_some())
            .finish()
    }
}

/// The current-thread runtime a connection (or a cancel request) runs on, as the
/// `postgres` crate builds its own.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Splits the parameters named `keys` out of a connection string, in either form,
/// returning the string without them and their values.
fn take_parameters(text: &str, keys: &[&str]) -> Result<(String, Vec<(String, String)>)> {
    let mut taken = Vec::new();
    let trimmed = text.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let Some((base, query)) = trimmed.split_once('?') else {
            return Ok((trimmed.to_owned(), taken));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if keys.contains(&key) {
                taken.push((key.to_owned(), percent_decode(value)?));
            } else {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, taken));
    }

    let mut kept = Vec::new();
    let mut characters = trimmed.chars().peekable();
    loop {
        while characters.next_if(|c| c.is_whitespace()).is_some() {}
        if characters.peek().is_none() {
            break;
        }
        let key: String =
            std::iter::from_fn(|| characters.next_if(|c| *c != '=' && !c.is_whitespace()))
                .collect();
        while characters.next_if(|c| c.is_whitespace()).is_some() {}
        if characters.next() != Some('=') {
            // Let the postgres crate report the malformed string.
            return Ok((trimmed.to_owned(), Vec::new()));
        }
        while characters.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if characters.next_if_eq(&'\'').is_some() {
            loop {
                match characters.next() {
                    Some('\\') => value.extend(characters.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Ok((trimmed.to_owned(), Vec::new())),
                }
            }
        } else {
            while let Some(c) = characters.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(characters.next());
                } else {
                    value.push(c);
                }
            }
        }
        if keys.contains(&key.as_str()) {
            taken.push((key, value));
        } else {
            let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{escaped}'"));
        }
    }
    Ok((kept.join(" "), taken))
}

fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            let Some(byte) = hex else {
                return Err(Error::Config {
                    message: "a `%` escape in the connection URL is not two hex digits".to_owned(),
                });
            };
            decoded.push(byte);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| Error::Config {
        message: "a connection URL parameter is not UTF-8".to_owned(),
    })
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

/// A parse error of the postgres crate with its cause, which names an option but
/// never repeats a value (`unknown option `x``, `invalid value for option `port``).
/// A key=value string with a password may have had it split at an unquoted space,
/// so that a part of it reads as an option name: there the cause is left out.
fn redact_error(error: &tokio_postgres::Error, text: &str) -> String {
    let is_url = text.starts_with("postgres://") || text.starts_with("postgresql://");
    match std::error::Error::source(error) {
        Some(cause) if is_url || !text.contains("password") => format!("{error}: {cause}"),
        _ => error.to_string(),
    }
}

/// Refuses a URL whose user name or password holds an unencoded `@` or `/`: the
/// postgres crate (like libpq) ends the credentials at the first `@` and the host at
/// the next `/`, so a part of the password would become the host, port or database
/// and be named in messages. The message never repeats any part of the string.
fn check_url_credentials(text: &str) -> Result<()> {
    let text = text.trim();
    let Some(rest) = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
    else {
        return Ok(());
    };
    // The parameters may hold `@` (an application name), the credentials not `?`.
    let authority_and_path = rest.split('?').next().unwrap_or_default();
    let ats = authority_and_path.matches('@').count();
    let slash_before_at = authority_and_path
        .find('@')
        .is_some_and(|at| authority_and_path[..at].contains('/'));
    if ats > 1 || slash_before_at {
        return Err(Error::Config {
            message: "the connection URL has an unencoded `@` or `/` in its user name or \
                      password: percent-encode them (`@` as `%40`, `/` as `%2F`, `:` as \
                      `%3A`), or give the password with PGPASSWORD or --password-file"
                .to_owned(),
        });
    }
    Ok(())
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
    fn keepalives_are_short_unless_the_string_sets_them() {
        let config = SourceConfig::parse_with_env("host=h", &env(&[])).unwrap();
        assert!(config.config.get_keepalives());
        assert_eq!(config.config.get_keepalives_idle(), KEEPALIVES_IDLE);
        assert_eq!(
            config.config.get_keepalives_interval(),
            Some(KEEPALIVES_INTERVAL)
        );
        assert_eq!(
            config.config.get_keepalives_retries(),
            Some(KEEPALIVES_RETRIES)
        );
        let config = SourceConfig::parse_with_env(
            "postgresql://u@h/d?keepalives_idle=120&keepalives_interval=5&keepalives_retries=9",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(
            config.config.get_keepalives_idle(),
            Duration::from_secs(120)
        );
        assert_eq!(
            config.config.get_keepalives_interval(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(config.config.get_keepalives_retries(), Some(9));
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
    fn unencoded_credentials_in_a_url_are_refused_without_echo() {
        for text in [
            "postgresql://u:p@ss@h:5432/db",
            "postgresql://u:pa/ss@h/db",
            "postgres://u:p@ss:5432/w:rd%S3cr3t@127.0.0.1:5433/db",
        ] {
            let error = SourceConfig::parse_with_env(text, &env(&[]))
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(
                    "source configuration: the connection URL has an unencoded `@` or `/`"
                ),
                "{error}"
            );
            assert!(
                !error.contains("p@ss") && !error.contains("pa/ss") && !error.contains("S3cr3t"),
                "{error}"
            );
        }
        for text in [
            "postgresql://u:p%40ss@h/db?application_name=me@host",
            "postgresql://u:pa:ss@h/db",
            "postgresql:///db?host=/var/run/postgresql",
            "host=h password=p@ss/w",
        ] {
            assert!(
                SourceConfig::parse_with_env(text, &env(&[])).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn an_unknown_parameter_is_named() {
        let error = SourceConfig::parse_with_env("postgresql://u@h/db?bogus=1", &env(&[]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "source configuration: cannot parse the connection string: invalid connection string: unknown option `bogus`"
        );
        let error = SourceConfig::parse_with_env("host=h password=two words=x", &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(!error.contains("words"), "{error}");
    }

    #[test]
    fn tls_keys_are_taken_out_of_both_forms() {
        let (rest, taken) = take_parameters(
            "postgresql://u@h/d?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
            &TLS_KEYS,
        )
        .unwrap();
        assert_eq!(rest, "postgresql://u@h/d?application_name=x");
        assert_eq!(
            taken,
            vec![
                ("sslmode".to_owned(), "verify-full".to_owned()),
                ("sslrootcert".to_owned(), "/tmp/ca.pem".to_owned())
            ]
        );
        let (rest, taken) = take_parameters(
            r"host=h  sslmode = verify-ca password='it\'s \\ q' sslrootcert='/a b/ca.pem'",
            &TLS_KEYS,
        )
        .unwrap();
        assert_eq!(rest, r"host='h' password='it\'s \\ q'");
        assert_eq!(
            taken[1],
            ("sslrootcert".to_owned(), "/a b/ca.pem".to_owned())
        );
        let config = SourceConfig::parse_with_env(&rest, &env(&[])).unwrap();
        assert_eq!(config.config.get_password(), Some(&br"it's \ q"[..]));
    }

    #[test]
    fn sslmode_comes_from_the_string_then_the_environment() {
        let parse = |text: &str, pairs: &'static [(&'static str, &'static str)]| {
            SourceConfig::parse_with_env(text, &env(pairs)).map(|config| config.ssl_mode())
        };
        assert_eq!(parse("host=h", &[]).unwrap(), SslMode::Prefer);
        assert_eq!(
            parse("host=h", &[("PGSSLMODE", "require")]).unwrap(),
            SslMode::Require
        );
        assert_eq!(
            parse("host=h sslmode=disable", &[("PGSSLMODE", "require")]).unwrap(),
            SslMode::Disable
        );
        let error = parse("host=h sslmode=sometimes", &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "source configuration: sslmode `sometimes` is not one of disable, prefer, require, verify-ca, verify-full"
        );
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
}
