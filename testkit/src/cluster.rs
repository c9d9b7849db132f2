//! A throwaway PostgreSQL cluster run by a supervisor shell (`supervisor.sh`).
//!
//! The supervisor's stdin is a pipe only this process writes to. When this process
//! drops the [`Cluster`] or exits in any way, the pipe closes, and the supervisor
//! stops the server and removes the cluster's directory.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use std::{env, fs};

use crate::error::Error;

const SUPERVISOR: &str = include_str!("supervisor.sh");

/// How long `initdb` may take.
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the server may take to accept connections after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a start is retried on a fresh port when another process took the port.
const PORT_ATTEMPTS: usize = 5;

/// The user that owns the cluster when this process runs as root.
#[derive(Debug, Clone, Copy)]
struct Account {
    name: &'static str,
    uid: u32,
    gid: u32,
}

/// A running throwaway cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    port: u16,
    dir: PathBuf,
    supervisor: Mutex<Supervisor>,
}

impl Cluster {
    /// Initializes a cluster in a fresh temporary directory and starts it; with
    /// `tls`, the server also accepts TLS with a certificate for `localhost` and
    /// `127.0.0.1` signed by a throwaway CA (`DIR/tls/root.crt`).
    pub(crate) fn start(tls: bool) -> Result<Cluster, Error> {
        let bindir = find_bindir().ok_or(Error::BinariesNotFound)?;
        // SAFETY: geteuid has no preconditions.
        let account = if unsafe { libc::geteuid() } == 0 {
            Some(
                lookup_account("postgres")
                    .or_else(|| lookup_account("nobody"))
                    .ok_or_else(|| {
                        Error::io(
                            "running as root, and neither a `postgres` nor a `nobody` user \
                             exists to run the server as",
                            std::io::ErrorKind::NotFound.into(),
                        )
                    })?,
            )
        } else {
            None
        };

        let temp_dir = tempfile::Builder::new()
            .prefix("data-sync-pg-")
            .tempdir_in(env::temp_dir())
            .map_err(|error| Error::io("cannot create a temporary directory", error))?;
        let dir = temp_dir.path().to_path_buf();
        if let Some(account) = account {
            std::os::unix::fs::chown(&dir, Some(account.uid), Some(account.gid)).map_err(
                |error| {
                    Error::io(
                        format!("cannot hand {} to the server user", dir.display()),
                        error,
                    )
                },
            )?;
        }

        let script = dir.join("supervisor.sh");
        fs::write(&script, SUPERVISOR)
            .map_err(|error| Error::io(format!("cannot write {}", script.display()), error))?;
        let mut command = Command::new("/bin/sh");
        command
            .arg(&script)
            .arg(&dir)
            .arg(&bindir)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Keep Ctrl-C and signals to the test's process group away from the
            // supervisor: it must live until our end of its stdin closes.
            .process_group(0);
        if let Some(account) = account {
            command.uid(account.uid).gid(account.gid);
        }
        let mut child = command.spawn().map_err(|error| {
            let context = match account {
                Some(account) => format!(
                    "cannot start the supervisor shell /bin/sh as user `{}` in {} (running as \
                     root, the server runs as that user, who must be able to reach the \
                     directory: set TMPDIR to a directory it can reach, such as /tmp)",
                    account.name,
                    dir.display()
                ),
                None => format!(
                    "cannot start the supervisor shell /bin/sh in {}",
                    dir.display()
                ),
            };
            Error::io(context, error)
        })?;
        // From here on, the supervisor removes the directory.
        let _ = temp_dir.keep();

        let events = Arc::new(Events::default());
        let stdout = child.stdout.take().expect("stdout is piped");
        let reader = thread::Builder::new()
            .name("testkit-supervisor".into())
            .spawn({
                let events = Arc::clone(&events);
                move || events.read(stdout)
            })
            .map_err(|error| Error::io("cannot spawn a thread", error))?;
        let mut supervisor = Supervisor {
            stdin: child.stdin.take(),
            child,
            reader: Some(reader),
            events,
            dir: dir.clone(),
        };

        supervisor.wait_initialized()?;
        if tls {
            enable_tls(&dir, account)?;
        }
        let mut attempt = 1;
        let port = loop {
            let port = free_port()?;
            match supervisor.start(port) {
                Ok(()) => break port,
                Err(_) if attempt < PORT_ATTEMPTS && supervisor.port_was_taken() => attempt += 1,
                Err(error) => return Err(error),
            }
        };
        Ok(Cluster {
            port,
            dir,
            supervisor: Mutex::new(supervisor),
        })
    }

    /// The root certificate clients verify the server with, when started with TLS.
    pub(crate) fn root_certificate(&self) -> Option<PathBuf> {
        let path = self.dir.join("tls").join("root.crt");
        path.exists().then_some(path)
    }

    /// The TCP port on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data, socket and logs).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server and starts it again on the same port and data.
    pub(crate) fn restart(&self) -> Result<(), Error> {
        self.supervisor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .start(self.port)
    }
}

/// The supervisor shell and our ends of its pipes.
#[derive(Debug)]
struct Supervisor {
    child: Child,
    /// Dropping it closes the pipe, which tells the supervisor to clean up.
    stdin: Option<ChildStdin>,
    reader: Option<JoinHandle<()>>,
    events: Arc<Events>,
    dir: PathBuf,
}

impl Supervisor {
    fn wait_initialized(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + INITDB_TIMEOUT;
        let mut state = self.events.lock();
        loop {
            if state.initialized {
                return Ok(());
            }
            if state.initdb_failed {
                drop(state);
                return Err(self.failure("initdb failed", "initdb.log"));
            }
            if state.closed {
                drop(state);
                return Err(self.failure(
                    "the supervisor shell exited before initdb finished \
                     (is the temporary directory reachable by the server user?)",
                    "server.log",
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(state);
                return Err(self.failure(
                    &format!("initdb did not finish within {INITDB_TIMEOUT:?}"),
                    "initdb.log",
                ));
            }
            state = self.events.wait(state, deadline - now);
        }
    }

    /// Asks the supervisor to (re)start the server on `port` and waits until it
    /// accepts connections.
    fn start(&mut self, port: u16) -> Result<(), Error> {
        let generation = self.events.lock().started;
        let stdin = self.stdin.as_mut().expect("stdin is open until drop");
        writeln!(stdin, "start {port}")
            .and_then(|()| stdin.flush())
            .map_err(|error| Error::io("cannot talk to the supervisor shell", error))?;

        let config =
            format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=5");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            {
                let state = self.events.lock();
                if state.closed {
                    drop(state);
                    return Err(self.failure("the supervisor shell exited", "server.log"));
                }
                if state.started > generation {
                    if let Some((exited_generation, status)) = &state.exited
                        && *exited_generation == state.started
                    {
                        let message = format!("postgres exited during startup ({status})");
                        drop(state);
                        return Err(self.failure(&message, "server.log"));
                    }
                    drop(state);
                    if postgres::Client::connect(&config, postgres::NoTls).is_ok() {
                        return Ok(());
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.failure(
                    &format!(
                        "postgres did not accept connections on 127.0.0.1:{port} within \
                         {START_TIMEOUT:?}"
                    ),
                    "server.log",
                ));
            }
            let state = self.events.lock();
            drop(
                self.events
                    .wait(state, Duration::from_millis(20).min(deadline - now)),
            );
        }
    }

    /// Whether the last start failed because another process had taken the port.
    fn port_was_taken(&self) -> bool {
        log_tail(&self.dir.join("server.log"), 20).contains("Address already in use")
    }

    fn failure(&self, message: &str, log: &str) -> Error {
        let path = self.dir.join(log);
        Error::Server {
            message: message.to_owned(),
            tail: log_tail(&path, 30),
            log: path.display().to_string(),
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // End of file on its stdin: the supervisor stops the server and removes the
        // directory, then exits.
        drop(self.stdin.take());
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// What the supervisor reported on its stdout.
#[derive(Debug, Default)]
struct Events {
    state: Mutex<EventState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct EventState {
    initialized: bool,
    initdb_failed: bool,
    /// How many times postgres was started.
    started: u64,
    /// The start generation and status of the last exit of postgres.
    exited: Option<(u64, String)>,
    /// The supervisor closed its stdout (it exited).
    closed: bool,
}

impl Events {
    fn lock(&self) -> MutexGuard<'_, EventState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(
        &self,
        state: MutexGuard<'a, EventState>,
        timeout: Duration,
    ) -> MutexGuard<'a, EventState> {
        self.changed
            .wait_timeout(state, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    fn read(&self, stdout: impl Read) {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut state = self.lock();
            let (event, argument) = line.split_once(' ').unwrap_or((&line, ""));
            match event {
                "initialized" => state.initialized = true,
                "initdb-failed" => state.initdb_failed = true,
                "started" => state.started += 1,
                "exited" => state.exited = Some((state.started, format!("status {argument}"))),
                _ => {}
            }
            self.changed.notify_all();
        }
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

/// Finds the directory holding `initdb` and `postgres`: `pg_config --bindir`, else
/// the highest version under /usr/lib/postgresql, else `initdb` on PATH.
fn find_bindir() -> Option<PathBuf> {
    let is_server_bindir =
        |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();

    if let Ok(output) = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if is_server_bindir(&dir) {
            return Some(dir);
        }
    }

    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let dir = entry.path().join("bin");
            is_server_bindir(&dir).then_some((version, dir))
        })
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }

    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join("initdb"))
        .filter(|initdb| initdb.is_file())
        .filter_map(|initdb| Some(fs::canonicalize(initdb).ok()?.parent()?.to_path_buf()))
        .find(|dir| is_server_bindir(dir))
}

/// Looks up a user's uid and primary gid.
fn lookup_account(name: &'static str) -> Option<Account> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: `passwd` is plain data (integers and pointers), for which zero is valid.
    let mut passwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, and the buffer's length is passed.
    let status = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut passwd,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    (status == 0 && !result.is_null()).then_some(Account {
        name,
        uid: passwd.pw_uid,
        gid: passwd.pw_gid,
    })
}

/// Asks the kernel for a free port on 127.0.0.1.
fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| Error::io("cannot find a free port on 127.0.0.1", error))
}

/// The last `lines` lines of a log file, or a note why there are none.
fn log_tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|mut file| {
        let length = file.metadata()?.len();
        file.seek(SeekFrom::Start(length.saturating_sub(64 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(())
    });
    if let Err(error) = read {
        return format!("(cannot read {}: {error})", path.display());
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Makes a throwaway CA and a server certificate with the `openssl` command, and turns
/// TLS on in the cluster's configuration.
fn enable_tls(dir: &Path, account: Option<Account>) -> Result<(), Error> {
    let tls = dir.join("tls");
    fs::create_dir_all(&tls)
        .map_err(|error| Error::io("cannot create the TLS directory", error))?;
    let extensions = tls.join("server.ext");
    fs::write(&extensions, "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        .map_err(|error| Error::io("cannot write the certificate extensions", error))?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=data-sync throwaway CA",
            "-keyout",
            "root.key",
            "-out",
            "root.crt",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "root.crt",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    ];
    for arguments in steps {
        let output = Command::new("openssl")
            .args(arguments)
            .current_dir(&tls)
            .output()
            .map_err(|error| Error::io("cannot run `openssl` (Debian package `openssl`)", error))?;
        if !output.status.success() {
            return Err(Error::io(
                format!(
                    "openssl {} failed: {}",
                    arguments[0],
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
                std::io::ErrorKind::Other.into(),
            ));
        }
    }
    for name in ["", "server.key", "server.crt", "root.crt"] {
        let path = tls.join(name);
        if let Some(account) = account {
            std::os::unix::fs::chown(&path, Some(account.uid), Some(account.gid)).map_err(
                |error| Error::io("cannot hand the TLS files to the server user", error),
            )?;
        }
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(tls.join("server.key"), fs::Permissions::from_mode(0o600))
        .map_err(|error| Error::io("cannot protect the server key", error))?;
    let mut config = fs::OpenOptions::new()
        .append(true)
        .open(dir.join("data").join("postgresql.conf"))
        .map_err(|error| Error::io("cannot open postgresql.conf", error))?;
    writeln!(
        config,
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'",
        tls.join("server.crt").display(),
        tls.join("server.key").display()
    )
    .map_err(|error| Error::io("cannot write postgresql.conf", error))?;
    Ok(())
}
