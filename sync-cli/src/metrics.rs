//! `--metrics ADDR` of the long-running commands (`sync --every`, `follow`): the
//! counters and gauges of their runs, served as Prometheus text at
//! `http://ADDR/metrics` by one thread of plain `std::net` (see `http`). The names
//! and labels are listed in `docs/cli.md`; the engine reports the values (a run's
//! [`Summary`], a follow round through [`Progress::followed`]), this module only
//! keeps and serves them.

mod http;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sync_runtime::{MappingSpec, Progress, Summary};

use crate::error::{Error, Result};

/// The labels of one series: `mapping`, and `table` or `outcome` where it applies.
type Labels = Vec<(&'static str, String)>;

/// A gauge of seconds or other fractional values.
type FloatGauge = Gauge<f64, AtomicU64>;

/// `--metrics ADDR`: where to serve the metrics.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct MetricsArgs {
    /// Serve Prometheus metrics of the runs at http://ADDR/metrics (rows per
    /// mapping and table, runs by outcome, last success, lag); a port of 0 picks a
    /// free one, logged at -v. Example: --metrics 127.0.0.1:9187
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<String>,
}

impl MetricsArgs {
    /// The metrics of the command, served from now on; `None` without `--metrics`.
    ///
    /// # Errors
    ///
    /// [`Error::Metrics`] when the address cannot be bound (in use, not local, not
    /// an address).
    pub(crate) fn serve(&self) -> Result<Option<Arc<Metrics>>> {
        let Some(address) = &self.metrics else {
            return Ok(None);
        };
        let metrics = Arc::new(Metrics::new());
        let bound =
            http::serve(address, Arc::clone(&metrics)).map_err(|source| Error::Metrics {
                address: address.clone(),
                source,
            })?;
        tracing::info!(address = %bound, "serving metrics at http://{bound}/metrics");
        Ok(Some(metrics))
    }
}

/// The metrics of one command: every series, registered once.
pub(crate) struct Metrics {
    registry: Registry,
    rows_read: Family<Labels, Counter>,
    rows_written: Family<Labels, Counter>,
    rows_deleted: Family<Labels, Counter>,
    runs: Family<Labels, Counter>,
    last_success: Family<Labels, FloatGauge>,
    last_duration: Family<Labels, FloatGauge>,
    watermark_age: Family<Labels, FloatGauge>,
    capture_behind: Family<Labels, Gauge>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let rows_read = Family::<Labels, Counter>::default();
        let rows_written = Family::<Labels, Counter>::default();
        let rows_deleted = Family::<Labels, Counter>::default();
        let runs = Family::<Labels, Counter>::default();
        let last_success = Family::<Labels, FloatGauge>::default();
        let last_duration = Family::<Labels, FloatGauge>::default();
        let watermark_age = Family::<Labels, FloatGauge>::default();
        let capture_behind = Family::<Labels, Gauge>::default();
        registry.register(
            "data_sync_rows_read",
            "Source rows read (follow: changes applied), per mapping",
            rows_read.clone(),
        );
        registry.register(
            "data_sync_rows_written",
            "Rows inserted or updated, per mapping and target table",
            rows_written.clone(),
        );
        registry.register(
            "data_sync_rows_deleted",
            "Rows deleted (soft deletes, --prune, captured deletes), per mapping and target table",
            rows_deleted.clone(),
        );
        registry.register(
            "data_sync_runs",
            "Runs per mapping by outcome: ok, error, or skipped after an interrupt",
            runs.clone(),
        );
        registry.register(
            "data_sync_last_success_timestamp_seconds",
            "When the last successful run of the mapping ended, in Unix seconds",
            last_success.clone(),
        );
        registry.register(
            "data_sync_last_run_duration_seconds",
            "How long the last successful run of the mapping took",
            last_duration.clone(),
        );
        registry.register(
            "data_sync_watermark_age_seconds",
            "Age of the greatest time cursor value synced (mappings with a timestamp cursor)",
            watermark_age.clone(),
        );
        registry.register(
            "data_sync_capture_behind_bytes",
            "Bytes of write-ahead log the target was behind the source at the last follow round",
            capture_behind.clone(),
        );
        Metrics {
            registry,
            rows_read,
            rows_written,
            rows_deleted,
            runs,
            last_success,
            last_duration,
            watermark_age,
            capture_behind,
        }
    }

    /// The metrics in the text exposition format (OpenMetrics, which Prometheus's
    /// text parser reads as well).
    fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// A successful run of `summary.mapping`.
    pub(crate) fn succeeded(&self, summary: &Summary) {
        let mapping = &summary.mapping;
        self.add(summary);
        self.runs.get_or_create(&outcome(mapping, "ok")).inc();
        self.last_success
            .get_or_create(&labels(mapping))
            .set(unix_now());
        self.last_duration
            .get_or_create(&labels(mapping))
            .set(summary.seconds);
    }

    /// A run of `mapping` that failed (`error`) or was not tried (`skipped`).
    pub(crate) fn ended(&self, mapping: &str, how: &'static str) {
        self.runs.get_or_create(&outcome(mapping, how)).inc();
    }

    /// The greatest cursor value the targets of `mapping` hold, as the target file
    /// stores it: its age, when it is a time.
    pub(crate) fn watermark(&self, mapping: &str, cursor: &str) {
        if let Some(time) = unix_time(cursor) {
            self.watermark_age
                .get_or_create(&labels(mapping))
                .set(unix_now() - time);
        }
    }

    /// Adds the rows of `summary` to the counters.
    fn add(&self, summary: &Summary) {
        let mapping = &summary.mapping;
        self.rows_read
            .get_or_create(&labels(mapping))
            .inc_by(summary.rows_read);
        for target in &summary.targets {
            let table = vec![
                ("mapping", mapping.clone()),
                ("table", target.table.clone()),
            ];
            self.rows_written.get_or_create(&table).inc_by(target.rows);
            self.rows_deleted
                .get_or_create(&table)
                .inc_by(target.deleted);
        }
    }
}

impl Progress for Metrics {
    fn followed(&self, mapping: &'static MappingSpec, applied: &Summary, behind: u64) {
        self.succeeded(applied);
        self.capture_behind
            .get_or_create(&labels(mapping.name))
            .set(i64::try_from(behind).unwrap_or(i64::MAX));
    }
}

/// The observer of a run: the terminal's `progress` and `metrics`, either or both.
pub(crate) fn observer(
    progress: Option<Arc<dyn Progress>>,
    metrics: Option<Arc<Metrics>>,
) -> Option<Arc<dyn Progress>> {
    match (progress, metrics) {
        (Some(progress), Some(metrics)) => Some(Arc::new(Both { progress, metrics })),
        (progress, None) => progress,
        (None, Some(metrics)) => Some(metrics),
    }
}

/// The terminal's progress and the metrics, both told of every event.
struct Both {
    progress: Arc<dyn Progress>,
    metrics: Arc<Metrics>,
}

impl Progress for Both {
    fn start(&self, mapping: &'static MappingSpec, mode: &str) {
        self.progress.start(mapping, mode);
    }

    fn estimate(&self, mapping: &'static MappingSpec, rows: u64) {
        self.progress.estimate(mapping, rows);
    }

    fn advance(&self, mapping: &'static MappingSpec, rows: u64) {
        self.progress.advance(mapping, rows);
    }

    fn finish(
        &self,
        mapping: &'static MappingSpec,
        outcome: Result<&Summary, &sync_runtime::Error>,
    ) {
        self.progress.finish(mapping, outcome);
    }

    fn followed(&self, mapping: &'static MappingSpec, applied: &Summary, behind: u64) {
        self.progress.followed(mapping, applied, behind);
        self.metrics.followed(mapping, applied, behind);
    }
}

/// `{mapping="..."}`.
fn labels(mapping: &str) -> Labels {
    vec![("mapping", mapping.to_owned())]
}

/// `{mapping="...", outcome="..."}`.
fn outcome(mapping: &str, how: &'static str) -> Labels {
    vec![("mapping", mapping.to_owned()), ("outcome", how.to_owned())]
}

/// Now, in Unix seconds.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// A stored cursor value that is a time (RFC 3339, or a `timestamp` without a zone,
/// which is UTC), in Unix seconds; `None` for other cursors and for `infinity`.
fn unix_time(cursor: &str) -> Option<f64> {
    let time = chrono::DateTime::parse_from_rfc3339(cursor)
        .map(|time| time.to_utc())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(cursor, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|time| time.and_utc())
        })
        .ok()?;
    Some(time.timestamp_micros() as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_cursors_have_an_age_and_other_cursors_none() {
        assert_eq!(
            unix_time("2026-11-30T15:00:00.500000Z"),
            Some(1_796_050_800.5)
        );
        assert_eq!(
            unix_time("2026-11-30T15:00:00.500000"),
            Some(1_796_050_800.5)
        );
        assert_eq!(
            unix_time("2026-11-30T16:00:00+01:00"),
            Some(1_796_050_800.0)
        );
        assert_eq!(unix_time("42"), None);
        assert_eq!(unix_time("infinity"), None);
        assert_eq!(unix_time("2026-11-30"), None);
    }
}
