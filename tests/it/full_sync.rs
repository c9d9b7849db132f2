//! Tests: full_sync.
