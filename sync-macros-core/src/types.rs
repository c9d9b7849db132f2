//! Types across the three worlds: the PostgreSQL type of a source column, the Rust
//! type of the field it is read into, and the SQLite column type it is written as
//! (the type table of docs/types.md).

use std::fmt;

/// A PostgreSQL source column type data-sync knows how to carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgType {
    /// `smallint`, `int2`.
    SmallInt,
    /// `integer`, `int`, `int4`.
    Integer,
    /// `bigint`, `int8`.
    BigInt,
    /// `real`, `float4`.
    Real,
    /// `double precision`, `float8`, `float`.
    Double,
    /// `numeric`, `decimal`, with or without precision and scale.
    Numeric,
    /// `boolean`, `bool`.
    Boolean,
    /// `text`, `character varying(n)`, `varchar`, `character(n)`, `char`, `bpchar`,
    /// `citext`, `name`.
    Text,
    /// A user-defined enum type, spelled `enum`.
    Enum,
    /// `bytea`.
    Bytea,
    /// `uuid`.
    Uuid,
    /// `timestamp with time zone`, `timestamptz`.
    Timestamptz,
    /// `timestamp`, `timestamp without time zone`.
    Timestamp,
    /// `date`.
    Date,
    /// `time`, `time without time zone`.
    Time,
    /// `json`.
    Json,
    /// `jsonb`.
    Jsonb,
    /// `interval`.
    Interval,
    /// `inet`.
    Inet,
    /// `cidr`.
    Cidr,
    /// `element[]`, any number of dimensions.
    Array(Box<PgType>),
}

/// A SQLite column type of a STRICT table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqliteType {
    /// `INTEGER`.
    Integer,
    /// `REAL`.
    Real,
    /// `TEXT`.
    Text,
    /// `BLOB`.
    Blob,
}

impl SqliteType {
    /// The type name as DDL spells it.
    pub fn as_sql(self) -> &'static str {
        match self {
            SqliteType::Integer => "INTEGER",
            SqliteType::Real => "REAL",
            SqliteType::Text => "TEXT",
            SqliteType::Blob => "BLOB",
        }
    }
}

impl fmt::Display for SqliteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_sql())
    }
}

/// Parses a PostgreSQL type as `format_type` prints it or by a common alias, ignoring
/// case, extra white space and type modifiers: `character varying(40)`, `int8`,
/// `timestamp(3) with time zone`, `integer[]`. `None` for a type outside the table.
pub fn parse_pg_type(spelling: &str) -> Option<PgType> {
    let mut normalized = String::with_capacity(spelling.len());
    let mut depth = 0usize;
    for character in spelling.trim().chars() {
        match character {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            _ if depth > 0 => {}
            _ if character.is_whitespace() => {
                if !normalized.is_empty() && !normalized.ends_with(' ') {
                    normalized.push(' ');
                }
            }
            _ => normalized.extend(character.to_lowercase()),
        }
    }
    if depth != 0 {
        return None;
    }
    let normalized = normalized.trim().replace(" [", "[");
    if let Some(element) = normalized.strip_suffix("[]") {
        let element = parse_pg_type(element.trim_end_matches("[]"))?;
        if matches!(element, PgType::Array(_)) {
            return None;
        }
        return Some(PgType::Array(Box::new(element)));
    }
    let ty = match normalized.trim() {
        "smallint" | "int2" => PgType::SmallInt,
        "integer" | "int" | "int4" => PgType::Integer,
        "bigint" | "int8" => PgType::BigInt,
        "real" | "float4" => PgType::Real,
        "double precision" | "float8" | "float" => PgType::Double,
        "numeric" | "decimal" => PgType::Numeric,
        "boolean" | "bool" => PgType::Boolean,
        "text" | "character varying" | "varchar" | "character" | "char" | "bpchar" | "citext"
        | "name" => PgType::Text,
        "enum" => PgType::Enum,
        "bytea" => PgType::Bytea,
        "uuid" => PgType::Uuid,
        "timestamp with time zone" | "timestamptz" => PgType::Timestamptz,
        "timestamp" | "timestamp without time zone" => PgType::Timestamp,
        "date" => PgType::Date,
        "time" | "time without time zone" => PgType::Time,
        "json" => PgType::Json,
        "jsonb" => PgType::Jsonb,
        "interval" => PgType::Interval,
        "inet" => PgType::Inet,
        "cidr" => PgType::Cidr,
        _ => return None,
    };
    Some(ty)
}

impl PgType {
    /// The SQLite column type values of this type are written as.
    pub fn sqlite_type(&self) -> SqliteType {
        match self {
            PgType::SmallInt | PgType::Integer | PgType::BigInt | PgType::Boolean => {
                SqliteType::Integer
            }
            PgType::Real | PgType::Double => SqliteType::Real,
            PgType::Bytea => SqliteType::Blob,
            PgType::Numeric
            | PgType::Text
            | PgType::Enum
            | PgType::Uuid
            | PgType::Timestamptz
            | PgType::Timestamp
            | PgType::Date
            | PgType::Time
            | PgType::Json
            | PgType::Jsonb
            | PgType::Interval
            | PgType::Inet
            | PgType::Cidr
            | PgType::Array(_) => SqliteType::Text,
        }
    }

    /// The Rust type a YAML mapping's field of this type is read into, as emitted.
    pub fn rust_type(&self) -> &'static str {
        match self {
            PgType::SmallInt => "i16",
            PgType::Integer => "i32",
            PgType::BigInt => "i64",
            PgType::Real => "f32",
            PgType::Double => "f64",
            PgType::Boolean => "bool",
            PgType::Text | PgType::Enum => "String",
            PgType::Bytea => "Vec<u8>",
            PgType::Numeric => "::sync_runtime::value::Numeric",
            PgType::Uuid => "::sync_runtime::value::Uuid",
            PgType::Timestamptz => "::sync_runtime::value::Timestamptz",
            PgType::Timestamp => "::sync_runtime::value::Timestamp",
            PgType::Date => "::sync_runtime::value::Date",
            PgType::Time => "::sync_runtime::value::Time",
            PgType::Json | PgType::Jsonb => "::sync_runtime::value::Json",
            PgType::Interval | PgType::Inet | PgType::Cidr => "::sync_runtime::value::PgText",
            PgType::Array(_) => "::sync_runtime::value::Array",
        }
    }

    /// The cast the SELECT applies to the source column (`"col"::text`), for types
    /// whose PostgreSQL text form is the value written and is not worth decoding from
    /// the binary form: `text` for `interval`, `text[]` for `interval[]`. `None` for
    /// every other type, which is read in its binary form (`inet` and `cidr` too: a
    /// cast to text would add `/32` to every host address).
    pub fn select_cast(&self) -> Option<&'static str> {
        match self {
            PgType::Interval => Some("text"),
            PgType::Array(element) if element.select_cast().is_some() => Some("text[]"),
            _ => None,
        }
    }

    /// Whether values of this type are ordered, so that it can be a cursor.
    pub fn is_sortable(&self) -> bool {
        !matches!(self, PgType::Json | PgType::Array(_) | PgType::Boolean)
    }
}

impl fmt::Display for PgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            PgType::SmallInt => "smallint",
            PgType::Integer => "integer",
            PgType::BigInt => "bigint",
            PgType::Real => "real",
            PgType::Double => "double precision",
            PgType::Numeric => "numeric",
            PgType::Boolean => "boolean",
            PgType::Text => "text",
            PgType::Enum => "enum",
            PgType::Bytea => "bytea",
            PgType::Uuid => "uuid",
            PgType::Timestamptz => "timestamp with time zone",
            PgType::Timestamp => "timestamp without time zone",
            PgType::Date => "date",
            PgType::Time => "time without time zone",
            PgType::Json => "json",
            PgType::Jsonb => "jsonb",
            PgType::Interval => "interval",
            PgType::Inet => "inet",
            PgType::Cidr => "cidr",
            PgType::Array(element) => return write!(f, "{element}[]"),
        };
        f.write_str(name)
    }
}

/// `T` of a canonical `Option < T >` type string, or `None` for any other type.
pub fn option_inner(rust_type: &str) -> Option<&str> {
    let rest = rust_type
        .strip_prefix(":: std :: option :: ")
        .or_else(|| rust_type.strip_prefix(":: core :: option :: "))
        .or_else(|| rust_type.strip_prefix("std :: option :: "))
        .or_else(|| rust_type.strip_prefix("core :: option :: "))
        .unwrap_or(rust_type);
    rest.strip_prefix("Option < ")?
        .strip_suffix(" >")
        .map(str::trim)
}

/// The last path segment of a canonical type string, without generics:
/// `:: sync_runtime :: value :: Numeric` is `Numeric`, `Vec < u8 >` is `Vec<u8>`.
fn rust_type_name(rust_type: &str) -> String {
    let without_generics = match rust_type.split_once(" <") {
        Some((path, generics)) if path.trim().ends_with("Vec") && generics.trim() == "u8 >" => {
            return "Vec<u8>".to_owned();
        }
        Some((path, _)) => path,
        None => rust_type,
    };
    without_generics
        .rsplit("::")
        .next()
        .unwrap_or(without_generics)
        .trim()
        .to_owned()
}

/// The PostgreSQL types the Rust types data-sync ships can be read from, by the
/// Rust type's last path segment, the inferred type first; `None` for a type
/// data-sync does not know (a user's own type, which must then name its `type`).
///
/// Every Rust integer reads every PostgreSQL integer type: a narrower field checks
/// each value at run time. `f64` reads `real` too, which widens exactly.
fn known_rust_type(name: &str) -> Option<&'static [PgType]> {
    use PgType::*;
    let types: &'static [PgType] = match name {
        "i16" => &[SmallInt, Integer, BigInt],
        "i32" => &[Integer, SmallInt, BigInt],
        "i64" => &[BigInt, SmallInt, Integer],
        "f32" => &[Real],
        "f64" => &[Double, Real],
        "bool" => &[Boolean],
        "String" => &[Text, Enum],
        "Vec<u8>" => &[Bytea],
        "Numeric" | "NumericReal" => &[Numeric],
        "Uuid" | "UuidBlob" => &[Uuid],
        "Timestamptz" => &[Timestamptz],
        "Timestamp" => &[Timestamp],
        "UnixMicros" | "UnixSeconds" => &[Timestamptz, Timestamp],
        "Date" => &[Date],
        "Time" => &[Time],
        "Json" => &[Json, Jsonb],
        "PgText" => &[Interval, Inet, Cidr],
        _ => return None,
    };
    Some(types)
}

/// The SQLite column type a field writes: the type table's default for its
/// PostgreSQL type, unless its Rust type is one of the per-column opt-ins
/// (`NumericReal`: REAL, `UnixMicros` / `UnixSeconds`: INTEGER, `UuidBlob`: BLOB).
/// `rust_type` is the canonical token form, `Option` allowed.
pub fn sqlite_type(pg_type: &PgType, rust_type: &str) -> SqliteType {
    let inner = option_inner(rust_type).unwrap_or(rust_type);
    match rust_type_name(inner).as_str() {
        "NumericReal" => SqliteType::Real,
        "UnixMicros" | "UnixSeconds" => SqliteType::Integer,
        "UuidBlob" => SqliteType::Blob,
        _ => pg_type.sqlite_type(),
    }
}

/// A per-column opt-in, as a YAML column's `as` names it: the Rust type it stands for
/// and the PostgreSQL types that type reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptIn {
    /// `as: real`: `NumericReal`, numeric as REAL.
    Real,
    /// `as: unix_micros`: `UnixMicros`, a timestamp as INTEGER microseconds.
    UnixMicros,
    /// `as: unix_seconds`: `UnixSeconds`, a timestamp as INTEGER seconds.
    UnixSeconds,
    /// `as: blob`: `UuidBlob`, a uuid as a 16-byte BLOB.
    Blob,
}

/// The values of a YAML column's `as`, for messages.
pub const OPT_IN_VALUES: &str = "`real` (numeric), `unix_micros` or `unix_seconds` (timestamp with time zone, timestamp without time zone), `blob` (uuid)";

impl OptIn {
    /// Every opt-in, in the order messages list them.
    pub const ALL: [OptIn; 4] = [
        OptIn::Real,
        OptIn::UnixMicros,
        OptIn::UnixSeconds,
        OptIn::Blob,
    ];

    /// The opt-in a YAML `as` value names, exactly as written.
    pub fn parse(value: &str) -> Option<OptIn> {
        OptIn::ALL
            .into_iter()
            .find(|opt_in| opt_in.yaml_name() == value)
    }

    /// The value of `as` naming it.
    pub fn yaml_name(self) -> &'static str {
        match self {
            OptIn::Real => "real",
            OptIn::UnixMicros => "unix_micros",
            OptIn::UnixSeconds => "unix_seconds",
            OptIn::Blob => "blob",
        }
    }

    /// The Rust type of the field, as emitted.
    pub fn rust_type(self) -> &'static str {
        match self {
            OptIn::Real => "::sync_runtime::value::NumericReal",
            OptIn::UnixMicros => "::sync_runtime::value::UnixMicros",
            OptIn::UnixSeconds => "::sync_runtime::value::UnixSeconds",
            OptIn::Blob => "::sync_runtime::value::UuidBlob",
        }
    }

    /// The opt-in whose Rust type `rust_type` is (canonical token form, `Option`
    /// allowed), if any.
    pub fn of_rust_type(rust_type: &str) -> Option<OptIn> {
        let inner = option_inner(rust_type).unwrap_or(rust_type);
        match rust_type_name(inner).as_str() {
            "NumericReal" => Some(OptIn::Real),
            "UnixMicros" => Some(OptIn::UnixMicros),
            "UnixSeconds" => Some(OptIn::UnixSeconds),
            "UuidBlob" => Some(OptIn::Blob),
            _ => None,
        }
    }
}

/// The advice for a type outside the type table, after "unknown PostgreSQL type".
pub const OUTSIDE_THE_TABLE: &str = "data-sync reads the types of its type table (docs/types.md); to carry another type as its text form, sync from a view that selects the column cast to text (`\"col\"::text AS \"col\"`) and declare `type = \"text\"`";

/// How a field's type resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The field reads a column of this PostgreSQL type.
    Type(PgType),
    /// `type = ".."` names no type data-sync knows.
    UnknownPgType,
    /// No `type` was given and the Rust type is not one data-sync can infer from.
    CannotInfer,
    /// The declared type cannot be read into the Rust type; the types it can be read
    /// from follow.
    Mismatch(&'static [PgType]),
    /// An array with no element type: arrays need `type = "integer[]"`.
    ArrayNeedsType,
}

/// Resolves the PostgreSQL type of a field from its declared `type` and its Rust type
/// (canonical token form, `Option` allowed).
pub fn resolve(declared: Option<&str>, rust_type: &str) -> Resolved {
    let inner = option_inner(rust_type).unwrap_or(rust_type);
    let name = rust_type_name(inner);
    let known = known_rust_type(&name);
    match declared {
        Some(declared) => {
            let Some(pg_type) = parse_pg_type(declared) else {
                return Resolved::UnknownPgType;
            };
            match known {
                Some(accepted)
                    if !(accepted.contains(&pg_type)
                        || name == "Array" && matches!(pg_type, PgType::Array(_))) =>
                {
                    Resolved::Mismatch(accepted)
                }
                _ => Resolved::Type(pg_type),
            }
        }
        None if name == "Array" => Resolved::ArrayNeedsType,
        None => match known {
            Some([first, ..]) => Resolved::Type(first.clone()),
            _ => Resolved::CannotInfer,
        },
    }
}

/// The Rust type a YAML column of `pg_type` is read into, `Option` when nullable:
/// the opt-in's type when its `as` names one (whether it reads `pg_type` is for
/// `check` to judge), else the type table's.
pub fn rust_type_for(pg_type: &PgType, opt_in: Option<OptIn>, nullable: bool) -> String {
    let rust_type = opt_in.map_or_else(|| pg_type.rust_type(), OptIn::rust_type);
    if nullable {
        format!("Option<{rust_type}>")
    } else {
        rust_type.to_owned()
    }
}

#[cfg(test)]
mod tests;
