//! The one integration-test binary: real PostgreSQL (a throwaway cluster, or
//! `DATA_SYNC_TEST_URL`), real SQLite files.

mod support;

mod bad_input;
mod cli;
mod full_sync;
mod r#gen;
mod types;
mod ui;
mod yaml_mapping;
