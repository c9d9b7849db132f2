//! Tests: gen.
