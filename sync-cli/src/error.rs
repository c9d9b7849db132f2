//! The command line's errors: the engine's, and the outcomes of the commands that
//! fail without an engine error (an unknown `--mapping`, drift found by `check`,
//! differences found by `verify`, no `--target`).

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a command failed: printed as one `error: ...` line, exit code 1 (or 128 + the
/// signal number for an interrupted run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] sync_runtime::Error),

    /// A query on the source failed: the engine's error, naming the server and
    /// database it was sent to.
    #[error("{error} (source `{endpoint}`)")]
    OnSource {
        /// `host:port/database`, without user or password.
        endpoint: String,
        /// The engine's error.
        #[source]
        error: Box<sync_runtime::Error>,
    },

    /// Another process holds the lock of the target file.
    #[error("`{}` is being written by {holder}; wait for it to finish or stop it", target.display())]
    Locked {
        /// The target file.
        target: std::path::PathBuf,
        /// Who holds the lock: `process 4711 (`data-sync sync`)`.
        holder: String,
    },

    /// The lock file beside the target cannot be opened or written.
    #[error("cannot lock `{}`: {source}", path.display())]
    LockFile {
        /// The lock file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// `--metrics ADDR` cannot be served.
    #[error(
        "cannot serve metrics at `{address}`: {source}; pass a free local address such as `--metrics 127.0.0.1:9187`"
    )]
    Metrics {
        /// The address given.
        address: String,
        /// Why it cannot be bound.
        #[source]
        source: std::io::Error,
    },

    /// No `--target` and no `DATA_SYNC_TARGET`.
    #[error("no target file: pass `--target PATH` or set `DATA_SYNC_TARGET`")]
    NoTarget,

    /// `--mapping` names no compiled-in mapping.
    #[error("no mapping `{name}`; compiled-in mappings: {}; a mapping added to `mappings/` is compiled in by `cargo xtask gen` and a rebuild", known.join(", "))]
    UnknownMapping {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: Vec<String>,
    },

    /// Some of several mappings failed; the command went on with the others.
    #[error("{} of {total} mappings failed: {}", failures.len(), list(failures))]
    Failed {
        /// How many mappings the command worked on.
        total: usize,
        /// Each failed mapping and its error, in order.
        failures: Vec<(String, Error)>,
    },

    /// A `--param` that none of the mappings run uses.
    #[error("parameter `{name}` is used by none of the mappings run ({}): their filters use {}", mappings.join(", "), if used.is_empty() { "no parameters".to_owned() } else { used.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ") })]
    UnusedParam {
        /// The parameter given.
        name: String,
        /// The mappings run.
        mappings: Vec<String>,
        /// The parameters their filters use.
        used: Vec<String>,
    },

    /// `data-sync check` found mappings that do not match the live source or target.
    #[error("{count} difference{} between the mappings and the live schemas", if *count == 1 { "" } else { "s" })]
    Drift {
        /// How many differences were listed.
        count: usize,
    },

    /// Stdout refused the results (a full disk, a closed pipe).
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),

    /// `data-sync verify` over a template found files that differ from the source
    /// rows of their partition, partitions without a file, or stale files.
    #[error("{count} file{} of `{template}` differ{} from the source ({differs} differing, {missing} missing, {stale} stale{}); rewrite the files with `data-sync sync --mapping {mappings} --target '{template}' --full`{}", if *count == 1 { "" } else { "s" }, if *count == 1 { "s" } else { "" }, if *null_rows == 0 { String::new() } else { format!(", {null_rows} source rows with a NULL partition value") }, if *stale == 0 { "" } else { " and delete the stale ones" })]
    FilesDiffer {
        /// The template.
        template: String,
        /// The mappings verified, as `--mapping` takes them.
        mappings: String,
        /// How many files differ, are missing or are stale.
        count: u64,
        /// Files that differ.
        differs: u64,
        /// Partitions without a file.
        missing: u64,
        /// Files whose partition has no source rows.
        stale: u64,
        /// Source rows whose partition value is NULL.
        null_rows: u64,
    },

    /// `verify --repair` given a template target.
    #[error(
        "`verify --repair` repairs one file, and `{template}` is a template: verify its files without `--repair`, and rewrite them with `data-sync sync --mapping NAME --target '{template}' --full`"
    )]
    RepairTemplate {
        /// The template.
        template: String,
    },

    /// `data-sync verify` found target tables that differ from the source.
    #[error("{count} target table{} differ{} from the source; rerun with `--repair` to copy the differing rows", if *count == 1 { "" } else { "s" }, if *count == 1 { "s" } else { "" })]
    Differs {
        /// How many target tables differ.
        count: usize,
    },
}

impl Error {
    /// The engine's `error` of a run on `source`: a failed source query names the
    /// server and database (`host:port/database`) it was sent to.
    pub(crate) fn on(source: &sync_runtime::SourceConfig, error: sync_runtime::Error) -> Error {
        match error.kind() {
            "source" | "source_stream" | "timeout" => Error::OnSource {
                endpoint: source.endpoint(),
                error: Box::new(error),
            },
            _ => Error::Engine(error),
        }
    }

    /// A stable, lowercase name for the kind of error: the `error.kind` of `--json`
    /// output, documented in `docs/cli.md`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Engine(error) => error.kind(),
            Error::OnSource { error, .. } => error.kind(),
            Error::NoTarget | Error::Metrics { .. } => "config",
            Error::Locked { .. } => "concurrent_run",
            Error::LockFile { .. } => "target",
            Error::UnknownMapping { .. } => "unknown_mapping",
            Error::UnusedParam { .. } => "param",
            Error::Drift { .. } => "drift",
            Error::Differs { .. } | Error::FilesDiffer { .. } => "differs",
            Error::RepairTemplate { .. } => "partition",
            Error::Stdout(_) => "stdout",
            Error::Failed { failures, .. } => {
                failures.first().map_or("failed", |(_, error)| error.kind())
            }
        }
    }
}

/// `` `orders`: message; `items`: message ``.
fn list(failures: &[(String, Error)]) -> String {
    failures
        .iter()
        .map(|(mapping, error)| format!("`{mapping}`: {error}"))
        .collect::<Vec<_>>()
        .join("; ")
}
