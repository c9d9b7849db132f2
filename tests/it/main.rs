//! The one integration-test binary: real PostgreSQL (a throwaway cluster, or
//! `DATA_SYNC_TEST_URL`), real SQLite files.

mod support;

/// The test mappings of `tests/mappings/`, compiled by `cargo xtask gen` (which
/// formats them itself).
#[rustfmt::skip]
mod generated;

mod bad_input;
mod capture;
mod capture_check;
mod capture_cli;
mod capture_fanout;
mod capture_faults;
mod capture_filter;
mod capture_group;
mod capture_guards;
mod capture_progress;
mod capture_types;
mod cli;
mod computed;
mod error_reports;
mod every;
mod fanout;
mod fanout_ops;
mod fanout_partition;
mod fanout_prune;
mod faults;
mod filter;
mod frozen_source;
mod full_sync;
mod r#gen;
mod hostile;
mod hot_journal;
mod incremental;
mod memory;
mod metrics;
mod migrate;
mod migrate_refusals;
mod multi;
mod outcomes;
mod pty;
mod readers;
mod rebuild;
mod repair;
mod retry;
mod schema;
mod secrets;
mod signals;
mod stale;
mod strict;
mod tls;
mod transform;
mod trust;
mod types;
mod ui;
mod url_secrets;
mod ux;
mod verify;
mod yaml_mapping;
