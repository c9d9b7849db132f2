//! The SQL rules every data-sync crate shares, so that each is written once: how an
//! identifier is quoted and which names are identifiers at all ([`ident`]), and when
//! an integer field is narrower than its column ([`integer`]), and the one stable
//! hash of fingerprints and long file names ([`fnv1a_64`]). The derive checks
//! mappings with them at compile time, the engine at run time, the test kit in its
//! setup SQL. No dependencies.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod ident;
pub mod integer;

/// The FNV-1a hash, 64 bits, of `bytes`: stable across Rust versions and
/// platforms (unlike `DefaultHasher`), and simple to compute in any language.
///
/// ```
/// assert_eq!(sync_sql::fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(sync_sql::fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
