//! The SQL rules every data-sync crate shares, so that each is written once: how an
//! identifier is quoted and which names are identifiers at all ([`ident`]), and when
//! an integer field is narrower than its column ([`integer`]). The derive checks
//! mappings with them at compile time, the engine at run time, the test kit in its
//! setup SQL. No dependencies.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod ident;
pub mod integer;
