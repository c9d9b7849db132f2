//! The narrower-integer rule: a Rust integer field narrower than its PostgreSQL
//! integer column reads every value in the field's range and stops a run at the
//! first one beyond it. The derive refuses such a field against the schema snapshot
//! unless the mapping declares the narrower column type (an explicit opt-in to the
//! run-time check); `data-sync check` reports it against the live source.

/// An integer field narrower than its column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Narrower {
    /// The field's width in bits: 16, 32 or 64.
    pub field_bits: u32,
    /// The column's width in bits: 16, 32 or 64.
    pub column_bits: u32,
}

impl Narrower {
    /// The Rust integer type that holds every value of the column: `i32` for an
    /// `integer`.
    pub fn wider_type(&self) -> &'static str {
        match self.column_bits {
            16 => "i16",
            32 => "i32",
            _ => "i64",
        }
    }
}

/// The width in bits of PostgreSQL integer type `pg_type` in any of its spellings
/// (`smallint`/`int2`, `integer`/`int`/`int4`, `bigint`/`int8`), `None` for any
/// other type.
pub fn column_bits(pg_type: &str) -> Option<u32> {
    match pg_type.trim() {
        "smallint" | "int2" => Some(16),
        "integer" | "int" | "int4" => Some(32),
        "bigint" | "int8" => Some(64),
        _ => None,
    }
}

/// The width in bits of Rust integer type `rust_type` (`i16`, `i32`, `i64`, also as
/// `Option<..>`; spaces and a `std::option::`/`core::option::` path are ignored),
/// `None` for any other type.
pub fn field_bits(rust_type: &str) -> Option<u32> {
    let compact: String = rust_type.split_whitespace().collect();
    let path = compact.trim_start_matches("::");
    let unqualified = path
        .strip_prefix("std::option::")
        .or_else(|| path.strip_prefix("core::option::"))
        .unwrap_or(path);
    let inner = unqualified
        .strip_prefix("Option<")
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(unqualified);
    match inner {
        "i16" => Some(16),
        "i32" => Some(32),
        "i64" => Some(64),
        _ => None,
    }
}

/// Whether a field of `rust_type` is an integer narrower than a column of `pg_type`.
pub fn narrower(rust_type: &str, pg_type: &str) -> Option<Narrower> {
    let field_bits = field_bits(rust_type)?;
    let column_bits = column_bits(pg_type)?;
    (field_bits < column_bits).then_some(Narrower {
        field_bits,
        column_bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_narrower_than_its_column() {
        assert_eq!(
            narrower("i32", "bigint"),
            Some(Narrower {
                field_bits: 32,
                column_bits: 64
            })
        );
        assert_eq!(
            narrower("Option < i16 >", "int4").unwrap().wider_type(),
            "i32"
        );
        assert_eq!(
            narrower(":: std :: option :: Option < i16 >", "int8")
                .unwrap()
                .wider_type(),
            "i64"
        );
        assert_eq!(narrower("i64", "bigint"), None);
        assert_eq!(narrower("i64", "smallint"), None);
        assert_eq!(narrower("String", "bigint"), None);
        assert_eq!(narrower("i32", "numeric"), None);
        assert_eq!(column_bits(" int "), Some(32));
    }
}
