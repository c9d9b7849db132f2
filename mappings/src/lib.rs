//! The mapping catalogue compiled into the `data-sync` binary.
//!
//! Every `mappings/*.yaml` file becomes a module of `src/generated/` through
//! `cargo xtask gen`, which also registers every `#[derive(Mapping)]` struct of the
//! hand-written modules in `src/custom/`. See `docs/mapping.md`.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

// Empty, or a `compile_error!` when the generated code is stale (see `build.rs`).
include!(concat!(env!("OUT_DIR"), "/fresh.rs"));

mod generated;

pub use crate::generated::*;
