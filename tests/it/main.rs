//! The one integration-test binary: real PostgreSQL (a throwaway cluster, or
//! `DATA_SYNC_TEST_URL`), real SQLite files.

mod support;

mod bad_input;
mod cli;
mod faults;
mod full_sync;
mod hostile;
mod incremental;
mod r#gen;
mod schema;
mod types;
mod ux;
mod secrets;
mod tls;
mod ui;
mod yaml_mapping;
