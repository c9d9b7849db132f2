//! Tests: yaml_mapping.
