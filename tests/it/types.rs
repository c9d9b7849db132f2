//! Tests: types.
