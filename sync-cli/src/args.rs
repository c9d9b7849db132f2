//! The arguments several commands share: which mappings (`--mapping`), which
//! partitions (`--partition`, `--shard`), JSON output (`--json`), the source options
//! besides `--source`, the retry options, and the duration syntax of `--retry-delay`
//! and the timeouts.

use std::path::PathBuf;
use std::time::Duration;

use sync_runtime::{Result, RetryPolicy, Selection, SourceConfig};

/// `--mapping NAME`, repeatable: the mappings a command works on.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct MappingArgs {
    /// A mapping to work on; repeat for several. Default: every mapping.
    /// Example: --mapping users
    #[arg(long = "mapping", value_name = "NAME")]
    pub(crate) mappings: Vec<String>,
}

/// `--json`: the result as one JSON document on stdout.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct JsonArgs {
    /// Print the result as JSON on stdout (schema: docs/cli.md). Example: --json
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--partition VALUE` and `--shard I/N`: which partitions of a partitioned mapping
/// (`partition_by`) `sync` and `verify` work on, over a template target.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PartitionArgs {
    /// Only one partition of a partitioned mapping (`partition_by`): the one whose
    /// value's text form is VALUE; the source query reads only its rows.
    /// Example: --target 'out/{tenant_id}.sqlite' --partition acme
    #[arg(long, value_name = "VALUE", conflicts_with = "shard")]
    pub(crate) partition: Option<String>,

    /// Only the partitions of shard I of N (0 <= I < N): those whose value's MD5
    /// (first 15 hex digits, as a number) modulo N is I, computed in the source
    /// query; N workers with I = 0..N-1 cover every partition once (docs/fanout.md).
    /// Example: --shard $JOB_COMPLETION_INDEX/8
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<sync_runtime::Shard>,
}

impl PartitionArgs {
    /// The partitions these options pick.
    pub(crate) fn selection(&self) -> Selection {
        match (&self.partition, self.shard) {
            (Some(value), _) => Selection::One(value.clone()),
            (None, Some(shard)) => Selection::Shard(shard),
            (None, None) => Selection::All,
        }
    }

    /// The selection's part of a template's lock file name: `""` for every
    /// partition, `+shard-I-of-N`, `+partition-<escaped VALUE>`.
    pub(crate) fn lock_suffix(&self) -> String {
        match (&self.partition, &self.shard) {
            (Some(value), _) => format!(
                "+partition-{}",
                sync_runtime::partition_file_name(value.as_bytes())
            ),
            (None, Some(shard)) => format!("+shard-{}-of-{}", shard.index, shard.count),
            (None, None) => String::new(),
        }
    }
}

/// The source options of the command line besides `--source`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SourceArgs {
    /// Read the source password from the first line of this file; it wins over the
    /// URL, PGPASSWORD and .pgpass. Example: --password-file /run/secrets/pg
    #[arg(
        long,
        env = "DATA_SYNC_PASSWORD_FILE",
        hide_env_values = true,
        global = true,
        value_name = "PATH",
        help_heading = crate::GLOBAL
    )]
    password_file: Option<PathBuf>,

    /// Give up connecting to the source after this long (default: connect_timeout
    /// of the source string, PGCONNECT_TIMEOUT, else 30s). Example: --connect-timeout 10s
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION", help_heading = crate::GLOBAL)]
    connect_timeout: Option<Duration>,

    /// Have PostgreSQL cancel any source statement that runs longer than this (0: no
    /// limit; default: the server's). Example: --statement-timeout 30m
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION", help_heading = crate::GLOBAL)]
    statement_timeout: Option<Duration>,

    /// Give up on the source when it sends nothing for this long while a run waits
    /// for it: a stopped server, a network that drops packets (default: 10m; a run so
    /// stopped is retried on a new connection). Example: --read-timeout 2m
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION", help_heading = crate::GLOBAL)]
    read_timeout: Option<Duration>,
}

impl SourceArgs {
    /// The source `text` (`--source`) names, with these options applied.
    ///
    /// # Errors
    ///
    /// As [`SourceConfig::parse`] and [`SourceConfig::with_password_file`].
    pub(crate) fn source_config(&self, text: Option<&str>) -> Result<SourceConfig> {
        let mut source = SourceConfig::parse(text.unwrap_or(""))?;
        if let Some(path) = &self.password_file {
            source = source.with_password_file(path)?;
        }
        if let Some(timeout) = self.connect_timeout {
            source = source.with_connect_timeout(timeout);
        }
        if let Some(timeout) = self.statement_timeout {
            source = source.with_statement_timeout(timeout);
        }
        if let Some(timeout) = self.read_timeout {
            source = source.with_read_timeout(timeout);
        }
        Ok(source)
    }
}

/// Parses a duration: a whole number with a unit, `ms`, `s`, `m` or `h` (`500ms`,
/// `1s`, `2m`); a bare number is seconds.
pub(crate) fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as `500ms`, `1s`, `2m`"))?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: use ms, s, m or h"
            ));
        }
    };
    Ok(duration)
}

/// The retry options of `data-sync sync`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RetryArgs {
    /// How often a run is retried after a transient source fault (a dropped
    /// connection, a restarting server), with exponential backoff; 0 never retries.
    /// Example: --retries 5
    #[arg(long, default_value_t = 3, value_name = "N")]
    retries: u32,

    /// The wait before the first retry; it doubles before each next one, up to
    /// --retry-max-delay. Example: --retry-delay 500ms
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    retry_delay: Duration,

    /// The longest wait between two attempts. Example: --retry-max-delay 1m
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    retry_max_delay: Duration,
}

impl RetryArgs {
    /// The policy these options ask for.
    pub(crate) fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries,
            initial_delay: self.retry_delay,
            max_delay: self.retry_max_delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 weeks").is_err());
    }
}
